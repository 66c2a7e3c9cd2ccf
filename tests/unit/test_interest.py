"""Late-payment interest and indemnity (L2192-13, R2192-31, R2192-36, D2192-35)."""

from datetime import date
from decimal import Decimal

import pytest

from services.payments.domain.interest import (
    EcbRateTable,
    InvalidInterestInput,
    UnknownEcbRate,
    half_year_of,
    late_interest,
)
from shared.settings import ECB_MRO_RATES, Settings

TABLE = EcbRateTable(ECB_MRO_RATES)
WORKED_EXAMPLE_TTC = Decimal("120000.00")
PAID = date(2026, 4, 21)


@pytest.mark.parametrize(
    ("due", "days_late", "interest", "total"),
    [
        # domain-rules.md §2.4: the 30-day legal delay ends on 1 April 2026.
        (date(2026, 4, 1), 20, "667.40", "707.40"),
        # The same payment under a "halved" 15-day contractual delay.
        (date(2026, 3, 17), 35, "1167.95", "1207.95"),
    ],
)
def test_worked_example_of_the_domain_rules(due, days_late, interest, total):
    result = late_interest(WORKED_EXAMPLE_TTC, due, PAID, table=TABLE)

    assert result.late is True
    assert result.days_late == days_late
    assert (result.half_year, result.ecb_rate, result.rate) == ("2026-H1", Decimal("2.15"), Decimal("10.15"))
    assert result.interest == Decimal(interest)
    assert result.indemnity == Decimal("40.00")
    assert result.total == Decimal(total)
    # R2192-36: 45 days after the mise en paiement of 21 April.
    assert result.pay_by == date(2026, 6, 5)


def test_json_form_has_strings_for_money_and_iso_dates():
    document = late_interest(WORKED_EXAMPLE_TTC, date(2026, 4, 1), PAID, table=TABLE).as_dict()

    assert document == {
        "days_late": 20,
        "rate": "10.15",
        "interest": "667.40",
        "indemnity": "40.00",
        "total": "707.40",
        "pay_by": "2026-06-05",
        "ecb_rate": "2.15",
        "half_year": "2026-H1",
        "first_late_day": "2026-04-02",
    }


@pytest.mark.parametrize("paid", [date(2026, 3, 20), date(2026, 4, 1)], ids=["early", "on_the_due_date"])
def test_a_payment_on_time_owes_nothing(paid):
    result = late_interest(WORKED_EXAMPLE_TTC, date(2026, 4, 1), paid, table=TABLE)

    assert result.late is False
    assert (result.days_late, result.interest, result.indemnity, result.total) == (0, 0, 0, 0)
    assert result.pay_by is None and result.rate is None and result.first_late_day is None
    assert result.as_dict()["total"] == "0.00"


def test_a_payment_on_time_needs_no_rate_even_in_an_unknown_half_year():
    result = late_interest(WORKED_EXAMPLE_TTC, date(2031, 7, 1), date(2031, 7, 1), table=EcbRateTable({}))
    assert result.total == 0


@pytest.mark.parametrize(
    ("due", "paid", "first_late_day", "half_year", "rate"),
    [
        # Interest starts on 1 January: the new half-year's rate.
        (date(2025, 12, 31), date(2026, 1, 10), date(2026, 1, 1), "2026-H1", "10.15"),
        # Starts on 30 June: H1 2025's rate (3.15 + 8), kept for the days in July too.
        (date(2025, 6, 29), date(2025, 7, 15), date(2025, 6, 30), "2025-H1", "11.15"),
        # Due on 30 June: interest starts on 1 July, in H2 2025.
        (date(2025, 6, 30), date(2025, 7, 15), date(2025, 7, 1), "2025-H2", "10.15"),
    ],
)
def test_the_rate_is_the_one_of_the_half_year_in_which_interest_starts(
    due, paid, first_late_day, half_year, rate
):
    result = late_interest(Decimal("100000.00"), due, paid, table=TABLE)

    assert result.first_late_day == first_late_day
    assert result.half_year == half_year
    assert result.rate == Decimal(rate)
    assert result.days_late == (paid - due).days


def test_one_rate_for_a_late_period_spanning_two_half_years():
    result = late_interest(Decimal("100000.00"), date(2025, 6, 29), date(2025, 7, 15), table=TABLE)

    # 100 000 × 11.15 % × 16 / 365 = 488.767…, all 16 days at H1 2025's rate.
    assert result.days_late == 16
    assert result.interest == Decimal("488.77")


def test_an_unknown_half_year_is_an_error_naming_it_and_the_fix():
    with pytest.raises(UnknownEcbRate) as raised:
        late_interest(WORKED_EXAMPLE_TTC, date(2026, 6, 30), date(2026, 7, 20), table=TABLE)

    assert raised.value.half_year == "2026-H2"
    assert raised.value.first_late_day == date(2026, 7, 1)
    message = str(raised.value)
    assert "2026-H2" in message and "2026-07-01" in message and "INVOICING_ECB_RATES" in message


def test_without_a_table_or_a_rate_a_late_payment_is_refused_not_guessed():
    with pytest.raises(UnknownEcbRate):
        late_interest(WORKED_EXAMPLE_TTC, date(2026, 4, 1), PAID)


def test_a_leap_day_counts_as_a_late_day_and_the_year_still_has_365_days():
    # 21 February to 5 March 2024 inclusive, 29 February included: 14 days at H1 2024's 12.50 %.
    result = late_interest(Decimal("36500.00"), date(2024, 2, 20), date(2024, 3, 5), table=TABLE)

    assert result.days_late == 14
    assert result.rate == Decimal("12.50")
    # 36 500 × 12.5 % × 14 / 365 = 175.00 (a 366-day year would give 174.52).
    assert result.interest == Decimal("175.00")


def test_interest_is_rounded_half_up_at_the_cent():
    # 1 000.25 × 10 % × 73 / 365 = 20.005 exactly: half up gives 20.01 (half even would give 20.00).
    result = late_interest(
        Decimal("1000.25"), date(2026, 1, 1), date(2026, 3, 15), ecb_rate=Decimal("2")
    )

    assert result.days_late == 73
    assert result.interest == Decimal("20.01")
    assert result.total == Decimal("60.01")


def test_an_explicit_ecb_rate_replaces_the_table():
    result = late_interest(
        WORKED_EXAMPLE_TTC, date(2026, 4, 1), PAID, table=TABLE, ecb_rate=Decimal("3.15")
    )

    assert (result.ecb_rate, result.rate) == (Decimal("3.15"), Decimal("11.15"))
    # 120 000 × 11.15 % × 20 / 365 = 733.150…
    assert result.interest == Decimal("733.15")


def test_an_explicit_ecb_rate_covers_a_half_year_missing_from_the_table():
    result = late_interest(
        WORKED_EXAMPLE_TTC, date(2026, 6, 30), date(2026, 7, 20), table=TABLE, ecb_rate=Decimal("2.15")
    )
    assert (result.half_year, result.rate, result.days_late) == ("2026-H2", Decimal("10.15"), 20)


def test_indemnity_and_payment_delay_come_from_the_caller():
    result = late_interest(
        WORKED_EXAMPLE_TTC, date(2026, 4, 1), PAID, table=TABLE,
        indemnity=Decimal("50.00"), pay_within_days=30,
    )
    assert (result.indemnity, result.total, result.pay_by) == (
        Decimal("50.00"), Decimal("717.40"), date(2026, 5, 21)
    )


@pytest.mark.parametrize("amount", [Decimal("0"), Decimal("-10.00"), 120000.0, "120000.00"])
def test_an_unusable_amount_is_refused_naming_the_field(amount):
    with pytest.raises(InvalidInterestInput) as raised:
        late_interest(amount, date(2026, 4, 1), PAID, table=TABLE)

    assert isinstance(raised.value, ValueError)
    assert raised.value.field == "amount_ttc"


def test_a_datetime_is_not_taken_for_a_date():
    from datetime import datetime

    with pytest.raises(InvalidInterestInput) as raised:
        late_interest(WORKED_EXAMPLE_TTC, datetime(2026, 4, 1, 12), PAID, table=TABLE)
    assert raised.value.field == "due"


@pytest.mark.parametrize(
    ("day", "label"),
    [(date(2026, 1, 1), "2026-H1"), (date(2026, 6, 30), "2026-H1"), (date(2026, 7, 1), "2026-H2"),
     (date(2026, 12, 31), "2026-H2")],
)
def test_half_year_labels(day, label):
    assert half_year_of(day) == label


def test_a_table_refuses_a_label_that_is_not_a_half_year():
    with pytest.raises(InvalidInterestInput, match="2026-S2"):
        EcbRateTable({"2026-S2": Decimal("2.15")})


def test_a_table_refuses_a_float_rate():
    with pytest.raises(InvalidInterestInput, match="2026-H1"):
        EcbRateTable({"2026-H1": 2.15})


@pytest.mark.parametrize(
    ("half_year", "mro"),
    [("2019-H1", "0.00"), ("2022-H2", "0.00"), ("2023-H1", "2.50"), ("2023-H2", "4.00"),
     ("2024-H1", "4.50"), ("2024-H2", "4.25"), ("2025-H1", "3.15"), ("2025-H2", "2.15"),
     ("2026-H1", "2.15")],
)
def test_default_table_follows_the_domain_rules(half_year, mro):
    assert Settings().ecb_rates[half_year] == Decimal(mro)


def test_ecb_rates_from_the_environment_add_to_the_known_ones(monkeypatch):
    monkeypatch.setenv("INVOICING_ECB_RATES", '{"2026-H2": "2.40", "2026-H1": "2.00"}')
    rates = Settings().ecb_rates

    assert rates["2026-H2"] == Decimal("2.40")
    assert rates["2026-H1"] == Decimal("2.00")
    assert rates["2023-H1"] == Decimal("2.50")
