"""Crashes (SIGKILL) at the worst moments lose nothing and apply nothing twice."""

import asyncio
import signal
from decimal import Decimal

import httpx

import pytest

from shared.db import lock_key
from shared.events import decode
from tests.support import admin_connection, contract, eventually, post_contracts, read_topic

pytestmark = pytest.mark.integration

N = 25


def small_contract(i: int) -> dict:
    """Below the advance threshold (R2191-3): one event per contract, ContractNotified."""
    return contract(i, amount_ht="40000.00", amount_ttc="48000.00")


async def _count(db, sql: str) -> int:
    return await db.fetchval(sql)


async def _start_with_relay_held(services, db, **env):
    """Starts advances while the test holds its relay's leadership lock: nothing is sent yet."""
    await db.execute("SELECT pg_advisory_lock($1)", lock_key("outbox-relay:advances"))
    return await services.start("advances", **env)


async def _notify_then_release_relay(services, db) -> None:
    codes = await post_contracts(services.url("advances"), [small_contract(i) for i in range(N)])
    assert codes == [201] * N
    assert await _count(db, "SELECT count(*) FROM advances.outbox WHERE published_at IS NULL") == N
    await db.execute("SELECT pg_advisory_unlock($1)", lock_key("outbox-relay:advances"))


@pytest.mark.parametrize("crash_at", ["relay.before_send", "relay.after_send"])
async def test_relay_killed_around_the_kafka_send_publishes_everything_once_in_effect(ns, services, crash_at):
    db = await admin_connection(ns)
    try:
        advances = await _start_with_relay_held(services, db, INVOICING_FAILPOINTS=crash_at)
        await _notify_then_release_relay(services, db)

        # The relay takes the lock, reads the N rows and is killed at the failpoint.
        assert await asyncio.to_thread(advances.exited, 30) == -signal.SIGKILL
        assert await _count(db, "SELECT count(*) FROM advances.outbox WHERE published_at IS NULL") == N
        sent_before_restart = len(await read_topic(ns, "advances.events"))
        assert sent_before_restart == (0 if crash_at == "relay.before_send" else N)

        await services.start("advances")
        await services.start("invoices")

        await eventually(lambda: _count(db, "SELECT count(*) = 0 FROM advances.outbox WHERE published_at IS NULL"))
        await eventually(lambda: _count(db, f"SELECT count(*) = {N} FROM invoices.processed_events"))
        records = await read_topic(ns, "advances.events")
        event_ids = {decode(r.value).envelope.event_id for r in records}
        assert len(event_ids) == N
        # Re-sent after the crash when Kafka had them already: duplicates on the topic...
        assert len(records) == sent_before_restart + N
        # ...but exactly one effect per event.
        assert await _count(db, "SELECT count(*) FROM invoices.contract_refs") == N
        assert await _count(db, "SELECT count(*) FROM invoices.processed_events") == N
        assert await _count(db, "SELECT count(DISTINCT source_event_id) FROM invoices.contract_refs") == N
    finally:
        await db.close()


async def test_consumer_killed_after_its_commit_and_before_the_offset_commit_applies_each_event_once(ns, services):
    db = await admin_connection(ns)
    try:
        await services.start("advances")
        invoices = await services.start("invoices", INVOICING_FAILPOINTS="consumer.after_db_commit")
        await post_contracts(services.url("advances"), [small_contract(i) for i in range(N)])

        # The first batch is committed in PostgreSQL, then the process dies before Kafka
        # hears about it: the batch will be delivered again.
        assert await asyncio.to_thread(invoices.exited, 30) == -signal.SIGKILL
        applied_before_crash = await _count(db, "SELECT count(*) FROM invoices.processed_events")
        assert applied_before_crash > 0

        invoices = await services.start("invoices")
        await eventually(lambda: _count(db, f"SELECT count(*) = {N} FROM invoices.processed_events"))
        assert await _count(db, "SELECT count(*) FROM invoices.contract_refs") == N

        # The redelivered events were recognised and skipped, not applied again.
        metrics = httpx.get(f"{invoices.url}/metrics").text
        duplicates = _metric(metrics, 'events_consumed_total{event_type="ContractNotified",result="duplicate"}')
        processed = _metric(metrics, 'events_consumed_total{event_type="ContractNotified",result="processed"}')
        assert duplicates == applied_before_crash
        assert processed == N - applied_before_crash
    finally:
        await db.close()


def _metric(text: str, series: str) -> Decimal:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return Decimal(line.split()[-1])
    return Decimal(0)
