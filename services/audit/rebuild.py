"""``rebuild invoices``: the invoices' states from the recorded events alone, compared with the
invoices service's live table (read through the administrator's connection: the audit role
reads no other service's tables)."""

from __future__ import annotations

import asyncpg

from services.audit import store
from services.audit.domain.invoices import COMPARED, apply_event, differences


async def rebuild_invoices(audit: asyncpg.Connection, admin: asyncpg.Connection) -> dict:
    async with audit.transaction(isolation="repeatable_read", readonly=True):
        rebuilt: dict = {}
        async for record in store.invoice_events(audit):
            apply_event(rebuilt, record)
    rows = await admin.fetch(f"SELECT invoice_id, {', '.join(COMPARED)} FROM invoices.invoices")
    live = {str(row["invoice_id"]): dict(row) for row in rows}
    found = differences(rebuilt, live)
    return {
        "invoices_from_events": len(rebuilt),
        "invoices_in_table": len(live),
        "identical": not found,
        "differences": [d.as_dict() for d in found],
    }
