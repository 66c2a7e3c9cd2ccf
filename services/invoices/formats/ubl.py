"""UBL 2.1 Invoice and CreditNote to the canonical invoice, following the EN 16931-3-2 binding.
A CreditNote differs only by its type code, line and quantity element names, and by carrying
the payment due date (BT-9) in its payment means.
"""

from __future__ import annotations

from lxml import etree

from services.invoices.formats._common import (
    ALLOWANCE_CHARGE_ORDER,
    ALLOWANCE_CHARGE_READ_AS,
    HEADER_READ_AS,
    LINE_ORDER,
    LINE_READ_AS,
    VAT_ORDER,
    VAT_READ_AS,
    absent_party,
    allowances_charges_of,
    amount_in_currency,
    built,
    group_locations,
    lines_of,
    party,
    party_identifiers,
    postal_address,
    totals_of,
    vat_breakdown_of,
)
from services.invoices.formats._xml import BlankTextNeeded, Terms, Values, text
from shared.events.invoice_document import CanonicalInvoice, Party

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
        self.line_location = f"{root}/{line}"
        self.vat_location = f"{root}/{_VAT_PATH}"
        self.allowance_charge_location = f"{root}/{_ALLOWANCE_CHARGE_PATH}"
        self.header = Terms(
            {**_COMMON_HEADER, "BT-3": type_code, "BT-9": due_date, "BG-25": line}, NAMESPACES,
            every={"BG-25", "BG-23", "BG-20", "BT-110"}, read_as=HEADER_READ_AS,
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
            "BT-130": f"{quantity}/@unitCode",
        }, NAMESPACES, order=LINE_ORDER, read_as=LINE_READ_AS)
        self.locations: dict[str, str] = {
            **{term: f"{root}/{path}" for term, path in self.header.paths.items()},
            "BG-21": f"{root}/{_ALLOWANCE_CHARGE_PATH}",
            **{term: f"{root}/{_SELLER_PATH}/{_PARTY_PATHS[key]}"
               for term, key in _SELLER_TERMS.items()},
            **{term: f"{root}/{_BUYER_PATH}/{_PARTY_PATHS[key]}"
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
    "tax_scheme": "cac:PartyTaxScheme",
}, NAMESPACES, every={"identifier", "legal_id", "tax_scheme"},
    read_as=dict.fromkeys(("name", "street", "city", "postcode", "country"), "stripped"))

_PARTY_TAX_SCHEME = Terms({
    "company_id": "cbc:CompanyID",
    "scheme": "cac:TaxScheme/cbc:ID",
}, NAMESPACES, every={"scheme"})

# EN 16931-3-2: the tax scheme tells the VAT identifier (BT-31/BT-48) from the seller's other
# tax registration (BT-32). These XPaths are what the locations say; ``_tax_identifiers`` reads
# them.
_PARTY_PATHS = {
    **_PARTY.paths,
    "vat_id": "cac:PartyTaxScheme[cac:TaxScheme/cbc:ID='VAT']/cbc:CompanyID",
    "tax_registration": "cac:PartyTaxScheme[not(cac:TaxScheme/cbc:ID='VAT')]/cbc:CompanyID",
}

_VAT = Terms({
    "BT-116": "cbc:TaxableAmount",
    "BT-117": "cbc:TaxAmount",
    "BT-118": "cac:TaxCategory/cbc:ID",
    "BT-119": "cac:TaxCategory/cbc:Percent",
    "BT-121": "cac:TaxCategory/cbc:TaxExemptionReasonCode",
    "BT-120": "cac:TaxCategory/cbc:TaxExemptionReason",
}, NAMESPACES, order=VAT_ORDER, read_as=VAT_READ_AS)

_ALLOWANCE_CHARGE = Terms({
    "indicator": "cbc:ChargeIndicator",
    "reason_code": "cbc:AllowanceChargeReasonCode",
    "reason": "cbc:AllowanceChargeReason",
    "amount": "cbc:Amount",
    "base_amount": "cbc:BaseAmount",
    "vat_category": "cac:TaxCategory/cbc:ID",
    "vat_rate": "cac:TaxCategory/cbc:Percent",
}, NAMESPACES, order=ALLOWANCE_CHARGE_ORDER, read_as=ALLOWANCE_CHARGE_READ_AS)

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


def parse_ubl(
    root: etree._Element, *, document_format: str, blank_text_kept: bool = False
) -> CanonicalInvoice:
    """``blank_text_kept``: ``root`` was read with ``read_xml(raw, keep_blank_text=True)``;
    otherwise ``BlankTextNeeded`` may be raised (see ``_is_vat_scheme``)."""
    variant = _VARIANTS[root.tag]
    location = variant.root
    values = Values()
    found = variant.header.read(root, values.decimals)
    get = found.get
    currency = get("BT-5")
    # Converted in this order, which is the order of unreadable_values.
    issue_date = values.iso_date(get("BT-2"), "BT-2", location, variant.header)
    due_date = values.iso_date(get("BT-9"), "BT-9", location, variant.header)
    seller = _party(get("BG-4"), blank_text_kept)
    buyer = _party(get("BG-7"), blank_text_kept)
    delivery_date = values.iso_date(get("BT-72"), "BT-72", location, variant.header)
    period_start = values.iso_date(get("BT-73"), "BT-73", location, variant.header)
    period_end = values.iso_date(get("BT-74"), "BT-74", location, variant.header)
    lines = lines_of(variant.line_terms, get("BG-25", ()), variant.line_location, values)
    vat_breakdown = vat_breakdown_of(_VAT, get("BG-23", ()), variant.vat_location, values)
    allowances_charges = allowances_charges_of(
        _ALLOWANCE_CHARGE, get("BG-20", ()), variant.allowance_charge_location, values)
    totals = totals_of(found, variant.header, location, values,
                       amount_in_currency(get("BT-110"), currency))
    return built(CanonicalInvoice, {
        "format": document_format,
        "number": get("BT-1"),
        "issue_date": issue_date,
        "type_code": get("BT-3"),
        "currency": currency,
        "due_date": due_date,
        "buyer_reference": get("BT-10"),
        "contract_reference": get("BT-12"),
        "purchase_order_reference": get("BT-13"),
        "seller": seller,
        "buyer": buyer,
        "payee_iban": get("BT-84"),
        "lines": lines,
        "vat_breakdown": vat_breakdown,
        "totals": totals,
        "syntax": "ubl",
        "specification_id": get("BT-24"),
        "payment_terms": get("BT-20"),
        "payment_means_code": get("BT-81"),
        "delivery_date": delivery_date,
        "invoicing_period_start": period_start,
        "invoicing_period_end": period_end,
        "deliver_to_country": get("BT-80"),
        "tax_representative_vat_id": get("BT-63"),
        "allowances_charges": allowances_charges,
        "unreadable_values": values.unreadable,
        "locations": dict(variant.locations),  # the invoice's own: its dict is mutable
    })


def _party(element: etree._Element | None, blank_text_kept: bool) -> Party:
    if element is None:
        return absent_party()
    found = _PARTY.read(element)
    get = found.get
    vat_id, tax_registration_id = _tax_identifiers(get("tax_scheme", ()), blank_text_kept)
    return party(
        name=get("name"),
        identifiers=party_identifiers(found, "identifier"),
        legal=party_identifiers(found, "legal_id"),
        vat_id=vat_id,
        country=get("country"),
        tax_registration_id=tax_registration_id,
        address=postal_address(
            get("street"), get("city"), get("postcode")
        ) if "address" in found else None,
    )


def _tax_identifiers(
    schemes: list[etree._Element], blank_text_kept: bool
) -> tuple[str | None, str | None]:
    """The values of the ``vat_id`` and ``tax_registration`` paths of ``_PARTY_PATHS``: each
    the stripped text of the first cbc:CompanyID of the first cac:PartyTaxScheme that has one
    and whose scheme is (or is not) VAT."""
    vat_id = other = None
    vat_seen = other_seen = False
    for scheme in schemes:
        found = _PARTY_TAX_SCHEME.read(scheme)
        company_id = found.get("company_id")
        if company_id is None:
            continue
        if _is_vat_scheme(found.get("scheme", ()), blank_text_kept):
            if not vat_seen:
                vat_seen, vat_id = True, text(company_id)
        elif not other_seen:
            other_seen, other = True, text(company_id)
        if vat_seen and other_seen:
            break
    return vat_id, other


def _is_vat_scheme(ids: list[etree._Element], blank_text_kept: bool) -> bool:
    """XPath ``cac:TaxScheme/cbc:ID='VAT'``: the string value of one of ``ids`` is exactly
    "VAT". The string value of an element holding only text is its text, whatever the parser
    dropped; that of an element holding comments or elements may have lost whitespace between
    them, so "VAT" found there must be confirmed on the document read with its blank text."""
    for element in ids:
        if not len(element):
            if element.text == "VAT":
                return True
            continue
        if "".join(element.itertext()) == "VAT":
            if not blank_text_kept:
                raise BlankTextNeeded
            return True
    return False
