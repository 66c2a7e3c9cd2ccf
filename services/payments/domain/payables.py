"""What the Region owes and when it is ordered: payables built from the upstream events, and the
rule that places each one on a payment run or holds it until it can be paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from services.payments.domain.interest import LateInterest
from services.payments.domain.schedule import PaymentCalendar, order_date
from shared.events.contracts import AdvanceGranted, AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved


class JoinMismatch(ValueError):
    """The approval and the recovery of one invoice disagree on the approved amount."""


@dataclass(frozen=True)
class Payee:
    siret: str
    name: str
    iban: str


@dataclass(frozen=True)
class Payable:
    payable_id: str
    kind: str
    invoice_id: str | None
    contract_id: str | None
    supplier_siret: str | None
    payee_name: str | None
    payee_iban: str | None
    gross_amount: Decimal
    deduction: Decimal
    amount: Decimal
    remittance: str
    dgp_start: date | None
    legal_due: date | None
    ordonnateur_due: date | None
    target_due: date | None
    hold_reason: str | None = None


@dataclass(frozen=True)
class Placement:
    status: str  # scheduled | on_hold
    order_on: date | None
    urgent: bool
    hold_reason: str | None


def invoice_payable(approved: InvoiceApproved, recovery: AdvanceRecoveryApplied, payee: Payee | None) -> Payable:
    """The approved amount less the advance it bears (R2191-11: « précompte »), paid to the
    account the invoice names (BT-84), else to the supplier's registered one."""
    if recovery.approved_amount != approved.amount:
        raise JoinMismatch(
            f"invoice {approved.invoice_id}: approved for {approved.amount} EUR but the recovery was "
            f"computed on {recovery.approved_amount} EUR")
    deadline = approved.deadline
    number = approved.invoice_number or approved.invoice_id
    remittance = f"Facture {number}"
    if recovery.deduction:
        remittance += f" - avance precomptee {recovery.deduction} EUR"
    return Payable(
        payable_id=f"invoice:{approved.invoice_id}", kind="invoice", invoice_id=approved.invoice_id,
        contract_id=recovery.contract_id or approved.contract_reference, supplier_siret=approved.seller_siret,
        payee_name=approved.seller_name or (payee.name if payee else None),
        payee_iban=approved.payee_iban or (payee.iban if payee else None),
        gross_amount=approved.amount, deduction=recovery.deduction, amount=recovery.net_payable,
        remittance=remittance, dgp_start=deadline.dgp_start, legal_due=deadline.legal_due,
        ordonnateur_due=deadline.ordonnateur_due, target_due=deadline.target_due,
    )


def advance_payable(granted: AdvanceGranted, payee: Payee | None) -> Payable:
    """R2192-24/-25: the advance is a sum due with its own delay, which does not run while a
    required guarantee is awaited."""
    hold = None
    if granted.delay_starts_on is None:
        hold = (f"the advance of contract {granted.contract_id} waits for the first-demand guarantee "
                "(R2192-25); release it once the guarantee is received")
    return Payable(
        payable_id=f"advance:{granted.contract_id}", kind="advance", invoice_id=None,
        contract_id=granted.contract_id, supplier_siret=granted.supplier_siret,
        payee_name=payee.name if payee else None, payee_iban=payee.iban if payee else None,
        gross_amount=granted.amount, deduction=Decimal("0"), amount=granted.amount,
        remittance=f"Avance marche {granted.contract_id} ({granted.rate_pct} %)",
        dgp_start=granted.delay_starts_on, legal_due=granted.legal_due,
        ordonnateur_due=None, target_due=granted.target_due, hold_reason=hold,
    )


def interest_payable(principal: Payable, interest: LateInterest, paid_on: date, target_days: int) -> Payable:
    """R2192-36: interest and the indemnity are paid within 45 days of the principal's payment;
    the Region aims at its own, shorter target."""
    return Payable(
        payable_id=f"interest:{principal.payable_id}", kind="interest", invoice_id=principal.invoice_id,
        contract_id=principal.contract_id, supplier_siret=principal.supplier_siret,
        payee_name=principal.payee_name, payee_iban=principal.payee_iban,
        gross_amount=interest.total, deduction=Decimal("0"), amount=interest.total,
        remittance=(f"Interets moratoires {interest.days_late} j a {interest.rate} % et indemnite "
                    f"forfaitaire - {principal.remittance}")[:140],
        dgp_start=paid_on, legal_due=interest.pay_by, ordonnateur_due=None,
        target_due=min(paid_on + timedelta(days=target_days), interest.pay_by),
    )


def place(payable: Payable, today: date, calendar: PaymentCalendar) -> Placement:
    """Scheduled on the earliest payment run that meets its target (now when none does), or held
    with the reason it cannot be ordered yet."""
    if payable.hold_reason:
        return Placement("on_hold", None, False, payable.hold_reason)
    if not payable.payee_iban:
        return Placement("on_hold", None, False,
                         f"no bank account is known for supplier {payable.supplier_siret}; the payable is "
                         "ordered once the supplier's IBAN is registered")
    target = payable.target_due or payable.legal_due or today
    scheduled = order_date(today, target, calendar)
    return Placement("scheduled", scheduled.order_on, scheduled.urgent, None)
