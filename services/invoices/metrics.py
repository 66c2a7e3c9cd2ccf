"""Business metrics of the invoices service (names ops dashboards and alert rules rely on).

Counters move after the transaction that decided or paid an invoice commits. The gauges of open
invoices are read from the database by ``OpenInvoices`` every ~15 s, with "today" from the
service's clock: every replica exports the same numbers, and none is lost on a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Callable, get_args

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.invoices.domain.lifecycle import State
from services.invoices.formats import Format
from shared.clock import PARIS, Clock
from shared.events.invoices import Channel, Reason
from shared.metrics import REFRESH_SECONDS
from shared.periodic import every


# Days from receipt to payment: the Region's 15-day target, the legal 30 days (R2192-10), then
# how late; the same bands split the delay between the ordonnateur and the accountant.
DELAY_BUCKETS = (5, 10, 15, 20, 25, 30, 40, 50, 60, 90)
# The `le` values of invoices_open_by_days_left: days left before the legal due date.
DAYS_LEFT = (0, 3, 5, 10, 15, 30)
STAGES = ("received", "validated", "service_done", "approved", "ordered", "interrupted")
LEGS = ("ordonnateur", "comptable")

received = Counter(
    "invoices_received_total", "Invoices received, by channel and format (counted when intake has read them)",
    ["channel", "format"])
rejected = Counter(
    "invoices_rejected_total",
    "Invoices rejected or sent back for recycling at intake, by the first rule broken (unreadable: not an invoice)",
    ["reason"])
open_by_stage = Gauge("invoices_open", "Invoices not yet paid, by lifecycle stage", ["stage"])
open_by_days_left = Gauge(
    "invoices_open_by_days_left",
    "Invoices not yet paid nor interrupted with at most `le` days left before their legal due date (cumulative)",
    ["le"])
overdue = Gauge("invoices_overdue", "Invoices not yet paid past their legal due date")
past_target = Gauge("invoices_open_past_target", "Invoices not yet paid past the Region's own target date")
oldest_open_age = Gauge(
    "invoice_oldest_open_age_days", "Days since the receipt of the oldest invoice not yet paid nor interrupted")
payment_delay = Histogram(
    "invoice_payment_delay_days", "Days from receipt to « mise en paiement », paid invoices",
    buckets=DELAY_BUCKETS)
leg_delay = Histogram(
    "invoice_leg_delay_days",
    "Days taken by each leg of the legal delay: ordonnateur (start of the delay to payment order), "
    "comptable (order to « mise en paiement »)",
    ["leg"], buckets=DELAY_BUCKETS)
# Known label values are exported at 0 from the start, so that the first invoice of a channel or
# the first payment shows as an increase (a series born at 1 does not, for increase() and rate()).
for _channel in get_args(Channel):
    for _format in (*get_args(Format), "unreadable"):
        received.labels(_channel, _format)
for _leg in LEGS:
    leg_delay.labels(_leg)


def count_decision(channel: str, document_format: str | None, status: str, reasons: list[Reason]) -> None:
    """One intake decision: received, and rejected unless validated."""
    received.labels(channel, document_format or "unreadable").inc()
    if status != State.VALIDATED:
        rejected.labels(rejection_reason(reasons)).inc()


def rejection_reason(reasons: list[Reason]) -> str:
    """The first rule broken (a bounded set of rule ids), or ``unreadable`` for a document that
    is no invoice at all (its rules are ``DOC-<why>``)."""
    if not reasons:
        return "unknown"
    rule = reasons[0].rule
    return "unreadable" if rule.startswith("DOC-") else rule


def count_payment(received_on: date, executed_on: date, ordonnateur_days: int | None,
                  accountant_days: int | None) -> None:
    """One invoice paid: its whole delay, and each leg the payments service measured."""
    payment_delay.observe((executed_on - received_on).days)
    if ordonnateur_days is not None:
        leg_delay.labels("ordonnateur").observe(ordonnateur_days)
    if accountant_days is not None:
        leg_delay.labels("comptable").observe(accountant_days)


# ---------------------------------------------------------------- gauges of open invoices

# Open: not paid, and not in a terminal state of refusal. The list is written out in the SQL (not
# bound) and matches the predicate of the partial index of migration 008 word for word, so that
# PostgreSQL answers from that index alone, in one pass, however many invoices were paid over the
# years. $1 = today; $2… = today + each DAYS_LEFT value. An interrupted invoice has no due date
# (R2192-27: the delay is suspended): its group counts for its stage only.
_OPEN_INVOICES = (
    "SELECT status, service_done_on IS NOT NULL AS service_done, count(*) AS n, "
    "count(*) FILTER (WHERE legal_due < $1) AS overdue, count(*) FILTER (WHERE target_due < $1) AS past_target, "
    "min(received_at) AS oldest_received_at, "
    + ", ".join(f"count(*) FILTER (WHERE legal_due <= ${i}) AS le_{days}" for i, days in enumerate(DAYS_LEFT, start=2))
    + " FROM invoices WHERE status IN "
    "('received', 'validated', 'service_done', 'approved', 'payment_ordered', 'completed', 'interrupted') "
    "GROUP BY 1, 2")


def stage_of(status: str, service_done: bool) -> str:
    """The stage ops read: a completed invoice (R2192-29) is back to validated or service done,
    a payment-ordered one is ``ordered``."""
    if status == State.COMPLETED:
        return "service_done" if service_done else "validated"
    if status == State.PAYMENT_ORDERED:
        return "ordered"
    return status


@dataclass(frozen=True)
class OpenSnapshot:
    """The open invoices at one moment, as the gauges show them."""

    by_stage: dict[str, int] = field(default_factory=dict)
    by_days_left: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    past_target: int = 0
    oldest_age_days: int = 0

    def publish(self) -> None:
        for stage in STAGES:
            open_by_stage.labels(stage).set(self.by_stage.get(stage, 0))
        for le, count in self.by_days_left.items():
            open_by_days_left.labels(le).set(count)
        overdue.set(self.overdue)
        past_target.set(self.past_target)
        oldest_open_age.set(self.oldest_age_days)


async def open_snapshot(conn: asyncpg.Connection, today: date) -> OpenSnapshot:
    """The open invoices counted by one aggregate query (a few groups: status × service done)."""
    by_stage = dict.fromkeys(STAGES, 0)
    by_days_left = dict.fromkeys([*(str(days) for days in DAYS_LEFT), "+Inf"], 0)
    overdue_count = past_target_count = 0
    oldest = None
    for row in await conn.fetch(_OPEN_INVOICES, today, *(today + timedelta(days=days) for days in DAYS_LEFT)):
        by_stage[stage_of(row["status"], row["service_done"])] += row["n"]
        if row["status"] == State.INTERRUPTED:
            continue
        for days in DAYS_LEFT:
            by_days_left[str(days)] += row[f"le_{days}"]
        by_days_left["+Inf"] += row["n"]
        overdue_count += row["overdue"]
        past_target_count += row["past_target"]
        if oldest is None or row["oldest_received_at"] < oldest:
            oldest = row["oldest_received_at"]
    return OpenSnapshot(
        by_stage=by_stage, by_days_left=by_days_left, overdue=overdue_count, past_target=past_target_count,
        oldest_age_days=(today - oldest.astimezone(PARIS).date()).days if oldest is not None else 0)


class OpenInvoices:
    """The background task that keeps the open-invoice gauges current."""

    def __init__(self, pool_of: Callable[[], asyncpg.Pool], clock: Clock) -> None:
        self.pool_of = pool_of
        self.clock = clock

    async def refresh(self) -> OpenSnapshot:
        async with self.pool_of().acquire() as conn:
            snapshot = await open_snapshot(conn, self.clock.today())
        snapshot.publish()
        return snapshot

    async def run(self, seconds: float = REFRESH_SECONDS) -> None:
        await every(seconds, self.refresh, what="open-invoice gauges refresh", on_error=self._forget)

    @staticmethod
    def _forget(_: Exception) -> None:
        # Stale numbers must not read as "nothing is late": without the series the
        # InvoiceDeadlineMetricsMissing alert (absent) fires if the failure lasts.
        open_by_days_left.clear()
        open_by_stage.clear()
