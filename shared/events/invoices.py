"""Events about supplier invoices, from the document's arrival to its outcome."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import Event, register
from shared.events.invoice_document import CanonicalInvoice

Channel = Literal["http", "inbox", "kafka"]


class Reason(BaseModel):
    """Why a document was refused: the rule, the business term, where, and a sentence."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    term: str | None = None
    location: str | None = None
    message: str


class _InvoiceEvent(Event):
    topic = "invoices.events"
    aggregate_type = "invoice"
    aggregate_field = "invoice_id"

    invoice_id: str = Field(min_length=1)


@register
class InvoiceReceived(_InvoiceEvent):
    """A document arrived and is stored (bytes and SHA-256): the receipt date is now certain."""

    event_type = "InvoiceReceived"

    channel: Channel
    source: str = Field(description="file name, HTTP client or gateway that delivered it")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    received_at: AwareDatetime


class PaymentDeadline(BaseModel):
    """The legal payment delay as it stands (CCP R2192-10…-14): its start and its due dates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    buyer_type: str
    dgp_start: date
    legal_due: date
    ordonnateur_due: date
    target_due: date


@register
class InvoiceValidated(_InvoiceEvent):
    """The document is a readable, compliant invoice; its canonical content and its payment
    deadline travel with it."""

    event_type = "InvoiceValidated"

    profile: str
    invoice: CanonicalInvoice
    deadline: PaymentDeadline
    warnings: list[Reason] = Field(default_factory=list)


@register
class InvoiceRejected(_InvoiceEvent):
    """Refused at intake. ``A_RECYCLER``: wrong recipient data, the supplier may resend under the
    same number. ``REJETEE``: wrong billing data (or unreadable), a new invoice is needed."""

    event_type = "InvoiceRejected"

    status: Literal["A_RECYCLER", "REJETEE"]
    profile: str
    reasons: list[Reason] = Field(min_length=1)
    number: str | None = None
    seller_siret: str | None = None
    rejected_at: datetime
