"""The parts of the canonical mapping that UBL and CII share once their terms are read: lines,
VAT breakdowns, allowances and charges, totals, the VAT total in the invoice currency, parties'
identifiers and SIRET."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree

from services.invoices.formats._xml import Found, Terms, Values

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


# The builders return the fields of the canonical parts as dicts: the whole invoice is then
# validated by pydantic in one call, markedly cheaper than building each part on its own.

def line_of(
    terms: Terms, element: etree._Element, location: str, values: Values
) -> dict[str, Any]:
    found = terms.read(element, location)
    texts = found.texts
    quantity = found.first("BT-129")
    return {
        "id": texts.get("BT-126"),
        "name": texts.get("BT-153"),
        "quantity": values.decimal(found, "BT-129"),
        "unit_code": quantity.get("unitCode") if quantity is not None else None,
        "net_amount": values.decimal(found, "BT-131"),
        "vat_category": texts.get("BT-151"),
        "vat_rate": values.decimal(found, "BT-152"),
        "net_price": values.decimal(found, "BT-146"),
        "gross_price": values.decimal(found, "BT-148"),
        "location": location,
    }


def vat_of(terms: Terms, element: etree._Element, location: str, values: Values) -> dict[str, Any]:
    found = terms.read(element, location)
    texts = found.texts
    return {
        "category": texts.get("BT-118"),
        "rate": values.decimal(found, "BT-119"),
        "taxable_amount": values.decimal(found, "BT-116"),
        "tax_amount": values.decimal(found, "BT-117"),
        "exemption_reason": texts.get("BT-120"),
        "exemption_reason_code": texts.get("BT-121"),
        "location": location,
    }


def allowance_charge_of(
    terms: Terms, element: etree._Element, location: str, values: Values
) -> dict[str, Any]:
    found = terms.read(element, location)
    texts = found.texts
    charge = values.indicator(found, "indicator", "BG-20/BG-21")
    term_of = _CHARGE_TERM if charge else _ALLOWANCE_TERM
    return {
        "charge": charge,
        "amount": values.decimal(found, "amount", term_of["amount"]),
        "base_amount": values.decimal(found, "base_amount", term_of["base_amount"]),
        "reason": texts.get("reason"),
        "reason_code": texts.get("reason_code"),
        "vat_category": texts.get("vat_category"),
        "vat_rate": values.decimal(found, "vat_rate", term_of["vat_rate"]),
        "location": location,
    }


def totals_of(found: Found, values: Values) -> dict[str, Any]:
    """BG-22, read from the same terms in both syntaxes."""
    return {
        "line_total": values.decimal(found, "BT-106"),
        "allowance_total": values.decimal(found, "BT-107"),
        "charge_total": values.decimal(found, "BT-108"),
        "tax_exclusive": values.decimal(found, "BT-109"),
        "tax": values.decimal(found, "BT-110"),
        "tax_inclusive": values.decimal(found, "BT-112"),
        "prepaid": values.decimal(found, "BT-113"),
        "rounding": values.decimal(found, "BT-114"),
        "payable": values.decimal(found, "BT-115"),
    }


def keep_amount_in_currency(found: Found, term: str, currency: str | None) -> None:
    """BT-110 is the VAT total in the invoice currency; a second one, in the VAT accounting
    currency (BT-111, BR-53), may accompany it and is told apart by its currencyID. Keeps the
    right one as the text of ``term``."""
    for element in found.elements.get(term, ()):
        if element.get("currencyID") in (None, currency):
            value = (element.text or "").strip()
            if value:
                found.texts[term] = value
            else:
                found.texts.pop(term, None)
            return


def party_identifiers(found: Found, *terms: str) -> list[tuple[str, str | None]]:
    """(value, ISO 6523 scheme) of every identifier found under ``terms``, in order."""
    return [
        (value, element.get("schemeID"))
        for term in terms
        for element in found.elements.get(term, ())
        if (value := (element.text or "").strip())
    ]


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
