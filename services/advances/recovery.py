"""Applies the advance recovery to each approved invoice, in the transaction of the consumer
that reads ``InvoiceApproved``: lock the contract's advance, compute the deduction, store it,
emit ``AdvanceRecoveryApplied``."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import asyncpg

from services.advances import metrics, store
from services.advances.domain.recovery import no_recovery, recovery_deduction
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.events import Decoded, new_envelope
from shared.events.contracts import AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved
from shared.metrics import on_commit
from shared.outbox import append
from shared.settings import Settings

SERVICE = "advances"


def recovery_consumer(settings: Settings, clock: Clock) -> IdempotentConsumer:
    async def on_invoice_approved(conn: asyncpg.Connection, decoded: Decoded) -> None:
        approved: InvoiceApproved = decoded.event
        contract_id = await store.contract_of_invoice(conn, approved.contract_reference, approved.engagement_number)
        advance = await store.lock_advance(conn, contract_id) if contract_id else None
        if advance is None or advance["amount"] == 0:
            recovery = no_recovery(approved.amount)
            executed_before = advance["executed"] if advance else Decimal("0")
            outstanding = Decimal("0")
            reason = ("the invoice names no known contract" if contract_id is None
                      else f"contract {contract_id} has no advance to recover")
        else:
            executed_before = advance["executed"]
            recovery = recovery_deduction(
                advance["amount"], advance["amount_ttc"], executed_before, approved.amount,
                advance["recovered"], advance["recovery_start_pct"], advance["recovery_end_pct"],
                advance["recovery_prorata_pct"])
            outstanding = advance["amount"] - recovery.recovered_after
            reason = (f"précompte on contract {contract_id} (R2191-11/-12): "
                      f"{executed_before} executed before this invoice")
        if not await store.record_recovery(
                conn, invoice_id=approved.invoice_id, contract_id=contract_id, approved_amount=approved.amount,
                executed_before=executed_before, deduction=recovery.deduction,
                recovered_after=recovery.recovered_after, applied_at=clock.now()):
            return
        event = AdvanceRecoveryApplied(
            invoice_id=approved.invoice_id, contract_id=contract_id, approved_amount=approved.amount,
            deduction=recovery.deduction, net_payable=recovery.net_payable,
            recovered_after=recovery.recovered_after, outstanding_after=outstanding, reason=reason)
        await append(conn, settings.topic(event.topic), new_envelope(
            event, producer=SERVICE, actor="advances.recovery", clock=clock, caused_by=decoded.envelope))
        if recovery.deduction > 0:
            on_commit(partial(metrics.count_recovered, recovery.deduction))

    return IdempotentConsumer("advances.recovery", [InvoiceApproved.topic], {InvoiceApproved: on_invoice_approved})
