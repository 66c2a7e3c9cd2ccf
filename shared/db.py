"""PostgreSQL plumbing: the per-namespace database, per-service roles and schemas, migrations.

Each service logs in with its own role, which owns its own schema and nothing else: it can
neither read nor write another service's tables.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import asyncpg

from shared.settings import SERVICES, Settings

PLUMBING = Path(__file__).parent / "migrations"


async def ensure_database(settings: Settings) -> None:
    """Creates (idempotently) the roles, the namespace's database and one schema per service."""
    admin = await asyncpg.connect(settings.admin_dsn("postgres"))
    try:
        for service in SERVICES:
            password = settings.db_passwords[service]
            exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", service)
            verb = "ALTER" if exists else "CREATE"
            # Identifiers cannot be bound parameters; these come from the fixed SERVICES list.
            await admin.execute(f"{verb} ROLE {service} LOGIN PASSWORD {_literal(password)}")
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", settings.database):
            try:
                await admin.execute(f'CREATE DATABASE "{settings.database}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await admin.close()

    db = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        await _prefer_lz4(db, settings.database)
        await db.execute(f'REVOKE ALL ON DATABASE "{settings.database}" FROM PUBLIC')
        await db.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for service in SERVICES:
            await db.execute(f'GRANT CONNECT, TEMPORARY ON DATABASE "{settings.database}" TO {service}')
            await db.execute(f"CREATE SCHEMA IF NOT EXISTS {service} AUTHORIZATION {service}")
            await db.execute(f"REVOKE ALL ON SCHEMA {service} FROM PUBLIC")
            await db.execute(f"ALTER ROLE {service} IN DATABASE \"{settings.database}\" SET search_path = {service}")
    finally:
        await db.close()


async def _prefer_lz4(db: asyncpg.Connection, database: str) -> None:
    """Large values (documents, canonical invoices, event bodies, audit payloads) are compressed
    with lz4 rather than PostgreSQL's default pglz: about four times less CPU per document
    stored. A server built without lz4 keeps its default."""
    try:
        await db.execute(f'ALTER DATABASE "{database}" SET default_toast_compression = \'lz4\'')
    except (asyncpg.InvalidParameterValueError, asyncpg.FeatureNotSupportedError):
        pass


async def drop_database(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.admin_dsn("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{settings.database}" WITH (FORCE)')
    finally:
        await admin.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def connect(settings: Settings, service: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        settings.service_dsn(service),
        server_settings={"search_path": service, "application_name": service},
    )


async def create_pool(settings: Settings, service: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        settings.service_dsn(service),
        min_size=1,
        max_size=settings.db_pool_max,
        server_settings={"search_path": service, "application_name": service},
        reset=_after_use,
    )


async def _after_use(conn: asyncpg.Connection) -> None:
    """What a pooled connection needs when it comes back, beyond the rollback of a transaction
    left open (asyncpg does that always): nothing. Pooled connections keep no session state —
    session locks and LISTEN live on the relay's and the migrations' own connections, cursors
    close with their transactions — so the reset query (one round trip per checkout) is skipped."""


def lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


async def migrate(conn: asyncpg.Connection, service: str, folders: list[Path]) -> list[str]:
    """Applies, in order and once, the ``NNN_*.sql`` files of ``folders`` to the service schema.

    Files are named by package (``shared/001_plumbing.sql``) so two folders may both have a 001.
    Concurrent starts of the same service serialise on an advisory lock.
    """
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key(f"migrate:{service}"))
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        for folder in folders:
            for path in sorted(folder.glob("[0-9][0-9][0-9]_*.sql")):
                name = f"{folder.parent.name}/{path.name}"
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(f"migrate:{service}"))
    return applied


async def wait_for_postgres(dsn: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"PostgreSQL did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.25)
