"""Applies the advance recovery to each approved invoice, in the transaction of the consumer
that reads ``InvoiceApproved``: lock the contract's advance, compute the deduction, store it,
emit ``AdvanceRecoveryApplied``.

A whole batch of approvals is applied in a few statements: the contracts of all its invoices
are found in one query, their advances locked in another, the deductions computed invoice after
invoice in Python (a contract's second invoice in the batch bears its share after the first
one's, exactly as if they came one by one), then recorded in one statement and announced in one
more."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import asyncpg

from services.advances import metrics, store
from services.advances.domain.recovery import Recovery, no_recovery, recovery_deduction
from shared.clock import Clock
from shared.consumer import Batched, IdempotentConsumer
from shared.events import Decoded, new_envelope
from shared.events.contracts import AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved
from shared.metrics import on_commit
from shared.outbox import append_all
from shared.settings import Settings

SERVICE = "advances"


class RecoveryRecordedMeanwhile(RuntimeError):
    """Another transaction recorded the recovery of one of the batch's invoices after this one
    read them: the deductions computed after it are wrong, so the batch is applied again one
    invoice at a time."""


@dataclass
class _Ledger:
    """One contract's advance (its locked row) and where its recovery stands, moved forward by
    each invoice of the batch recorded on it."""

    advance: asyncpg.Record
    executed: Decimal
    recovered: Decimal


@dataclass(frozen=True)
class _Applied:
    decoded: Decoded
    contract_id: str | None
    recovery: Recovery
    executed_before: Decimal
    outstanding: Decimal
    reason: str


def _recovery_of(approved: InvoiceApproved, contract_id: str | None, ledger: _Ledger | None
                 ) -> tuple[Recovery, Decimal, Decimal, str]:
    """What the invoice bears given its contract's ledger: the recovery, the executed amount
    before it, the advance outstanding after it, and why."""
    if ledger is None or ledger.advance["amount"] == 0:
        reason = ("the invoice names no known contract" if contract_id is None
                  else f"contract {contract_id} has no advance to recover")
        executed_before = ledger.executed if ledger else Decimal("0")
        return no_recovery(approved.amount), executed_before, Decimal("0"), reason
    advance = ledger.advance
    recovery = recovery_deduction(
        advance["amount"], advance["amount_ttc"], ledger.executed, approved.amount, ledger.recovered,
        advance["recovery_start_pct"], advance["recovery_end_pct"], advance["recovery_prorata_pct"])
    reason = (f"précompte on contract {contract_id} (R2191-11/-12): "
              f"{ledger.executed} executed before this invoice")
    return recovery, ledger.executed, advance["amount"] - recovery.recovered_after, reason


def recovery_consumer(settings: Settings, clock: Clock) -> IdempotentConsumer:
    async def on_invoices_approved(conn: asyncpg.Connection, events: list[Decoded]) -> None:
        approvals: list[InvoiceApproved] = [decoded.event for decoded in events]
        found = await store.contracts_of_invoices(
            conn, [(a.invoice_id, a.contract_reference, a.engagement_number) for a in approvals])
        contracts = sorted({contract_id for contract_id, _ in found if contract_id is not None})
        locked = await store.lock_advances(conn, contracts) if contracts else {}
        ledgers = {contract_id: _Ledger(row, row["executed"], row["recovered"]) for contract_id, row in locked.items()}

        applied: list[_Applied] = []
        seen: set[str] = set()
        for decoded, approved, (contract_id, recorded) in zip(events, approvals, found):
            ledger = ledgers.get(contract_id) if contract_id else None
            # Computed even for an invoice recovered already, which then changes nothing: a
            # deduction that cannot be computed fails the event whether or not it is a repeat.
            recovery, executed_before, outstanding, reason = _recovery_of(approved, contract_id, ledger)
            # The primary key of recoveries forbids a second deduction for one invoice: an
            # approval delivered again under another event id, in this batch or an earlier one,
            # is skipped.
            if recorded or approved.invoice_id in seen:
                continue
            seen.add(approved.invoice_id)
            if ledger is not None:
                ledger.executed += approved.amount
                ledger.recovered = recovery.recovered_after
            applied.append(_Applied(decoded, contract_id, recovery, executed_before, outstanding, reason))
        if not applied:
            return

        recorded = await store.record_recoveries(conn, [{
            "invoice_id": a.decoded.event.invoice_id, "contract_id": a.contract_id,
            "approved_amount": a.decoded.event.amount, "executed_before": a.executed_before,
            "deduction": a.recovery.deduction, "recovered_after": a.recovery.recovered_after,
        } for a in applied], clock.now())
        if len(recorded) < len(applied):
            if len(applied) > 1:
                missing = sorted({a.decoded.event.invoice_id for a in applied} - recorded)
                raise RecoveryRecordedMeanwhile(f"recoveries of {', '.join(missing)} recorded by another transaction")
            # One invoice, recorded meanwhile: nothing else depended on it, it is skipped.
            return

        envelopes = []
        for a in applied:
            approved = a.decoded.event
            event = AdvanceRecoveryApplied(
                invoice_id=approved.invoice_id, contract_id=a.contract_id, approved_amount=approved.amount,
                deduction=a.recovery.deduction, net_payable=a.recovery.net_payable,
                recovered_after=a.recovery.recovered_after, outstanding_after=a.outstanding, reason=a.reason)
            envelopes.append((settings.topic(event.topic), new_envelope(
                event, producer=SERVICE, actor="advances.recovery", clock=clock, caused_by=a.decoded.envelope)))
            if a.recovery.deduction > 0:
                on_commit(partial(metrics.count_recovered, a.recovery.deduction))
        await append_all(conn, envelopes)

    return IdempotentConsumer("advances.recovery", [InvoiceApproved.topic],
                              {InvoiceApproved: Batched(on_invoices_approved)})
