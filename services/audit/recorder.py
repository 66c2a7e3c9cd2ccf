"""The recorder: a consumer group reading every audited topic and appending each record to the
log, chained, in one transaction per batch; Kafka offsets are committed after that transaction.

- A batch read again after a crash (committed in PostgreSQL, not yet in Kafka) is recognised by
  its offsets, already in the chain, and skipped: each offset is recorded once.
- An event published twice (an outbox relay that re-sent after a crash) is recorded once; its
  second offset becomes a ``duplicate`` entry.
- Nothing is dead-lettered: what is not an event is kept as raw bytes with the reason. A row
  PostgreSQL still refuses is retried alone and kept raw. Any other failure rolls the batch back
  and reads it again after a pause: the audit log may be late, never incomplete.
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.audit import metrics, store
from services.audit.domain.chain import Head, head_of, link, link_all
from services.audit.domain.record import (
    AuditRecord,
    Canonical,
    Entry,
    as_duplicate,
    as_raw,
    canonical_form,
    read_record,
)
from shared.consumer import INFRASTRUCTURE_ERRORS, BatchConsumer, Letter
from shared.logging import get_logger

log = get_logger("audit.recorder")

CONSUMER = "audit.recorder"


class RecordingFailed(OSError):
    """A batch could not be appended for a reason other than its content: it is rolled back and
    read again after a pause (an ``OSError`` so the consumer treats it as infrastructure)."""


class Pending(NamedTuple):
    """A record read, not yet in its chain: its entry, the entry's canonical form (serialised
    once, then hashed and stored as it is) and the record's bytes (kept if PostgreSQL refuses
    the entry)."""

    entry: Entry
    canonical: Canonical
    value: bytes | None


def _pending(entry: Entry, value: bytes | None) -> Pending:
    return Pending(entry, canonical_form(entry), value)


class AuditRecorder(BatchConsumer):
    def __init__(self, topics: list[str]) -> None:
        super().__init__(CONSUMER, topics)

    async def apply(self, records: tuple[ConsumerRecord, ...]) -> list[Letter]:
        received_at = self.clock.now()
        pending = [
            Pending(*read_record(topic=r.topic, partition=r.partition, offset=r.offset, key=r.key,
                                 timestamp_ms=r.timestamp, value=r.value, received_at=received_at), r.value)
            for r in records
        ]
        for attempt in (1, 2, 3):
            try:
                appended = await self._append(pending)
                break
            except INFRASTRUCTURE_ERRORS:
                raise
            except asyncpg.UniqueViolationError as exc:
                # The same event arrived at once on two partitions recorded by two replicas:
                # the next attempt sees the first one's row and notes a duplicate.
                if attempt == 3:
                    raise RecordingFailed(f"the batch kept colliding with another writer: {exc}") from exc
            except Exception as exc:
                log.error("batch not appended, will be read again", error=repr(exc), records=len(records))
                raise RecordingFailed(f"{type(exc).__name__}: {exc}") from exc
        for record in appended:
            metrics.records_appended.labels(record.kind).inc()
        if appended:
            log.info("records appended", count=len(appended), skipped=len(records) - len(appended),
                     chains=sorted({f"{r.topic}/{r.partition}" for r in appended}))
        return []

    async def _append(self, pending: list[Pending]) -> list[AuditRecord]:
        async with self._pool().acquire() as conn, conn.transaction():
            chains = sorted({(p.entry.topic, p.entry.partition) for p in pending})
            await store.lock_chains(conn, chains)
            heads = await store.heads_of(conn, chains)
            # Offsets already in their chain were recorded before a crash that kept Kafka from
            # hearing about it: read again, recorded once.
            fresh = [p for p in pending
                     if (head := heads.get((p.entry.topic, p.entry.partition))) is None
                     or p.entry.kafka_offset > head.kafka_offset]
            fresh = await self._mark_duplicates(conn, fresh)
            start = dict(heads)
            records = link_all(heads, [p.entry for p in fresh], [p.canonical for p in fresh])
            try:
                async with conn.transaction():
                    await store.insert(conn, records, [p.canonical.payload for p in fresh])
                return records
            except asyncpg.DataError:
                return await self._append_one_by_one(conn, start, fresh)

    async def _mark_duplicates(self, conn: asyncpg.Connection, pending: list[Pending]) -> list[Pending]:
        known = await store.recorded_events(conn, [p.entry.event_id for p in pending if p.entry.kind == "event"])
        first: dict = {}
        marked = []
        for item in pending:
            entry = item.entry
            if entry.kind == "event":
                original = known.get(entry.event_id)
                earlier = first.get(entry.event_id)
                if original is not None:
                    where = (f"record {original['id']}, {original['topic']} partition {original['partition']} "
                             f"offset {original['kafka_offset']}")
                    item = _pending(as_duplicate(entry, where, original["value_sha256"] == entry.value_sha256),
                                    item.value)
                elif earlier is not None:
                    item = _pending(as_duplicate(entry, earlier.where, earlier.value_sha256 == entry.value_sha256),
                                    item.value)
                else:
                    first[entry.event_id] = entry
            marked.append(item)
        return marked

    async def _append_one_by_one(self, conn: asyncpg.Connection, heads: dict[tuple[str, int], Head],
                                 pending: list[Pending]) -> list[AuditRecord]:
        """The slow path when PostgreSQL refused a row of the batch: each row alone, the refused
        one kept as raw bytes with PostgreSQL's reason."""
        records = []
        for entry, canonical, value in pending:
            key = (entry.topic, entry.partition)
            record = link(heads.get(key), entry, canonical)
            try:
                async with conn.transaction():
                    await store.insert(conn, [record], [canonical.payload])
            except asyncpg.DataError as exc:
                raw = _pending(as_raw(entry, f"PostgreSQL refused it as an event: {exc}", value), value)
                record = link(heads.get(key), raw.entry, raw.canonical)
                async with conn.transaction():
                    await store.insert(conn, [record], [raw.canonical.payload])
            heads[key] = head_of(record)
            records.append(record)
        return records
