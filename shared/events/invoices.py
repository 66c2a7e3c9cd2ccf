"""Events about supplier invoices, from the document's arrival to its outcome."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import Event, register
from shared.events.invoice_document import CanonicalInvoice
from shared.money import Money

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


class _ActionEvent(_InvoiceEvent):
    """A person's (or the automatic rules') decision on an invoice; the actor is in the envelope."""


@register
class ServiceDoneRecorded(_ActionEvent):
    """« Service fait » certified. R2192-13: when later than the receipt, it starts the delay."""

    event_type = "ServiceDoneRecorded"

    service_done_on: date
    deadline: PaymentDeadline


@register
class InvoiceApproved(_ActionEvent):
    """The ordonnateur's payment order (« mandat »): the amount, who is paid, and by when."""

    event_type = "InvoiceApproved"

    amount: Money = Field(ge=0)
    currency: str
    seller_siret: str | None
    seller_name: str | None = None
    invoice_number: str | None = None
    payee_iban: str | None
    contract_reference: str | None
    engagement_number: str | None
    automatic: bool
    deadline: PaymentDeadline


@register
class InvoiceInterrupted(_ActionEvent):
    """R2192-27/-28: the delay is interrupted, once, with the reason and the pieces to send."""

    event_type = "InvoiceInterrupted"

    notified_on: date
    reason: str = Field(min_length=1)
    missing_items: list[str] = Field(min_length=1)


@register
class InvoiceCompleted(_ActionEvent):
    """R2192-29: every missing piece received; a new delay runs from today."""

    event_type = "InvoiceCompleted"

    completed_on: date
    deadline: PaymentDeadline


@register
class InvoiceRefused(_ActionEvent):
    """The buyer's business refusal (life-cycle 210), with its reason."""

    event_type = "InvoiceRefused"

    reason: str = Field(min_length=1)
