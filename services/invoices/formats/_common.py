"""The parts of the canonical mapping that UBL and CII share once their terms are read: lines,
VAT breakdowns, allowances and charges, totals, the VAT total in the invoice currency, parties'
identifiers and SIRET, and the building of the canonical models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel

from services.invoices.formats._xml import Terms, Values, plain_decimal, text
from shared.events.invoice_document import (
    AllowanceCharge,
    Line,
    Party,
    PostalAddress,
    Totals,
    VatBreakdown,
)

# Document level allowance (BG-20) and charge (BG-21) terms → the key used in both syntaxes.
ALLOWANCE_TERMS = {"BT-92": "amount", "BT-93": "base_amount", "BT-95": "vat_category",
                   "BT-96": "vat_rate", "BT-97": "reason", "BT-98": "reason_code"}
CHARGE_TERMS = {"BT-99": "amount", "BT-100": "base_amount", "BT-102": "vat_category",
                "BT-103": "vat_rate", "BT-104": "reason", "BT-105": "reason_code"}
_ALLOWANCE_TERM = {key: term for term, key in ALLOWANCE_TERMS.items()}
_CHARGE_TERM = {key: term for term, key in CHARGE_TERMS.items()}


def group_locations(line: Terms, vat: Terms, allowance_charge: Terms) -> dict[str, str]:
    """The ``line/…``, ``vat/…`` and ``allowance_charge/…`` entries of ``locations``."""
    return {
        **{f"line/{term}": path for term, path in line.paths.items()},
        **{f"vat/{term}": path for term, path in vat.paths.items()},
        **{f"allowance_charge/{term}": allowance_charge.paths[key]
           for term, key in (ALLOWANCE_TERMS | CHARGE_TERMS).items()},
        "allowance_charge/BG-20/BG-21": allowance_charge.paths["indicator"],
    }


# --- building the canonical models -------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)
_FIELD_NAMES: dict[type[BaseModel], frozenset[str]] = {}

# What ``model_construct`` sets on an instance, set through the descriptors BaseModel declares
# them with: object.__setattr__ finds the same descriptors after a type lookup, at half as
# much again. BaseModel defines no __new__, so object.__new__ is what Model.__new__ is.
_new = object.__new__
_set_fields = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def built(model: type[Model], fields: dict[str, Any],
          given: frozenset[str] | None = None) -> Model:
    """``model`` holding ``fields`` (every field, in the order the model declares them),
    without validation: what ``model_construct`` does, at a quarter of its cost.

    Only for values the parsers produce themselves: texts of the document (str), Decimals and
    dates read from texts that matched their lexical form, booleans, and models built the same
    way. Validating them again (a Python call per amount) would cost about a tenth of the
    reading.
    ``given`` names the fields a ``model_validate`` call would have received, when not all
    (it only shows in ``model_fields_set``)."""
    if given is None:
        given = _FIELD_NAMES.get(model)
        if given is None:
            given = _FIELD_NAMES[model] = frozenset(model.model_fields)
    instance = _new(model)
    _set_fields(instance, fields)
    _set_fields_set(instance, set(given))
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


# The builders below read below each element, the n-th at ``location[n]``; the values they
# convert are converted in the order of the fields, element after element, which is the order
# of ``unreadable_values``. Each reads its terms with ``Terms.read_in_order``, in the order
# below, which the syntaxes declare, as values (``Terms`` ``read_as``; BT-130 is the unitCode
# attribute of BT-129's element): the reader already strips the texts and converts the
# amounts written plainly, or already read in the document (``Values.decimals``), and only
# an amount it leaves as text goes through ``Values.decimal_text``.

LINE_ORDER = ("BT-126", "BT-153", "BT-129", "BT-130", "BT-131", "BT-151", "BT-152", "BT-146",
              "BT-148")
LINE_READ_AS = {"BT-126": "stripped", "BT-153": "stripped", "BT-129": "decimal",
                "BT-131": "decimal", "BT-151": "stripped", "BT-152": "decimal",
                "BT-146": "decimal", "BT-148": "decimal"}
VAT_ORDER = ("BT-118", "BT-119", "BT-116", "BT-117", "BT-120", "BT-121")
VAT_READ_AS = {"BT-118": "stripped", "BT-119": "decimal", "BT-116": "decimal",
               "BT-117": "decimal", "BT-120": "stripped", "BT-121": "stripped"}
ALLOWANCE_CHARGE_ORDER = ("indicator", "amount", "base_amount", "reason", "reason_code",
                          "vat_category", "vat_rate")
# The document level terms both syntaxes read as values: the texts, stripped, and the totals
# but BT-110 (see ``amount_in_currency``), as decimals.
HEADER_READ_AS = {
    **dict.fromkeys(("BT-1", "BT-3", "BT-5", "BT-10", "BT-12", "BT-13", "BT-20", "BT-24",
                     "BT-63", "BT-80", "BT-81", "BT-84"), "stripped"),
    **dict.fromkeys(("BT-106", "BT-107", "BT-108", "BT-109", "BT-112", "BT-113", "BT-114",
                     "BT-115"), "decimal"),
}
# Allowances and charges are few: their amounts go through ``Values.decimal_text``, which
# reports an unreadable one under the term of an allowance or of a charge.
ALLOWANCE_CHARGE_READ_AS = {"indicator": "text", "amount": "text", "base_amount": "text",
                            "reason": "stripped", "reason_code": "stripped",
                            "vat_category": "stripped", "vat_rate": "text"}
_LINE_FIELDS = frozenset(Line.model_fields)
_VAT_FIELDS = frozenset(VatBreakdown.model_fields)


def lines_of(terms: Terms, elements: Iterable[etree._Element], location: str,
             values: Values) -> list[Line]:
    read, decimals, decimal = terms.read_in_order, values.decimals, values.decimal_text
    locations = located(location)
    lines = []
    for index, element in enumerate(elements, start=1):
        (id_, name, quantity, unit_code, amount, category, rate, net_price,
         gross_price) = read(element, decimals)
        at = locations[index] if index < len(locations) else f"{location}[{index}]"
        # An amount is a Decimal or None, or the text the reader left to decimal_text.
        if quantity.__class__ is str:
            quantity = decimal(quantity, "BT-129", at, terms)
        if amount.__class__ is str:
            amount = decimal(amount, "BT-131", at, terms)
        if rate.__class__ is str:
            rate = decimal(rate, "BT-152", at, terms)
        if net_price.__class__ is str:
            net_price = decimal(net_price, "BT-146", at, terms)
        if gross_price.__class__ is str:
            gross_price = decimal(gross_price, "BT-148", at, terms)
        lines.append(built(Line, {
            "id": id_, "name": name, "quantity": quantity, "net_amount": amount,
            "vat_category": category, "vat_rate": rate, "unit_code": unit_code,
            "net_price": net_price, "gross_price": gross_price, "location": at,
        }, _LINE_FIELDS))
    return lines


def vat_breakdown_of(terms: Terms, elements: Iterable[etree._Element], location: str,
                     values: Values) -> list[VatBreakdown]:
    read, decimals, decimal = terms.read_in_order, values.decimals, values.decimal_text
    breakdowns = []
    for index, element in enumerate(elements, start=1):
        category, rate, taxable, tax, reason, reason_code = read(element, decimals)
        at = f"{location}[{index}]"
        if rate.__class__ is str:
            rate = decimal(rate, "BT-119", at, terms)
        if taxable.__class__ is str:
            taxable = decimal(taxable, "BT-116", at, terms)
        if tax.__class__ is str:
            tax = decimal(tax, "BT-117", at, terms)
        breakdowns.append(built(VatBreakdown, {
            "category": category, "rate": rate, "taxable_amount": taxable,
            "tax_amount": tax, "exemption_reason": reason,
            "exemption_reason_code": reason_code, "location": at,
        }, _VAT_FIELDS))
    return breakdowns


def allowances_charges_of(terms: Terms, elements: Iterable[etree._Element], location: str,
                          values: Values) -> list[AllowanceCharge]:
    read, decimal = terms.read_in_order, values.decimal_text
    items = []
    for index, element in enumerate(elements, start=1):
        indicator, amount, base_amount, reason, reason_code, category, rate = read(element)
        at = f"{location}[{index}]"
        charge = values.indicator(indicator, "indicator", at, terms, "BG-20/BG-21")
        term_of = _CHARGE_TERM if charge else _ALLOWANCE_TERM
        items.append(built(AllowanceCharge, {
            "charge": charge,
            "amount": decimal(amount, "amount", at, terms, term_of["amount"]),
            "base_amount": decimal(base_amount, "base_amount", at, terms,
                                   term_of["base_amount"]),
            "reason": reason,
            "reason_code": reason_code,
            "vat_category": category,
            "vat_rate": decimal(rate, "vat_rate", at, terms, term_of["vat_rate"]),
            "location": at,
        }))
    return items


@lru_cache(maxsize=8)
def located(location: str) -> tuple[str, ...]:
    """``location[n]`` for the n of most invoices' lines (index 0 unused): the same strings for
    every invoice, instead of formatting one per line each time."""
    return ("", *(f"{location}[{index}]" for index in range(1, 201)))


_TOTALS = {"line_total": "BT-106", "allowance_total": "BT-107", "charge_total": "BT-108",
           "tax_exclusive": "BT-109", "tax": "BT-110", "tax_inclusive": "BT-112",
           "prepaid": "BT-113", "rounding": "BT-114", "payable": "BT-115"}


def totals_of(found: dict[str, Any], terms: Terms, location: str, values: Values,
              tax: etree._Element | None) -> Totals:
    """BG-22, read from the same terms in both syntaxes (``HEADER_READ_AS``); ``tax`` is the
    BT-110 element chosen by ``amount_in_currency``."""
    decimal, get = values.decimal_text, found.get
    amounts = {}
    for name, term in _TOTALS.items():
        if term == "BT-110":
            amount = None if tax is None else plain_decimal(tax.text, values.decimals)
        else:
            amount = get(term)
        if amount.__class__ is str:  # not plainly a decimal: decimal_text judges it
            amount = decimal(amount, term, location, terms)
        amounts[name] = amount
    return built(Totals, amounts)


def amount_in_currency(
    elements: list[etree._Element] | None, currency: str | None
) -> etree._Element | None:
    """BT-110 is the VAT total in the invoice currency; a second one, in the VAT accounting
    currency (BT-111, BR-53), may accompany it and is told apart by its currencyID. The first
    element without a currencyID or in ``currency``, else the first element."""
    if not elements:
        return None
    for element in elements:
        if element.get("currencyID") in (None, currency):
            return element
    return elements[0]


def party_identifiers(found: dict[str, Any], *terms: str) -> list[tuple[str, str | None]]:
    """(value, ISO 6523 scheme) of every identifier found under ``terms``, in order; ``terms``
    are terms whose every element the reader keeps."""
    return [
        (value, element.get("schemeID"))
        for term in terms
        for element in found.get(term, ())
        if (value := text(element))
    ]


def party(
    name: str | None, identifiers: list[tuple[str, str | None]],
    legal: list[tuple[str, str | None]], vat_id: str | None, country: str | None,
    tax_registration_id: str | None, address: PostalAddress | None,
) -> Party:
    return built(Party, {
        "name": name,
        "siret": siret_of(identifiers, legal[0] if legal else None),
        "vat_id": vat_id,
        "country": country,
        "identifier": identifiers[0][0] if identifiers else None,
        "legal_registration_id": legal[0][0] if legal else None,
        "tax_registration_id": tax_registration_id,
        "address": address,
    })


def postal_address(line: str | None, city: str | None, postcode: str | None) -> PostalAddress:
    return built(PostalAddress, {"line": line, "city": city, "postcode": postcode})


_ABSENT_PARTY_FIELDS = frozenset({"name", "siret", "vat_id", "country"})


def absent_party() -> Party:
    """The party of a document that has none: the four required fields, all None."""
    return built(Party, {
        "name": None, "siret": None, "vat_id": None, "country": None, "identifier": None,
        "legal_registration_id": None, "tax_registration_id": None, "address": None,
    }, _ABSENT_PARTY_FIELDS)


_SIRET_DIGITS = re.compile(r"\d{14}")


def compact_identifier(value: str) -> str:
    return value.replace(" ", "").replace(".", "").replace("-", "")


def siret_of(
    identifiers: list[tuple[str, str | None]], legal: tuple[str, str | None] | None
) -> str | None:
    """The party's SIRET: an identifier with ISO 6523 ICD 0009 (SIRET), else a 14-digit legal
    registration or party identifier with ICD 0002 (SIRENE) or no scheme, the convention of
    Chorus Pro for Factur-X down to MINIMUM."""
    for value, scheme in identifiers:
        if scheme == "0009":
            return compact_identifier(value)
    candidates = ([legal] if legal else []) + identifiers
    for value, scheme in candidates:
        compact = compact_identifier(value)
        if scheme in (None, "0002") and _SIRET_DIGITS.fullmatch(compact):
            return compact
    return None
