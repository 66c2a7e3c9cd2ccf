from datetime import date

import pytest

from services.invoices.domain.deadline import DeadlineError, Interruption, deadline_for, dgp_start

D = date.fromisoformat


@pytest.mark.parametrize(
    ("received", "service_done", "invoice_date", "start"),
    [
        ("2026-03-02", None, None, "2026-03-02"),  # R2192-12: receipt
        ("2026-03-02", "2026-02-20", None, "2026-03-02"),  # service done before receipt
        ("2026-03-02", "2026-03-10", None, "2026-03-10"),  # R2192-13: service done later
        (None, None, "2026-02-27", "2026-03-01"),  # R2192-14: invoice date + 2 (28-day February)
        (None, None, "2028-02-27", "2028-02-29"),  # ... in a leap year
        (None, None, "2026-12-30", "2027-01-01"),  # ... across the year
        (None, "2026-03-20", "2026-03-01", "2026-03-20"),  # both fallbacks
    ],
)
def test_the_delay_starts_on_receipt_service_done_or_invoice_date_plus_two(received, service_done, invoice_date, start):
    got = dgp_start(received and D(received), service_done and D(service_done), invoice_date and D(invoice_date))
    assert got == D(start)


def test_no_receipt_and_no_invoice_date_is_an_error():
    with pytest.raises(DeadlineError, match="R2192-14"):
        dgp_start(None, None, None)


@pytest.mark.parametrize(
    ("buyer_type", "received", "legal", "ordonnateur", "target"),
    [
        ("local_authority", "2026-03-02", "2026-04-01", "2026-03-22", "2026-03-17"),  # §2.4 example
        ("local_authority", "2026-01-31", "2026-03-02", "2026-02-20", "2026-02-15"),  # month end
        ("local_authority", "2028-01-31", "2028-03-01", "2028-02-20", "2028-02-15"),  # leap year
        ("local_authority", "2026-12-31", "2027-01-30", "2027-01-20", "2027-01-15"),  # year end
        ("local_authority", "2028-02-29", "2028-03-30", "2028-03-20", "2028-03-15"),  # leap day
        ("public_hospital", "2026-03-02", "2026-04-21", "2026-04-06", "2026-03-27"),  # 50 = 35 + 15
        ("public_undertaking", "2026-03-02", "2026-05-01", "2026-05-01", "2026-04-01"),  # 60, no accountant
    ],
)
def test_due_dates_in_calendar_days_by_buyer_type(buyer_type, received, legal, ordonnateur, target):
    deadline = deadline_for(D(received), buyer_type=buyer_type)
    assert (deadline.legal_due, deadline.ordonnateur_due, deadline.target_due) == (D(legal), D(ordonnateur), D(target))


@pytest.mark.parametrize(
    ("today", "days_left", "status"),
    [
        ("2026-03-02", 30, "on_target"),
        ("2026-03-17", 15, "on_target"),  # the target day itself is still on target
        ("2026-03-18", 14, "past_target"),
        ("2026-04-01", 0, "past_target"),  # the legal due date itself is not late
        ("2026-04-02", -1, "overdue"),  # interest runs from the day after
    ],
)
def test_days_left_and_status(today, days_left, status):
    deadline = deadline_for(D("2026-03-02"))
    assert deadline.days_left(D(today)) == days_left
    assert deadline.status(D(today)) == status


@pytest.mark.parametrize(
    ("buyer_type", "received", "notified", "completed", "start", "legal"),
    [
        # 20 days were left: R2192-29 opens a new 30-day delay on completion.
        ("local_authority", "2026-03-02", "2026-03-12", "2026-03-20", "2026-03-20", "2026-04-19"),
        # Interrupted on the last day: 0 left, a full new delay.
        ("local_authority", "2026-03-02", "2026-04-01", "2026-04-03", "2026-04-03", "2026-05-03"),
        # Interrupted and completed the same day.
        ("local_authority", "2026-03-02", "2026-03-05", "2026-03-05", "2026-03-05", "2026-04-04"),
        # 46 days were left (hospital, 50-day delay): the longer balance is kept.
        ("public_hospital", "2026-03-01", "2026-03-05", "2026-03-10", "2026-03-10", "2026-04-25"),
        # Completion across a leap day.
        ("local_authority", "2028-02-01", "2028-02-10", "2028-02-28", "2028-02-28", "2028-03-29"),
    ],
)
def test_after_an_interruption_a_new_delay_starts_on_completion(buyer_type, received, notified, completed, start, legal):
    deadline = deadline_for(D(received), buyer_type=buyer_type,
                            interruption=Interruption(D(notified), D(completed)))
    assert deadline.dgp_start == D(start)
    assert deadline.legal_due == D(legal)
    assert deadline.interrupted is False


def test_while_interrupted_the_clock_stops():
    deadline = deadline_for(D("2026-03-02"), interruption=Interruption(D("2026-03-12")))
    assert deadline.legal_due is None and deadline.interrupted
    assert deadline.as_dict(D("2026-06-01")) == {
        "dgp_start": "2026-03-02", "legal_due": None, "ordonnateur_due": None, "target_due": None,
        "days_left": None, "status": "interrupted"}


@pytest.mark.parametrize(
    ("notified", "completed", "message"),
    [
        ("2026-03-01", "2026-03-05", "cannot precede the start"),
        ("2026-04-02", "2026-04-05", "already ended on 2026-04-01"),
        ("2026-03-10", "2026-03-09", "cannot be complete"),
    ],
)
def test_impossible_interruptions_are_refused_with_the_rule(notified, completed, message):
    with pytest.raises(DeadlineError, match=message):
        deadline_for(D("2026-03-02"), interruption=Interruption(D(notified), D(completed)))


def test_an_unknown_buyer_type_is_named():
    with pytest.raises(DeadlineError, match="public_hospital"):
        deadline_for(D("2026-03-02"), buyer_type="ministry")
