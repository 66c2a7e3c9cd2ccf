"""Recovering the advance by « précompte » (R2191-11, R2191-12): the worked example of
domain-rules.md §3.6 line by line, recovery from the first payment request, the carry-over
when an invoice cannot bear its scheduled deduction, pro-rata clauses, and properties that
hold for any sequence of invoices."""

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.advances.domain.advance import ContractTerms, advance_for
from services.advances.domain.policy import policy_named
from services.advances.domain.recovery import (
    InvalidRecoveryInput,
    Recovery,
    RecoveryLedger,
    no_recovery,
    recovery_deduction,
    replay_recovery,
    scheduled_recovered,
)

D = Decimal
ZERO = D("0.00")
START, END = D("65"), D("80")


def cents(value: int) -> Decimal:
    return D(value).scaleb(-2)


# --- domain-rules.md §3.6, line by line ---------------------------------------------------

WORKED_EXAMPLE = {
    # column: (sme, advance, deductions of invoices 12 to 15, net paid on them)
    "SME 96 000": (
        True,
        "96000.00",
        ["10666.67", "35555.55", "35555.56", "14222.22"],
        ["29333.33", "4444.45", "4444.44", "25777.78"],
    ),
    "non-SME 48 000": (
        False,
        "48000.00",
        ["5333.33", "17777.78", "17777.78", "7111.11"],
        ["34666.67", "22222.22", "22222.22", "32888.89"],
    ),
}


@pytest.mark.parametrize("column", WORKED_EXAMPLE)
def test_worked_example_of_domain_rules_3_6(column):
    sme, advance, deductions_12_to_15, nets_12_to_15 = WORKED_EXAMPLE[column]
    contract = ContractTerms(
        amount_ht=D("600000.00"), amount_ttc=D("720000.00"), duration_months=18, sme=sme
    )
    decision = advance_for(contract, policy_named("doubled"))
    assert decision.amount == D(advance)
    assert (decision.recovery_start_pct, decision.recovery_end_pct) == (START, END)

    invoices = [D("40000.00")] * 18
    lines = replay_recovery(
        decision.amount, contract.amount_ttc, invoices,
        decision.recovery_start_pct, decision.recovery_end_pct,
    )

    expected_deductions = [ZERO] * 11 + [D(d) for d in deductions_12_to_15] + [ZERO] * 3
    expected_nets = [D("40000.00")] * 11 + [D(n) for n in nets_12_to_15] + [D("40000.00")] * 3
    assert [line.deduction for line in lines] == expected_deductions
    assert [line.net_payable for line in lines] == expected_nets
    assert all(line.carried_over == ZERO for line in lines)
    assert sum(line.deduction for line in lines) == D(advance)
    assert lines[-1].recovered_after == D(advance)
    assert sum(line.net_payable for line in lines) == D("720000.00") - D(advance)


@pytest.mark.parametrize(
    ("invoice_number", "executed", "recovered_sme", "recovered_non_sme"),
    [
        (11, "440000.00", "0.00", "0.00"),
        (None, "468000.00", "0.00", "0.00"),  # 65 % of 720 000: the recovery starts
        (12, "480000.00", "10666.67", "5333.33"),
        (13, "520000.00", "46222.22", "23111.11"),
        (14, "560000.00", "81777.78", "40888.89"),
        (None, "576000.00", "96000.00", "48000.00"),  # 80 %: fully recovered
        (15, "600000.00", "96000.00", "48000.00"),
    ],
)
def test_worked_example_cumulative_recovered_is_rounded_to_the_cent(
    invoice_number, executed, recovered_sme, recovered_non_sme
):
    for advance, recovered in (("96000.00", recovered_sme), ("48000.00", recovered_non_sme)):
        schedule = scheduled_recovered(D(advance), D("720000.00"), D(executed), START, END)
        assert schedule == D(recovered)


# --- The schedule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("executed", "recovered"),
    [
        ("0.00", "0.00"),
        ("64.99", "0.00"),
        ("65.00", "0.00"),
        ("65.01", "0.07"),  # 100 × 0.01 / 15 = 0.0666…
        ("72.50", "50.00"),
        ("79.99", "99.93"),  # 99.9333…
        ("80.00", "100.00"),
        ("150.00", "100.00"),
    ],
)
def test_scheduled_recovered_is_linear_between_the_bounds_and_clamped(executed, recovered):
    assert scheduled_recovered(D("100.00"), D("100.00"), D(executed), START, END) == D(recovered)


@pytest.mark.parametrize(("advance", "recovered"), [("0.13", "0.07"), ("0.25", "0.13")])
def test_scheduled_recovered_rounds_half_up(advance, recovered):
    # Half-way through the window: 0.065 and 0.125 exactly, which half-even would round down.
    assert scheduled_recovered(D(advance), D("100.00"), D("72.50"), START, END) == D(recovered)


# --- Above 30 %: from the first payment request (R2191-11 2°) -----------------------------


def test_an_advance_above_30_percent_is_recovered_from_the_first_invoice():
    contract = ContractTerms(
        amount_ht=D("100000.00"), amount_ttc=D("120000.00"), duration_months=12, sme=False
    )
    decision = advance_for(contract, policy_named("doubled"), rate_override=D("40"))
    assert decision.amount == D("48000.00")
    assert decision.recovery_start_pct == D("0")

    lines = replay_recovery(
        decision.amount, contract.amount_ttc, [D("10000.00")] * 12,
        decision.recovery_start_pct, decision.recovery_end_pct,
    )

    # 48 000 over the first 80 % (96 000) of the contract: 5 000 per 10 000 invoiced.
    assert [line.deduction for line in lines] == (
        [D("5000.00")] * 9 + [D("3000.00")] + [ZERO] * 2
    )
    assert lines[0].net_payable == D("5000.00")
    assert sum(line.deduction for line in lines) == D("48000.00")


# --- Carry-over: an invoice smaller than its scheduled deduction --------------------------


def test_doubled_sme_rate_over_12_months_carries_over_to_the_next_invoices():
    # 20 % of 120 000 = 24 000 to recover between 78 000 and 96 000 executed: 1.33 € per euro
    # invoiced, more than the invoices can bear.
    contract = ContractTerms(
        amount_ht=D("100000.00"), amount_ttc=D("120000.00"), duration_months=12, sme=True
    )
    decision = advance_for(contract, policy_named("doubled"))
    assert decision.amount == D("24000.00")

    lines = replay_recovery(
        decision.amount, contract.amount_ttc, [D("10000.00")] * 12, START, END
    )

    assert lines[:7] == [Recovery(ZERO, D("10000.00"), ZERO, ZERO)] * 7
    assert lines[7] == Recovery(D("2666.67"), D("7333.33"), D("2666.67"), ZERO)
    # Scheduled 16 000 − 2 666.67 = 13 333.33: only 10 000 can be deducted.
    assert lines[8] == Recovery(D("10000.00"), ZERO, D("12666.67"), D("3333.33"))
    # Scheduled 24 000 − 12 666.67 = 11 333.33: again capped at the invoice.
    assert lines[9] == Recovery(D("10000.00"), ZERO, D("22666.67"), D("1333.33"))
    # The next invoice catches up the rest.
    assert lines[10] == Recovery(D("1333.33"), D("8666.67"), D("24000.00"), ZERO)
    assert lines[11] == Recovery(ZERO, D("10000.00"), D("24000.00"), ZERO)
    assert sum(line.deduction for line in lines) == D("24000.00")


def test_a_small_invoice_bears_only_the_schedule_over_its_own_amount():
    # From 480 000 to 481 500 executed the schedule moves from 10 666.67 to 12 000.00.
    recovery = recovery_deduction(
        D("96000.00"), D("720000.00"), D("480000.00"), D("1500.00"), D("10666.67"), START, END
    )
    assert recovery == Recovery(D("1333.33"), D("166.67"), D("12000.00"), ZERO)


def test_a_single_invoice_smaller_than_its_scheduled_deduction():
    # Nothing recovered yet at 480 000 (10 666.67 behind) and 35 555.55 more due at 520 000:
    # 46 222.22 is asked of a 40 000 invoice, which is paid nothing.
    recovery = recovery_deduction(
        D("96000.00"), D("720000.00"), D("480000.00"), D("40000.00"), ZERO, START, END
    )
    assert recovery == Recovery(D("40000.00"), ZERO, D("40000.00"), D("6222.22"))


def test_the_deduction_never_goes_beyond_what_remains_to_recover():
    recovery = recovery_deduction(
        D("96000.00"), D("720000.00"), D("600000.00"), D("40000.00"), D("96000.00"), START, END
    )
    assert recovery == Recovery(ZERO, D("40000.00"), D("96000.00"), ZERO)


def test_recovered_ahead_of_schedule_deducts_nothing_more():
    recovery = recovery_deduction(
        D("96000.00"), D("720000.00"), D("480000.00"), D("40000.00"), D("50000.00"), START, END
    )
    assert recovery.deduction == ZERO


# --- A contract's pro-rata clause ---------------------------------------------------------


def test_pro_rata_clause_deducts_a_share_of_every_invoice_from_the_first():
    lines = replay_recovery(
        D("48000.00"), D("720000.00"), [D("40000.00")] * 18, START, END, prorata_pct=D("20")
    )
    assert [line.deduction for line in lines] == [D("8000.00")] * 6 + [ZERO] * 12
    assert lines[0].net_payable == D("32000.00")
    assert lines[5].recovered_after == D("48000.00")


def test_pro_rata_clause_too_low_is_completed_at_the_end_bound_r2191_12():
    # 13.33 % of every invoice (domain-rules.md §3.6 note) leaves 96 000 − 14 × 5 332 =
    # 21 352 outstanding when invoice 15 takes the executed amount past 80 % (576 000):
    # R2191-12 requires the recovery to be complete there.
    lines = replay_recovery(
        D("96000.00"), D("720000.00"), [D("40000.00")] * 18, START, END, prorata_pct=D("13.33")
    )
    assert [line.deduction for line in lines[:14]] == [D("5332.00")] * 14
    assert lines[14].deduction == D("21352.00")
    assert [line.deduction for line in lines[15:]] == [ZERO] * 3
    assert sum(line.deduction for line in lines) == D("96000.00")


def test_pro_rata_share_is_rounded_half_up_and_capped_at_the_outstanding_balance():
    first = recovery_deduction(
        D("100.00"), D("10000.00"), ZERO, D("0.50"), ZERO, START, END, prorata_pct=D("13")
    )
    assert first.deduction == D("0.07")  # 0.065 half up
    last = recovery_deduction(
        D("100.00"), D("10000.00"), D("1000.00"), D("1000.00"), D("95.00"), START, END,
        prorata_pct=D("13"),
    )
    assert last == Recovery(D("5.00"), D("995.00"), D("100.00"), ZERO)


# --- Invoices with no advance, the ledger, unusable input ---------------------------------


def test_an_invoice_of_no_known_contract_bears_no_deduction():
    assert no_recovery(D("1234.56")) == Recovery(ZERO, D("1234.56"), ZERO, ZERO)


def test_a_contract_without_advance_deducts_nothing():
    lines = replay_recovery(ZERO, D("120000.00"), [D("60000.00")] * 2, START, END)
    assert [line.deduction for line in lines] == [ZERO, ZERO]


def test_the_ledger_keeps_the_running_totals():
    ledger = RecoveryLedger(D("96000.00"), D("720000.00"), START, END)
    for _ in range(13):
        ledger.apply(D("40000.00"))
    assert ledger.executed == D("520000.00")
    assert ledger.recovered == D("46222.22")
    assert ledger.outstanding == D("49777.78")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"advance": 96000.0}, "advance"),
        ({"invoice_amount": D("-1.00")}, "invoice_amount"),
        ({"invoice_amount": D("1.001")}, "invoice_amount"),
        ({"contract_ttc": ZERO}, "contract_ttc"),
        ({"executed_before": D("NaN")}, "executed_before"),
        ({"recovered_before": D("96000.01")}, "recovered_before"),
        ({"start_pct": D("80")}, "end_pct"),
        ({"end_pct": D("100.5")}, "end_pct"),
        ({"start_pct": D("-1")}, "start_pct"),
        ({"prorata_pct": D("0")}, "prorata_pct"),
    ],
)
def test_unusable_input_names_the_argument(changes, field):
    arguments = {
        "advance": D("96000.00"),
        "contract_ttc": D("720000.00"),
        "executed_before": D("480000.00"),
        "invoice_amount": D("40000.00"),
        "recovered_before": D("10666.67"),
        "start_pct": START,
        "end_pct": END,
    } | changes
    with pytest.raises(InvalidRecoveryInput) as caught:
        recovery_deduction(**arguments)
    assert caught.value.field == field


# --- Properties ---------------------------------------------------------------------------


@st.composite
def contracts(draw, *, good_practice: bool = True, prorata: bool = False):
    """A contract TTC, recovery bounds, an advance, and invoices summing to at least the
    contract. With ``good_practice`` the advance fits in what is invoiced after the recovery
    starts (advance + start <= 100 %, domain-rules.md §3.4); for a pro-rata clause, in what
    is invoiced after the end bound."""
    ttc = draw(st.integers(min_value=100, max_value=10**9))  # cents
    start_pct = D(draw(st.integers(min_value=0, max_value=9000))).scaleb(-2)
    end_pct = D(draw(st.integers(min_value=int(start_pct * 100) + 1, max_value=10000))).scaleb(-2)
    room = D(100) - (end_pct if prorata else start_pct)
    ceiling = int(ttc * room / 100) if good_practice else ttc
    advance = draw(st.integers(min_value=0, max_value=ceiling))
    # Few large invoices, or many small ones that step through the recovery window.
    largest = draw(st.sampled_from([ttc, max(1, ttc // 10), max(1, ttc // 40)]))
    invoices = draw(st.lists(st.integers(min_value=1, max_value=largest), max_size=60))
    invoiced = sum(invoices)
    if invoiced < ttc:
        invoices.append(ttc - invoiced)
    prorata_pct = (
        D(draw(st.integers(min_value=1, max_value=10000))).scaleb(-2) if prorata else None
    )
    return cents(advance), cents(ttc), start_pct, end_pct, [cents(i) for i in invoices], prorata_pct


def _check_each_line(advance, invoices, lines):
    recovered = ZERO
    for invoice, line in zip(invoices, lines, strict=True):
        assert ZERO <= line.deduction <= invoice
        assert line.net_payable >= ZERO
        assert line.deduction + line.net_payable == invoice
        assert line.carried_over >= ZERO
        assert line.recovered_after == recovered + line.deduction
        assert line.recovered_after <= advance
        recovered = line.recovered_after
        for amount in (line.deduction, line.net_payable, line.recovered_after):
            assert amount == amount.quantize(D("0.01"))


@settings(max_examples=400, deadline=None)
@given(contracts())
def test_deductions_of_any_invoice_sequence_add_up_to_the_advance(case):
    advance, ttc, start_pct, end_pct, invoices, _ = case
    lines = replay_recovery(advance, ttc, invoices, start_pct, end_pct)

    _check_each_line(advance, invoices, lines)
    assert sum((line.deduction for line in lines), ZERO) == advance


@settings(max_examples=300, deadline=None)
@given(contracts(prorata=True))
def test_pro_rata_deductions_add_up_to_the_advance(case):
    advance, ttc, start_pct, end_pct, invoices, prorata_pct = case
    lines = replay_recovery(advance, ttc, invoices, start_pct, end_pct, prorata_pct)

    _check_each_line(advance, invoices, lines)
    assert sum((line.deduction for line in lines), ZERO) == advance


@settings(max_examples=300, deadline=None)
@given(contracts(good_practice=False))
def test_an_advance_too_large_for_its_invoices_is_recovered_as_far_as_they_allow(case):
    advance, ttc, start_pct, end_pct, invoices, _ = case
    lines = replay_recovery(advance, ttc, invoices, start_pct, end_pct)

    _check_each_line(advance, invoices, lines)
    recovered = sum((line.deduction for line in lines), ZERO)
    if recovered < advance:
        # The schedule asked for the whole advance by the last invoice: it took all of it.
        assert lines[-1].net_payable == ZERO
        assert lines[-1].carried_over == advance - recovered


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=9999),
    st.data(),
)
def test_scheduled_recovered_is_monotonic_and_within_the_advance(advance, ttc, start, data):
    start_pct = D(start).scaleb(-2)
    end_pct = D(data.draw(st.integers(min_value=start + 1, max_value=10000))).scaleb(-2)
    executed = sorted(data.draw(st.lists(st.integers(0, 2 * ttc), min_size=2, max_size=10)))

    recovered = [
        scheduled_recovered(cents(advance), cents(ttc), cents(x), start_pct, end_pct)
        for x in executed
    ]

    assert recovered == sorted(recovered)
    assert all(ZERO <= r <= cents(advance) for r in recovered)
    assert scheduled_recovered(cents(advance), cents(ttc), cents(ttc), start_pct, end_pct) == cents(
        advance
    )
