"""UBL 2.1 Invoice and CreditNote to the canonical invoice, following the EN 16931-3-2 binding.
A CreditNote differs only by its type code, line and quantity element names, and by carrying
the payment due date (BT-9) in its payment means.
"""

from __future__ import annotations

from lxml import etree

from typing import Any

from services.invoices.formats._common import (
    allowance_charge_of,
    group_locations,
    keep_amount_in_currency,
    line_of,
    party_identifiers,
    siret_of,
    totals_of,
    vat_of,
)
from services.invoices.formats._xml import Terms, Values
from shared.events.invoice_document import CanonicalInvoice

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
NAMESPACES = {"ubl": INVOICE, "cn": CREDIT_NOTE, "cac": CAC, "cbc": CBC}
ROOT_NAMESPACES = (INVOICE, CREDIT_NOTE)
ROOT_TAGS = (f"{{{INVOICE}}}Invoice", f"{{{CREDIT_NOTE}}}CreditNote")

_SELLER_PATH = "cac:AccountingSupplierParty/cac:Party"
_BUYER_PATH = "cac:AccountingCustomerParty/cac:Party"
_VAT_PATH = "cac:TaxTotal/cac:TaxSubtotal"
_ALLOWANCE_CHARGE_PATH = "cac:AllowanceCharge"
_TOTALS = "cac:LegalMonetaryTotal"

_COMMON_HEADER = {
    "BT-24": "cbc:CustomizationID",
    "BT-1": "cbc:ID",
    "BT-2": "cbc:IssueDate",
    "BT-5": "cbc:DocumentCurrencyCode",
    "BT-10": "cbc:BuyerReference",
    "BT-73": "cac:InvoicePeriod/cbc:StartDate",
    "BT-74": "cac:InvoicePeriod/cbc:EndDate",
    "BT-13": "cac:OrderReference/cbc:ID",
    "BT-12": "cac:ContractDocumentReference/cbc:ID",
    "BT-63": "cac:TaxRepresentativeParty/cac:PartyTaxScheme/cbc:CompanyID",
    "BT-72": "cac:Delivery/cbc:ActualDeliveryDate",
    "BT-80": "cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode",
    "BT-81": "cac:PaymentMeans/cbc:PaymentMeansCode",
    "BT-84": "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID",
    "BT-20": "cac:PaymentTerms/cbc:Note",
    "BT-110": "cac:TaxTotal/cbc:TaxAmount",
    "BT-106": f"{_TOTALS}/cbc:LineExtensionAmount",
    "BT-109": f"{_TOTALS}/cbc:TaxExclusiveAmount",
    "BT-112": f"{_TOTALS}/cbc:TaxInclusiveAmount",
    "BT-107": f"{_TOTALS}/cbc:AllowanceTotalAmount",
    "BT-108": f"{_TOTALS}/cbc:ChargeTotalAmount",
    "BT-113": f"{_TOTALS}/cbc:PrepaidAmount",
    "BT-114": f"{_TOTALS}/cbc:PayableRoundingAmount",
    "BT-115": f"{_TOTALS}/cbc:PayableAmount",
    "BG-4": _SELLER_PATH,
    "BG-7": _BUYER_PATH,
    "BG-22": _TOTALS,
    "BG-23": _VAT_PATH,
    "BG-20": _ALLOWANCE_CHARGE_PATH,
}


class _Variant:
    """What differs between the Invoice and the CreditNote document."""

    def __init__(self, root: str, type_code: str, due_date: str, line: str, quantity: str) -> None:
        self.root = root
        self.line = line
        self.header = Terms(
            {**_COMMON_HEADER, "BT-3": type_code, "BT-9": due_date, "BG-25": line}, NAMESPACES
        )
        self.line_terms = Terms({
            "BT-126": "cbc:ID",
            "BT-129": quantity,
            "BT-131": "cbc:LineExtensionAmount",
            "BT-153": "cac:Item/cbc:Name",
            "BT-151": "cac:Item/cac:ClassifiedTaxCategory/cbc:ID",
            "BT-152": "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent",
            "BT-146": "cac:Price/cbc:PriceAmount",
            "BT-148": "cac:Price/cac:AllowanceCharge/cbc:BaseAmount",
        }, NAMESPACES)
        self.locations: dict[str, str] = {
            **{term: f"{root}/{path}" for term, path in self.header.paths.items()},
            "BG-21": f"{root}/{_ALLOWANCE_CHARGE_PATH}",
            **{term: f"{root}/{_SELLER_PATH}/{_PARTY.paths[key]}"
               for term, key in _SELLER_TERMS.items()},
            **{term: f"{root}/{_BUYER_PATH}/{_PARTY.paths[key]}"
               for term, key in _BUYER_TERMS.items()},
            **group_locations(self.line_terms, _VAT, _ALLOWANCE_CHARGE),
        }


_PARTY = Terms({
    "name": "cac:PartyLegalEntity/cbc:RegistrationName",
    "identifier": "cac:PartyIdentification/cbc:ID",
    "legal_id": "cac:PartyLegalEntity/cbc:CompanyID",
    "address": "cac:PostalAddress",
    "street": "cac:PostalAddress/cbc:StreetName",
    "city": "cac:PostalAddress/cbc:CityName",
    "postcode": "cac:PostalAddress/cbc:PostalZone",
    "country": "cac:PostalAddress/cac:Country/cbc:IdentificationCode",
    # EN 16931-3-2: the tax scheme tells the VAT identifier (BT-31/BT-48) from the seller's
    # other tax registration (BT-32).
    "vat_id": "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
    "tax_registration": "cac:PartyTaxScheme[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID",
}, NAMESPACES)

_VAT = Terms({
    "BT-116": "cbc:TaxableAmount",
    "BT-117": "cbc:TaxAmount",
    "BT-118": "cac:TaxCategory/cbc:ID",
    "BT-119": "cac:TaxCategory/cbc:Percent",
    "BT-121": "cac:TaxCategory/cbc:TaxExemptionReasonCode",
    "BT-120": "cac:TaxCategory/cbc:TaxExemptionReason",
}, NAMESPACES)

_ALLOWANCE_CHARGE = Terms({
    "indicator": "cbc:ChargeIndicator",
    "reason_code": "cbc:AllowanceChargeReasonCode",
    "reason": "cbc:AllowanceChargeReason",
    "amount": "cbc:Amount",
    "base_amount": "cbc:BaseAmount",
    "vat_category": "cac:TaxCategory/cbc:ID",
    "vat_rate": "cac:TaxCategory/cbc:Percent",
}, NAMESPACES)

_SELLER_TERMS = {"BT-27": "name", "BT-29": "identifier", "BT-30": "legal_id", "BG-5": "address",
                 "BT-40": "country", "BT-31": "vat_id", "BT-32": "tax_registration"}
_BUYER_TERMS = {"BT-44": "name", "BT-46": "identifier", "BT-47": "legal_id", "BG-8": "address",
                "BT-55": "country", "BT-48": "vat_id"}

_VARIANTS = {
    f"{{{INVOICE}}}Invoice": _Variant(
        "/ubl:Invoice", "cbc:InvoiceTypeCode", "cbc:DueDate", "cac:InvoiceLine",
        "cbc:InvoicedQuantity",
    ),
    f"{{{CREDIT_NOTE}}}CreditNote": _Variant(
        "/cn:CreditNote", "cbc:CreditNoteTypeCode", "cac:PaymentMeans/cbc:PaymentDueDate",
        "cac:CreditNoteLine", "cbc:CreditedQuantity",
    ),
}


def parse_ubl(root: etree._Element, *, document_format: str) -> CanonicalInvoice:
    variant = _VARIANTS[root.tag]
    values = Values()
    found = variant.header.read(root, variant.root)
    texts = found.texts
    elements = found.elements
    currency = texts.get("BT-5")
    keep_amount_in_currency(found, "BT-110", currency)
    return CanonicalInvoice.model_validate({
        "format": document_format,
        "syntax": "ubl",
        "specification_id": texts.get("BT-24"),
        "number": texts.get("BT-1"),
        "issue_date": values.iso_date(found, "BT-2"),
        "type_code": texts.get("BT-3"),
        "currency": currency,
        "due_date": values.iso_date(found, "BT-9"),
        "buyer_reference": texts.get("BT-10"),
        "contract_reference": texts.get("BT-12"),
        "purchase_order_reference": texts.get("BT-13"),
        "seller": _party(found.first("BG-4"), f"{variant.root}/{_SELLER_PATH}"),
        "buyer": _party(found.first("BG-7"), f"{variant.root}/{_BUYER_PATH}"),
        "payee_iban": texts.get("BT-84"),
        "payment_terms": texts.get("BT-20"),
        "payment_means_code": texts.get("BT-81"),
        "delivery_date": values.iso_date(found, "BT-72"),
        "invoicing_period_start": values.iso_date(found, "BT-73"),
        "invoicing_period_end": values.iso_date(found, "BT-74"),
        "deliver_to_country": texts.get("BT-80"),
        "tax_representative_vat_id": texts.get("BT-63"),
        "lines": [
            line_of(
                variant.line_terms, element, f"{variant.root}/{variant.line}[{index}]", values
            )
            for index, element in enumerate(elements.get("BG-25", ()), start=1)
        ],
        "vat_breakdown": [
            vat_of(_VAT, element, f"{variant.root}/{_VAT_PATH}[{index}]", values)
            for index, element in enumerate(elements.get("BG-23", ()), start=1)
        ],
        "allowances_charges": [
            allowance_charge_of(
                _ALLOWANCE_CHARGE, element,
                f"{variant.root}/{_ALLOWANCE_CHARGE_PATH}[{index}]", values,
            )
            for index, element in enumerate(elements.get("BG-20", ()), start=1)
        ],
        "totals": totals_of(found, values),
        "unreadable_values": values.unreadable,
        "locations": variant.locations,
    })


def _party(element: etree._Element | None, location: str) -> dict[str, Any]:
    if element is None:
        return {"name": None, "siret": None, "vat_id": None, "country": None}
    found = _PARTY.read(element, location)
    texts = found.texts
    identifiers = party_identifiers(found, "identifier")
    legal = party_identifiers(found, "legal_id")
    return {
        "name": texts.get("name"),
        "siret": siret_of(identifiers, legal[0] if legal else None),
        "vat_id": texts.get("vat_id"),
        "country": texts.get("country"),
        "identifier": identifiers[0][0] if identifiers else None,
        "legal_registration_id": legal[0][0] if legal else None,
        "tax_registration_id": texts.get("tax_registration"),
        "address": {
            "line": texts.get("street"), "city": texts.get("city"),
            "postcode": texts.get("postcode"),
        } if "address" in found.elements else None,
    }
