"""History queries: who did what, when, to an invoice, a contract, a supplier — or everything
one user did — as an ordered timeline."""

from __future__ import annotations

import asyncpg

from services.audit import store
from services.audit.domain.record import AuditRecord

CRITERIA = ("invoice", "contract", "supplier", "actor")


class HistoryQueryError(ValueError):
    """The query does not name exactly one criterion."""


def criterion(**given: str | None) -> tuple[str, str]:
    """The one criterion given among ``invoice``, ``contract``, ``supplier``, ``actor``."""
    named = [(name, value) for name, value in given.items() if value]
    if len(named) != 1:
        raise HistoryQueryError(
            f"name exactly one of {', '.join(CRITERIA)} (given: {', '.join(n for n, _ in named) or 'none'})")
    name, value = named[0]
    if "\x00" in value or len(value) > 500:
        raise HistoryQueryError(f"{name} is not an identifier the log can hold (NUL character or over 500 characters)")
    return name, value


LIMIT = 10_000


async def find_history(conn: asyncpg.Connection, name: str, value: str) -> tuple[list[AuditRecord], bool]:
    """The first ``LIMIT`` events of the timeline, and whether there are more (then ``export``
    gives them all)."""
    if name == "actor":
        records = await store.history(conn, actor=value, limit=LIMIT + 1)
    else:
        # A supplier's history takes in what happened to its invoices and contracts.
        records = await store.history(conn, subject=f"{name}:{value}", expand=name == "supplier", limit=LIMIT + 1)
    return records[:LIMIT], len(records) > LIMIT


def timeline_entry(record: AuditRecord) -> dict:
    return {
        "occurred_at": record.occurred_at.isoformat() if record.occurred_at else None,
        "event_type": record.event_type,
        "actor": record.actor,
        "aggregate": f"{record.aggregate_type}:{record.aggregate_id}",
        "producer": record.producer,
        "event_id": str(record.event_id),
        "causation_id": str(record.causation_id) if record.causation_id else None,
        "correlation_id": record.correlation_id,
        "recorded": {"topic": record.topic, "partition": record.partition, "offset": record.kafka_offset,
                     "seq": record.seq, "record_id": record.id, "received_at": record.received_at.isoformat()},
        "payload": record.payload,
    }
