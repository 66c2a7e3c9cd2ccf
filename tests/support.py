"""Helpers for tests that run the real stack: namespaces, service processes, topic reads."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer

from deploy.local.services import ServiceProcess, env_of  # noqa: F401  (re-exported for tests)
from deploy.simulators.suppliers import make_siret
from shared.auth import bearer_header
from shared.db import PLUMBING, connect, create_pool, migrate
from shared.money import to_cents
from shared.settings import SERVICES, Settings
from shared.topics import read_all


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_settings(base: Settings) -> Settings:
    """Same stack, its own namespace (topics and database) and its own HTTP ports."""
    return base.model_copy(update={
        "namespace": f"t{uuid.uuid4().hex[:10]}",
        "http_ports": {name: free_port() for name in SERVICES},
        "relay_poll_seconds": 0.5,
    })


class Services:
    """Starts, kills and restarts service processes of one namespace."""

    def __init__(self, settings: Settings, folder) -> None:
        self.settings = settings
        self.folder = folder
        self.running: dict[str, ServiceProcess] = {}

    async def start(self, name: str, **env: str) -> ServiceProcess:
        process = ServiceProcess(name, self.settings, env=env, folder=self.folder)
        process.start()
        self.running[name] = process
        await asyncio.to_thread(process.wait_ready)
        return process

    def stop_all(self) -> None:
        for process in self.running.values():
            process.stop()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.settings.http_ports[name]}"


async def admin_connection(settings: Settings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.admin_dsn(settings.database))


async def read_topic(settings: Settings, name: str) -> list:
    return await read_all(settings, [settings.topic(name)])


async def produce(settings: Settings, name: str, values: list[bytes], key: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(settings.topic(name), value=value, key=key)
    finally:
        await producer.stop()


async def eventually(check, timeout: float = 30.0, interval: float = 0.2):
    """Polls an async ``check`` until it returns a truthy value; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")


def contract(i: int, **changes) -> dict:
    data = {
        "contract_id": f"M-2026-{i:04d}",
        "supplier_siret": make_siret(10000000 + i),
        "supplier_name": f"Entreprise {i}",
        "sme": i % 2 == 0,
        "contract_type": ("works", "supplies", "services")[i % 3],
        "amount_ht": str(Decimal("60000.00") + i),
        "amount_ttc": str(to_cents((Decimal("60000.00") + i) * Decimal("1.2"))),
        "duration_months": 6 + i % 20,
        "notified_on": "2026-01-05",
        "engagement_numbers": [f"EJ-{i}"],
    }
    data.update(changes)
    return data


def _admin(user: str) -> dict[str, str]:
    return token(Settings(), user, "admin")


async def post_contracts(base_url: str, contracts: list[dict], actor: str = "procurement") -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        codes = []
        for body in contracts:
            answer = await client.post("/contracts", json=body, headers=_admin(actor))
            codes.append(answer.status_code)
        return codes


def token(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    """The Authorization header of a user holding ``roles``."""
    return bearer_header(settings, user, list(roles))


@asynccontextmanager
async def service_pool(settings: Settings, service: str, *, own_schema: bool = True):
    """A pool of ``service``'s role on the namespace's database, its schema migrated (the shared
    plumbing, and the service's own tables unless ``own_schema`` is False)."""
    folders = [PLUMBING]
    if own_schema:
        folders.append(Path(__file__).resolve().parents[1] / "services" / service / "migrations")
    conn = await connect(settings, service)
    try:
        await migrate(conn, service, folders)
    finally:
        await conn.close()
    pool = await create_pool(settings, service)
    try:
        yield pool
    finally:
        await pool.close()
