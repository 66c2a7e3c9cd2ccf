"""The counterparty's answers: the public accountant's « mises en paiement » or the bank's debit
notifications (camt.054). Each file is stored as received, then each entry is matched to the
order it confirms, in one transaction:

- executed → the order and its payable are paid, ``PaymentExecuted`` (the legal delay ends on the
  execution date); when later than the legal due date, interest and the indemnity are assessed
  at once and become a new payable (L2192-13, R2192-31, D2192-35, R2192-36);
- failed → ``PaymentFailed``; the payable waits for corrected bank details;
- an entry that matches no order, or contradicts it (amount, a second outcome), is kept with the
  reason and raised to an operator, never dropped or applied.

The same file twice is acknowledged with its first report; an entry already applied has no
second effect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import asyncpg

from services.payments import metrics, store
from services.payments.domain.interest import EcbRateTable, UnknownEcbRate, late_interest
from services.payments.domain.payables import interest_payable
from services.payments.formats import Confirmation, ConfirmationFileInvalid, read_confirmations
from services.payments.scheduling import Scheduling
from shared.events.payments import LatePaymentInterestAssessed, PaymentExecuted, PaymentFailed
from shared.logging import get_logger

log = get_logger("payments.confirmations")


@dataclass
class Report:
    file_sha256: str
    entries: int = 0
    executed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unmatched: list[dict] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    already_received: bool = False
    # Metric increments, applied once the transaction has committed.
    counted: list = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {"file_sha256": self.file_sha256, "entries": self.entries, "executed": self.executed,
                "failed": self.failed, "duplicates": self.duplicates, "unmatched": self.unmatched,
                "late": self.late, "already_received": self.already_received}


class UnreadableConfirmations(ValueError):
    """The file is not a confirmation file we can read; it is kept with this reason."""


class Confirmations:
    def __init__(self, scheduling: Scheduling, pool) -> None:
        self.scheduling = scheduling
        self.settings = scheduling.settings
        self.clock = scheduling.clock
        self._pool = pool
        self.rates = EcbRateTable(self.settings.ecb_rates)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    async def ingest(self, content: bytes, *, source: str, actor: str) -> Report:
        sha256 = hashlib.sha256(content).hexdigest()
        try:
            entries = read_confirmations(content)
            error = None
        except ConfirmationFileInvalid as exc:
            entries, error = [], str(exc)
        if error:
            async with self.pool.acquire() as conn:
                await store.insert_confirmation_file(conn, sha256=sha256, content=content, source=source,
                                                     received_at=self.clock.now(), received_by=actor, error=error)
            log.error("confirmation file unreadable, kept", source=source, sha256=sha256, error=error)
            raise UnreadableConfirmations(error)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await store.insert_confirmation_file(conn, sha256=sha256, content=content, source=source,
                                                        received_at=self.clock.now(), received_by=actor, error=None):
                report = Report(**json.loads((await store.find_confirmation_file(conn, sha256))["report"]))
                report.already_received = True
                return report
            report = Report(sha256, entries=len(entries))
            for entry in entries:
                await self._apply(conn, entry, sha256, actor, report)
            await store.save_report(conn, sha256, report.as_dict())
        for count in report.counted:
            count()
        await self.refresh_unmatched()
        log.info("confirmations applied", source=source, executed=len(report.executed), failed=len(report.failed),
                 duplicates=len(report.duplicates), unmatched=len(report.unmatched), late=len(report.late))
        return report

    async def _apply(self, conn: asyncpg.Connection, entry: Confirmation, sha256: str, actor: str,
                     report: Report) -> None:
        def keep(outcome: str, detail: str | None) -> object:
            return store.record_confirmation(
                conn, file_sha256=sha256, order_id=entry.order_id, status=entry.status,
                executed_on=entry.executed_on, amount=entry.amount, reason=entry.reason,
                reference=entry.reference, outcome=outcome, detail=detail)

        order = await store.lock_order(conn, entry.order_id) if entry.order_id else None
        problem = _contradiction(entry, order)
        if order is None or problem:
            detail = problem or (f"no payment order {entry.order_id!r} was issued" if entry.order_id
                                 else "the entry carries no reference to a payment order we issued")
            await keep("unmatched" if order is None else "mismatch", detail)
            report.unmatched.append({"order_id": entry.order_id, "reference": entry.reference, "detail": detail})
            log.error("confirmation kept for an operator", order_id=entry.order_id, reference=entry.reference,
                      detail=detail)
            return
        if order["status"] != "ordered":
            await keep("duplicate", f"order already {order['status']}")
            report.duplicates.append(entry.order_id)
            return
        payable_row = await store.lock_payable(conn, order["payable_id"])
        cause = json.loads(payable_row["cause"])
        payable = store.payable_of(payable_row)
        if entry.status == "executed":
            await store.order_executed(conn, order["order_id"], entry.executed_on, entry.reference)
            await store.payable_paid(conn, payable.payable_id, entry.executed_on)
            days_late = max(0, (entry.executed_on - payable.legal_due).days) if payable.legal_due else 0
            await self.scheduling.emit(conn, PaymentExecuted(
                payable_id=payable.payable_id, kind=payable.kind, invoice_id=payable.invoice_id,
                contract_id=payable.contract_id, order_id=order["order_id"], batch_id=order["batch_id"],
                channel=order["channel"], amount=order["amount"], executed_on=entry.executed_on,
                ordered_on=order["ordered_on"], legal_due=payable.legal_due, dgp_start=payable.dgp_start,
                days_late=days_late,
                ordonnateur_days=(order["ordered_on"] - payable.dgp_start).days if payable.dgp_start else None,
                accountant_days=(entry.executed_on - order["ordered_on"]).days,
                counterparty_reference=entry.reference), actor=actor, cause=cause)
            await keep("executed", None)
            report.executed.append(entry.order_id)
            report.counted += [metrics.payments_executed.labels(payable.kind).inc,
                               partial(metrics.payments_amount.labels(payable.kind).inc, float(order["amount"]))]
                # Interest on interest is not assessed here: beyond R2192-36's 45 days the civil-law
            # legal rate applies, outside this service.
            if days_late and payable.kind != "interest" and payable.amount > 0:
                await conn.execute(
                    "INSERT INTO late_payments (payable_id, amount, legal_due, paid_on) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING", payable.payable_id, payable.amount, payable.legal_due, entry.executed_on)
                report.counted.append(metrics.late_payments.inc)
                report.late.append(payable.payable_id)
                total = await self._assess(conn, payable.payable_id)
                if total is not None:
                    report.counted.append(partial(metrics.late_interest.inc, float(total)))
        else:
            await store.order_failed(conn, order["order_id"], entry.executed_on or self.clock.today(),
                                     entry.reason or "rejected", entry.reference)
            reason = f"payment failed: {entry.reason or 'rejected'} (order {order['order_id']}); ordered again once " \
                     "the supplier's bank details are corrected"
            await conn.execute(
                "UPDATE payables SET status = 'on_hold', hold_reason = $2, order_on = NULL, urgent = false "
                "WHERE payable_id = $1", payable.payable_id, reason)
            await self.scheduling.emit(conn, PaymentFailed(
                payable_id=payable.payable_id, kind=payable.kind, invoice_id=payable.invoice_id,
                contract_id=payable.contract_id, order_id=order["order_id"], batch_id=order["batch_id"],
                channel=order["channel"], reason=entry.reason or "rejected",
                failed_on=entry.executed_on or self.clock.today(), counterparty_reference=entry.reference),
                actor=actor, cause=cause)
            await keep("failed", None)
            report.failed.append(entry.order_id)
            report.counted.append(metrics.payments_failed.labels(payable.kind).inc)

    async def _assess(self, conn: asyncpg.Connection, payable_id: str) -> Decimal | None:
        """Assesses the interest of one late principal (row locked): the total owed, or None
        while its half-year's rate is unknown."""
        late = await conn.fetchrow(
            "SELECT * FROM late_payments WHERE payable_id = $1 AND assessed_at IS NULL FOR UPDATE", payable_id)
        if late is None:
            return None
        try:
            interest = late_interest(late["amount"], late["legal_due"], late["paid_on"], table=self.rates,
                                     indemnity=self.settings.late_interest_indemnity,
                                     pay_within_days=self.settings.interest_payment_days)
        except UnknownEcbRate as exc:
            await conn.execute("UPDATE late_payments SET error = $2 WHERE payable_id = $1", payable_id, str(exc))
            log.error("late interest waits for its ECB rate", payable_id=payable_id, error=str(exc))
            return None
        principal_row = await store.find_payable(conn, payable_id)
        principal = store.payable_of(principal_row)
        cause = json.loads(principal_row["cause"])
        payable = interest_payable(principal, interest, late["paid_on"], self.settings.target_payment_days)
        envelope = await self.scheduling.emit(conn, LatePaymentInterestAssessed(
            payable_id=payable.payable_id, kind="interest", invoice_id=principal.invoice_id,
            contract_id=principal.contract_id, principal_payable_id=principal.payable_id,
            principal_amount=late["amount"], legal_due=late["legal_due"], paid_on=late["paid_on"],
            days_late=interest.days_late, half_year=interest.half_year, ecb_rate=interest.ecb_rate,
            rate=interest.rate, interest=interest.interest, indemnity=interest.indemnity, total=interest.total,
            pay_by=interest.pay_by), actor="payments.interest", cause=cause)
        await self.scheduling.create(conn, payable, {**cause, "event_id": str(envelope.event_id),
                                                     "event_type": envelope.event_type})
        await conn.execute("UPDATE late_payments SET assessed_at = $2, error = NULL WHERE payable_id = $1",
                           payable_id, self.clock.now())
        return interest.total

    async def assess_pending(self) -> int:
        """Assesses the late payments that waited for their half-year's rate."""
        assessed = 0
        async with self.pool.acquire() as conn:
            pending = await conn.fetch("SELECT payable_id FROM late_payments WHERE assessed_at IS NULL")
            for row in pending:
                async with conn.transaction():
                    total = await self._assess(conn, row["payable_id"])
                if total is not None:
                    metrics.late_interest.inc(float(total))
                    assessed += 1
        return assessed

    async def refresh_unmatched(self) -> int:
        async with self.pool.acquire() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM confirmations WHERE outcome IN ('unmatched', 'mismatch') AND resolved_at IS NULL")
        metrics.unmatched_confirmations.set(count)
        return count


def _contradiction(entry: Confirmation, order: asyncpg.Record | None) -> str | None:
    """Why an entry that names one of our orders cannot be applied to it, if it cannot."""
    if order is None:
        return None
    if entry.status == "executed":
        if entry.executed_on is None:
            return "an execution without its date"
        if entry.amount is not None and entry.amount != order["amount"]:
            return f"executed for {entry.amount} EUR but the order was for {order['amount']} EUR"
        if entry.executed_on < order["ordered_on"]:
            return f"executed on {entry.executed_on}, before the order of {order['ordered_on']}"
        if order["status"] == "failed":
            return f"reported executed, but the order was reported failed on {order['failed_on']}"
    elif order["status"] == "executed":
        return f"reported failed, but the order was executed on {order['executed_on']}"
    return None
