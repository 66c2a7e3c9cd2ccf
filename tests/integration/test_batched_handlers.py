"""A batched handler applies a whole batch in one call; when it fails, only the event that
makes it fail is dead-lettered and every other one is applied, once."""

import dataclasses
import json

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from shared.clock import SystemClock
from shared.consumer import Batched, IdempotentConsumer
from shared.events import encode, new_envelope
from shared.events.contracts import ContractNotified
from tests.support import contract, service_pool

pytestmark = pytest.mark.integration

SERVICE = "advances"
TOPIC = "advances.events"


def _record(offset: int, i: int) -> ConsumerRecord:
    envelope = new_envelope(ContractNotified.model_validate(contract(i)), producer="advances",
                            actor="test", clock=SystemClock())
    value = encode(envelope)
    return ConsumerRecord(topic=TOPIC, partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=envelope.aggregate_id.encode(), value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=len(value), headers=())


@pytest.fixture
async def pool(ns):
    async with service_pool(ns, "advances", own_schema=False) as pool:
        await pool.execute("CREATE TABLE seen (contract_id text PRIMARY KEY, calls int NOT NULL)")
        yield pool


def _consumer(ns, pool, calls: list[list[str]]) -> IdempotentConsumer:
    async def apply_all(conn: asyncpg.Connection, events) -> None:
        ids = [decoded.event.contract_id for decoded in events]
        calls.append(ids)
        if "M-2026-0003" in ids:
            raise ValueError("contract 3 cannot be applied")
        await conn.executemany("INSERT INTO seen VALUES ($1, $2)", [(i, len(calls)) for i in ids])

    consumer = IdempotentConsumer("test.batched", [TOPIC], {ContractNotified: Batched(apply_all)})
    consumer.settings, consumer.clock = ns, SystemClock()
    consumer._pool = lambda: pool
    return consumer


async def test_a_batch_goes_to_its_handler_in_one_call(ns, pool):
    calls: list[list[str]] = []
    consumer = _consumer(ns, pool, calls)
    records = tuple(_record(offset, i) for offset, i in enumerate((1, 2, 4, 5)))

    assert await consumer.apply(records) == []
    assert calls == [["M-2026-0001", "M-2026-0002", "M-2026-0004", "M-2026-0005"]]

    # Read again after a crash before the offsets were committed: nothing is applied twice.
    assert await consumer.apply(records) == []
    assert len(calls) == 1
    assert await pool.fetchval("SELECT count(*) FROM seen") == 4


async def test_when_the_batched_handler_fails_only_the_failing_event_is_dead_lettered(ns, pool):
    calls: list[list[str]] = []
    consumer = _consumer(ns, pool, calls)
    records = tuple(_record(offset, i) for offset, i in enumerate((1, 2, 3, 4)))

    letters = await consumer.apply(records)

    assert [(letter.record.offset, letter.reason) for letter in letters] == [(2, "handler_failed")]
    assert "contract 3 cannot be applied" in letters[0].detail
    # The whole batch first, then each event alone in its savepoint.
    assert calls[0] == ["M-2026-0001", "M-2026-0002", "M-2026-0003", "M-2026-0004"]
    assert calls[1:] == [["M-2026-0001"], ["M-2026-0002"], ["M-2026-0003"], ["M-2026-0004"]]
    rows = await pool.fetch("SELECT contract_id FROM seen ORDER BY contract_id")
    assert [r["contract_id"] for r in rows] == ["M-2026-0001", "M-2026-0002", "M-2026-0004"]
    # The dead-lettered event is forgotten: its replay will be applied.
    recorded = await pool.fetch("SELECT kafka_offset FROM processed_events WHERE consumer = 'test.batched' "
                                "ORDER BY kafka_offset")
    assert [r["kafka_offset"] for r in recorded] == [0, 1, 3]
    assert json.loads(letters[0].record.value)["payload"]["contract_id"] == "M-2026-0003"


async def test_another_consumers_event_is_skipped_on_its_header_without_reading_its_value(ns, pool):
    calls: list[list[str]] = []
    consumer = _consumer(ns, pool, calls)
    other = dataclasses.replace(_record(1, 2), value=b"not even JSON", headers=(("event_type", b"InvoiceReceived"),))
    records = (_record(0, 1), other, _record(2, 4))

    assert await consumer.apply(records) == []
    assert calls == [["M-2026-0001", "M-2026-0004"]]
