"""Payables built from upstream events, and where each one is placed."""

from datetime import date
from decimal import Decimal

import pytest

from services.payments.domain.interest import EcbRateTable, late_interest
from services.payments.domain.payables import (
    JoinMismatch, Payee, advance_payable, interest_payable, invoice_payable, place,
)
from services.payments.domain.schedule import PaymentCalendar
from shared.events.contracts import AdvanceGranted, AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved, PaymentDeadline

SIRET = "41234567000019"
IBAN = "FR7630006000011234567890189"
DEADLINE = PaymentDeadline(buyer_type="local_authority", dgp_start=date(2026, 3, 2), legal_due=date(2026, 4, 1),
                           ordonnateur_due=date(2026, 3, 22), target_due=date(2026, 3, 17))


def approved(amount="10000.00", iban: str | None = IBAN) -> InvoiceApproved:
    return InvoiceApproved(invoice_id="inv-1", amount=Decimal(amount), currency="EUR", seller_siret=SIRET,
                           seller_name="Fournisseur SA", invoice_number="FA-1", payee_iban=iban,
                           contract_reference="M-1", engagement_number=None, automatic=True, deadline=DEADLINE)


def recovery(approved_amount="10000.00", deduction="1500.00") -> AdvanceRecoveryApplied:
    return AdvanceRecoveryApplied(
        invoice_id="inv-1", contract_id="M-1", approved_amount=Decimal(approved_amount),
        deduction=Decimal(deduction), net_payable=Decimal(approved_amount) - Decimal(deduction),
        recovered_after=Decimal(deduction), outstanding_after=Decimal("0"), reason="précompte")


def test_the_invoice_payable_is_the_approved_amount_less_the_advance_it_bears():
    payable = invoice_payable(approved(), recovery(), None)
    assert (payable.gross_amount, payable.deduction, payable.amount) == (
        Decimal("10000.00"), Decimal("1500.00"), Decimal("8500.00"))
    assert payable.payable_id == "invoice:inv-1" and payable.payee_iban == IBAN
    assert (payable.legal_due, payable.target_due) == (date(2026, 4, 1), date(2026, 3, 17))
    assert "FA-1" in payable.remittance and "1500.00" in payable.remittance


def test_an_approval_and_a_recovery_that_disagree_are_not_joined():
    with pytest.raises(JoinMismatch, match="approved for 10000.00 EUR but the recovery was computed on 9000.00"):
        invoice_payable(approved(), recovery(approved_amount="9000.00", deduction="0.00"), None)


def test_without_an_iban_on_the_invoice_the_registered_account_is_paid_and_without_either_it_is_held():
    payee = Payee(SIRET, "Fournisseur SA", "FR7630004000031234567890143")
    assert invoice_payable(approved(iban=None), recovery(), payee).payee_iban == payee.iban
    held = place(invoice_payable(approved(iban=None), recovery(), None), date(2026, 3, 2), PaymentCalendar())
    assert held.status == "on_hold" and SIRET in held.hold_reason


def test_a_payable_is_placed_on_the_next_run_or_at_once_when_no_run_meets_its_target():
    payable = invoice_payable(approved(), recovery(), None)
    saturday = place(payable, date(2026, 3, 7), PaymentCalendar())
    assert (saturday.status, saturday.order_on, saturday.urgent) == ("scheduled", date(2026, 3, 9), False)
    # The target (17 March) has passed: ordered at once.
    late = place(payable, date(2026, 3, 21), PaymentCalendar())
    assert (late.order_on, late.urgent) == (date(2026, 3, 21), True)


def test_an_advance_awaiting_its_guarantee_is_held():
    granted = AdvanceGranted(
        contract_id="M-2", supplier_siret=SIRET, policy_version="doubled-2024", rate_pct=Decimal("10"),
        rate_from_contract=False, base=Decimal("120000.00"), amount=Decimal("12000.00"), reason="mandatory",
        guarantee_may_be_required=True, recovery_start_pct=Decimal("65"), recovery_end_pct=Decimal("80"),
        delay_starts_on=None, delay_start_reason="awaiting guarantee", legal_due=None, target_due=None)
    payable = advance_payable(granted, Payee(SIRET, "Fournisseur SA", IBAN))
    placement = place(payable, date(2026, 3, 2), PaymentCalendar())
    assert placement.status == "on_hold" and "R2192-25" in placement.hold_reason


def test_interest_is_a_payable_due_within_45_days_of_the_late_payment():
    principal = invoice_payable(approved("120000.00"), recovery("120000.00", "0.00"), None)
    interest = late_interest(principal.amount, date(2026, 4, 1), date(2026, 4, 21),
                             table=EcbRateTable({"2026-H1": Decimal("2.15")}))
    payable = interest_payable(principal, interest, date(2026, 4, 21), target_days=15)
    assert payable.payable_id == "interest:invoice:inv-1" and payable.amount == Decimal("707.40")
    assert (payable.legal_due, payable.target_due) == (date(2026, 6, 5), date(2026, 5, 6))
    assert payable.payee_iban == IBAN and len(payable.remittance) <= 140
