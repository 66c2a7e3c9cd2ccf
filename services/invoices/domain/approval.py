"""The Region's automatic approval rule: an invoice is approved without a person only when all
of these hold (the Region-side checks of domain-rules.md §5.3):

1. it names a recorded budget commitment (« engagement », BT-13);
2. that commitment is held by the invoice's seller (same SIRET);
3. its amount fits in the credit left on the commitment;
4. « service fait » is recorded for it, or the commitment makes it automatic;
5. the account to pay (BT-84) is the supplier's registered IBAN, not one whose change still
   waits for a second person's confirmation (four eyes: « fraude au changement de RIB »);
6. its amount is positive and not above the configured threshold (``approval_threshold``).

Otherwise the invoice waits for a person, and the decision lists every condition that failed,
each with a sentence the person can act on, so one look shows everything to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from stdnum import iban as stdnum_iban

from shared.logging import mask_iban

# Stable names of the conditions, for filters, metrics and tests; the sentences may be reworded.
ENGAGEMENT_UNKNOWN = "engagement_unknown"
OTHER_SUPPLIER = "engagement_of_another_supplier"
ABOVE_REMAINING = "above_remaining_commitment"
SERVICE_NOT_DONE = "service_not_done"
SUPPLIER_UNKNOWN = "supplier_unknown"
IBAN_NOT_REGISTERED = "iban_not_registered"
IBAN_CHANGE_PENDING = "iban_change_pending"
AMOUNT_NOT_POSITIVE = "amount_not_positive"
ABOVE_THRESHOLD = "above_threshold"


@dataclass(frozen=True)
class SupplierView:
    """A supplier as the reference file holds it."""

    siret: str
    name: str
    sme: bool
    iban: str


@dataclass(frozen=True)
class EngagementView:
    """A budget commitment as the reference file holds it."""

    number: str
    supplier_siret: str
    amount: Decimal
    remaining: Decimal
    service_done_automatic: bool


@dataclass(frozen=True)
class ApprovalDecision:
    """``rules[i]`` names the condition that ``reasons[i]`` explains; both are empty exactly
    when the approval is automatic."""

    automatic: bool
    reasons: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


def auto_approval(
    *,
    invoice_amount: Decimal,
    invoice_iban: str | None,
    seller_siret: str | None,
    engagement_number: str | None,
    engagement: EngagementView | None,
    supplier: SupplierView | None,
    pending_iban: str | None,
    service_done: bool,
    threshold: Decimal,
) -> ApprovalDecision:
    """Checks every condition and lists every failing one.

    ``invoice_amount`` is the amount due (TTC); ``engagement`` is the commitment recorded under
    ``engagement_number`` (None when none is), ``supplier`` the registered supplier of
    ``seller_siret`` and ``pending_iban`` the new IBAN of its change awaiting confirmation.
    """
    for name, amount in (("invoice_amount", invoice_amount), ("threshold", threshold)):
        if not isinstance(amount, Decimal):
            raise TypeError(f"{name} must be a Decimal, not a {type(amount).__name__}")
    holds: list[tuple[str, str]] = []

    if not engagement_number:
        holds.append((ENGAGEMENT_UNKNOWN,
                      "The invoice gives no engagement number (BT-13): a person must find the "
                      "budget commitment it is paid from."))
    elif engagement is None:
        holds.append((ENGAGEMENT_UNKNOWN,
                      f"The engagement {engagement_number} named by the invoice is not recorded: check "
                      "the number with the supplier, or record the commitment."))
    else:
        if seller_siret is None:
            holds.append((OTHER_SUPPLIER,
                          f"The invoice does not give the seller's SIRET, so it cannot be matched with "
                          f"engagement {engagement.number} of supplier {engagement.supplier_siret}."))
        elif engagement.supplier_siret != seller_siret:
            holds.append((OTHER_SUPPLIER,
                          f"Engagement {engagement.number} is held by supplier {engagement.supplier_siret}, "
                          f"not by the invoice's seller {seller_siret}."))
        if invoice_amount > engagement.remaining:
            holds.append((ABOVE_REMAINING,
                          f"The amount {invoice_amount} EUR is above the {engagement.remaining} EUR left "
                          f"on engagement {engagement.number}: a person checks the invoice against the commitment."))

    if not service_done and not (engagement is not None and engagement.service_done_automatic):
        where = ("" if engagement is None
                 else f" and engagement {engagement.number} does not make it automatic")
        holds.append((SERVICE_NOT_DONE,
                      f"« Service fait » is not recorded for the invoice{where}: an approver must "
                      "certify that the work was done or the goods delivered."))

    if supplier is None:
        holds.append((SUPPLIER_UNKNOWN,
                      "The invoice does not give the seller's SIRET, so there is no registered IBAN "
                      "to compare its IBAN with." if seller_siret is None else
                      f"The seller {seller_siret} is not in the suppliers' file, so there is no "
                      "registered IBAN to compare the invoice's IBAN with: register the supplier."))
    elif invoice_iban is None:
        holds.append((IBAN_NOT_REGISTERED,
                      f"The invoice gives no IBAN (BT-84); supplier {supplier.siret} is paid only on "
                      "its registered account."))
    elif pending_iban is not None and _same_iban(invoice_iban, pending_iban):
        holds.append((IBAN_CHANGE_PENDING,
                      f"The invoice's IBAN {_masked(invoice_iban)} is the new account of a change "
                      f"requested for supplier {supplier.siret} and not yet confirmed by a second "
                      "person (four eyes): the invoice waits until the change is confirmed or rejected."))
    elif not _same_iban(invoice_iban, supplier.iban):
        holds.append((IBAN_NOT_REGISTERED,
                      f"The invoice's IBAN {_masked(invoice_iban)} is not the IBAN registered for "
                      f"supplier {supplier.siret} ({_masked(supplier.iban)}): a new account is used only "
                      "after an IBAN change confirmed by two different people."))

    if invoice_amount <= 0:
        holds.append((AMOUNT_NOT_POSITIVE,
                      f"The amount due is {invoice_amount} EUR: only a positive amount is paid "
                      "automatically."))
    elif invoice_amount > threshold:
        # Same reading as ``Settings.approval_threshold``: an amount equal to it still passes.
        holds.append((ABOVE_THRESHOLD,
                      f"The amount {invoice_amount} EUR is above the automatic approval threshold "
                      f"of {threshold} EUR: a person approves it."))

    return ApprovalDecision(automatic=not holds, reasons=[reason for _, reason in holds],
                            rules=[rule for rule, _ in holds])


def _same_iban(first: str, second: str) -> bool:
    # Invoices write IBANs in groups of four or in lower case; the account is the same.
    return stdnum_iban.compact(first) == stdnum_iban.compact(second)


def _masked(iban: str) -> str:
    # Reasons are stored and shown; bank details stay partial there as in the logs.
    return mask_iban(stdnum_iban.compact(iban))
