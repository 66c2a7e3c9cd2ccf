"""The local stack: `up` is idempotent, `status` tells the truth, a taken port is named."""

import json
import os
import subprocess
import sys

import pytest

from deploy.local import stack as local_stack

pytestmark = pytest.mark.integration


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_stack_up_when_running_changes_nothing(stack):
    before = local_stack.status(stack)
    assert before["kafka"]["running"] and before["postgres"]["running"]

    again = _cli("stack", "up")

    assert again.returncode == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["kafka"] == "already running"
    assert result["postgres"] == "already running"
    assert result["topics_created"] == []
    after = local_stack.status(stack)
    assert after["kafka"]["pid"] == before["kafka"]["pid"]
    assert after["postgres"]["pid"] == before["postgres"]["pid"]
    assert after["kafka"]["version"].startswith("4.")


def test_a_port_taken_by_someone_else_is_named(stack, tmp_path):
    other = _cli("stack", "up", INVOICING_STATE_DIR=str(tmp_path / "other"))
    assert other.returncode == 1
    assert f"port {stack.pg_port}" in other.stderr
    assert "did not start" in other.stderr


async def test_each_service_role_sees_only_its_own_schema(ns, services):
    import asyncpg

    from shared.db import connect

    await services.start("advances")
    await services.start("invoices")
    invoices = await connect(ns, "invoices")
    try:
        assert await invoices.fetchval("SELECT count(*) FROM contract_refs") == 0
        for table in ("advances.contracts", "advances.outbox"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await invoices.fetchval(f"SELECT count(*) FROM {table}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await invoices.execute("CREATE TABLE public.sneaky (id int)")
        # Stored documents and event bodies are compressed with lz4 (Debian's server has it).
        assert await invoices.fetchval("SHOW default_toast_compression") == "lz4"
        await invoices.execute("INSERT INTO documents (sha256, content, size_bytes, stored_at) "
                               "VALUES ($1, $2, 40000, now())", "ab" * 32, b"<Invoice>" * 4000 + bytes(range(256)) * 16)
        assert await invoices.fetchval(
            "SELECT pg_column_compression(content) FROM documents WHERE sha256 = $1", "ab" * 32) == "lz4"
    finally:
        await invoices.close()


def test_missing_java_or_maven_is_said_plainly(stack, tmp_path, monkeypatch):
    from tests.support import free_port

    settings = stack.model_copy(update={
        "state_dir": tmp_path / "state", "cache_dir": tmp_path / "cache",
        "kafka_port": free_port(), "kafka_controller_port": free_port(),
    })
    paths = local_stack.Paths.of(settings)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(local_stack.StackError, match="'java' is not on PATH"):
        local_stack.kafka_up(settings, paths)
    with pytest.raises(local_stack.StackError, match="'mvn' is not on PATH"):
        local_stack.ensure_kafka_libs(paths)
