"""The functions behind `invoicing advance` and `invoicing recovery`."""

import json

import pytest

from cli.advance_tools import advance_command, recovery_command

ADVANCE_KEYS = {
    "mandatory",
    "reason",
    "rate",
    "base",
    "amount",
    "guarantee_may_be_required",
    "recovery_start_pct",
    "recovery_end_pct",
}


# Invoice 13 of the SME column of domain-rules.md §3.6.
SME_13 = ("96000.00", "720000.00", "480000.00", "40000.00")


def advance(*args, **kwargs) -> tuple[int, dict]:
    code, out = advance_command(*args, **kwargs)
    return code, json.loads(out)


def recovery(*args, **kwargs) -> tuple[int, dict]:
    code, out = recovery_command(*args, **kwargs)
    return code, json.loads(out)


@pytest.mark.parametrize(
    ("sme", "policy", "rate", "amount"),
    [
        (True, "doubled", "20", "96000.00"),
        (False, "doubled", "10", "48000.00"),
        (True, "legal-minimum", "10", "48000.00"),
        (False, "legal-minimum", "5", "24000.00"),
    ],
)
def test_advance_of_the_worked_example(sme, policy, rate, amount):
    code, document = advance("600000.00", "720000.00", 18, sme, policy, None)

    assert code == 0
    assert ADVANCE_KEYS <= document.keys()
    assert document["mandatory"] is True
    assert document["rate"] == rate
    assert document["base"] == "480000.00"
    assert document["amount"] == amount
    assert document["guarantee_may_be_required"] is False
    assert (document["recovery_start_pct"], document["recovery_end_pct"]) == ("65", "80")
    assert document["policy_version"] in ("doubled-2017", "legal-minimum-2024")
    assert document["warnings"] == []
    assert "R2191-3" in document["reason"] and "R2191-7" in document["reason"]


def test_advance_prints_indented_json_with_strings_for_amounts_and_rates():
    code, out = advance_command("600000.00", "720000.00", 18, True, "doubled", None)
    assert code == 0
    assert out.startswith("{\n  ")
    assert '"amount": "96000.00"' in out
    assert '"rate": "20"' in out


def test_advance_with_the_contracts_own_rate_above_30_percent():
    code, document = advance("100000", "120000", 12, False, "doubled", "40.50")

    assert code == 0
    assert document["rate"] == "40.5"
    assert document["amount"] == "48600.00"
    assert document["guarantee_may_be_required"] is True
    assert document["recovery_start_pct"] == "0"
    assert "R2191-8" in document["reason"]


def test_advance_with_a_fractional_rate():
    code, document = advance("100000.00", "120000.00", 6, False, "doubled", "13.5")
    assert (code, document["rate"], document["amount"]) == (0, "13.5", "16200.00")


@pytest.mark.parametrize(
    ("amount_ht", "months", "says"),
    [("50000.00", 12, "does not exceed 50000 EUR HT"), ("80000.00", 2, "does not exceed 2 months")],
)
def test_advance_not_mandatory_exits_0_with_the_reason(amount_ht, months, says):
    code, document = advance(amount_ht, "96000.00", months, False, "doubled", None)

    assert code == 0
    assert document["mandatory"] is False
    assert document["amount"] == "0.00"
    assert document["rate"] == "0"
    assert says in document["reason"]


@pytest.mark.parametrize(
    ("arguments", "argument"),
    [
        (("1e5", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("100000.00", "1.2E5", 6, False, "doubled", None), "--amount-ttc"),
        (("100000.001", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("100 000,00", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("-100000.00", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("inf", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("0", "120000.00", 6, False, "doubled", None), "--amount-ht"),
        (("100000.00", "90000.00", 6, False, "doubled", None), "--amount-ttc"),
        (("100000.00", "120000.00", 0, False, "doubled", None), "--months"),
        (("100000.00", "120000.00", 6, False, "tripled", None), "--policy"),
        (("100000.00", "120000.00", 6, False, "doubled", "4"), "--rate"),
        (("100000.00", "120000.00", 6, True, "doubled", "9.99"), "--rate"),
        (("100000.00", "120000.00", 6, False, "doubled", "1e1"), "--rate"),
        (("100000.00", "120000.00", 6, False, "doubled", "120"), "--rate"),
    ],
)
def test_advance_with_an_unusable_argument_exits_2_naming_it(arguments, argument):
    code, document = advance(*arguments)

    assert code == 2
    assert document["error"] == "invalid_argument"
    assert document["argument"] == argument
    assert document["message"]


def test_recovery_keys_and_the_default_recovered_before():
    code, document = recovery(*SME_13)

    assert code == 0
    assert {"deduction", "net_payable", "recovered_after"} <= document.keys()
    assert document == {
        "deduction": "35555.55",
        "net_payable": "4444.45",
        "recovered_after": "46222.22",
        "carried_over": "0.00",
    }


def test_recovery_before_the_window_deducts_nothing():
    code, document = recovery("48000.00", "720000.00", "0", "40000.00")
    assert (code, document["deduction"], document["net_payable"]) == (0, "0.00", "40000.00")


def test_recovery_catches_up_what_earlier_invoices_could_not_bear():
    code, document = recovery(
        "24000.00", "120000.00", "90000.00", "10000.00", recovered_before="12666.67"
    )
    assert document == {
        "deduction": "10000.00",
        "net_payable": "0.00",
        "recovered_after": "22666.67",
        "carried_over": "1333.33",
    }


def test_recovery_from_the_first_invoice_with_a_start_at_0():
    code, document = recovery(
        "48000.00", "120000.00", "0.00", "10000.00", start_pct="0", end_pct="80"
    )
    assert (code, document["deduction"]) == (0, "5000.00")


@pytest.mark.parametrize(
    ("arguments", "changes", "argument"),
    [
        (("96000.0.0", "720000.00", "0", "40000.00"), {}, "--advance"),
        (("96000.00", "7.2e5", "0", "40000.00"), {}, "--contract-ttc"),
        (("96000.00", "0", "0", "40000.00"), {}, "--contract-ttc"),
        (("96000.00", "720000.00", "-1", "40000.00"), {}, "--executed-before"),
        (("96000.00", "720000.00", "0", "nan"), {}, "--invoice"),
        (SME_13, {"recovered_before": "96000.01"}, "--recovered-before"),
        (SME_13, {"recovered_before": "1e3"}, "--recovered-before"),
        (SME_13, {"start_pct": "80"}, "--end-pct"),
        (SME_13, {"end_pct": "101"}, "--end-pct"),
        (SME_13, {"start_pct": "sixty"}, "--start-pct"),
    ],
)
def test_recovery_with_an_unusable_argument_exits_2_naming_it(arguments, changes, argument):
    code, document = recovery(*arguments, **changes)

    assert code == 2
    assert document["error"] == "invalid_argument"
    assert document["argument"] == argument
    assert document["message"]
