"""When a payable is ordered: on a payment run, unless waiting for the next run would miss its
target date.

Payment orders leave in runs, held on the Region's working days: the configured weekdays that
are not French public holidays (nobody is there to sign the orders). A payable is ordered on the
earliest run on or after today; when that run falls after its target date, it is ordered at
once, outside the runs, and flagged urgent so that someone sees it leave.

Décret 2013-269 art. 12: once ordered, the public accountant (a different legal person from
the Region) has 10 days of the legal delay to pay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import holidays

# Monday to Friday (date.weekday() numbering: Monday is 0).
WORKING_WEEKDAYS = frozenset({0, 1, 2, 3, 4})
# Décret 2013-269 art. 12: the public accountant's share of a local authority's delay.
DEFAULT_ACCOUNTANT_DAYS = 10
# Any non-empty set of weekdays has a run within a week, holidays aside; a year is ample.
_SEARCH_DAYS = 366


class InvalidCalendar(ValueError):
    """A calendar setting is unusable; the message says which and why."""


@dataclass(frozen=True)
class ScheduledOrder:
    """The day a payable is ordered and why; ``urgent`` when it leaves outside the runs."""

    order_on: date
    urgent: bool
    reason: str


class PaymentCalendar:
    """The days payment runs take place: the given weekdays, French public holidays excepted
    (metropolitan France, as the ``holidays`` library lists them)."""

    def __init__(self, run_weekdays: Iterable[int] = WORKING_WEEKDAYS) -> None:
        weekdays = frozenset(run_weekdays)
        if not weekdays:
            raise InvalidCalendar("payment_run_weekdays is empty: name at least one weekday (0 = Monday)")
        for day in weekdays:
            if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= 6:
                raise InvalidCalendar(
                    f"payment_run_weekdays: {day!r} is not a weekday number (0 = Monday … 6 = Sunday)"
                )
        self.run_weekdays = weekdays
        # Years are loaded on first use, whichever dates are asked about.
        self._holidays = holidays.France()

    def is_holiday(self, day: date) -> bool:
        return day in self._holidays

    def is_run_day(self, day: date) -> bool:
        return day.weekday() in self.run_weekdays and not self.is_holiday(day)

    def next_run_day(self, on_or_after: date) -> date:
        """The first run day on or after ``on_or_after``."""
        day = on_or_after
        for _ in range(_SEARCH_DAYS):
            if self.is_run_day(day):
                return day
            day += timedelta(days=1)
        raise InvalidCalendar(
            f"no payment run within a year of {on_or_after.isoformat()}: "
            f"check payment_run_weekdays {sorted(self.run_weekdays)}"
        )

    def __repr__(self) -> str:
        return f"PaymentCalendar(run_weekdays={sorted(self.run_weekdays)})"


def order_date(today: date, target_due: date, calendar: PaymentCalendar) -> ScheduledOrder:
    """When to order a payable whose payment order must leave by ``target_due``."""
    run = calendar.next_run_day(today)
    if run <= target_due:
        return ScheduledOrder(
            order_on=run,
            urgent=False,
            reason=f"payment run of {run.isoformat()}, on or before the target {target_due.isoformat()}",
        )
    if target_due < today:
        why = f"the target {target_due.isoformat()} is already past"
    else:
        why = f"the next payment run ({run.isoformat()}) is after the target {target_due.isoformat()}"
    return ScheduledOrder(
        order_on=today,
        urgent=True,
        reason=f"{why}: ordered today, {today.isoformat()}, outside the payment runs "
        f"(next run {run.isoformat()})",
    )


def accountant_due(ordered_on: date, accountant_days: int = DEFAULT_ACCOUNTANT_DAYS) -> date:
    """The day by which the public accountant pays a payable ordered on ``ordered_on``.

    Décret 2013-269 art. 12: 10 days from the payment order it receives. ``ordered_on`` is the
    day the accountant receives the order (the same day when it is sent electronically; art. 13
    takes the order's date + 2 days when the receipt date is not known)."""
    if (
        not isinstance(accountant_days, int)
        or isinstance(accountant_days, bool)
        or accountant_days < 0
    ):
        raise InvalidCalendar(f"accountant_days: {accountant_days!r} is not a whole number of days")
    return ordered_on + timedelta(days=accountant_days)
