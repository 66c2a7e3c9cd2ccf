"""``invoicing bench audit-export``: N synthetic chained records inserted into a scratch
namespace's audit log, then exported through the same streaming path as ``audit export``;
prints rows per second and the process's peak memory before and after the export (a streamed
export should not move it)."""

from __future__ import annotations

import hashlib
import os
import resource
import time
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from services.audit import export, store
from services.audit.domain.chain import Head, link_all
from services.audit.domain.record import Entry, subjects_of
from shared.db import PLUMBING, connect, drop_database, ensure_database, migrate
from shared.settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "audit" / "migrations"
BATCH = 10_000
PARTITIONS = 6
START = datetime.fromisoformat("2026-03-02T09:00:00+00:00")


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def synthetic_entry(topic: str, i: int) -> Entry:
    """An approval-like event of about 600 bytes, on one of the partitions."""
    invoice_id = str(uuid.UUID(int=i // 4 + 1))
    payload = {
        "invoice_id": invoice_id, "amount": str(Decimal(1000 + i % 9000) + Decimal("0.46")), "currency": "EUR",
        "seller_siret": f"{10000000000000 + i % 5000:014d}", "seller_name": f"Entreprise {i % 5000}",
        "invoice_number": f"F-{i:08d}", "payee_iban": "FR7630006000011234567890189",
        "contract_reference": f"M-2026-{i % 700:04d}", "engagement_number": f"EJ-{i % 900}",
        "automatic": i % 3 == 0,
        "deadline": {"buyer_type": "local_authority", "dgp_start": "2026-03-02", "legal_due": "2026-04-01",
                     "ordonnateur_due": "2026-03-22", "target_due": "2026-03-17"},
    }
    value = f"synthetic-{i}".encode()
    return Entry(
        topic=topic, partition=i % PARTITIONS, kafka_offset=i // PARTITIONS, kafka_key=invoice_id.encode(),
        kafka_timestamp=START + timedelta(milliseconds=i), received_at=START + timedelta(milliseconds=i),
        kind="event", value_sha256=hashlib.sha256(value).hexdigest(), event_id=uuid.uuid4(),
        event_type="InvoiceApproved", schema_version=1, occurred_at=START + timedelta(milliseconds=i),
        producer="invoices", aggregate_type="invoice", aggregate_id=invoice_id, correlation_id=invoice_id,
        causation_id=None, actor=f"approver-{i % 40}", payload=payload,
        subjects=subjects_of("invoice", invoice_id, payload),
    )


async def run(settings: Settings, events: int, fmt: str, keep: bool) -> dict:
    if fmt not in export.FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(export.FORMATS)}")
    scratch = settings.model_copy(update={"namespace": f"bench{uuid.uuid4().hex[:8]}"})
    topic = scratch.topic("invoices.events")
    await ensure_database(scratch)
    conn = await connect(scratch, "audit")
    try:
        await migrate(conn, "audit", [PLUMBING, MIGRATIONS])
        heads: dict[tuple[str, int], Head] = {}
        began = time.perf_counter()
        for first in range(0, events, BATCH):
            entries = [synthetic_entry(topic, i) for i in range(first, min(first + BATCH, events))]
            async with conn.transaction():
                await store.insert(conn, link_all(heads, entries))
        inserted_s = time.perf_counter() - began
        rss_before = _peak_rss_mb()

        began = time.perf_counter()
        lines = size = 0
        with open(os.devnull, "w", encoding="utf-8") as sink:
            async for chunk in export.stream(conn, None, None, fmt):
                sink.write(chunk)
                lines += chunk.count("\n")
                size += len(chunk.encode())
        exported_s = time.perf_counter() - began
        rows = lines - 1 if fmt == "csv" else lines
        return {
            "events": events,
            "insert": {"seconds": round(inserted_s, 1), "rows_per_s": round(events / inserted_s)},
            "export": {"format": fmt, "rows": rows, "megabytes": round(size / 1e6, 1),
                       "seconds": round(exported_s, 1), "rows_per_s": round(rows / exported_s) if exported_s else None},
            "peak_rss_mb": {"before_export": rss_before, "after_export": _peak_rss_mb()},
            "namespace": scratch.namespace if keep else None,
        }
    finally:
        await conn.close()
        if not keep:
            await drop_database(scratch)
