"""The invoice's payment leg, as the payments service reports it: ordered (the « mandat » went
to the accountant or the bank), paid (« mise en paiement »: the legal delay ends), or failed
(the invoice waits, approved, for a new order). Only invoice payables concern this service."""

from __future__ import annotations

from functools import partial
from uuid import UUID

import asyncpg

from services.invoices import metrics, store
from services.invoices.domain import lifecycle
from services.invoices.workflow import NotFound, _invoice
from shared.clock import PARIS
from shared.events import Decoded
from shared.events.payments import PaymentExecuted, PaymentFailed, PaymentOrdered
from shared.metrics import on_commit


async def _locked(conn: asyncpg.Connection, invoice_id: str):
    row = await store.lock_invoice(conn, UUID(invoice_id))
    if row is None:
        raise NotFound(f"payment event for unknown invoice {invoice_id}")
    return row, _invoice(row)


async def on_payment_ordered(conn: asyncpg.Connection, decoded: Decoded) -> None:
    event: PaymentOrdered = decoded.event
    if event.kind != "invoice":
        return
    row, invoice = await _locked(conn, event.invoice_id)
    changed = lifecycle.order_payment(invoice)
    await store.save_workflow(conn, row["invoice_id"], {
        "status": changed.state.value, "payment_order_id": event.order_id, "payment_ordered_on": event.ordered_on,
        "payment_failure": None})


async def on_payment_executed(conn: asyncpg.Connection, decoded: Decoded) -> None:
    event: PaymentExecuted = decoded.event
    if event.kind != "invoice":
        return
    row, invoice = await _locked(conn, event.invoice_id)
    if event.channel == "offset":
        # Nothing to transfer (the advance recovery absorbed the amount): ordered and paid at once.
        invoice = lifecycle.order_payment(invoice)
    changed = lifecycle.record_payment(invoice)
    await store.save_workflow(conn, row["invoice_id"], {
        "status": changed.state.value, "payment_order_id": event.order_id, "payment_ordered_on": event.ordered_on,
        "paid_on": event.executed_on, "paid_amount": event.amount, "paid_days_late": event.days_late})
    # The legal delay ends on the « mise en paiement » (R2192-10); the payments service measured
    # each leg of it (décret 2013-269 art. 12).
    on_commit(partial(metrics.count_payment, row["received_at"].astimezone(PARIS).date(), event.executed_on,
                      event.ordonnateur_days, event.accountant_days))


async def on_payment_failed(conn: asyncpg.Connection, decoded: Decoded) -> None:
    event: PaymentFailed = decoded.event
    if event.kind != "invoice":
        return
    row, invoice = await _locked(conn, event.invoice_id)
    changed = lifecycle.payment_failed(invoice)
    await store.save_workflow(conn, row["invoice_id"], {
        "status": changed.state.value, "payment_failure": f"{event.failed_on}: {event.reason}"})
