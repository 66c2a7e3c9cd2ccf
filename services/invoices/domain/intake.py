"""What intake decides about a document: validated, to recycle, or rejected, and why.

Pure: bytes in, decision out. The duplicate check needs the database and is done by the caller
with ``business_key``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.invoices.domain.lifecycle import State
from services.invoices.domain.validation import validate
from services.invoices.formats import UnreadableDocument, parse
from shared.events.invoice_document import CanonicalInvoice
from shared.events.invoices import Reason


# The validation outcome (Chorus Pro's vocabulary) as the invoice's state.
STATE_OF_OUTCOME = {"A_RECYCLER": State.TO_RECYCLE, "REJETEE": State.REJECTED}


@dataclass(frozen=True)
class Assessment:
    status: str  # validated | to_recycle | rejected
    invoice: CanonicalInvoice | None
    reasons: list[Reason] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)


def _reason(finding) -> Reason:
    return Reason(rule=finding.rule, term=finding.term, location=finding.location, message=finding.message)


def assess(content: bytes, profile: str, buyer_siret: str) -> Assessment:
    try:
        invoice = parse(content)
    except UnreadableDocument as exc:
        return Assessment("rejected", None, [Reason(rule=f"DOC-{exc.reason}", message=exc.message)])
    report = validate(invoice, profile, buyer_siret=buyer_siret)
    warnings = [_reason(w) for w in report.warnings]
    if report.valid:
        return Assessment("validated", invoice, [], warnings)
    return Assessment(STATE_OF_OUTCOME[report.outcome], invoice, [_reason(e) for e in report.errors], warnings)


def business_key(invoice: CanonicalInvoice) -> str | None:
    """Supplier SIREN + invoice number + year: the identity of an invoice across channels
    (the 2026 e-invoicing uniqueness key)."""
    siret = invoice.seller.siret if invoice.seller else None
    if not siret or not invoice.number or not invoice.issue_date:
        return None
    return f"{siret[:9]}|{invoice.number.strip()}|{invoice.issue_date.year}"


def duplicate_reason(invoice: CanonicalInvoice, holder_id, holder_received_at) -> Reason:
    return Reason(
        rule="FR-DUPLICATE",
        term="BT-1",
        message=(
            f"invoice number {invoice.number} of supplier SIREN {invoice.seller.siret[:9]} for "
            f"{invoice.issue_date.year} was already received on {holder_received_at:%Y-%m-%d} "
            f"(invoice {holder_id}); send a new invoice with a new number, or a credit note"
        ),
    )
