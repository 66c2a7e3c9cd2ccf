"""Events about payables: the sums the Region owes (an approved invoice net of its advance
recovery, an advance, late-payment interest), their payment orders and their execution.

A payable's id says what it pays: ``invoice:<invoice id>``, ``advance:<contract id>``,
``interest:<payable id of the late principal>``. It is the Kafka key, so one payable's orders,
executions and failures stay in order.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from shared.events import Event, register
from shared.money import ExactDecimal, Money

PayableKind = Literal["invoice", "advance", "interest"]
PaymentChannel = Literal["accountant", "sepa", "offset"]


class _PayableEvent(Event):
    topic = "payments.events"
    aggregate_type = "payable"
    aggregate_field = "payable_id"

    payable_id: str = Field(min_length=1, max_length=120)
    kind: PayableKind
    invoice_id: str | None = None
    contract_id: str | None = None


@register
class PaymentOrdered(_PayableEvent):
    """The payment order (« mandat » for the public accountant, or a SEPA credit transfer) left in
    a batch file; ``file_sha256`` identifies the file the counterparty received."""

    event_type = "PaymentOrdered"

    order_id: str = Field(min_length=1, max_length=35)
    attempt: int = Field(ge=1)
    batch_id: str
    channel: PaymentChannel
    file_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    amount: Money = Field(ge=0)
    ordered_on: date
    requested_execution_date: date
    legal_due: date | None
    target_due: date | None
    # Décret 2013-269 art. 12: the public accountant's own share of the legal delay.
    accountant_due: date | None
    urgent: bool


@register
class PaymentExecuted(_PayableEvent):
    """« Mise en paiement »: the money left; the legal payment delay ends on ``executed_on``."""

    event_type = "PaymentExecuted"

    order_id: str
    batch_id: str
    channel: PaymentChannel
    amount: Money = Field(ge=0)
    executed_on: date
    ordered_on: date
    legal_due: date | None
    dgp_start: date | None
    days_late: int = Field(ge=0)
    # The two legs of the legal delay: the ordonnateur's (start → order) and the accountant's
    # (order → execution), in days.
    ordonnateur_days: int | None
    accountant_days: int = Field(ge=0)
    counterparty_reference: str


@register
class PaymentFailed(_PayableEvent):
    """The counterparty rejected the order (closed account, wrong IBAN…). The payable is ordered
    again on the next run once its payee details allow it."""

    event_type = "PaymentFailed"

    order_id: str
    batch_id: str
    channel: PaymentChannel
    reason: str = Field(min_length=1)
    failed_on: date
    counterparty_reference: str


@register
class LatePaymentInterestAssessed(_PayableEvent):
    """L2192-13, R2192-31, D2192-35: a principal was paid after its legal due date; interest and
    the fixed 40 EUR indemnity are owed without any claim, payable within 45 days (R2192-36).
    The event belongs to the new interest payable; ``principal_payable_id`` names the late one."""

    event_type = "LatePaymentInterestAssessed"

    principal_payable_id: str
    principal_amount: Money = Field(gt=0)
    legal_due: date
    paid_on: date
    days_late: int = Field(gt=0)
    half_year: str
    ecb_rate: ExactDecimal
    rate: ExactDecimal
    interest: Money = Field(ge=0)
    indemnity: Money = Field(ge=0)
    total: Money = Field(gt=0)
    pay_by: date
