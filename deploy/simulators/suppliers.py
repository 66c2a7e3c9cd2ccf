"""Supplier e-invoices addressed to the Region, built from one specification in every syntax the
intake accepts: UN/CEFACT CII D16B (Factur-X / ZUGFeRD profiles MINIMUM to EXTENDED, XRechnung),
UBL 2.1 Invoice and CreditNote, and Factur-X PDF.

The defaults are a valid EN 16931 invoice of 20 lines at three VAT rates that also carries the
French public-sector mentions (CCP D2192-2): SIRET of both parties, code service (BT-10),
engagement number (BT-13), contract (BT-12) and the seller's IBAN (BT-84). Every field of
``InvoiceSpec`` can be overridden by keyword; ``None`` leaves the term out of the document.
Totals and the VAT breakdown are computed exactly with Decimal from the lines; ``totals=`` and
``vat_overrides=`` replace computed values, ``edit()`` changes any element afterwards: that is
how the negative cases are built.

    cii()                                   # valid EN 16931 CII, 20 lines
    cii(lines=3, code_service=None)         # no BT-10: « À recycler » under fr-public
    ubl(totals={"payable": "1.00"})         # BR-CO-16 broken
    facturx_pdf(profile="basic")            # PDF/A-3 style Factur-X carrying a BASIC CII
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from io import BytesIO
from typing import Any

from lxml import etree
from stdnum import luhn

from shared.money import to_cents

# --- parties -----------------------------------------------------------------------------------

# The Region as buyer: the SIRET the intake compares BT-46/BT-47 with (CCP D2192-2, R123-221).
REGION_SIRET = "20005376700014"
REGION_NAME = "Région Hauts-de-France"
REGION_VAT_ID = "FR03200053767"
SELLER_SIRET = "41234567000019"
SELLER_NAME = "Atelier Numérique du Nord SAS"
SELLER_VAT_ID = "FR96412345670"  # FR + key + SIREN 412345670, consistent with SELLER_SIRET
SELLER_IBAN = "FR7630004000031234567890143"
CODE_SERVICE = "DSI-ACHATS"
ENGAGEMENT = "EJ-2026-0001234"
CONTRACT = "MAR-2025-0451"

# --- syntaxes ----------------------------------------------------------------------------------

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

# Prefixes understood by ``edit()`` paths.
NAMESPACES = {
    "rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT,
    "ubl": UBL_INVOICE, "cn": UBL_CREDIT_NOTE, "cac": CAC, "cbc": CBC,
}

# Specification identifiers (BT-24) of the CII profiles.
GUIDELINES = {
    "minimum": "urn:factur-x.eu:1p0:minimum",
    "basicwl": "urn:factur-x.eu:1p0:basicwl",
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
    "xrechnung": "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
}
PROFILES = tuple(GUIDELINES)
UBL_CUSTOMIZATION = "urn:cen.eu:en16931:2017"
PEPPOL_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

# The Factur-X level written into the PDF's XMP metadata for each profile.
FACTURX_LEVELS = {
    "minimum": "minimum", "basicwl": "basicwl", "basic": "basic",
    "en16931": "en16931", "extended": "extended", "xrechnung": "en16931",
}

RATES = (Decimal("20.00"), Decimal("10.00"), Decimal("5.50"))

# BT-121 (CEF VATEX) and BT-120 for the categories whose breakdown must state a reason
# (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
EXEMPTION_REASONS: dict[str, tuple[str | None, str | None]] = {
    "E": ("VATEX-EU-132", "Exonération de TVA, article 261 du CGI"),
    "AE": ("VATEX-EU-AE", "Autoliquidation"),
    "K": ("VATEX-EU-IC", "Livraison intracommunautaire exonérée, article 262 ter I du CGI"),
    "G": ("VATEX-EU-G", "Exportation hors Union européenne, article 262 I du CGI"),
    "O": ("VATEX-EU-O", "Non soumis à la TVA"),
}

TOTAL_KEYS = (
    "line_total", "allowance_total", "charge_total", "tax_exclusive", "tax",
    "tax_inclusive", "prepaid", "rounding", "payable",
)


@dataclass(frozen=True)
class Line:
    """One invoice line (BG-25). ``net_amount`` defaults to quantity × unit price, to the cent."""

    name: str | None
    quantity: Decimal | None
    unit_price: Decimal | None
    vat_category: str | None = "S"
    vat_rate: Decimal | None = Decimal("20.00")
    net_amount: Decimal | None = None
    unit_code: str | None = "C62"
    gross_price: Decimal | None = None  # written only when given
    id: str | None = None

    @property
    def net(self) -> Decimal:
        if self.net_amount is not None:
            return self.net_amount
        return to_cents(self.quantity * self.unit_price)


@dataclass(frozen=True)
class AllowanceCharge:
    """A document level allowance (BG-20) or charge (BG-21)."""

    amount: Decimal | None
    reason: str | None
    vat_category: str | None = "S"
    vat_rate: Decimal | None = Decimal("20.00")
    reason_code: str | None = None
    base_amount: Decimal | None = None  # written only when given


@dataclass(frozen=True)
class InvoiceSpec:
    profile: str = "en16931"
    number: str | None = "FA-2026-000123"
    issue_date: date | None = date(2026, 3, 2)
    due_date: date | None = date(2026, 4, 1)
    delivery_date: date | None = date(2026, 2, 27)
    invoicing_period: tuple[date, date] | None = None  # BG-14 (start, end)
    type_code: str | None = None  # 380 for an invoice, 381 for a credit note
    currency: str | None = "EUR"
    code_service: str | None = CODE_SERVICE
    engagement: str | None = ENGAGEMENT
    contract: str | None = CONTRACT
    seller_name: str | None = SELLER_NAME
    seller_siret: str | None = SELLER_SIRET
    seller_vat_id: str | None = SELLER_VAT_ID
    seller_country: str | None = "FR"
    seller_address: bool = True
    buyer_name: str | None = REGION_NAME
    buyer_siret: str | None = REGION_SIRET
    buyer_vat_id: str | None = REGION_VAT_ID
    buyer_country: str | None = "FR"
    buyer_address: bool = True
    deliver_to_country: str | None = None
    iban: str | None = SELLER_IBAN
    payment_terms: str | None = "Virement à 30 jours, délai global de paiement (CCP R2192-10)."
    lines: int | Sequence[Line | Mapping[str, Any]] = 20
    allowances: Sequence[AllowanceCharge | Mapping[str, Any]] = ()
    charges: Sequence[AllowanceCharge | Mapping[str, Any]] = ()
    prepaid: Decimal | str = "0.00"
    rounding: Decimal | str = "0.00"
    exemption_reasons: Mapping[str, tuple[str | None, str | None]] = field(
        default_factory=lambda: dict(EXEMPTION_REASONS)
    )
    # Replace computed totals (keys of TOTAL_KEYS); None leaves the element out.
    totals: Mapping[str, Decimal | str | None] = field(default_factory=dict)
    # Replace computed breakdown values: {("S", "20"): {"taxable_amount": ..., "tax_amount": ...}}.
    vat_overrides: Mapping[tuple[str, str], Mapping[str, Decimal | str | None]] = field(
        default_factory=dict
    )


def make_siret(n: int) -> str:
    """A Luhn-valid SIRET (head office, establishment 0001) for the SIREN numbered ``n``."""
    siren = f"{n:08d}"
    siren += luhn.calc_check_digit(siren)
    return siren + "0001" + luhn.calc_check_digit(siren + "0001")


def spec(**overrides: Any) -> InvoiceSpec:
    """The default specification with ``overrides``; an unknown keyword is a TypeError."""
    known = {f.name for f in fields(InvoiceSpec)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown invoice override(s): {', '.join(sorted(unknown))}")
    result = replace(InvoiceSpec(), **overrides)
    if result.profile not in GUIDELINES:
        raise ValueError(f"unknown profile {result.profile!r}; one of {', '.join(PROFILES)}")
    return result


def default_lines(count: int) -> list[Line]:
    """``count`` lines cycling through 20 %, 10 % and 5.5 %, with exact cent amounts."""
    result = []
    for index in range(1, count + 1):
        result.append(Line(
            name=f"Prestation {index:02d} : maintenance du parc informatique",
            quantity=Decimal(1 + index % 4),
            unit_price=Decimal("37.50") + Decimal(index) * Decimal("11.35"),
            vat_category="S",
            vat_rate=RATES[(index - 1) % len(RATES)],
        ))
    return result


# --- computation -------------------------------------------------------------------------------

def _decimal(value: Decimal | str | int | None) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("amounts are given as Decimal or str, never float")
    return Decimal(str(value))


def _numeric(value: Decimal | str | None) -> Decimal:
    """An overridden amount as a number for the totals that follow from it; text that is no
    number (a deliberately broken value) counts as zero."""
    try:
        return Decimal(str(value)) if value is not None else Decimal("0.00")
    except ArithmeticError:
        return Decimal("0.00")


def _line(item: Line | Mapping[str, Any], index: int) -> Line:
    line = item if isinstance(item, Line) else Line(**{
        "name": f"Article {index}", "quantity": Decimal("1"), "unit_price": Decimal("100.00"),
        **item,
    })
    return replace(
        line,
        id=line.id if line.id is not None else str(index),
        quantity=_decimal(line.quantity),
        unit_price=_decimal(line.unit_price),
        vat_rate=_decimal(line.vat_rate),
        net_amount=_decimal(line.net_amount),
        gross_price=_decimal(line.gross_price),
    )


def _allowance_charge(item: AllowanceCharge | Mapping[str, Any]) -> AllowanceCharge:
    value = item if isinstance(item, AllowanceCharge) else AllowanceCharge(**item)
    return replace(value, amount=_decimal(value.amount), vat_rate=_decimal(value.vat_rate),
                   base_amount=_decimal(value.base_amount))


@dataclass(frozen=True)
class _VatGroup:
    category: str
    rate: Decimal | None
    taxable_amount: Decimal | str | None
    tax_amount: Decimal | str | None
    reason_code: str | None
    reason: str | None


@dataclass(frozen=True)
class _Computed:
    spec: InvoiceSpec
    lines: list[Line]
    allowances: list[AllowanceCharge]
    charges: list[AllowanceCharge]
    breakdown: list[_VatGroup]
    totals: dict[str, Decimal | str | None]  # None: element left out


def _compute(invoice: InvoiceSpec) -> _Computed:
    items = default_lines(invoice.lines) if isinstance(invoice.lines, int) else invoice.lines
    lines = [_line(item, index) for index, item in enumerate(items, start=1)]
    allowances = [_allowance_charge(item) for item in invoice.allowances]
    charges = [_allowance_charge(item) for item in invoice.charges]

    # EN 16931 BR-S-08 and siblings: one breakdown per category and rate, whose taxable amount
    # is lines + charges - allowances of that category and rate.
    groups: dict[tuple[str, Decimal | None], Decimal] = {}
    for line in lines:
        key = (line.vat_category, line.vat_rate)
        groups[key] = groups.get(key, Decimal("0.00")) + line.net
    for charge in charges:
        key = (charge.vat_category, charge.vat_rate)
        groups[key] = groups.get(key, Decimal("0.00")) + charge.amount
    for allowance in allowances:
        key = (allowance.vat_category, allowance.vat_rate)
        groups[key] = groups.get(key, Decimal("0.00")) - allowance.amount

    breakdown = []
    for (category, rate), taxable in groups.items():
        tax = to_cents(taxable * rate / 100) if rate is not None else Decimal("0.00")
        reason_code, reason = invoice.exemption_reasons.get(category, (None, None))
        group = {"taxable_amount": taxable, "tax_amount": tax}
        for (o_category, o_rate), values in invoice.vat_overrides.items():
            if o_category == category and (
                (rate is None and o_rate is None)
                or (rate is not None and o_rate is not None and Decimal(o_rate) == rate)
            ):
                group.update(values)
        breakdown.append(_VatGroup(category, rate, group["taxable_amount"], group["tax_amount"],
                                   reason_code, reason))

    line_total = sum((line.net for line in lines), Decimal("0.00"))
    allowance_total = sum((a.amount for a in allowances), Decimal("0.00"))
    charge_total = sum((c.amount for c in charges), Decimal("0.00"))
    tax_exclusive = line_total - allowance_total + charge_total
    tax = sum((_numeric(g.tax_amount) for g in breakdown), Decimal("0.00"))
    tax_inclusive = tax_exclusive + tax
    prepaid = _decimal(invoice.prepaid)
    rounding = _decimal(invoice.rounding)
    totals: dict[str, Decimal | None] = {
        "line_total": line_total,
        "allowance_total": allowance_total if allowances else None,
        "charge_total": charge_total if charges else None,
        "tax_exclusive": tax_exclusive,
        "tax": tax,
        "tax_inclusive": tax_inclusive,
        "prepaid": prepaid if prepaid else None,
        "rounding": rounding if rounding else None,
        "payable": tax_inclusive - prepaid + rounding,
    }
    unknown = set(invoice.totals) - set(TOTAL_KEYS)
    if unknown:
        raise TypeError(f"unknown total(s): {', '.join(sorted(unknown))}; one of {TOTAL_KEYS}")
    # Overrides are written as given, so that "12,50" or "1.005" reach the document.
    totals.update(invoice.totals)
    return _Computed(invoice, lines, allowances, charges, breakdown, totals)


# --- XML helpers -------------------------------------------------------------------------------

def _sub(parent: etree._Element, ns: str, tag: str, text: Any = None, **attributes: str | None):
    element = etree.SubElement(
        parent, f"{{{ns}}}{tag}", {k: v for k, v in attributes.items() if v is not None}
    )
    if text is not None:
        element.text = str(text)
    return element


def _opt(parent: etree._Element, ns: str, tag: str, text: Any, **attributes: str):
    """An element only when there is a value: ``None`` leaves the term out."""
    if text is None:
        return None
    return _sub(parent, ns, tag, text, **attributes)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def edit(xml: bytes, xpath: str, text: str | None) -> bytes:
    """Sets the text of every element matched by ``xpath`` (prefixes of NAMESPACES), or removes
    them when ``text`` is None. Raises if nothing matches, so a test cannot silently miss."""
    root = etree.fromstring(xml)
    matches = root.xpath(xpath, namespaces=NAMESPACES)
    if not matches:
        raise LookupError(f"{xpath} matches nothing")
    for element in matches:
        if text is None:
            element.getparent().remove(element)
        else:
            element.text = text
    return _serialise(root)


# --- CII ---------------------------------------------------------------------------------------

def cii(**overrides: Any) -> bytes:
    """A CII D16B invoice; ``profile=`` one of PROFILES (default ``en16931``)."""
    return _cii(_compute(spec(**overrides)))


def _date_102(parent: etree._Element, tag: str, value: date | None, ns: str = RAM) -> None:
    if value is None:
        return
    holder = _sub(parent, ns, tag)
    _sub(holder, UDT, "DateTimeString", value.strftime("%Y%m%d"), format="102")


def _cii(c: _Computed) -> bytes:
    s = c.spec
    profile = s.profile
    minimum = profile == "minimum"
    with_lines = profile not in ("minimum", "basicwl")
    detailed = profile in ("en16931", "extended", "xrechnung")

    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice",
                         nsmap={"rsm": RSM, "qdt": QDT, "ram": RAM, "udt": UDT})
    context = _sub(root, RSM, "ExchangedDocumentContext")
    if profile == "xrechnung":
        _sub(_sub(context, RAM, "BusinessProcessSpecifiedDocumentContextParameter"), RAM, "ID",
             PEPPOL_PROCESS)
    _sub(_sub(context, RAM, "GuidelineSpecifiedDocumentContextParameter"), RAM, "ID",
         GUIDELINES[profile])

    document = _sub(root, RSM, "ExchangedDocument")
    _opt(document, RAM, "ID", s.number)
    _opt(document, RAM, "TypeCode", s.type_code or "380")
    _date_102(document, "IssueDateTime", s.issue_date)

    transaction = _sub(root, RSM, "SupplyChainTradeTransaction")
    if with_lines:
        for line in c.lines:
            _cii_line(transaction, line, detailed)

    agreement = _sub(transaction, RAM, "ApplicableHeaderTradeAgreement")
    _opt(agreement, RAM, "BuyerReference", s.code_service)
    _cii_party(agreement, "SellerTradeParty", s.seller_name, s.seller_siret, s.seller_vat_id,
               s.seller_country, s.seller_address, minimum=minimum, seller=True)
    _cii_party(agreement, "BuyerTradeParty", s.buyer_name, s.buyer_siret, s.buyer_vat_id,
               s.buyer_country, s.buyer_address, minimum=minimum, seller=False)
    if s.engagement is not None:
        _sub(_sub(agreement, RAM, "BuyerOrderReferencedDocument"), RAM, "IssuerAssignedID",
             s.engagement)
    if s.contract is not None and not minimum:
        _sub(_sub(agreement, RAM, "ContractReferencedDocument"), RAM, "IssuerAssignedID",
             s.contract)

    delivery = _sub(transaction, RAM, "ApplicableHeaderTradeDelivery")
    if not minimum:
        if s.deliver_to_country is not None:
            ship_to = _sub(delivery, RAM, "ShipToTradeParty")
            _sub(_sub(ship_to, RAM, "PostalTradeAddress"), RAM, "CountryID", s.deliver_to_country)
        if s.delivery_date is not None:
            event = _sub(delivery, RAM, "ActualDeliverySupplyChainEvent")
            _date_102(event, "OccurrenceDateTime", s.delivery_date)

    settlement = _sub(transaction, RAM, "ApplicableHeaderTradeSettlement")
    _opt(settlement, RAM, "InvoiceCurrencyCode", s.currency)
    if not minimum:
        if s.iban is not None:
            means = _sub(settlement, RAM, "SpecifiedTradeSettlementPaymentMeans")
            _sub(means, RAM, "TypeCode", "58")  # UNCL4461 58: SEPA credit transfer
            account = _sub(means, RAM, "PayeePartyCreditorFinancialAccount")
            _sub(account, RAM, "IBANID", s.iban)
        for group in c.breakdown:
            tax = _sub(settlement, RAM, "ApplicableTradeTax")
            _opt(tax, RAM, "CalculatedAmount", group.tax_amount)
            _sub(tax, RAM, "TypeCode", "VAT")
            _opt(tax, RAM, "ExemptionReason", group.reason)
            _opt(tax, RAM, "BasisAmount", group.taxable_amount)
            _sub(tax, RAM, "CategoryCode", group.category)
            _opt(tax, RAM, "ExemptionReasonCode", group.reason_code)
            _opt(tax, RAM, "RateApplicablePercent", group.rate)
        if s.invoicing_period is not None:
            period = _sub(settlement, RAM, "BillingSpecifiedPeriod")
            _date_102(period, "StartDateTime", s.invoicing_period[0])
            _date_102(period, "EndDateTime", s.invoicing_period[1])
        for item, is_charge in [(a, False) for a in c.allowances] + [(x, True) for x in c.charges]:
            _cii_allowance_charge(settlement, item, is_charge)
        if s.payment_terms is not None or s.due_date is not None:
            terms = _sub(settlement, RAM, "SpecifiedTradePaymentTerms")
            _opt(terms, RAM, "Description", s.payment_terms)
            _date_102(terms, "DueDateDateTime", s.due_date)

    summation = _sub(settlement, RAM, "SpecifiedTradeSettlementHeaderMonetarySummation")
    t = c.totals
    if not minimum:
        _opt(summation, RAM, "LineTotalAmount", t["line_total"])
        _opt(summation, RAM, "ChargeTotalAmount", t["charge_total"])
        _opt(summation, RAM, "AllowanceTotalAmount", t["allowance_total"])
    _opt(summation, RAM, "TaxBasisTotalAmount", t["tax_exclusive"])
    if t["tax"] is not None:
        _sub(summation, RAM, "TaxTotalAmount", t["tax"], currencyID=s.currency or "EUR")
    if detailed:
        _opt(summation, RAM, "RoundingAmount", t["rounding"])
    _opt(summation, RAM, "GrandTotalAmount", t["tax_inclusive"])
    if not minimum:
        _opt(summation, RAM, "TotalPrepaidAmount", t["prepaid"])
    _opt(summation, RAM, "DuePayableAmount", t["payable"])
    return _serialise(root)


def _cii_party(agreement, tag, name, siret, vat_id, country, with_address, *, minimum, seller):
    party = _sub(agreement, RAM, tag)
    if siret is not None and not minimum and seller:
        _sub(party, RAM, "GlobalID", siret, schemeID="0009")  # ISO 6523 ICD 0009: SIRET
    _opt(party, RAM, "Name", name)
    if siret is not None:
        # Chorus Pro reads the SIRET of both parties from BT-30/BT-47 (ICD 0002), the only
        # identifier every profile down to MINIMUM carries.
        organisation = _sub(party, RAM, "SpecifiedLegalOrganization")
        _sub(organisation, RAM, "ID", siret, schemeID="0002")
    if with_address and (seller or not minimum):
        address = _sub(party, RAM, "PostalTradeAddress")
        if not minimum:
            _sub(address, RAM, "PostcodeCode", "59000" if seller else "59555")
            _sub(address, RAM, "LineOne",
                 "12 rue de la Monnaie" if seller else "151 avenue du Président Hoover")
            _sub(address, RAM, "CityName", "Lille")
        _opt(address, RAM, "CountryID", country)
    if vat_id is not None and (seller or not minimum):
        registration = _sub(party, RAM, "SpecifiedTaxRegistration")
        _sub(registration, RAM, "ID", vat_id, schemeID="VA")


def _cii_line(transaction, line: Line, detailed: bool) -> None:
    item = _sub(transaction, RAM, "IncludedSupplyChainTradeLineItem")
    _opt(_sub(item, RAM, "AssociatedDocumentLineDocument"), RAM, "LineID", line.id)
    _opt(_sub(item, RAM, "SpecifiedTradeProduct"), RAM, "Name", line.name)
    agreement = _sub(item, RAM, "SpecifiedLineTradeAgreement")
    if line.gross_price is not None:
        _sub(_sub(agreement, RAM, "GrossPriceProductTradePrice"), RAM, "ChargeAmount",
             line.gross_price)
    if line.unit_price is not None:
        _sub(_sub(agreement, RAM, "NetPriceProductTradePrice"), RAM, "ChargeAmount",
             line.unit_price)
    delivery = _sub(item, RAM, "SpecifiedLineTradeDelivery")
    _opt(delivery, RAM, "BilledQuantity", line.quantity, unitCode=line.unit_code)
    settlement = _sub(item, RAM, "SpecifiedLineTradeSettlement")
    tax = _sub(settlement, RAM, "ApplicableTradeTax")
    _sub(tax, RAM, "TypeCode", "VAT")
    _opt(tax, RAM, "CategoryCode", line.vat_category)
    _opt(tax, RAM, "RateApplicablePercent", line.vat_rate)
    summation = _sub(settlement, RAM, "SpecifiedTradeSettlementLineMonetarySummation")
    _sub(summation, RAM, "LineTotalAmount", line.net)


def _cii_allowance_charge(settlement, item: AllowanceCharge, is_charge: bool) -> None:
    element = _sub(settlement, RAM, "SpecifiedTradeAllowanceCharge")
    _sub(_sub(element, RAM, "ChargeIndicator"), UDT, "Indicator", "true" if is_charge else "false")
    _opt(element, RAM, "BasisAmount", item.base_amount)
    _opt(element, RAM, "ActualAmount", item.amount)
    _opt(element, RAM, "ReasonCode", item.reason_code)
    _opt(element, RAM, "Reason", item.reason)
    tax = _sub(element, RAM, "CategoryTradeTax")
    _sub(tax, RAM, "TypeCode", "VAT")
    _opt(tax, RAM, "CategoryCode", item.vat_category)
    _opt(tax, RAM, "RateApplicablePercent", item.vat_rate)


# --- UBL ---------------------------------------------------------------------------------------

def ubl(**overrides: Any) -> bytes:
    """A UBL 2.1 Invoice (EN 16931 customization)."""
    return _ubl(_compute(spec(**overrides)), credit_note=False)


def ubl_credit_note(**overrides: Any) -> bytes:
    """A UBL 2.1 CreditNote (type 381 unless ``type_code=`` says otherwise)."""
    return _ubl(_compute(spec(**overrides)), credit_note=True)


def _ubl(c: _Computed, *, credit_note: bool) -> bytes:
    s = c.spec
    currency = s.currency or "EUR"
    root_ns = UBL_CREDIT_NOTE if credit_note else UBL_INVOICE
    root = etree.Element(f"{{{root_ns}}}{'CreditNote' if credit_note else 'Invoice'}",
                         nsmap={None: root_ns, "cac": CAC, "cbc": CBC})

    def amount(parent, tag, value):
        if value is not None:
            _sub(parent, CBC, tag, value, currencyID=currency)

    _sub(root, CBC, "CustomizationID", UBL_CUSTOMIZATION)
    _sub(root, CBC, "ProfileID", PEPPOL_PROCESS)
    _opt(root, CBC, "ID", s.number)
    _opt(root, CBC, "IssueDate", s.issue_date and s.issue_date.isoformat())
    if not credit_note:
        _opt(root, CBC, "DueDate", s.due_date and s.due_date.isoformat())
    _opt(root, CBC, "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode",
         s.type_code or ("381" if credit_note else "380"))
    _opt(root, CBC, "DocumentCurrencyCode", s.currency)
    _opt(root, CBC, "BuyerReference", s.code_service)
    if s.invoicing_period is not None:
        period = _sub(root, CAC, "InvoicePeriod")
        _sub(period, CBC, "StartDate", s.invoicing_period[0].isoformat())
        _sub(period, CBC, "EndDate", s.invoicing_period[1].isoformat())
    if s.engagement is not None:
        _sub(_sub(root, CAC, "OrderReference"), CBC, "ID", s.engagement)
    if s.contract is not None:
        _sub(_sub(root, CAC, "ContractDocumentReference"), CBC, "ID", s.contract)

    _ubl_party(_sub(root, CAC, "AccountingSupplierParty"), s.seller_name, s.seller_siret,
               s.seller_vat_id, s.seller_country, s.seller_address, seller=True)
    _ubl_party(_sub(root, CAC, "AccountingCustomerParty"), s.buyer_name, s.buyer_siret,
               s.buyer_vat_id, s.buyer_country, s.buyer_address, seller=False)

    if s.delivery_date is not None or s.deliver_to_country is not None:
        delivery = _sub(root, CAC, "Delivery")
        _opt(delivery, CBC, "ActualDeliveryDate", s.delivery_date and s.delivery_date.isoformat())
        if s.deliver_to_country is not None:
            location = _sub(delivery, CAC, "DeliveryLocation")
            country = _sub(_sub(location, CAC, "Address"), CAC, "Country")
            _sub(country, CBC, "IdentificationCode", s.deliver_to_country)

    if s.iban is not None or (credit_note and s.due_date is not None):
        means = _sub(root, CAC, "PaymentMeans")
        _sub(means, CBC, "PaymentMeansCode", "58")  # UNCL4461 58: SEPA credit transfer
        if credit_note:
            # UBL CreditNote has no header DueDate: BT-9 sits in the payment means.
            _opt(means, CBC, "PaymentDueDate", s.due_date and s.due_date.isoformat())
        if s.iban is not None:
            _sub(_sub(means, CAC, "PayeeFinancialAccount"), CBC, "ID", s.iban)
    if s.payment_terms is not None:
        _sub(_sub(root, CAC, "PaymentTerms"), CBC, "Note", s.payment_terms)

    for item, is_charge in [(a, False) for a in c.allowances] + [(x, True) for x in c.charges]:
        element = _sub(root, CAC, "AllowanceCharge")
        _sub(element, CBC, "ChargeIndicator", "true" if is_charge else "false")
        _opt(element, CBC, "AllowanceChargeReasonCode", item.reason_code)
        _opt(element, CBC, "AllowanceChargeReason", item.reason)
        amount(element, "Amount", item.amount)
        amount(element, "BaseAmount", item.base_amount)
        category = _sub(element, CAC, "TaxCategory")
        _opt(category, CBC, "ID", item.vat_category)
        _opt(category, CBC, "Percent", item.vat_rate)
        _sub(_sub(category, CAC, "TaxScheme"), CBC, "ID", "VAT")

    t = c.totals
    tax_total = _sub(root, CAC, "TaxTotal")
    amount(tax_total, "TaxAmount", t["tax"])
    for group in c.breakdown:
        subtotal = _sub(tax_total, CAC, "TaxSubtotal")
        amount(subtotal, "TaxableAmount", group.taxable_amount)
        amount(subtotal, "TaxAmount", group.tax_amount)
        category = _sub(subtotal, CAC, "TaxCategory")
        _sub(category, CBC, "ID", group.category)
        _opt(category, CBC, "Percent", group.rate)
        _opt(category, CBC, "TaxExemptionReasonCode", group.reason_code)
        _opt(category, CBC, "TaxExemptionReason", group.reason)
        _sub(_sub(category, CAC, "TaxScheme"), CBC, "ID", "VAT")

    monetary = _sub(root, CAC, "LegalMonetaryTotal")
    amount(monetary, "LineExtensionAmount", t["line_total"])
    amount(monetary, "TaxExclusiveAmount", t["tax_exclusive"])
    amount(monetary, "TaxInclusiveAmount", t["tax_inclusive"])
    amount(monetary, "AllowanceTotalAmount", t["allowance_total"])
    amount(monetary, "ChargeTotalAmount", t["charge_total"])
    amount(monetary, "PrepaidAmount", t["prepaid"])
    amount(monetary, "PayableRoundingAmount", t["rounding"])
    amount(monetary, "PayableAmount", t["payable"])

    for line in c.lines:
        element = _sub(root, CAC, "CreditNoteLine" if credit_note else "InvoiceLine")
        _opt(element, CBC, "ID", line.id)
        _opt(element, CBC, "CreditedQuantity" if credit_note else "InvoicedQuantity",
             line.quantity, unitCode=line.unit_code)
        amount(element, "LineExtensionAmount", line.net)
        item = _sub(element, CAC, "Item")
        _opt(item, CBC, "Name", line.name)
        category = _sub(item, CAC, "ClassifiedTaxCategory")
        _opt(category, CBC, "ID", line.vat_category)
        _opt(category, CBC, "Percent", line.vat_rate)
        _sub(_sub(category, CAC, "TaxScheme"), CBC, "ID", "VAT")
        if line.unit_price is not None or line.gross_price is not None:
            price = _sub(element, CAC, "Price")
            amount(price, "PriceAmount", line.unit_price)
            if line.gross_price is not None:
                discount = _sub(price, CAC, "AllowanceCharge")
                _sub(discount, CBC, "ChargeIndicator", "false")
                amount(discount, "Amount", (line.gross_price - (line.unit_price or 0)))
                amount(discount, "BaseAmount", line.gross_price)
    return _serialise(root)


def _ubl_party(holder, name, siret, vat_id, country, with_address, *, seller) -> None:
    party = _sub(holder, CAC, "Party")
    if siret is not None:
        identification = _sub(party, CAC, "PartyIdentification")
        _sub(identification, CBC, "ID", siret, schemeID="0009")  # ISO 6523 ICD 0009: SIRET
    if with_address:
        address = _sub(party, CAC, "PostalAddress")
        _sub(address, CBC, "StreetName",
             "12 rue de la Monnaie" if seller else "151 avenue du Président Hoover")
        _sub(address, CBC, "CityName", "Lille")
        _sub(address, CBC, "PostalZone", "59000" if seller else "59555")
        if country is not None:
            _sub(_sub(address, CAC, "Country"), CBC, "IdentificationCode", country)
    if vat_id is not None:
        scheme = _sub(party, CAC, "PartyTaxScheme")
        _sub(scheme, CBC, "CompanyID", vat_id)
        _sub(_sub(scheme, CAC, "TaxScheme"), CBC, "ID", "VAT")
    legal = _sub(party, CAC, "PartyLegalEntity")
    _opt(legal, CBC, "RegistrationName", name)
    if siret is not None:
        # The 2026 French mapping: SIREN as legal registration identifier (ICD 0002).
        _sub(legal, CBC, "CompanyID", siret[:9], schemeID="0002")


# --- PDF ---------------------------------------------------------------------------------------

def plain_pdf(title: str = "Facture") -> bytes:
    """A one-page PDF with one line of text and no attachment."""
    text = title.encode("latin-1", "replace").replace(b"\\", b"\\\\")
    text = text.replace(b"(", b"\\(").replace(b")", b"\\)")
    content = b"BT /F1 14 Tf 72 770 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content
        + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def facturx_pdf(xml: bytes | None = None, **overrides: Any) -> bytes:
    """A Factur-X PDF: a one-page PDF with the CII embedded as ``factur-x.xml`` by the
    ``factur-x`` library. Either give ``xml`` or CII ``overrides``, not both."""
    from facturx import generate_from_binary, get_level

    if xml is not None and overrides:
        raise TypeError("give either the XML or overrides for cii(), not both")
    invoice = spec(**overrides)
    if xml is None:
        xml = _cii(_compute(invoice))
        level = FACTURX_LEVELS[invoice.profile]
    else:
        try:
            level = get_level(etree.fromstring(xml))
        except Exception:  # the library only knows its own profiles; XRechnung reads as EN 16931
            level = "en16931"
        if level not in FACTURX_LEVELS.values():
            level = "en16931"
    title = f"Facture {invoice.number} - {invoice.seller_name}"
    return generate_from_binary(
        plain_pdf(title),
        xml,
        flavor="factur-x",
        level=level,
        check_xsd=False,
        pdf_metadata={
            "author": invoice.seller_name or "",
            "keywords": "Factur-X, Invoice",
            "title": title,
            "subject": f"Factur-X invoice {invoice.number}",
        },
        lang="fr-FR",
    )


def pdf_with_attachment(data: bytes, filename: str = "factur-x.xml") -> bytes:
    """A one-page PDF carrying ``data`` as an embedded file, written by pypdf without any check
    (for a UBL inside a PDF, or a hostile XML)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(plain_pdf("Facture"))))
    writer.add_attachment(filename, data)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
