"""Events about the invoices service's reference data: suppliers (the « tiers » file with the
bank account each one is paid on) and budget commitments (« engagements juridiques »).

The automatic approval of an invoice compares it with this data (domain-rules.md §5.3: the
engagement exists with enough remaining credit, the supplier's SIRET and IBAN match), so every
change to it is an event with its actor. A supplier's bank account changes only through a
request and a confirmation by two different people: redirecting payments to a new IBAN is the
classic fraud on public buyers (« fraude au changement de RIB »).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from shared.events import Event, register
from shared.events.contracts import valid_siret
from shared.money import Money


ENGAGEMENT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def valid_iban(value: str) -> str:
    """An IBAN with a right country format and check digits, in its compact upper-case form."""
    try:
        return stdnum_iban.validate(value)
    except StdnumError as exc:
        raise ValueError(f"{value!r} is not a valid IBAN ({exc})") from None


def _text(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValueError("must not be blank")
    return value


class _SupplierEvent(Event):
    topic = "invoices.events"
    aggregate_type = "supplier"
    aggregate_field = "siret"

    siret: str

    @field_validator("siret")
    @classmethod
    def _siret(cls, value: str) -> str:
        return valid_siret(value)


@register
class SupplierRegistered(_SupplierEvent):
    """A supplier enters the reference file with the bank account it is paid on."""

    event_type = "SupplierRegistered"

    name: str = Field(min_length=1, max_length=200)
    sme: bool
    iban: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _text(value)

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        return valid_iban(value)


@register
class SupplierDetailsChanged(_SupplierEvent):
    """The supplier's name or SME flag was corrected. Never its IBAN: that needs four eyes."""

    event_type = "SupplierDetailsChanged"

    name: str = Field(min_length=1, max_length=200)
    sme: bool
    previous_name: str
    previous_sme: bool


@register
class SupplierIbanChangeRequested(_SupplierEvent):
    """Someone asks to pay the supplier on another account. Nothing changes until a second
    person confirms; the requester is the envelope's actor."""

    event_type = "SupplierIbanChangeRequested"

    change_id: str = Field(min_length=1)
    current_iban: str
    new_iban: str
    justification: str = Field(min_length=1, max_length=1000)

    @field_validator("new_iban")
    @classmethod
    def _new_iban(cls, value: str) -> str:
        return valid_iban(value)

    @model_validator(mode="after")
    def _a_change(self) -> "SupplierIbanChangeRequested":
        if self.new_iban == self.current_iban:
            raise ValueError("new_iban is already the supplier's registered IBAN")
        return self


class _IbanDecision(_SupplierEvent):
    change_id: str = Field(min_length=1)
    new_iban: str
    requested_by: str = Field(min_length=1)
    decided_by: str = Field(min_length=1)

    @model_validator(mode="after")
    def _four_eyes(self) -> "_IbanDecision":
        if self.decided_by.casefold() == self.requested_by.casefold():
            raise ValueError("the person who requested an IBAN change cannot decide on it (four eyes)")
        return self


@register
class SupplierIbanChangeConfirmed(_IbanDecision):
    """A second person confirmed the change: from now on the supplier is paid on ``new_iban``."""

    event_type = "SupplierIbanChangeConfirmed"

    previous_iban: str


@register
class SupplierIbanChangeRejected(_IbanDecision):
    """A second person refused the change: the registered IBAN stays as it was."""

    event_type = "SupplierIbanChangeRejected"

    reason: str = Field(min_length=1, max_length=1000)


@register
class EngagementRecorded(Event):
    """A budget commitment (« engagement juridique », BT-13 on the invoice) with the credit
    left on it, and whether its invoices count as « service fait » without a certification
    (e.g. subscriptions whose delivery is not checked item by item)."""

    event_type = "EngagementRecorded"
    topic = "invoices.events"
    aggregate_type = "engagement"
    aggregate_field = "number"

    model_config = ConfigDict(json_schema_extra=lambda schema: schema["required"].remove("remaining"))

    number: str
    supplier_siret: str
    amount: Money = Field(gt=0)
    remaining: Money = Field(ge=0, description="the credit left on the commitment; the amount when left out")
    service_done_automatic: bool = False

    @model_validator(mode="before")
    @classmethod
    def _remaining_defaults_to_amount(cls, data: Any) -> Any:
        # A commitment recorded without its remaining credit has not been consumed yet.
        if isinstance(data, dict) and data.get("remaining") in (None, "") and "amount" in data:
            data = {**data, "remaining": data["amount"]}
        return data

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        # The number is matched with BT-13 as written on invoices and used as is in URL paths.
        if not ENGAGEMENT_NUMBER.fullmatch(value):
            raise ValueError(
                "an engagement number is 1 to 64 letters, digits, '.', '_' or '-', "
                "starting with a letter or a digit"
            )
        return value

    @field_validator("supplier_siret")
    @classmethod
    def _siret(cls, value: str) -> str:
        return valid_siret(value)

    @field_validator("remaining")
    @classmethod
    def _within_amount(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        amount = info.data.get("amount")
        if amount is not None and value > amount:
            raise ValueError(f"the remaining credit {value} is above the commitment's amount {amount}")
        return value
