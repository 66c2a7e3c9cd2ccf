"""The parts of the canonical mapping that UBL and CII share once their terms are read: lines,
VAT breakdowns, allowances and charges, totals, the VAT total in the invoice currency, parties'
identifiers and SIRET, and the building of the canonical models."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from lxml import etree
from pydantic import BaseModel

from services.invoices.formats._xml import Terms, Values, text
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
        "line/BT-130": f"{line.paths['BT-129']}/@unitCode",
        **{f"vat/{term}": path for term, path in vat.paths.items()},
        **{f"allowance_charge/{term}": allowance_charge.paths[key]
           for term, key in (ALLOWANCE_TERMS | CHARGE_TERMS).items()},
        "allowance_charge/BG-20/BG-21": allowance_charge.paths["indicator"],
    }


# --- building the canonical models -------------------------------------------------------------

Model = TypeVar("Model", bound=BaseModel)
_set = object.__setattr__
_FIELD_NAMES: dict[type[BaseModel], frozenset[str]] = {}


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
    instance = model.__new__(model)
    _set(instance, "__dict__", fields)
    _set(instance, "__pydantic_fields_set__", set(given))
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


# The builders below read below one element at ``location``; the values they convert are
# converted in the order of the fields, which is the order of ``unreadable_values``. Each reads
# its terms with ``Terms.read_in_order``, in the order below, which the syntaxes declare.

LINE_ORDER = ("BT-126", "BT-153", "BT-129", "BT-131", "BT-151", "BT-152", "BT-146", "BT-148")
VAT_ORDER = ("BT-118", "BT-119", "BT-116", "BT-117", "BT-120", "BT-121")
ALLOWANCE_CHARGE_ORDER = ("indicator", "amount", "base_amount", "reason", "reason_code",
                          "vat_category", "vat_rate")


def line_of(terms: Terms, element: etree._Element, location: str, values: Values) -> Line:
    id_, name, quantity, net_amount, category, rate, net_price, gross_price = (
        terms.read_in_order(element))
    decimal = values.decimal
    return built(Line, {
        "id": text(id_),
        "name": text(name),
        "quantity": decimal(quantity, "BT-129", location, terms),
        "net_amount": decimal(net_amount, "BT-131", location, terms),
        "vat_category": text(category),
        "vat_rate": decimal(rate, "BT-152", location, terms),
        "unit_code": quantity.get("unitCode") if quantity is not None else None,
        "net_price": decimal(net_price, "BT-146", location, terms),
        "gross_price": decimal(gross_price, "BT-148", location, terms),
        "location": location,
    })


def vat_of(terms: Terms, element: etree._Element, location: str, values: Values) -> VatBreakdown:
    category, rate, taxable, tax, reason, reason_code = terms.read_in_order(element)
    decimal = values.decimal
    return built(VatBreakdown, {
        "category": text(category),
        "rate": decimal(rate, "BT-119", location, terms),
        "taxable_amount": decimal(taxable, "BT-116", location, terms),
        "tax_amount": decimal(tax, "BT-117", location, terms),
        "exemption_reason": text(reason),
        "exemption_reason_code": text(reason_code),
        "location": location,
    })


def allowance_charge_of(
    terms: Terms, element: etree._Element, location: str, values: Values
) -> AllowanceCharge:
    indicator, amount, base_amount, reason, reason_code, category, rate = (
        terms.read_in_order(element))
    decimal = values.decimal
    charge = values.indicator(indicator, "indicator", location, terms, "BG-20/BG-21")
    term_of = _CHARGE_TERM if charge else _ALLOWANCE_TERM
    return built(AllowanceCharge, {
        "charge": charge,
        "amount": decimal(amount, "amount", location, terms, term_of["amount"]),
        "base_amount": decimal(base_amount, "base_amount", location, terms,
                               term_of["base_amount"]),
        "reason": text(reason),
        "reason_code": text(reason_code),
        "vat_category": text(category),
        "vat_rate": decimal(rate, "vat_rate", location, terms, term_of["vat_rate"]),
        "location": location,
    })


_TOTALS = {"line_total": "BT-106", "allowance_total": "BT-107", "charge_total": "BT-108",
           "tax_exclusive": "BT-109", "tax": "BT-110", "tax_inclusive": "BT-112",
           "prepaid": "BT-113", "rounding": "BT-114", "payable": "BT-115"}


def totals_of(found: dict[str, Any], terms: Terms, location: str, values: Values,
              tax: etree._Element | None) -> Totals:
    """BG-22, read from the same terms in both syntaxes; ``tax`` is the BT-110 element chosen
    by ``amount_in_currency``."""
    decimal = values.decimal
    return built(Totals, {
        name: decimal(tax if term == "BT-110" else found.get(term), term, location, terms)
        for name, term in _TOTALS.items()
    })


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
