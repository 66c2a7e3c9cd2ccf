"""SQL for the audit schema: the log (insert and read only), chain heads, history queries,
cursors for verification and export, completeness."""

from __future__ import annotations

from datetime import datetime
from typing import AsyncIterator
from uuid import UUID

import asyncpg

from services.audit.domain.chain import Head
from services.audit.domain.record import AuditRecord, canonical_json, parse_json
from shared.db import lock_key

COLUMNS = (
    "topic", "partition", "seq", "kafka_offset", "kafka_key", "kafka_timestamp", "received_at", "kind",
    "value_sha256", "event_id", "event_type", "schema_version", "occurred_at", "producer", "aggregate_type",
    "aggregate_id", "correlation_id", "causation_id", "actor", "payload", "subjects", "raw", "note", "hash",
)
SELECT = "SELECT id, " + ", ".join(COLUMNS) + " FROM audit_log"
# Events in the order they occurred; events of one instant (a clock that stands still, as in a
# test or a replayed day) in the order Kafka received them, which follows their causes.
IN_ORDER = "occurred_at, kafka_timestamp, id"


def record_of(row: asyncpg.Record) -> AuditRecord:
    """A stored row as the record its hash was computed on."""
    data = dict(row)
    payload = data.pop("payload")
    return AuditRecord(**data, payload=parse_json(payload) if payload is not None else None)


def _values(record: AuditRecord, payload: str | None) -> tuple:
    """The row of ``record`` for COPY; ``payload``: its payload's canonical text."""
    return (
        record.topic, record.partition, record.seq, record.kafka_offset, record.kafka_key,
        record.kafka_timestamp, record.received_at, record.kind, record.value_sha256, _uuid(record.event_id),
        record.event_type, record.schema_version, record.occurred_at, record.producer, record.aggregate_type,
        record.aggregate_id, record.correlation_id, _uuid(record.causation_id), record.actor,
        payload, list(record.subjects), record.raw, record.note, record.hash,
    )


def _uuid(value: UUID | None) -> str | None:
    # As 32 hex digits: asyncpg reads text in C, a UUID object through its Python ``bytes`` property.
    return value.hex if value is not None else None


async def lock_chains(conn: asyncpg.Connection, chains: list[tuple[str, int]]) -> None:
    """One writer per chain until the transaction ends. The locks are taken in one statement, one
    after the other in the order of the sorted chains: two writers that share chains wait for
    one another, they never deadlock."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(key) FROM unnest($1::bigint[]) WITH ORDINALITY AS chain(key, position) "
        "ORDER BY position",
        [lock_key(f"audit-chain:{topic}/{partition}") for topic, partition in sorted(chains)])


async def heads_of(conn: asyncpg.Connection, chains: list[tuple[str, int]]) -> dict[tuple[str, int], Head]:
    """The last record of each of ``chains`` that has one (one index probe per chain, one statement).
    Read after ``lock_chains``, in a statement of its own: its snapshot then sees every record
    the previous writer of these chains committed."""
    rows = await conn.fetch(
        """SELECT c.topic, c.partition, h.seq, h.hash, h.kafka_offset
           FROM unnest($1::text[], $2::int[]) AS c(topic, partition), LATERAL (
               SELECT seq, hash, kafka_offset FROM audit_log
               WHERE topic = c.topic AND partition = c.partition ORDER BY seq DESC LIMIT 1) h""",
        [topic for topic, _ in chains], [partition for _, partition in chains])
    return {(r["topic"], r["partition"]): Head(r["topic"], r["partition"], r["seq"], r["hash"], r["kafka_offset"])
            for r in rows}


async def heads(conn: asyncpg.Connection) -> list[Head]:
    """The last record of every chain (one index probe per chain)."""
    rows = await conn.fetch(
        """WITH RECURSIVE chains AS (
               (SELECT topic, partition FROM audit_log ORDER BY topic, partition LIMIT 1)
               UNION ALL
               SELECT n.topic, n.partition FROM chains c, LATERAL (
                   SELECT topic, partition FROM audit_log WHERE (topic, partition) > (c.topic, c.partition)
                   ORDER BY topic, partition LIMIT 1) n)
           SELECT c.topic, c.partition, h.seq, h.hash, h.kafka_offset FROM chains c, LATERAL (
               SELECT seq, hash, kafka_offset FROM audit_log
               WHERE topic = c.topic AND partition = c.partition ORDER BY seq DESC LIMIT 1) h""")
    return [Head(r["topic"], r["partition"], r["seq"], r["hash"], r["kafka_offset"]) for r in rows]


async def at_position(conn: asyncpg.Connection, topic: str, partition: int, seq: int) -> Head | None:
    row = await conn.fetchrow(
        "SELECT seq, hash, kafka_offset FROM audit_log WHERE topic = $1 AND partition = $2 AND seq = $3",
        topic, partition, seq)
    return Head(topic, partition, row["seq"], row["hash"], row["kafka_offset"]) if row else None


async def recorded_events(conn: asyncpg.Connection, event_ids: list[UUID]) -> dict[UUID, asyncpg.Record]:
    """The events of ``event_ids`` already in the log: where, and their bytes' hash."""
    if not event_ids:
        return {}
    rows = await conn.fetch(
        "SELECT event_id, id, topic, partition, kafka_offset, value_sha256 FROM audit_log "
        "WHERE kind = 'event' AND event_id = ANY($1::uuid[])", event_ids)
    return {row["event_id"]: row for row in rows}


async def insert(conn: asyncpg.Connection, records: list[AuditRecord],
                 payloads: list[str | None] | None = None) -> None:
    """Appends ``records`` in one COPY. ``payloads``: their payloads' canonical text, in the same
    order, when already at hand (``Canonical.payload``)."""
    if records:
        if payloads is None:
            payloads = [canonical_json(r.payload) if r.payload is not None else None for r in records]
        await conn.copy_records_to_table("audit_log", records=[_values(r, p) for r, p in zip(records, payloads)],
                                         columns=COLUMNS)


def _between(start: datetime | None, end: datetime | None, first: int) -> tuple[str, list]:
    clauses, args = [], []
    if start is not None:
        args.append(start)
        clauses.append(f"received_at >= ${first + len(args) - 1}")
    if end is not None:
        args.append(end)
        clauses.append(f"received_at < ${first + len(args) - 1}")
    return (" AND ".join(clauses) or "true"), args


async def chain_records(conn: asyncpg.Connection, start: datetime | None = None, end: datetime | None = None,
                        batch: int = 2000) -> AsyncIterator[AuditRecord]:
    """Every record (received in the period), chain after chain, in chain order, through a
    server-side cursor. Must run inside a transaction."""
    where, args = _between(start, end, 1)
    cursor = await conn.cursor(f"{SELECT} WHERE {where} ORDER BY topic, partition, seq", *args)
    while rows := await cursor.fetch(batch):
        for row in rows:
            yield record_of(row)


async def export_rows(conn: asyncpg.Connection, start: datetime | None, end: datetime | None,
                      batch: int = 2000) -> AsyncIterator[list[asyncpg.Record]]:
    """Rows received in the period, in the order they were recorded, a batch at a time from a
    server-side cursor (memory stays flat whatever the period holds). Inside a transaction."""
    where, args = _between(start, end, 1)
    cursor = await conn.cursor(
        f"SELECT id, {', '.join(c for c in COLUMNS if c != 'payload')}, payload::text AS payload "
        f"FROM audit_log WHERE {where} ORDER BY received_at, id", *args)
    while rows := await cursor.fetch(batch):
        yield rows


async def history(conn: asyncpg.Connection, *, subject: str | None = None, actor: str | None = None,
                  expand: bool = False, limit: int = 10000) -> list[AuditRecord]:
    """The events about ``subject`` (a ``kind:id`` tag) or done by ``actor``, in the order they
    occurred. ``expand``: also the events of the invoices and contracts those events name (a
    supplier's history includes what happened to its invoices and contracts)."""
    if actor is not None:
        rows = await conn.fetch(
            f"{SELECT} WHERE kind = 'event' AND actor = $1 ORDER BY {IN_ORDER} LIMIT $2", actor, limit)
        return [record_of(r) for r in rows]
    tags = [subject]
    if expand:
        tags += await conn.fetchval(
            """SELECT coalesce(array_agg(DISTINCT tag), '{}') FROM audit_log, unnest(subjects) AS tag
               WHERE kind = 'event' AND subjects @> ARRAY[$1]
                 AND (tag LIKE 'invoice:%' OR tag LIKE 'contract:%')""", subject)
    rows = await conn.fetch(
        f"{SELECT} WHERE kind = 'event' AND subjects && $1::text[] ORDER BY {IN_ORDER} LIMIT $2",
        tags, limit)
    return [record_of(r) for r in rows]


async def invoice_events(conn: asyncpg.Connection) -> AsyncIterator[AuditRecord]:
    """Events about invoices in chain order: the invoices' own first, then the payments naming
    one (a payment follows its invoice's approval). Inside a transaction."""
    cursor = await conn.cursor(
        f"""{SELECT} WHERE kind = 'event' AND (aggregate_type = 'invoice'
                OR (event_type IN ('PaymentOrdered', 'PaymentExecuted') AND payload ->> 'kind' = 'invoice'))
            ORDER BY aggregate_type <> 'invoice', topic, partition, seq""")
    while rows := await cursor.fetch(2000):
        for row in rows:
            yield record_of(row)


async def completeness(conn: asyncpg.Connection) -> list[dict]:
    """Per chain: records, first and last offsets, and the offsets never recorded."""
    summary = await conn.fetch(
        """SELECT topic, partition, count(*) AS records, min(kafka_offset) AS first_offset,
                  max(kafka_offset) AS last_offset, max(seq) AS last_seq,
                  count(*) FILTER (WHERE kind = 'event') AS events,
                  count(*) FILTER (WHERE kind = 'raw') AS raw,
                  count(*) FILTER (WHERE kind = 'duplicate') AS duplicates
           FROM audit_log GROUP BY topic, partition ORDER BY topic, partition""")
    gaps = await conn.fetch(
        """SELECT topic, partition, previous + 1 AS first_missing, kafka_offset - 1 AS last_missing
           FROM (SELECT topic, partition, kafka_offset,
                        lag(kafka_offset, 1, -1::bigint) OVER (PARTITION BY topic, partition
                                                              ORDER BY kafka_offset) AS previous
                 FROM audit_log) offsets
           WHERE kafka_offset > previous + 1 ORDER BY topic, partition, first_missing""")
    chains = {(r["topic"], r["partition"]): {**dict(r), "gaps": []} for r in summary}
    for gap in gaps:
        chains[(gap["topic"], gap["partition"])]["gaps"].append(
            {"first_missing": gap["first_missing"], "last_missing": gap["last_missing"]})
    return list(chains.values())


async def counts(conn: asyncpg.Connection) -> dict[tuple[str, int], int]:
    rows = await conn.fetch("SELECT topic, partition, max(seq) AS n FROM audit_log GROUP BY topic, partition")
    return {(r["topic"], r["partition"]): r["n"] for r in rows}
