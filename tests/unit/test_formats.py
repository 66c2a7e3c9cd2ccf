"""Reading UBL, CII and Factur-X into the canonical invoice."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import facturx
import pytest
from pydantic import ValidationError
from lxml import etree

from services.invoices.formats import MAX_DOCUMENT_BYTES, UnreadableDocument, detect, parse
from shared.events.invoice_document import CanonicalInvoice
from deploy.simulators import suppliers as build

XSD_DIR = Path(facturx.__file__).parent / "xsd_and_schematron"
CII_XSD = {
    "minimum": "facturx-minimum/Factur-X_MINIMUM.xsd",
    "basicwl": "facturx-basicwl/Factur-X_BASICWL.xsd",
    "basic": "facturx-basic/Factur-X_BASIC.xsd",
    "en16931": "facturx-en16931/Factur-X_EN16931.xsd",
    "extended": "facturx-extended/Factur-X_EXTENDED.xsd",
    "xrechnung": "facturx-en16931/Factur-X_EN16931.xsd",
}
RICH = dict(
    allowances=[dict(amount="25.00", reason="Remise fidélité", reason_code="95")],
    charges=[dict(amount="12.50", reason="Frais de port", vat_rate="10.00")],
    prepaid="100.00",
    rounding="0.01",
    invoicing_period=(date(2026, 2, 1), date(2026, 2, 28)),
)


def _schema(relative: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_DIR / relative)))


# --- the corpus is what it claims to be ---------------------------------------------------------

@pytest.mark.parametrize("profile", build.PROFILES)
@pytest.mark.parametrize("extras", [{}, RICH], ids=["plain", "rich"])
def test_generated_cii_is_valid_against_the_official_factur_x_schema(profile, extras):
    if profile in ("minimum", "basicwl", "basic") and extras.get("rounding"):
        extras = {k: v for k, v in extras.items() if k != "rounding"}  # EN 16931 and up only
    schema = _schema(CII_XSD[profile])
    assert schema.validate(etree.fromstring(build.cii(profile=profile, **extras))), schema.error_log


@pytest.mark.parametrize("generate, xsd", [
    (build.ubl, "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd"),
    (build.ubl_credit_note, "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd"),
])
@pytest.mark.parametrize("extras", [{}, RICH], ids=["plain", "rich"])
def test_generated_ubl_is_valid_against_the_official_ubl_schema(generate, xsd, extras):
    schema = _schema(xsd)
    assert schema.validate(etree.fromstring(generate(**extras))), schema.error_log


def test_the_corpus_refuses_unknown_overrides():
    with pytest.raises(TypeError, match="numbr"):
        build.cii(numbr="X")


def test_factur_x_library_finds_the_generated_attachment():
    name, xml = facturx.get_facturx_xml_from_pdf(build.facturx_pdf(lines=2), check_xsd=True)
    assert name == "factur-x.xml"
    assert xml == build.cii(lines=2)


# --- detection --------------------------------------------------------------------------------

@pytest.mark.parametrize("document, expected", [
    (build.cii, "cii"),
    (build.ubl, "ubl"),
    (build.ubl_credit_note, "ubl"),
    (build.facturx_pdf, "facturx"),
])
def test_the_format_comes_from_the_bytes(document, expected):
    assert detect(document(lines=1)) == expected


def test_an_xml_quoting_the_pdf_header_is_still_xml():
    document = build.cii(lines=1, payment_terms="See %PDF-1.7 attachment")
    assert detect(document) == "cii"


# --- CII ----------------------------------------------------------------------------------------

def test_cii_terms_are_read():
    invoice = parse(build.cii(**RICH))

    assert invoice.format == "cii" and invoice.syntax == "cii"
    assert invoice.specification_id == "urn:cen.eu:en16931:2017"
    assert invoice.number == "FA-2026-000123"
    assert invoice.issue_date == date(2026, 3, 2)
    assert invoice.due_date == date(2026, 4, 1)
    assert invoice.type_code == "380"
    assert invoice.currency == "EUR"
    assert invoice.buyer_reference == build.CODE_SERVICE
    assert invoice.purchase_order_reference == build.ENGAGEMENT
    assert invoice.contract_reference == build.CONTRACT
    assert invoice.payee_iban == build.SELLER_IBAN
    assert invoice.payment_means_code == "58"
    assert invoice.delivery_date == date(2026, 2, 27)
    assert (invoice.invoicing_period_start, invoice.invoicing_period_end) == (
        date(2026, 2, 1), date(2026, 2, 28))
    assert invoice.seller.name == build.SELLER_NAME
    assert invoice.seller.siret == build.SELLER_SIRET
    assert invoice.seller.vat_id == build.SELLER_VAT_ID
    assert invoice.seller.country == "FR"
    assert invoice.seller.address.city == "Lille"
    assert invoice.buyer.siret == build.REGION_SIRET
    assert invoice.buyer.vat_id == build.REGION_VAT_ID

    assert len(invoice.lines) == 20
    third = invoice.lines[2]
    assert (third.id, third.quantity, third.net_price, third.net_amount) == (
        "3", Decimal("4"), Decimal("71.55"), Decimal("286.20"))
    assert (third.vat_category, third.vat_rate, third.unit_code) == ("S", Decimal("5.50"), "C62")

    assert [(b.category, b.rate) for b in invoice.vat_breakdown] == [
        ("S", Decimal("20.00")), ("S", Decimal("10.00")), ("S", Decimal("5.50"))]
    allowance, charge = invoice.allowances_charges
    assert (allowance.charge, allowance.amount, allowance.reason_code) == (
        False, Decimal("25.00"), "95")
    assert (charge.charge, charge.amount, charge.vat_rate) == (
        True, Decimal("12.50"), Decimal("10.00"))

    totals = invoice.totals
    assert totals.line_total == sum(line.net_amount for line in invoice.lines)
    assert totals.tax_exclusive == totals.line_total - Decimal("25.00") + Decimal("12.50")
    assert totals.tax == sum(b.tax_amount for b in invoice.vat_breakdown)
    assert totals.payable == totals.tax_inclusive - Decimal("100.00") + Decimal("0.01")
    assert invoice.unreadable_values == []


@pytest.mark.parametrize("profile", build.PROFILES)
def test_every_cii_profile_is_read(profile):
    invoice = parse(build.cii(profile=profile))
    assert invoice.specification_id == build.GUIDELINES[profile]
    assert invoice.totals.payable == parse(build.cii()).totals.payable
    assert invoice.buyer.siret == build.REGION_SIRET
    assert len(invoice.lines) == (0 if profile in ("minimum", "basicwl") else 20)


def test_the_vat_total_is_the_one_in_the_invoice_currency():
    # BT-111 (VAT in accounting currency) may come first with another currencyID.
    document = build.cii(lines=1)
    root = etree.fromstring(document)
    summation = root.find(".//{%s}SpecifiedTradeSettlementHeaderMonetarySummation" % build.RAM)
    total = summation.find("{%s}TaxTotalAmount" % build.RAM)
    in_usd = etree.Element("{%s}TaxTotalAmount" % build.RAM, currencyID="USD")
    in_usd.text = "999.99"
    total.addprevious(in_usd)
    invoice = parse(etree.tostring(root))
    assert invoice.totals.tax == Decimal(total.text)


def test_siret_comes_from_scheme_0009_or_a_14_digit_legal_registration():
    only_siren = build.edit(build.cii(lines=1),
                            "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID",
                            build.SELLER_SIRET[:9])
    only_siren = build.edit(only_siren, "//ram:SellerTradeParty/ram:GlobalID", None)
    seller = parse(only_siren).seller
    assert seller.siret is None
    assert seller.legal_registration_id == build.SELLER_SIRET[:9]

    spaced = build.edit(build.cii(lines=1), "//ram:BuyerTradeParty//ram:ID",
                        "200 053 767 00014")
    assert parse(spaced).buyer.siret == build.REGION_SIRET


def test_amounts_keep_every_decimal_written():
    invoice = parse(build.cii(lines=[dict(name="a", quantity="3", unit_price="0.333",
                                          net_amount="0.999")]))
    assert invoice.lines[0].net_amount == Decimal("0.999")
    assert invoice.lines[0].net_amount.as_tuple().exponent == -3


# --- UBL ----------------------------------------------------------------------------------------

def test_ubl_invoice_reads_like_the_same_cii():
    from_ubl = parse(build.ubl(**RICH))
    from_cii = parse(build.cii(**RICH))
    assert from_ubl.format == "ubl"
    comparable = {"format", "syntax", "locations", "lines", "vat_breakdown",
                  "allowances_charges", "seller", "buyer", "payment_terms"}
    assert from_ubl.model_dump(exclude=comparable) == from_cii.model_dump(exclude=comparable)
    assert [line.model_dump(exclude={"location"}) for line in from_ubl.lines] == [
        line.model_dump(exclude={"location"}) for line in from_cii.lines]
    assert from_ubl.seller.siret == from_cii.seller.siret == build.SELLER_SIRET
    assert from_ubl.seller.legal_registration_id == build.SELLER_SIRET[:9]  # the SIREN
    assert from_ubl.buyer.siret == build.REGION_SIRET


def test_ubl_credit_note_reads_its_own_names():
    invoice = parse(build.ubl_credit_note(lines=2))
    assert invoice.type_code == "381"
    assert invoice.due_date == date(2026, 4, 1)  # from PaymentMeans/PaymentDueDate
    assert [line.quantity for line in invoice.lines] == [Decimal("2"), Decimal("3")]
    assert invoice.lines[1].location == "/cn:CreditNote/cac:CreditNoteLine[2]"


def test_ubl_tells_the_vat_number_from_another_tax_registration():
    root = etree.fromstring(build.ubl(lines=1))
    party = root.find(".//{%s}AccountingSupplierParty/{%s}Party" % (build.CAC, build.CAC))
    vat_scheme = party.find("{%s}PartyTaxScheme" % build.CAC)
    other = etree.fromstring(
        f'<cac:PartyTaxScheme xmlns:cac="{build.CAC}" xmlns:cbc="{build.CBC}">'
        "<cbc:CompanyID>RCS Lille 412 345 670</cbc:CompanyID>"
        "<cac:TaxScheme><cbc:ID>LOC</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>"
    )
    vat_scheme.addprevious(other)
    seller = parse(etree.tostring(root)).seller
    assert seller.vat_id == build.SELLER_VAT_ID
    assert seller.tax_registration_id == "RCS Lille 412 345 670"


# --- Factur-X -----------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", build.PROFILES)
def test_factur_x_carries_the_cii(profile):
    invoice = parse(build.facturx_pdf(profile=profile))
    assert invoice.format == "facturx" and invoice.syntax == "cii"
    expected = parse(build.cii(profile=profile)).model_dump(exclude={"format"})
    assert invoice.model_dump(exclude={"format"}) == expected


def test_a_ubl_embedded_in_a_pdf_is_read():
    invoice = parse(build.pdf_with_attachment(build.ubl(lines=2), "invoice.xml"))
    assert (invoice.format, invoice.syntax, len(invoice.lines)) == ("facturx", "ubl", 2)


def test_embedded_xml_failing_the_xsd_is_still_read_and_judged_later():
    broken = build.cii(lines=1, totals={"payable": "12,50"})
    invoice = parse(build.facturx_pdf(broken))
    assert invoice.totals.payable is None
    assert [value.term for value in invoice.unreadable_values] == ["BT-115"]


# --- values that cannot be read are kept, not fatal -----------------------------------------

@pytest.mark.parametrize("xpath, text, term", [
    ("//ram:DuePayableAmount", "12,50", "BT-115"),
    ("//ram:DuePayableAmount", "1e3", "BT-115"),
    ("//ram:DuePayableAmount", "NaN", "BT-115"),
    ("(//ram:LineTotalAmount)[2]", "abc", "BT-131"),
    ("(//ram:BilledQuantity)[1]", "two", "BT-129"),
    ("//ram:IssueDateTime/udt:DateTimeString", "2026-03-02", "BT-2"),
    ("//ram:IssueDateTime/udt:DateTimeString", "20261302", "BT-2"),
    ("//ram:ChargeIndicator/udt:Indicator", "maybe", "BG-20/BG-21"),
])
def test_an_unreadable_value_is_recorded_with_its_place(xpath, text, term):
    document = build.edit(build.cii(lines=3, allowances=[dict(amount="1.00", reason="r")]),
                          xpath, text)
    invoice = parse(document)
    (unreadable,) = invoice.unreadable_values
    assert (unreadable.term, unreadable.value) == (term, text)
    located = etree.fromstring(document).xpath(unreadable.location, namespaces=build.NAMESPACES)
    assert located and located[0].text == text


def test_a_date_in_another_format_code_is_unreadable():
    document = build.edit(build.cii(lines=1), "//ram:IssueDateTime/udt:DateTimeString", "202603")
    root = etree.fromstring(document)
    root.find(".//{%s}IssueDateTime/{%s}DateTimeString" % (build.RAM, build.UDT)).set(
        "format", "610")
    invoice = parse(etree.tostring(root))
    assert invoice.issue_date is None
    assert invoice.unreadable_values[0].term == "BT-2"


def test_ubl_dates_are_iso():
    document = build.edit(build.ubl(lines=1), "/ubl:Invoice/cbc:IssueDate", "02/03/2026")
    invoice = parse(document)
    assert invoice.issue_date is None
    assert invoice.unreadable_values[0].location == "/ubl:Invoice/cbc:IssueDate"


# --- locations point into the received document ---------------------------------------------

@pytest.mark.parametrize("generate", [build.cii, build.ubl, build.ubl_credit_note])
def test_recorded_locations_resolve_to_the_values_read(generate):
    document = generate(lines=4)
    root = etree.fromstring(document)
    invoice = parse(document)

    def resolve(xpath: str) -> list:
        return root.xpath(xpath, namespaces=build.NAMESPACES)

    assert resolve(invoice.location_of("BT-1"))[0].text == invoice.number
    assert Decimal(resolve(invoice.location_of("BT-115"))[0].text) == invoice.totals.payable
    assert resolve(invoice.location_of("BT-47"))[0].text[:9] == build.REGION_SIRET[:9]
    line = invoice.lines[2]
    assert Decimal(resolve(invoice.location_of("BT-131", line))[0].text) == line.net_amount
    assert resolve(invoice.location_of("BT-130", line)) == ["C62"]
    breakdown = invoice.vat_breakdown[1]
    assert Decimal(resolve(invoice.location_of("BT-117", breakdown))[0].text) == \
        breakdown.tax_amount


# --- the JSON contract --------------------------------------------------------------------------

def test_canonical_json_has_the_agreed_shape():
    document = parse(build.cii(lines=2)).model_dump(mode="json")
    assert list(document)[:16] == [
        "format", "number", "issue_date", "type_code", "currency", "due_date",
        "buyer_reference", "contract_reference", "purchase_order_reference", "seller", "buyer",
        "payee_iban", "lines", "vat_breakdown", "totals", "syntax",
    ]
    for party in ("seller", "buyer"):
        assert {"name", "siret", "vat_id", "country"} <= set(document[party])
    assert {"id", "name", "quantity", "net_amount", "vat_category", "vat_rate"} <= set(
        document["lines"][0])
    assert {"category", "rate", "taxable_amount", "tax_amount"} <= set(
        document["vat_breakdown"][0])
    assert set(document["totals"]) == {
        "line_total", "allowance_total", "charge_total", "tax_exclusive", "tax",
        "tax_inclusive", "prepaid", "rounding", "payable"}
    assert document["issue_date"] == "2026-03-02"
    assert document["totals"]["payable"] == "315.90"
    assert document["lines"][0]["vat_rate"] == "20.00"
    assert document["totals"]["prepaid"] is None


@pytest.mark.parametrize("generate", [build.cii, build.ubl, build.facturx_pdf])
def test_canonical_json_round_trips(generate):
    invoice = parse(generate(**RICH))
    assert CanonicalInvoice.model_validate_json(invoice.model_dump_json()) == invoice


def test_the_canonical_invoice_is_frozen():
    invoice = parse(build.cii(lines=1))
    with pytest.raises(ValidationError):
        invoice.number = "other"


def test_the_size_limit_is_twenty_megabytes():
    assert MAX_DOCUMENT_BYTES == 20 * 1024 * 1024
    with pytest.raises(UnreadableDocument) as raised:
        parse(b"<a/>" + b" " * MAX_DOCUMENT_BYTES)
    assert raised.value.reason == "too_large"
