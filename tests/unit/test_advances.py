"""The advance decision: when it is due (R2191-3/-5), its base and rate (R2191-7), the
guarantee (R2191-8), the recovery window (R2191-11/-12) and its payment delay start
(R2192-24/-25)."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from services.advances.domain.advance import (
    AdvanceDelayStart,
    ContractTerms,
    InvalidAdvanceInput,
    advance_base,
    advance_for,
    payment_delay_start,
    percent_text,
)
from services.advances.domain.policy import POLICIES, UnknownPolicy, policy_named
from shared.events.contracts import ContractNotified
from tests.support import contract

D = Decimal
DOUBLED = policy_named("doubled")
LEGAL = policy_named("legal-minimum")
NOTIFIED = date(2026, 1, 5)


def terms(
    amount_ht: str = "100000.00",
    amount_ttc: str = "120000.00",
    months: int = 6,
    sme: bool = False,
    **changes,
) -> ContractTerms:
    return ContractTerms(
        amount_ht=D(amount_ht),
        amount_ttc=D(amount_ttc),
        duration_months=months,
        sme=sme,
        notified_on=changes.pop("notified_on", NOTIFIED),
        **changes,
    )


# --- R2191-3: when the advance is mandatory ---------------------------------------------


@pytest.mark.parametrize(
    ("amount_ht", "months", "mandatory", "reason_mentions"),
    [
        ("50000.00", 6, False, ["50000.00 EUR HT does not exceed 50000 EUR HT"]),
        ("50000.01", 6, True, ["50000.01 EUR HT exceeds 50000 EUR HT"]),
        ("100000.00", 2, False, ["2 months does not exceed 2 months"]),
        ("100000.00", 3, True, ["3 months exceed 2 months"]),
        ("50000.00", 2, False, ["does not exceed 50000 EUR HT", "2 months does not exceed"]),
        ("49999.99", 36, False, ["49999.99 EUR HT does not exceed"]),
        ("50000.01", 3, True, ["exceeds 50000 EUR HT", "3 months exceed 2 months"]),
    ],
)
def test_mandatory_exactly_above_50000_ht_and_2_months(
    amount_ht, months, mandatory, reason_mentions
):
    decision = advance_for(terms(amount_ht, "1000000.00", months), DOUBLED)

    assert decision.mandatory is mandatory
    assert decision.granted is mandatory
    assert "R2191-3" in decision.reason
    for words in reason_mentions:
        assert words in decision.reason


def test_an_advance_that_is_not_mandatory_is_not_granted_and_says_why():
    decision = advance_for(terms("40000.00", "48000.00", 6), DOUBLED)

    assert decision.mandatory is False
    assert decision.amount == D("0.00")
    assert decision.rate == 0
    assert decision.base == D("48000.00")
    assert decision.guarantee_may_be_required is False
    assert "optional" in decision.reason and "not by default" in decision.reason
    assert decision.delay_start == AdvanceDelayStart(
        None, "no advance is paid, so no payment delay runs"
    )


def test_a_refused_advance_is_not_paid_r2191_5():
    decision = advance_for(terms(advance_refused=True), DOUBLED)

    assert decision.mandatory is False
    assert decision.amount == D("0.00")
    assert "refused" in decision.reason and "R2191-5" in decision.reason


def test_a_refusal_below_the_thresholds_gives_the_threshold_as_the_reason():
    decision = advance_for(terms("40000.00", "48000.00", advance_refused=True), DOUBLED)
    assert "R2191-3" in decision.reason and "R2191-5" not in decision.reason


# --- R2191-7: the base --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_ttc", "months", "base"),
    [
        ("120000.00", 3, "120000.00"),
        ("120000.00", 12, "120000.00"),  # up to 12 months: the whole amount TTC
        ("120000.00", 13, "110769.23"),  # 12 × 120000 / 13 = 110769.2307…
        ("120000.00", 24, "60000.00"),
        ("720000.00", 18, "480000.00"),  # domain-rules.md §3.6
        ("100000.06", 16, "75000.05"),  # 75000.045 rounds half up, not to even
    ],
)
def test_base_is_ttc_up_to_12_months_then_12_months_worth(amount_ttc, months, base):
    assert advance_base(terms("60000.00", amount_ttc, months)) == D(base)


def test_the_advance_is_computed_from_the_rounded_base():
    decision = advance_for(terms("100000.00", "120000.00", 13), DOUBLED)
    assert decision.base == D("110769.23")
    assert decision.amount == D("11076.92")  # 10 % of 110769.23 = 11076.923
    assert "12 × 120000.00 / 13 months" in decision.reason


# --- Rates: the policies, the contract's own rate -----------------------------------------


@pytest.mark.parametrize(
    ("policy", "sme", "rate", "amount"),
    [
        ("legal-minimum", False, "5", "24000.00"),
        ("doubled", False, "10", "48000.00"),
        ("legal-minimum", True, "10", "48000.00"),
        ("doubled", True, "20", "96000.00"),
    ],
)
def test_worked_example_rates_of_domain_rules_3_6(policy, sme, rate, amount):
    decision = advance_for(terms("600000.00", "720000.00", 18, sme=sme), policy_named(policy))

    assert decision.mandatory is True
    assert decision.base == D("480000.00")
    assert decision.rate == D(rate)
    assert decision.amount == D(amount)
    assert decision.policy_version == policy_named(policy).version
    assert decision.rate_from_contract is False
    assert (decision.recovery_start_pct, decision.recovery_end_pct) == (D("65"), D("80"))
    assert decision.guarantee_may_be_required is False
    assert decision.warnings == ()


def test_policy_table_versions_and_sources():
    assert {p.version for p in POLICIES} == {
        "doubled-2017", "legal-minimum-2019", "legal-minimum-2024"
    }
    assert DOUBLED.version == "doubled-2017"
    assert (DOUBLED.standard_rate_pct, DOUBLED.sme_rate_pct) == (D("10"), D("20"))
    assert LEGAL.version == "legal-minimum-2024"
    assert (LEGAL.standard_rate_pct, LEGAL.sme_rate_pct) == (D("5"), D("10"))
    for policy in POLICIES:
        assert policy.source
    assert "60 M€" in LEGAL.source  # the large-local-authority assumption behind SME 10 %


@pytest.mark.parametrize(
    ("name", "on", "version"),
    [
        ("doubled", None, "doubled-2017"),
        ("doubled", date(2026, 1, 5), "doubled-2017"),
        ("legal-minimum", date(2023, 6, 1), "legal-minimum-2019"),
        ("legal-minimum", date(2025, 1, 1), "legal-minimum-2024"),
        ("legal-minimum-2019", None, "legal-minimum-2019"),
    ],
)
def test_policy_lookup_by_name_date_or_version(name, on, version):
    assert policy_named(name, on).version == version


def test_unknown_policy_names_the_known_ones():
    with pytest.raises(UnknownPolicy, match="'tripled'.*legal-minimum, doubled"):
        policy_named("tripled")


def test_no_policy_version_before_its_effective_date():
    with pytest.raises(UnknownPolicy, match="in force on 2017-01-01"):
        policy_named("doubled", date(2017, 1, 1))


def test_policies_are_immutable():
    with pytest.raises(AttributeError):
        DOUBLED.standard_rate_pct = D("50")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("sme", "override", "amount"),
    [
        (False, "13.5", "16200.00"),
        (False, "5", "6000.00"),  # exactly the legal minimum
        (True, "10", "12000.00"),  # exactly the SME minimum of a large local authority
        (True, "30", "36000.00"),
        (False, "100", "120000.00"),
    ],
)
def test_a_contract_may_carry_its_own_rate(sme, override, amount):
    decision = advance_for(terms(sme=sme), DOUBLED, rate_override=D(override))
    assert decision.rate == D(override)
    assert decision.amount == D(amount)
    assert decision.rate_from_contract is True
    assert "set by the contract" in decision.reason
    assert decision.policy_version == "doubled-2017"


@pytest.mark.parametrize(
    ("sme", "override", "message"),
    [
        (False, "4.99", "below the legal minimum of 5 %"),
        (True, "9", "below the legal minimum of 10 % for an SME holder"),
        (False, "100.01", "exceeds the whole base"),
        (False, "0", "below the legal minimum"),
    ],
)
def test_a_contract_rate_outside_r2191_7_is_refused(sme, override, message):
    with pytest.raises(InvalidAdvanceInput, match=message) as caught:
        advance_for(terms(sme=sme), DOUBLED, rate_override=D(override))
    assert caught.value.field == "rate_override"


def test_a_contract_rate_does_not_create_an_optional_advance():
    decision = advance_for(terms("50000.00"), DOUBLED, rate_override=D("20"))
    assert (decision.mandatory, decision.amount) == (False, D("0.00"))


# --- R2191-8 and R2191-11: 30 % ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "guarantee", "start"),
    [
        ("30", False, "65"),
        ("30.01", True, "0"),
        ("40", True, "0"),
    ],
)
def test_above_30_percent_guarantee_possible_and_recovery_from_first_payment(
    rate, guarantee, start
):
    decision = advance_for(terms(months=12), DOUBLED, rate_override=D(rate))

    assert decision.guarantee_may_be_required is guarantee
    assert ("R2191-8" in decision.reason) is guarantee
    assert decision.recovery_start_pct == D(start)
    assert decision.recovery_end_pct == D("80")


def test_an_advance_of_exactly_30_percent_stays_at_30_percent_whatever_its_rounding():
    # 30 % of 100 000.05 is 30 000.015, paid as 30 000.02: still a 30 % advance (R2191-11 1°).
    decision = advance_for(terms("90000.00", "100000.05", 12), DOUBLED, rate_override=D("30"))
    assert decision.amount == D("30000.02")
    assert decision.recovery_start_pct == D("65")
    assert decision.guarantee_may_be_required is False


def test_recovery_start_looks_at_the_share_of_the_contract_not_the_rate():
    # 40 % of 12 months' worth of a 24-month contract is 20 % of its TTC: R2191-8 looks at the
    # rate (guarantee possible), R2191-11 at the share (recovery from 65 %).
    decision = advance_for(terms("100000.00", "120000.00", 24), DOUBLED, rate_override=D("40"))

    assert decision.amount == D("24000.00")
    assert decision.guarantee_may_be_required is True
    assert decision.recovery_start_pct == D("65")


@pytest.mark.parametrize(
    ("rate", "months", "end"),
    [
        ("79", 12, "80"),
        ("80", 12, "80"),
        ("90", 12, "90"),  # R2191-12: recovered once executed reaches the advance
        ("85", 24, "80"),  # 42.5 % of the contract
    ],
)
def test_recovery_end_bound_r2191_12(rate, months, end):
    decision = advance_for(terms(months=months), DOUBLED, rate_override=D(rate))
    assert decision.recovery_end_pct == D(end)


def test_the_contracts_recovery_clauses_win():
    decision = advance_for(
        terms(recovery_start_pct=D("10"), recovery_end_pct=D("90"), recovery_prorata_pct=D("12")),
        DOUBLED,
        rate_override=D("40"),
    )
    assert (decision.recovery_start_pct, decision.recovery_end_pct) == (D("10"), D("90"))
    assert decision.recovery_prorata_pct == D("12")


def test_a_contract_start_beyond_the_default_end_needs_both_bounds():
    with pytest.raises(InvalidAdvanceInput, match="state both bounds") as caught:
        advance_for(terms(recovery_start_pct=D("85")), DOUBLED)
    assert caught.value.field == "recovery_end_pct"


# --- Good practice: advance + recovery start <= 100 % (domain-rules.md §3.4) --------------


@pytest.mark.parametrize(
    ("rate", "start", "warned"),
    [
        ("35", "65", False),  # exactly 100 %
        ("35.01", "65", True),
        ("40", "65", True),  # the aapasso.fr example
        ("40", None, False),  # the statutory start for > 30 % is the first payment request
    ],
)
def test_advance_plus_recovery_start_above_100_percent_is_a_warning(rate, start, warned):
    decision = advance_for(
        terms(months=12, recovery_start_pct=None if start is None else D(start)),
        DOUBLED,
        rate_override=D(rate),
    )
    assert decision.granted
    assert any("exceeds 100 %" in warning for warning in decision.warnings) is warned


def test_a_pro_rata_clause_is_not_held_to_the_start_threshold_rule():
    decision = advance_for(
        terms(months=12, recovery_start_pct=D("65"), recovery_prorata_pct=D("40")),
        DOUBLED,
        rate_override=D("40"),
    )
    assert decision.warnings == ()


# --- R2192-24 / R2192-25: when the advance's payment delay starts --------------------------


@pytest.mark.parametrize(
    ("changes", "starts_on", "reason_mentions"),
    [
        ({}, date(2026, 1, 5), "R2192-24 1°"),
        ({"start_order_on": date(2026, 2, 2)}, date(2026, 2, 2), "R2192-24 2°"),
        (
            {"guarantee_required": True, "guarantee_received_on": date(2026, 1, 20)},
            date(2026, 1, 20),
            "R2192-25",
        ),
        (
            {"guarantee_required": True, "guarantee_received_on": date(2025, 12, 20)},
            date(2026, 1, 5),
            "R2192-24 1°",
        ),
        (
            {
                "start_order_on": date(2026, 2, 2),
                "guarantee_required": True,
                "guarantee_received_on": date(2026, 1, 20),
            },
            date(2026, 2, 2),
            "R2192-24 2°",
        ),
        ({"guarantee_required": True}, None, "R2192-25"),
        ({"guarantee_received_on": date(2026, 3, 1)}, date(2026, 1, 5), "R2192-24 1°"),
        ({"notified_on": None}, None, "not notified"),
    ],
)
def test_payment_delay_start(changes, starts_on, reason_mentions):
    start = payment_delay_start(terms(**changes))
    assert start.starts_on == starts_on
    assert reason_mentions in start.reason


def test_a_required_guarantee_not_received_leaves_the_start_unknown_and_says_so():
    start = payment_delay_start(terms(guarantee_required=True))
    assert start.starts_on is None
    assert start.due_on() is None
    assert "guarantee" in start.reason and "not start before its receipt" in start.reason


def test_the_advance_is_due_30_days_after_its_delay_starts():
    decision = advance_for(terms(), DOUBLED)
    assert decision.delay_start.starts_on == date(2026, 1, 5)
    assert decision.delay_start.due_on() == date(2026, 2, 4)
    assert decision.delay_start.due_on(15) == date(2026, 1, 20)


def test_a_guarantee_required_at_30_percent_or_less_is_flagged_but_still_holds_the_delay():
    decision = advance_for(terms(guarantee_required=True), DOUBLED)
    assert decision.delay_start.starts_on is None
    assert any("R2191-8" in warning for warning in decision.warnings)


def test_a_guarantee_above_30_percent_raises_no_warning():
    decision = advance_for(
        terms(guarantee_required=True, guarantee_received_on=date(2026, 1, 12)),
        DOUBLED,
        rate_override=D("40"),
    )
    assert decision.warnings == ()
    assert decision.delay_start.starts_on == date(2026, 1, 12)


# --- The contract terms -------------------------------------------------------------------


def test_terms_from_the_contract_notified_event():
    event = ContractNotified.model_validate(
        contract(
            4,
            amount_ht="600000.00",
            amount_ttc="720000.00",
            duration_months=18,
            start_order_on="2026-02-02",
            guarantee_required=True,
            guarantee_received_on="2026-01-15",
            recovery_start_pct="60",
            recovery_end_pct="85",
            recovery_prorata_pct="13.5",
        )
    )
    assert ContractTerms.from_event(event) == ContractTerms(
        amount_ht=D("600000.00"),
        amount_ttc=D("720000.00"),
        duration_months=18,
        sme=True,
        advance_refused=False,
        notified_on=date(2026, 1, 5),
        start_order_on=date(2026, 2, 2),
        guarantee_required=True,
        guarantee_received_on=date(2026, 1, 15),
        recovery_start_pct=D("60"),
        recovery_end_pct=D("85"),
        recovery_prorata_pct=D("13.5"),
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount_ht": D("100000.001")}, "amount_ht"),
        ({"amount_ht": 100000.0}, "amount_ht"),
        ({"amount_ttc": D("0.00")}, "amount_ttc"),
        ({"amount_ttc": D("90000.00")}, "amount_ttc"),
        ({"duration_months": 0}, "duration_months"),
        ({"duration_months": True}, "duration_months"),
        ({"recovery_start_pct": D("101")}, "recovery_start_pct"),
        ({"recovery_prorata_pct": D("0")}, "recovery_prorata_pct"),
        ({"recovery_start_pct": D("80"), "recovery_end_pct": D("80")}, "recovery_end_pct"),
        ({"start_order_on": date(2026, 1, 4)}, "start_order_on"),
    ],
)
def test_unusable_terms_name_the_field(changes, field):
    with pytest.raises(InvalidAdvanceInput) as caught:
        replace(terms(), **changes)
    assert caught.value.field == field


def test_terms_are_immutable():
    with pytest.raises(AttributeError):
        terms().sme = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("10"), "10"),
        (D("20.00"), "20"),
        (D("13.50"), "13.5"),
        (D("1E+1"), "10"),
        (D("0.00"), "0"),
    ],
)
def test_percent_text(value, text):
    assert percent_text(value) == text
