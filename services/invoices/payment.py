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


async def on_payment_events(conn: asyncpg.Connection, events: list[Decoded]) -> None:
    """Applies a batch of payment events: the invoices concerned locked at once, each event's
    transition applied in order to its invoice as it stands after the previous one, the
    invoices written once each."""
    about_invoices = [decoded.event for decoded in events if decoded.event.kind == "invoice"]
    if not about_invoices:
        return
    rows = {str(row["invoice_id"]): row for row in await store.lock_invoices(
        conn, sorted({UUID(event.invoice_id) for event in about_invoices}))}
    invoices: dict[str, lifecycle.Invoice] = {}
    changes: dict[str, dict] = {}
    for event in about_invoices:
        row = rows.get(event.invoice_id)
        if row is None:
            raise NotFound(f"payment event for unknown invoice {event.invoice_id}")
        invoice = invoices.get(event.invoice_id) or _invoice(row)
        invoices[event.invoice_id], columns = _apply(event, invoice, row)
        changes.setdefault(event.invoice_id, {}).update(columns)
    await store.save_workflow_all(conn, [(rows[invoice_id]["invoice_id"], columns)
                                         for invoice_id, columns in changes.items()])


def _apply(event: PaymentOrdered | PaymentExecuted | PaymentFailed, invoice: lifecycle.Invoice,
           row: asyncpg.Record) -> tuple[lifecycle.Invoice, dict]:
    """The invoice after the event, and the columns the event writes."""
    if isinstance(event, PaymentOrdered):
        changed = lifecycle.order_payment(invoice)
        return changed, {"status": changed.state.value, "payment_order_id": event.order_id,
                         "payment_ordered_on": event.ordered_on, "payment_failure": None}
    if isinstance(event, PaymentExecuted):
        if event.channel == "offset":
            # Nothing to transfer (the advance recovery absorbed the amount): ordered and paid at once.
            invoice = lifecycle.order_payment(invoice)
        changed = lifecycle.record_payment(invoice)
        # The legal delay ends on the « mise en paiement » (R2192-10); the payments service
        # measured each leg of it (décret 2013-269 art. 12).
        on_commit(partial(metrics.count_payment, row["received_at"].astimezone(PARIS).date(), event.executed_on,
                          event.ordonnateur_days, event.accountant_days))
        return changed, {"status": changed.state.value, "payment_order_id": event.order_id,
                         "payment_ordered_on": event.ordered_on, "paid_on": event.executed_on,
                         "paid_amount": event.amount, "paid_days_late": event.days_late}
    changed = lifecycle.payment_failed(invoice)
    return changed, {"status": changed.state.value, "payment_failure": f"{event.failed_on}: {event.reason}"}
