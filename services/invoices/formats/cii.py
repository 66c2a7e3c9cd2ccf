"""UN/CEFACT Cross Industry Invoice D16B to the canonical invoice, following the EN 16931-3-3
binding. One mapping serves Factur-X / ZUGFeRD 2 (MINIMUM, BASIC WL, BASIC, EN 16931, EXTENDED)
and XRechnung CII: the profiles differ in which terms they carry, not in where they carry them.
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
from services.invoices.formats._xml import Terms, Values
from shared.events.invoice_document import CanonicalInvoice, Party

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
NAMESPACES = {"rsm": RSM, "ram": RAM, "udt": UDT}
ROOT_TAG = f"{{{RSM}}}CrossIndustryInvoice"

_ROOT = "/rsm:CrossIndustryInvoice"
_TRANSACTION = "rsm:SupplyChainTradeTransaction"
_AGREEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeAgreement"
_DELIVERY = f"{_TRANSACTION}/ram:ApplicableHeaderTradeDelivery"
_SETTLEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeSettlement"
_SUMMATION = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
_LINE_PATH = f"{_TRANSACTION}/ram:IncludedSupplyChainTradeLineItem"
_VAT_PATH = f"{_SETTLEMENT}/ram:ApplicableTradeTax"
_ALLOWANCE_CHARGE_PATH = f"{_SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge"
_SELLER_PATH = f"{_AGREEMENT}/ram:SellerTradeParty"
_BUYER_PATH = f"{_AGREEMENT}/ram:BuyerTradeParty"

_HEADER = Terms({
    "BT-24": "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
    "BT-1": "rsm:ExchangedDocument/ram:ID",
    "BT-3": "rsm:ExchangedDocument/ram:TypeCode",
    "BT-2": "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
    "BT-10": f"{_AGREEMENT}/ram:BuyerReference",
    "BT-13": f"{_AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID",
    "BT-12": f"{_AGREEMENT}/ram:ContractReferencedDocument/ram:IssuerAssignedID",
    "BT-63": f"{_AGREEMENT}/ram:SellerTaxRepresentativeTradeParty"
             "/ram:SpecifiedTaxRegistration/ram:ID",
    "BT-72": f"{_DELIVERY}/ram:ActualDeliverySupplyChainEvent"
             "/ram:OccurrenceDateTime/udt:DateTimeString",
    "BT-80": f"{_DELIVERY}/ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID",
    "BT-5": f"{_SETTLEMENT}/ram:InvoiceCurrencyCode",
    "BT-81": f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode",
    "BT-84": f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans"
             "/ram:PayeePartyCreditorFinancialAccount/ram:IBANID",
    "BT-73": f"{_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString",
    "BT-74": f"{_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString",
    "BT-20": f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description",
    "BT-9": f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
    "BT-106": f"{_SUMMATION}/ram:LineTotalAmount",
    "BT-108": f"{_SUMMATION}/ram:ChargeTotalAmount",
    "BT-107": f"{_SUMMATION}/ram:AllowanceTotalAmount",
    "BT-109": f"{_SUMMATION}/ram:TaxBasisTotalAmount",
    "BT-110": f"{_SUMMATION}/ram:TaxTotalAmount",
    "BT-114": f"{_SUMMATION}/ram:RoundingAmount",
    "BT-112": f"{_SUMMATION}/ram:GrandTotalAmount",
    "BT-113": f"{_SUMMATION}/ram:TotalPrepaidAmount",
    "BT-115": f"{_SUMMATION}/ram:DuePayableAmount",
    "BG-4": _SELLER_PATH,
    "BG-7": _BUYER_PATH,
    "BG-22": _SUMMATION,
    "BG-23": _VAT_PATH,
    "BG-20": _ALLOWANCE_CHARGE_PATH,
    "BG-25": _LINE_PATH,
}, NAMESPACES, every={"BG-25", "BG-23", "BG-20", "BT-110"}, read_as=HEADER_READ_AS)

_PARTY = Terms({
    "name": "ram:Name",
    "id": "ram:ID",
    "global_id": "ram:GlobalID",
    "legal_id": "ram:SpecifiedLegalOrganization/ram:ID",
    "address": "ram:PostalTradeAddress",
    "postcode": "ram:PostalTradeAddress/ram:PostcodeCode",
    "line": "ram:PostalTradeAddress/ram:LineOne",
    "city": "ram:PostalTradeAddress/ram:CityName",
    "country": "ram:PostalTradeAddress/ram:CountryID",
    "tax_registration": "ram:SpecifiedTaxRegistration/ram:ID",
}, NAMESPACES, every={"id", "global_id", "legal_id", "tax_registration"},
    read_as=dict.fromkeys(("name", "postcode", "line", "city", "country"), "stripped"))

_LINE = Terms({
    "BT-126": "ram:AssociatedDocumentLineDocument/ram:LineID",
    "BT-153": "ram:SpecifiedTradeProduct/ram:Name",
    "BT-146": "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
    "BT-148": "ram:SpecifiedLineTradeAgreement/ram:GrossPriceProductTradePrice/ram:ChargeAmount",
    "BT-129": "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",
    "BT-151": "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode",
    "BT-152": "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent",
    "BT-131": "ram:SpecifiedLineTradeSettlement"
              "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
    "BT-130": "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode",
}, NAMESPACES, order=LINE_ORDER, read_as=LINE_READ_AS)

_VAT = Terms({
    "BT-117": "ram:CalculatedAmount",
    "BT-120": "ram:ExemptionReason",
    "BT-116": "ram:BasisAmount",
    "BT-118": "ram:CategoryCode",
    "BT-121": "ram:ExemptionReasonCode",
    "BT-119": "ram:RateApplicablePercent",
}, NAMESPACES, order=VAT_ORDER, read_as=VAT_READ_AS)

_ALLOWANCE_CHARGE = Terms({
    "indicator": "ram:ChargeIndicator/udt:Indicator",
    "amount": "ram:ActualAmount",
    "base_amount": "ram:BasisAmount",
    "reason_code": "ram:ReasonCode",
    "reason": "ram:Reason",
    "vat_category": "ram:CategoryTradeTax/ram:CategoryCode",
    "vat_rate": "ram:CategoryTradeTax/ram:RateApplicablePercent",
}, NAMESPACES, order=ALLOWANCE_CHARGE_ORDER, read_as=ALLOWANCE_CHARGE_READ_AS)

# Business terms of the parties → key in _PARTY.
_SELLER_TERMS = {"BT-27": "name", "BT-29": "global_id", "BT-30": "legal_id", "BG-5": "address",
                 "BT-40": "country", "BT-31": "tax_registration", "BT-32": "tax_registration"}
_BUYER_TERMS = {"BT-44": "name", "BT-46": "global_id", "BT-47": "legal_id", "BG-8": "address",
                "BT-55": "country", "BT-48": "tax_registration"}

# The VAT number and the local tax number share an element, told apart by their scheme.
_SCHEME = {"BT-31": "[@schemeID='VA']", "BT-32": "[@schemeID='FC']", "BT-48": "[@schemeID='VA']"}

LOCATIONS: dict[str, str] = {
    **{term: f"{_ROOT}/{path}" for term, path in _HEADER.paths.items()},
    "BG-21": f"{_ROOT}/{_ALLOWANCE_CHARGE_PATH}",
    **{term: f"{_ROOT}/{_SELLER_PATH}/{_PARTY.paths[key]}{_SCHEME.get(term, '')}"
       for term, key in _SELLER_TERMS.items()},
    **{term: f"{_ROOT}/{_BUYER_PATH}/{_PARTY.paths[key]}{_SCHEME.get(term, '')}"
       for term, key in _BUYER_TERMS.items()},
    **group_locations(_LINE, _VAT, _ALLOWANCE_CHARGE),
}


_LINE_LOCATION = f"{_ROOT}/{_LINE_PATH}"
_VAT_LOCATION = f"{_ROOT}/{_VAT_PATH}"
_ALLOWANCE_CHARGE_LOCATION = f"{_ROOT}/{_ALLOWANCE_CHARGE_PATH}"


def parse_cii(root: etree._Element, *, document_format: str) -> CanonicalInvoice:
    values = Values()
    found = _HEADER.read(root, values.decimals)
    get = found.get
    currency = get("BT-5")
    # Converted in this order, which is the order of unreadable_values.
    issue_date = values.date_102(get("BT-2"), "BT-2", _ROOT, _HEADER)
    due_date = values.date_102(get("BT-9"), "BT-9", _ROOT, _HEADER)
    delivery_date = values.date_102(get("BT-72"), "BT-72", _ROOT, _HEADER)
    period_start = values.date_102(get("BT-73"), "BT-73", _ROOT, _HEADER)
    period_end = values.date_102(get("BT-74"), "BT-74", _ROOT, _HEADER)
    lines = lines_of(_LINE, get("BG-25", ()), _LINE_LOCATION, values)
    vat_breakdown = vat_breakdown_of(_VAT, get("BG-23", ()), _VAT_LOCATION, values)
    allowances_charges = allowances_charges_of(
        _ALLOWANCE_CHARGE, get("BG-20", ()), _ALLOWANCE_CHARGE_LOCATION, values)
    totals = totals_of(found, _HEADER, _ROOT, values,
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
        "seller": _party(get("BG-4")),
        "buyer": _party(get("BG-7")),
        "payee_iban": get("BT-84"),
        "lines": lines,
        "vat_breakdown": vat_breakdown,
        "totals": totals,
        "syntax": "cii",
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
        "locations": dict(LOCATIONS),  # the invoice's own: its dict is mutable
    })


def _party(element: etree._Element | None) -> Party:
    if element is None:
        return absent_party()
    found = _PARTY.read(element)
    get = found.get
    vat_id = tax_registration_id = None
    for value, scheme in party_identifiers(found, "tax_registration"):
        # EN 16931-3-3: schemeID "VA" marks the VAT identifier (BT-31/BT-48), "FC" the seller's
        # local tax registration (BT-32).
        if scheme == "VA" and vat_id is None:
            vat_id = value
        elif scheme == "FC" and tax_registration_id is None:
            tax_registration_id = value
    return party(
        name=get("name"),
        identifiers=party_identifiers(found, "global_id", "id"),
        legal=party_identifiers(found, "legal_id"),
        vat_id=vat_id,
        country=get("country"),
        tax_registration_id=tax_registration_id,
        address=postal_address(
            get("line"), get("city"), get("postcode")
        ) if "address" in found else None,
    )
