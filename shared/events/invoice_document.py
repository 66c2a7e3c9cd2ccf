"""The canonical invoice: the EN 16931 business terms of one supplier document, whatever its
syntax (UBL 2.1, UN/CEFACT CII, Factur-X PDF).

It records what the document says, not what it should say: a term the document lacks is
``None``, an amount keeps every decimal it was written with, and a value that could not be read
(e.g. ``"12,50"`` for an amount) is ``None`` with an entry in ``unreadable_values``. Judging the
content is the job of the validation rules, which report against the business term (``BT-…``)
and the place in the document (``locations``).

Amounts and rates are Decimal, written in JSON as strings; dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.money import ExactDecimal

DocumentFormat = Literal["ubl", "cii", "facturx"]
Syntax = Literal["ubl", "cii"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PostalAddress(_Part):
    """BG-5 (seller) / BG-8 (buyer) without the country code, which the party carries."""

    line: str | None = None
    city: str | None = None
    postcode: str | None = None


class Party(_Part):
    """The seller (BG-4) or the buyer (BG-7)."""

    name: str | None  # BT-27 / BT-44
    siret: str | None  # identifier with ICD 0009, or a 14-digit BT-30 / BT-47 (ICD 0002)
    vat_id: str | None  # BT-31 / BT-48
    country: str | None  # BT-40 / BT-55
    identifier: str | None = None  # BT-29 / BT-46 (first one)
    legal_registration_id: str | None = None  # BT-30 / BT-47
    tax_registration_id: str | None = None  # BT-32 (seller's local tax number)
    address: PostalAddress | None = None  # None when the document has no postal address at all


class Line(_Part):
    """An invoice line (BG-25)."""

    id: str | None  # BT-126
    name: str | None  # BT-153
    quantity: ExactDecimal | None  # BT-129
    net_amount: ExactDecimal | None  # BT-131
    vat_category: str | None  # BT-151
    vat_rate: ExactDecimal | None  # BT-152
    unit_code: str | None = None  # BT-130
    net_price: ExactDecimal | None = None  # BT-146
    gross_price: ExactDecimal | None = None  # BT-148
    location: str  # XPath of the line element, with its position


class AllowanceCharge(_Part):
    """A document level allowance (BG-20, ``charge`` false) or charge (BG-21)."""

    charge: bool | None  # None: the charge indicator is missing or unreadable
    amount: ExactDecimal | None  # BT-92 / BT-99
    base_amount: ExactDecimal | None = None  # BT-93 / BT-100
    reason: str | None = None  # BT-97 / BT-104
    reason_code: str | None = None  # BT-98 / BT-105
    vat_category: str | None = None  # BT-95 / BT-102
    vat_rate: ExactDecimal | None = None  # BT-96 / BT-103
    location: str


class VatBreakdown(_Part):
    """One VAT breakdown (BG-23): a category and rate with its taxable and tax amounts."""

    category: str | None  # BT-118
    rate: ExactDecimal | None  # BT-119
    taxable_amount: ExactDecimal | None  # BT-116
    tax_amount: ExactDecimal | None  # BT-117
    exemption_reason: str | None = None  # BT-120
    exemption_reason_code: str | None = None  # BT-121
    location: str


class Totals(_Part):
    """Document totals (BG-22)."""

    line_total: ExactDecimal | None  # BT-106
    allowance_total: ExactDecimal | None  # BT-107
    charge_total: ExactDecimal | None  # BT-108
    tax_exclusive: ExactDecimal | None  # BT-109
    tax: ExactDecimal | None  # BT-110
    tax_inclusive: ExactDecimal | None  # BT-112
    prepaid: ExactDecimal | None  # BT-113
    rounding: ExactDecimal | None  # BT-114
    payable: ExactDecimal | None  # BT-115


class UnreadableValue(_Part):
    """A term present in the document whose value cannot be read (not a number, not a date)."""

    term: str
    location: str
    value: str
    expected: str


class CanonicalInvoice(_Part):
    format: DocumentFormat
    number: str | None  # BT-1
    issue_date: date | None  # BT-2
    type_code: str | None  # BT-3
    currency: str | None  # BT-5
    due_date: date | None  # BT-9
    buyer_reference: str | None  # BT-10, the « code service »
    contract_reference: str | None  # BT-12
    purchase_order_reference: str | None  # BT-13, the « numéro d'engagement »
    seller: Party
    buyer: Party
    payee_iban: str | None  # BT-84
    lines: list[Line] = Field(default_factory=list)
    vat_breakdown: list[VatBreakdown] = Field(default_factory=list)
    totals: Totals

    syntax: Syntax  # the XML inside: a Factur-X PDF carries CII (or, rarely, UBL)
    specification_id: str | None = None  # BT-24
    payment_terms: str | None = None  # BT-20
    payment_means_code: str | None = None  # BT-81
    delivery_date: date | None = None  # BT-72
    invoicing_period_start: date | None = None  # BT-73
    invoicing_period_end: date | None = None  # BT-74
    deliver_to_country: str | None = None  # BT-80
    tax_representative_vat_id: str | None = None  # BT-63
    allowances_charges: list[AllowanceCharge] = Field(default_factory=list)
    unreadable_values: list[UnreadableValue] = Field(default_factory=list)
    # Where each business term sits in this syntax: absolute XPaths for document level terms
    # ("BT-112"); for terms of a line, a breakdown or an allowance/charge ("line/BT-131",
    # "vat/BT-117", "allowance_charge/BT-92") the path relative to that element's location.
    locations: dict[str, str] = Field(default_factory=dict)

    def location_of(
        self, term: str, item: Line | VatBreakdown | AllowanceCharge | None = None
    ) -> str:
        """The XPath of ``term`` in the received document; ``item`` when the term belongs to a
        line, a VAT breakdown or an allowance/charge (its key is then e.g. ``line/BT-131``)."""
        if item is None:
            return self.locations.get(term, term)
        relative = self.locations.get(f"{_KIND[type(item)]}/{term}")
        return f"{item.location}/{relative}" if relative else item.location


_KIND = {Line: "line", VatBreakdown: "vat", AllowanceCharge: "allowance_charge"}
