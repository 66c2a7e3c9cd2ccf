"""Payment runs on French working days, urgent orders, and the accountant's 10 days."""

from datetime import date

import pytest

from services.payments.domain.schedule import (
    InvalidCalendar,
    PaymentCalendar,
    accountant_due,
    order_date,
)

CALENDAR = PaymentCalendar()


@pytest.mark.parametrize(
    ("day", "next_run"),
    [
        (date(2026, 4, 22), date(2026, 4, 22)),  # a Wednesday: a run day itself
        (date(2026, 4, 18), date(2026, 4, 20)),  # Saturday → Monday
        (date(2026, 4, 19), date(2026, 4, 20)),  # Sunday → Monday
        (date(2026, 5, 1), date(2026, 5, 4)),  # Labour Day, a Friday → Monday 4 May
        (date(2026, 5, 14), date(2026, 5, 15)),  # Ascension Thursday → Friday
        (date(2026, 7, 14), date(2026, 7, 15)),  # National Day, a Tuesday → Wednesday
        (date(2026, 12, 25), date(2026, 12, 28)),  # Christmas, a Friday → Monday
        (date(2026, 4, 6), date(2026, 4, 7)),  # Easter Monday → Tuesday
    ],
)
def test_next_run_day_skips_weekends_and_french_public_holidays(day, next_run):
    assert CALENDAR.next_run_day(day) == next_run
    assert CALENDAR.is_run_day(next_run)


@pytest.mark.parametrize(
    "day",
    [date(2026, 5, 1), date(2026, 5, 14), date(2026, 7, 14), date(2026, 12, 25), date(2026, 4, 18),
     date(2026, 4, 19)],
)
def test_holidays_and_weekends_are_not_run_days(day):
    assert not CALENDAR.is_run_day(day)


def test_holidays_of_any_year_are_known():
    # Ascension moves with Easter: 29 May 2025, 14 May 2026, 6 May 2027.
    assert not CALENDAR.is_run_day(date(2025, 5, 29))
    assert not CALENDAR.is_run_day(date(2027, 5, 6))
    assert CALENDAR.is_run_day(date(2026, 5, 29))


def test_runs_on_chosen_weekdays_only():
    mondays = PaymentCalendar(run_weekdays={0})
    # Tuesday 19 May 2026; Monday 25 May is Whit Monday, a public holiday.
    assert mondays.next_run_day(date(2026, 5, 19)) == date(2026, 6, 1)
    assert not mondays.is_run_day(date(2026, 4, 21))


@pytest.mark.parametrize("weekdays", [set(), {7}, {-1}, {True}])
def test_unusable_run_weekdays_are_refused(weekdays):
    with pytest.raises(InvalidCalendar, match="payment_run_weekdays"):
        PaymentCalendar(run_weekdays=weekdays)


def test_a_payable_waits_for_the_next_run_that_meets_its_target():
    # Labour Day is a Friday; the next run, Monday 4 May, still meets a 5 May target.
    order = order_date(date(2026, 5, 1), date(2026, 5, 5), CALENDAR)
    assert (order.order_on, order.urgent) == (date(2026, 5, 4), False)
    # Ascension Thursday, target Friday 15 May: that day's run meets it.
    order = order_date(date(2026, 5, 14), date(2026, 5, 15), CALENDAR)
    assert (order.order_on, order.urgent) == (date(2026, 5, 15), False)


def test_a_payable_is_ordered_on_todays_run_when_today_is_a_run_day():
    order = order_date(date(2026, 4, 30), date(2026, 4, 30), CALENDAR)
    assert (order.order_on, order.urgent) == (date(2026, 4, 30), False)


def test_a_payable_no_run_can_meet_is_ordered_today_as_urgent():
    # Labour Day with a target of Sunday 3 May: the next run (Monday 4 May) is too late.
    order = order_date(date(2026, 5, 1), date(2026, 5, 3), CALENDAR)

    assert (order.order_on, order.urgent) == (date(2026, 5, 1), True)
    assert "2026-05-03" in order.reason and "2026-05-04" in order.reason


def test_a_payable_whose_target_is_past_is_ordered_today_as_urgent():
    order = order_date(date(2026, 4, 22), date(2026, 4, 20), CALENDAR)

    assert (order.order_on, order.urgent) == (date(2026, 4, 22), True)
    assert "2026-04-20" in order.reason and "already past" in order.reason


def test_the_accountant_has_ten_days_from_the_order():
    # Décret 2013-269 art. 12: ordered on the ordonnateur's 20th day, paid by the 30th.
    assert accountant_due(date(2026, 3, 22)) == date(2026, 4, 1)
    assert accountant_due(date(2026, 3, 22), accountant_days=15) == date(2026, 4, 6)


def test_accountant_days_must_be_a_number_of_days():
    with pytest.raises(InvalidCalendar, match="accountant_days"):
        accountant_due(date(2026, 3, 22), accountant_days=-1)
