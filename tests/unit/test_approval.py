"""The automatic approval rule: every condition alone, then together, always with its reason."""

from dataclasses import replace
from decimal import Decimal

import pytest

from services.invoices.domain.approval import (
    ABOVE_REMAINING,
    ABOVE_THRESHOLD,
    AMOUNT_NOT_POSITIVE,
    ENGAGEMENT_UNKNOWN,
    IBAN_CHANGE_PENDING,
    IBAN_NOT_REGISTERED,
    OTHER_SUPPLIER,
    SERVICE_NOT_DONE,
    SUPPLIER_UNKNOWN,
    EngagementView,
    SupplierView,
    auto_approval,
)

SELLER = "41234567000019"
OTHER_SELLER = "73282932000074"
IBAN = "FR7630004000031234567890143"
NEW_IBAN = "FR7630006000011234567890189"
SUPPLIER = SupplierView(siret=SELLER, name="Atelier Numérique du Nord SAS", sme=True, iban=IBAN)
ENGAGEMENT = EngagementView(number="EJ-2026-1", supplier_siret=SELLER, amount=Decimal("50000.00"),
                            remaining=Decimal("12000.00"), service_done_automatic=False)

# An invoice that passes every condition; each case changes what its name says.
PASSING = dict(
    invoice_amount=Decimal("1200.00"), invoice_iban=IBAN, seller_siret=SELLER, engagement_number="EJ-2026-1",
    engagement=ENGAGEMENT, supplier=SUPPLIER, pending_iban=None, service_done=True,
    threshold=Decimal("5000.00"),
)

CASES = {
    # name: (changes, failing rules, a word each reason must contain)
    "everything holds": ({}, [], []),
    "no engagement number": (dict(engagement_number=None, engagement=None), [ENGAGEMENT_UNKNOWN], ["BT-13"]),
    "engagement not recorded": (dict(engagement_number="EJ-404", engagement=None), [ENGAGEMENT_UNKNOWN],
                                ["EJ-404"]),
    "engagement of another supplier": (
        dict(engagement=replace(ENGAGEMENT, supplier_siret=OTHER_SELLER)), [OTHER_SUPPLIER], [OTHER_SELLER]),
    "invoice without seller SIRET": (
        dict(seller_siret=None, supplier=None), [OTHER_SUPPLIER, SUPPLIER_UNKNOWN], ["SIRET", "SIRET"]),
    "amount above the remaining commitment": (
        dict(engagement=replace(ENGAGEMENT, remaining=Decimal("1199.99"))), [ABOVE_REMAINING], ["1199.99"]),
    "service not done": (dict(service_done=False), [SERVICE_NOT_DONE], ["EJ-2026-1"]),
    "service not done but automatic on the engagement": (
        dict(service_done=False, engagement=replace(ENGAGEMENT, service_done_automatic=True)), [], []),
    "service not done and engagement unknown": (
        dict(service_done=False, engagement=None), [ENGAGEMENT_UNKNOWN, SERVICE_NOT_DONE],
        ["EJ-2026-1", "Service fait"]),
    "supplier not registered": (dict(supplier=None), [SUPPLIER_UNKNOWN], [SELLER]),
    "invoice without IBAN": (dict(invoice_iban=None), [IBAN_NOT_REGISTERED], ["BT-84"]),
    "IBAN other than the registered one": (dict(invoice_iban=NEW_IBAN), [IBAN_NOT_REGISTERED], ["two"]),
    "IBAN of a change awaiting confirmation": (
        dict(invoice_iban=NEW_IBAN, pending_iban=NEW_IBAN), [IBAN_CHANGE_PENDING], ["four eyes"]),
    "registered IBAN while a change waits": (dict(pending_iban=NEW_IBAN), [], []),
    "amount above the threshold": (dict(invoice_amount=Decimal("5000.01")), [ABOVE_THRESHOLD], ["5000.00"]),
    "zero amount": (dict(invoice_amount=Decimal("0.00")), [AMOUNT_NOT_POSITIVE], ["positive"]),
    "credit note": (dict(invoice_amount=Decimal("-10.00")), [AMOUNT_NOT_POSITIVE], ["-10.00"]),
    "everything fails": (
        dict(invoice_amount=Decimal("20000.00"), invoice_iban=NEW_IBAN, pending_iban=NEW_IBAN,
             service_done=False, engagement=replace(ENGAGEMENT, supplier_siret=OTHER_SELLER)),
        [OTHER_SUPPLIER, ABOVE_REMAINING, SERVICE_NOT_DONE, IBAN_CHANGE_PENDING, ABOVE_THRESHOLD],
        [OTHER_SELLER, "12000.00", "Service fait", "four eyes", "5000.00"]),
    "unknown engagement and unknown supplier": (
        dict(engagement=None, supplier=None, invoice_amount=Decimal("7000.00")),
        [ENGAGEMENT_UNKNOWN, SUPPLIER_UNKNOWN, ABOVE_THRESHOLD], ["EJ-2026-1", SELLER, "threshold"]),
}


@pytest.mark.parametrize(("changes", "rules", "words"), CASES.values(), ids=CASES.keys())
def test_each_failing_condition_is_listed_with_a_sentence(changes, rules, words):
    decision = auto_approval(**{**PASSING, **changes})
    assert decision.rules == rules
    assert decision.automatic is (rules == [])
    assert len(decision.reasons) == len(rules)
    for reason, word in zip(decision.reasons, words):
        assert word in reason
        assert reason.endswith(".") and len(reason) > 40


@pytest.mark.parametrize(("amount", "rules"), [("12000.00", []), ("12000.01", [ABOVE_REMAINING])])
def test_the_remaining_commitment_may_be_used_to_the_cent(amount, rules):
    decision = auto_approval(**{**PASSING, "invoice_amount": Decimal(amount), "threshold": Decimal("100000.00")})
    assert decision.rules == rules


@pytest.mark.parametrize(("amount", "automatic"), [("4999.99", True), ("5000.00", True), ("5000.01", False)])
def test_an_amount_equal_to_the_threshold_is_still_automatic(amount, automatic):
    decision = auto_approval(**{**PASSING, "invoice_amount": Decimal(amount),
                                "engagement": replace(ENGAGEMENT, remaining=Decimal("50000.00"))})
    assert decision.automatic is automatic
    assert decision.rules == ([] if automatic else [ABOVE_THRESHOLD])


def test_ibans_are_compared_as_accounts_not_as_text():
    written = "fr76 3000 4000 0312 3456 7890 143"
    assert auto_approval(**{**PASSING, "invoice_iban": written}).automatic
    pending = auto_approval(**{**PASSING, "invoice_iban": "FR76 3000 6000 0112 3456 7890 189",
                               "pending_iban": NEW_IBAN})
    assert pending.rules == [IBAN_CHANGE_PENDING]


def test_reasons_do_not_spell_out_bank_accounts():
    decision = auto_approval(**{**PASSING, "invoice_iban": NEW_IBAN})
    [reason] = decision.reasons
    assert NEW_IBAN not in reason and IBAN not in reason
    assert "0189" in reason and "0143" in reason


def test_amounts_must_be_decimal():
    with pytest.raises(TypeError, match="invoice_amount must be a Decimal"):
        auto_approval(**{**PASSING, "invoice_amount": 1200.0})
    with pytest.raises(TypeError, match="threshold"):
        auto_approval(**{**PASSING, "threshold": 5000})
