"""Events about public contracts (« marchés ») and their advances."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret

from shared.events import Event, register
from shared.money import ExactDecimal, Money


def valid_siret(value: str) -> str:
    """A SIRET is 14 digits with a Luhn check (python-stdnum knows La Poste's exception)."""
    try:
        return siret.validate(value)
    except StdnumError as exc:
        raise ValueError(f"{value!r} is not a valid SIRET ({exc})") from None


class _ContractEvent(Event):
    topic = "advances.events"
    aggregate_type = "contract"
    aggregate_field = "contract_id"

    contract_id: str = Field(min_length=1, max_length=64)


@register
class ContractNotified(_ContractEvent):
    """The procurement side notified a contract to its holder: its clock and its advance start."""

    event_type = "ContractNotified"

    supplier_siret: str
    supplier_name: str = Field(min_length=1)
    sme: bool
    contract_type: Literal["works", "supplies", "services"]
    amount_ht: Money = Field(gt=0)
    amount_ttc: Money = Field(gt=0)
    duration_months: int = Field(gt=0, le=600)
    notified_on: date
    start_order_on: date | None = None
    advance_refused: bool = False
    guarantee_required: bool = False
    guarantee_received_on: date | None = None
    recovery_start_pct: ExactDecimal | None = Field(default=None, ge=0, le=100)
    recovery_end_pct: ExactDecimal | None = Field(default=None, ge=0, le=100)
    recovery_prorata_pct: ExactDecimal | None = Field(default=None, gt=0, le=100)
    # The contract's own advance rate, in percent, when it fixes one (R2191-7: 5 % to 30 %
    # and more, never below the legal minimum).
    advance_rate_pct: ExactDecimal | None = Field(default=None, gt=0, le=100)
    engagement_numbers: list[str] = Field(default_factory=list)

    @field_validator("supplier_siret")
    @classmethod
    def _siret(cls, value: str) -> str:
        return valid_siret(value)

    @model_validator(mode="after")
    def _consistent(self) -> "ContractNotified":
        if self.amount_ttc < self.amount_ht:
            raise ValueError("amount_ttc must not be below amount_ht")
        if (
            self.recovery_start_pct is not None
            and self.recovery_end_pct is not None
            and self.recovery_end_pct <= self.recovery_start_pct
        ):
            raise ValueError("recovery_end_pct must be above recovery_start_pct")
        if self.start_order_on is not None and self.start_order_on < self.notified_on:
            raise ValueError("start_order_on must not be before notified_on")
        return self


@register
class AdvanceGranted(_ContractEvent):
    """The advance owed on a contract, with the rule that set it and its own payment deadline."""

    event_type = "AdvanceGranted"

    supplier_siret: str
    policy_version: str
    rate_pct: ExactDecimal
    rate_from_contract: bool
    base: Money
    amount: Money = Field(gt=0)
    reason: str
    guarantee_may_be_required: bool
    recovery_start_pct: ExactDecimal
    recovery_end_pct: ExactDecimal
    recovery_prorata_pct: ExactDecimal | None = None
    # R2192-24/-25: the advance's own delay; None while a required guarantee is awaited.
    delay_starts_on: date | None
    delay_start_reason: str
    legal_due: date | None
    target_due: date | None


@register
class AdvanceRecoveryApplied(Event):
    """What an approved invoice bears of its contract's advance (« précompte », R2191-11/-12),
    and what remains payable. Emitted for every approved invoice, with a zero deduction when no
    advance applies or the invoice names no known contract. Keyed by the invoice, so payments
    joins it with ``InvoiceApproved``."""

    event_type = "AdvanceRecoveryApplied"
    schema_version = 1
    topic = "advances.events"
    aggregate_type = "invoice"
    aggregate_field = "invoice_id"

    invoice_id: str = Field(min_length=1)
    contract_id: str | None
    approved_amount: Money
    deduction: Money = Field(ge=0)
    net_payable: Money = Field(ge=0)
    recovered_after: Money = Field(ge=0)
    outstanding_after: Money = Field(ge=0)
    reason: str
