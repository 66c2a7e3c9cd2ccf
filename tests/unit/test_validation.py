"""EN 16931 and French public-sector validation: each rule has a broken variant that it, and
nothing silent, reports; the valid defaults of every format pass both profiles untouched."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Callable

import pytest
from lxml import etree

from services.invoices.domain.validation import PROFILES, validate
from services.invoices.formats import parse
from deploy.simulators import suppliers as build

REGION = build.REGION_SIRET
GENERATORS = {"cii": build.cii, "ubl": build.ubl}


def report_of(document: bytes, profile: str = "en16931"):
    return validate(parse(document), profile, buyer_siret=REGION)


# --- valid documents pass -----------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("generate", [build.cii, build.ubl, build.ubl_credit_note,
                                      build.facturx_pdf])
def test_the_valid_defaults_pass_without_any_finding(generate, profile):
    report = report_of(generate(), profile)
    assert (report.errors, report.warnings) == ([], [])
    assert report.valid and report.outcome is None


@pytest.mark.parametrize("profile", ["basic", "en16931", "extended", "xrechnung"])
def test_every_cii_profile_carrying_lines_passes_fr_public(profile):
    assert report_of(build.cii(profile=profile), "fr-public").errors == []


@pytest.mark.parametrize("profile", ["minimum", "basicwl"])
def test_profiles_without_lines_cannot_pass_en16931(profile):
    report = report_of(build.cii(profile=profile))
    assert "BR-16" in {error.rule for error in report.errors}
    assert report.outcome == "REJETEE"


def test_rich_documents_pass():
    document = dict(
        allowances=[dict(amount="25.00", base_amount="250.00", reason="Remise", reason_code="95")],
        charges=[dict(amount="12.50", reason="Port", vat_rate="10.00")],
        prepaid="100.00", rounding="0.01",
        invoicing_period=(date(2026, 2, 1), date(2026, 2, 28)),
        lines=[dict(name="Ramettes", quantity="10", unit_price="4.20", gross_price="5.00")] * 3,
    )
    for generate in (build.cii, build.ubl, build.ubl_credit_note):
        report = report_of(generate(**document), "fr-public")
        assert (report.errors, report.warnings) == ([], [])


def _one_line(category: str, rate: str | None, **line) -> list[dict]:
    return [dict(name="Prestation", quantity="2", unit_price="150.00", vat_category=category,
                 vat_rate=rate, **line)]


CATEGORY_DOCUMENTS = {
    "Z": dict(lines=_one_line("Z", "0")),
    "E": dict(lines=_one_line("E", "0")),
    "AE": dict(lines=_one_line("AE", "0")),
    "K": dict(lines=_one_line("K", "0"), deliver_to_country="DE"),
    "G": dict(lines=_one_line("G", "0")),
    "O": dict(lines=_one_line("O", None), seller_vat_id=None, buyer_vat_id=None),
    "L": dict(lines=_one_line("L", "7.00")),
    "M": dict(lines=_one_line("M", "4.00")),
    "S+Z+E": dict(lines=_one_line("S", "20.00") + _one_line("Z", "0") + _one_line("E", "0")),
}


@pytest.mark.parametrize("fmt", GENERATORS)
@pytest.mark.parametrize("name", CATEGORY_DOCUMENTS)
def test_each_vat_category_has_a_valid_form(name, fmt):
    report = report_of(GENERATORS[fmt](**CATEGORY_DOCUMENTS[name]), "fr-public")
    assert (report.errors, report.warnings) == ([], [])


# --- each rule, broken ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    rule: str
    make: Callable[[Callable[..., bytes]], bytes]
    formats: tuple[str, ...] = ("cii", "ubl")
    profile: str = "en16931"
    term: str | None = None
    extra: dict = field(default_factory=dict)


def edited(xpaths: dict[str, str], text: str | None, **overrides):
    """A document of each format with the element at xpaths[format] changed or removed."""
    def make(generate):
        fmt = "cii" if generate is build.cii else "ubl"
        return build.edit(generate(**overrides), xpaths[fmt], text)
    return make


def with_(**overrides):
    return lambda generate: generate(**overrides)


def category(name: str, **overrides):
    return lambda generate: generate(**{**CATEGORY_DOCUMENTS[name], **overrides})


ALLOWANCE = dict(amount="10.00", reason="Remise")
CHARGE = dict(amount="5.00", reason="Port", vat_rate="20.00")
LINE_1 = {"cii": "(//ram:IncludedSupplyChainTradeLineItem)[1]",
          "ubl": "/ubl:Invoice/cac:InvoiceLine[1]"}
HEADER_TAX_1 = {"cii": "(//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax)[1]",
                "ubl": "(//cac:TaxSubtotal)[1]"}

CASES = [
    # Mandatory terms.
    Case("BR-01", edited({"cii": "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
                          "ubl": "/ubl:Invoice/cbc:CustomizationID"}, None), term="BT-24"),
    Case("BR-02", with_(number=None), term="BT-1"),
    Case("BR-03", with_(issue_date=None), term="BT-2"),
    Case("BR-04", edited({"cii": "//rsm:ExchangedDocument/ram:TypeCode",
                          "ubl": "/ubl:Invoice/cbc:InvoiceTypeCode"}, None), term="BT-3"),
    Case("BR-05", with_(currency=None), term="BT-5"),
    Case("BR-06", with_(seller_name=None), term="BT-27"),
    Case("BR-07", with_(buyer_name=None), term="BT-44"),
    Case("BR-08", with_(seller_address=False), term="BG-5"),
    Case("BR-09", with_(seller_country=None), term="BT-40"),
    Case("BR-10", with_(buyer_address=False), term="BG-8"),
    Case("BR-11", with_(buyer_country=None), term="BT-55"),
    Case("BR-12", with_(totals={"line_total": None}), term="BT-106"),
    Case("BR-13", with_(totals={"tax_exclusive": None}), term="BT-109"),
    Case("BR-14", with_(totals={"tax_inclusive": None}), term="BT-112"),
    Case("BR-15", with_(totals={"payable": None}), term="BT-115"),
    Case("BR-16", with_(lines=[]), term="BG-25"),
    # Lines.
    Case("BR-21", edited({"cii": f"{LINE_1['cii']}//ram:LineID", "ubl": f"{LINE_1['ubl']}/cbc:ID"},
                         None, lines=2), term="BT-126"),
    Case("BR-22", with_(lines=[dict(name="a", quantity=None, unit_price="5.00",
                                    net_amount="5.00")]), term="BT-129"),
    Case("BR-23", with_(lines=[dict(name="a", unit_code=None)]), term="BT-130"),
    Case("BR-24", edited({"cii": f"{LINE_1['cii']}//ram:LineTotalAmount",
                          "ubl": f"{LINE_1['ubl']}/cbc:LineExtensionAmount"}, None, lines=2),
         term="BT-131"),
    Case("BR-25", with_(lines=[dict(name=None)]), term="BT-153"),
    Case("BR-26", with_(lines=[dict(name="a", unit_price=None, net_amount="100.00")]),
         term="BT-146"),
    Case("BR-27", with_(lines=[dict(name="a", quantity="1", unit_price="-5.00")]), term="BT-146"),
    Case("BR-28", with_(lines=[dict(name="a", gross_price="-1.00")]), term="BT-148"),
    Case("BR-CO-04", with_(lines=[dict(name="a", vat_category=None)]), term="BT-151"),
    # Allowances and charges.
    Case("BR-31", edited({"cii": "//ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount",
                          "ubl": "/ubl:Invoice/cac:AllowanceCharge/cbc:Amount"}, None,
                         allowances=[ALLOWANCE]), term="BT-92"),
    Case("BR-32", with_(allowances=[dict(ALLOWANCE, vat_category=None)]), term="BT-95"),
    Case("BR-33", with_(allowances=[dict(ALLOWANCE, reason=None)]), term="BT-97"),
    Case("BR-36", edited({"cii": "//ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount",
                          "ubl": "/ubl:Invoice/cac:AllowanceCharge/cbc:Amount"}, None,
                         charges=[CHARGE]), term="BT-99"),
    Case("BR-37", with_(charges=[dict(CHARGE, vat_category=None)]), term="BT-102"),
    Case("BR-38", with_(charges=[dict(CHARGE, reason=None)]), term="BT-104"),
    # VAT breakdown.
    Case("BR-45", with_(vat_overrides={("S", "20"): {"taxable_amount": None}}), term="BT-116"),
    Case("BR-46", with_(vat_overrides={("S", "20"): {"tax_amount": None}}), term="BT-117"),
    Case("BR-47", edited({"cii": f"{HEADER_TAX_1['cii']}/ram:CategoryCode",
                          "ubl": f"{HEADER_TAX_1['ubl']}/cac:TaxCategory/cbc:ID"}, None),
         term="BT-118"),
    Case("BR-48", edited({"cii": f"{HEADER_TAX_1['cii']}/ram:RateApplicablePercent",
                          "ubl": f"{HEADER_TAX_1['ubl']}/cac:TaxCategory/cbc:Percent"}, None),
         term="BT-119"),
    Case("BR-CO-18", edited({"cii": "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax",
                             "ubl": "//cac:TaxSubtotal"}, None), term="BG-23"),
    # Arithmetic.
    Case("BR-CO-10", with_(totals={"line_total": "7778.00"}), term="BT-106"),
    Case("BR-CO-11", with_(allowances=[ALLOWANCE], totals={"allowance_total": "11.00"}),
         term="BT-107"),
    Case("BR-CO-11", with_(allowances=[ALLOWANCE], totals={"allowance_total": None}),
         term="BT-107"),
    Case("BR-CO-12", with_(charges=[CHARGE], totals={"charge_total": "6.00"}), term="BT-108"),
    Case("BR-CO-13", with_(totals={"tax_exclusive": "7770.00"}), term="BT-109"),
    Case("BR-CO-14", with_(totals={"tax": "930.00"}), term="BT-110"),
    Case("BR-CO-15", with_(totals={"tax_inclusive": "8700.00", "payable": "8700.00"}),
         term="BT-112"),
    Case("BR-CO-16", with_(totals={"payable": "8000.00"}), term="BT-115"),
    Case("BR-CO-16", with_(prepaid="100.00", totals={"payable": "8707.46"}), term="BT-115"),
    Case("BR-CO-17", with_(vat_overrides={("S", "20"): {"tax_amount": "500.00"}}), term="BT-117"),
    Case("BR-CO-25", with_(due_date=None, payment_terms=None), term="BT-9"),
    Case("BR-CO-26", with_(seller_siret=None, seller_vat_id=None), term="BT-30"),
    Case("BR-CO-09", with_(seller_vat_id="412345670"), term="BT-31"),
    Case("BR-29", with_(invoicing_period=(date(2026, 2, 28), date(2026, 2, 1))), term="BT-74"),
    # Code lists.
    Case("BR-CL-01", with_(type_code="999"), term="BT-3"),
    Case("BR-CL-04", with_(currency="EURO"), term="BT-5"),
    Case("BR-CL-14", with_(seller_country="XX"), term="BT-40"),
    Case("BR-CL-17", with_(allowances=[dict(ALLOWANCE, vat_category="X")]), term="BT-95"),
    Case("BR-CL-18", with_(lines=[dict(name="a", vat_category="X")]), term="BT-151"),
    # Decimals.
    *[Case(rule, with_(totals={key: value}), term=term) for key, rule, term, value in [
        ("line_total", "BR-DEC-09", "BT-106", "7777.000"),
        ("tax_exclusive", "BR-DEC-12", "BT-109", "7777.001"),
        ("tax", "BR-DEC-13", "BT-110", "930.460"),
        ("tax_inclusive", "BR-DEC-14", "BT-112", "8707.455"),
        ("prepaid", "BR-DEC-16", "BT-113", "0.001"),
        ("rounding", "BR-DEC-17", "BT-114", "0.001"),
        ("payable", "BR-DEC-18", "BT-115", "8707.460"),
    ]],
    Case("BR-DEC-10", with_(allowances=[ALLOWANCE], totals={"allowance_total": "10.000"}),
         term="BT-107"),
    Case("BR-DEC-11", with_(charges=[CHARGE], totals={"charge_total": "5.000"}), term="BT-108"),
    Case("BR-DEC-19", with_(vat_overrides={("S", "20"): {"taxable_amount": "2703.200"}}),
         term="BT-116"),
    Case("BR-DEC-20", with_(vat_overrides={("S", "20"): {"tax_amount": "540.640"}}),
         term="BT-117"),
    Case("BR-DEC-23", with_(lines=[dict(name="a", quantity="3", unit_price="3.335",
                                        net_amount="10.005")]), term="BT-131"),
    Case("BR-DEC-01", with_(allowances=[dict(ALLOWANCE, amount="10.005")]), term="BT-92"),
    Case("BR-DEC-02", with_(allowances=[dict(ALLOWANCE, base_amount="100.005")]), term="BT-93"),
    Case("BR-DEC-05", with_(charges=[dict(CHARGE, amount="5.005")]), term="BT-99"),
    Case("BR-DEC-06", with_(charges=[dict(CHARGE, base_amount="50.005")]), term="BT-100"),
    # Standard rate.
    Case("BR-S-01", edited({"cii": "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax",
                            "ubl": "//cac:TaxSubtotal"}, None), term="BT-118"),
    Case("BR-S-02", with_(seller_vat_id=None), term="BT-31"),
    Case("BR-S-03", with_(seller_vat_id=None, allowances=[ALLOWANCE]), term="BT-31"),
    Case("BR-S-04", with_(seller_vat_id=None, charges=[CHARGE]), term="BT-31"),
    Case("BR-S-05", with_(lines=[dict(name="a", vat_rate="0")]), term="BT-152"),
    Case("BR-S-06", with_(allowances=[dict(ALLOWANCE, vat_rate="0")]), term="BT-96"),
    Case("BR-S-07", with_(charges=[dict(CHARGE, vat_rate="0")]), term="BT-103"),
    Case("BR-S-08", with_(vat_overrides={("S", "10"): {"taxable_amount": "1.00"}}),
         term="BT-116"),
    Case("BR-S-08", edited(  # the 5.5 % breakdown left out
        {"cii": "(//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax)[3]",
         "ubl": "(//cac:TaxSubtotal)[3]"}, None), term="BT-116"),
    Case("BR-S-09", with_(vat_overrides={("S", "5.5"): {"tax_amount": "1.00"}}), term="BT-117"),
    Case("BR-S-10", with_(exemption_reasons={"S": (None, "Exonération")}), term="BT-120"),
    # Zero rated, exempt, reverse charge, intra-community, export, not subject, IGIC, IPSI.
    Case("BR-Z-01", category("Z", lines=_one_line("Z", "0") + _one_line("Z", "1.00")),
         term="BT-118"),
    Case("BR-Z-02", category("Z", seller_vat_id=None), term="BT-31"),
    Case("BR-Z-05", category("Z", lines=_one_line("Z", "5.00")), term="BT-152"),
    Case("BR-Z-08", category("Z", vat_overrides={("Z", "0"): {"taxable_amount": "1.00"}}),
         term="BT-116"),
    Case("BR-Z-09", category("Z", vat_overrides={("Z", "0"): {"tax_amount": "1.00"}}),
         term="BT-117"),
    Case("BR-Z-10", category("Z", exemption_reasons={"Z": ("VATEX-EU-132", "Exonéré")}),
         term="BT-120"),
    Case("BR-E-02", category("E", seller_vat_id=None), term="BT-31"),
    Case("BR-E-05", category("E", lines=_one_line("E", "20.00")), term="BT-152"),
    Case("BR-E-09", category("E", vat_overrides={("E", "0"): {"tax_amount": "3.00"}}),
         term="BT-117"),
    Case("BR-E-10", category("E", exemption_reasons={}), term="BT-120"),
    Case("BR-AE-02", category("AE", buyer_vat_id=None, buyer_siret=None), term="BT-48"),
    Case("BR-AE-05", category("AE", lines=_one_line("AE", "20.00")), term="BT-152"),
    Case("BR-AE-10", category("AE", exemption_reasons={}), term="BT-120"),
    Case("BR-IC-02", category("K", buyer_vat_id=None), term="BT-48"),
    Case("BR-IC-05", category("K", lines=_one_line("K", "20.00")), term="BT-152"),
    Case("BR-IC-11", category("K", delivery_date=None), term="BT-72"),
    Case("BR-IC-12", category("K", deliver_to_country=None), term="BT-80"),
    Case("BR-G-02", category("G", seller_vat_id=None), term="BT-31"),
    Case("BR-G-10", category("G", exemption_reasons={}), term="BT-120"),
    Case("BR-O-02", category("O", seller_vat_id=build.SELLER_VAT_ID), term="BT-31"),
    Case("BR-O-03", category("O", buyer_vat_id=build.REGION_VAT_ID,
                             allowances=[dict(ALLOWANCE, vat_category="O", vat_rate=None)]),
         term="BT-48"),
    Case("BR-O-05", category("O", lines=_one_line("O", "0")), term="BT-152"),
    Case("BR-O-06", category("O", allowances=[dict(ALLOWANCE, vat_category="O", vat_rate="0")]),
         term="BT-96"),
    Case("BR-O-10", category("O", exemption_reasons={}), term="BT-120"),
    Case("BR-O-11", category("O", lines=_one_line("O", None) + _one_line("S", "20.00")),
         term="BT-118"),
    Case("BR-O-12", category("O", lines=_one_line("O", None) + _one_line("S", "20.00")),
         term="BT-151"),
    Case("BR-O-13", category("O", allowances=[ALLOWANCE]), term="BT-95"),
    Case("BR-O-14", category("O", charges=[CHARGE]), term="BT-102"),
    Case("BR-AF-05", category("L", lines=_one_line("L", "0")), term="BT-152"),
    Case("BR-AF-09", category("L", vat_overrides={("L", "7"): {"tax_amount": "1.00"}}),
         term="BT-117"),
    Case("BR-AF-10", category("L", exemption_reasons={"L": (None, "Exonéré")}), term="BT-120"),
    Case("BR-AG-05", category("M", lines=_one_line("M", "-1.00")), term="BT-152"),
    Case("BR-AG-08", category("M", vat_overrides={("M", "4"): {"taxable_amount": "1.00"}}),
         term="BT-116"),
    # Values the parser could not read.
    Case("FORMAT-VALUE", with_(totals={"payable": "8 707,46"}), term="BT-115"),
    Case("FORMAT-VALUE", edited({"cii": "//ram:IssueDateTime/udt:DateTimeString",
                                 "ubl": "/ubl:Invoice/cbc:IssueDate"}, "2 mars 2026"),
         term="BT-2"),
    # France, public buyer (CCP D2192-2).
    Case("FR-SIRET-SELLER", with_(seller_siret=None), profile="fr-public", term="BT-30"),
    Case("FR-SIRET-SELLER", with_(seller_siret="41234567000018"), profile="fr-public"),
    Case("FR-SIRET-BUYER", with_(buyer_siret=None), profile="fr-public", term="BT-47"),
    Case("FR-SIRET-BUYER", with_(buyer_siret="20005376700015"), profile="fr-public"),
    Case("FR-SIRET-RECIPIENT", with_(buyer_siret=build.SELLER_SIRET), profile="fr-public",
         term="BT-47"),
    Case("FR-CODE-SERVICE", with_(code_service=None), profile="fr-public", term="BT-10"),
    Case("FR-ENGAGEMENT", with_(engagement=None, contract=None), profile="fr-public",
         term="BT-13"),
    Case("FR-IBAN", with_(iban=None), profile="fr-public", term="BT-84"),
    Case("FR-IBAN", with_(iban="FR7630004000031234567890144"), profile="fr-public"),
    Case("FR-VAT-SELLER", with_(seller_vat_id="FR00412345670"), profile="fr-public",
         term="BT-31"),
    Case("FR-SIREN-VAT", with_(seller_vat_id=build.REGION_VAT_ID), profile="fr-public",
         term="BT-31"),
]


@pytest.mark.parametrize(
    "case, fmt",
    [pytest.param(case, fmt, id=f"{case.rule}-{fmt}-{index}")
     for index, case in enumerate(CASES) for fmt in case.formats],
)
def test_a_broken_invoice_is_reported_under_the_rule_it_breaks(case, fmt):
    report = report_of(case.make(GENERATORS[fmt]), case.profile)
    found = [error for error in report.errors if error.rule == case.rule]
    assert found, f"{case.rule} not reported; got {[(e.rule, e.message) for e in report.errors]}"
    finding = found[0]
    if case.term:
        assert finding.term == case.term
    assert finding.location and finding.message.endswith((".", ")"))
    assert not report.valid


def test_every_implemented_rule_family_is_exercised():
    tested = {case.rule for case in CASES}
    for rule in ("BR-01", "BR-16", "BR-CO-10", "BR-CO-17", "BR-S-08", "BR-Z-09", "BR-E-10",
                 "BR-AE-02", "BR-IC-12", "BR-G-10", "BR-O-11", "BR-AF-05", "BR-AG-05",
                 "BR-CL-01", "BR-DEC-23", "FR-SIRET-RECIPIENT"):
        assert rule in tested


# --- fail closed --------------------------------------------------------------------------------

def test_a_rule_missing_its_input_is_an_error_not_a_pass():
    document = build.edit(build.cii(lines=3), "(//ram:LineTotalAmount)[2]", "douze")
    errors = {error.rule: error for error in report_of(document).errors}
    assert "FORMAT-VALUE" in errors
    assert "cannot be checked" in errors["BR-CO-10"].message
    assert "line 2" in errors["BR-CO-10"].message
    assert "cannot be checked" in errors["BR-CO-13"].message
    assert "cannot be checked" in errors["BR-S-08"].message


def test_a_missing_charge_indicator_blocks_the_allowance_and_charge_totals():
    document = build.edit(build.cii(lines=1, allowances=[ALLOWANCE]),
                          "//ram:SpecifiedTradeAllowanceCharge/ram:ChargeIndicator", None)
    rules = {error.rule for error in report_of(document).errors}
    assert {"FORMAT-VALUE", "BR-CO-11", "BR-CO-12"} <= rules


def test_vat_total_may_be_left_out_only_when_there_is_no_vat():
    without_vat = build.cii(**CATEGORY_DOCUMENTS["E"], totals={"tax": None})
    assert report_of(without_vat).errors == []
    report = report_of(build.cii(lines=2, totals={"tax": None}))
    assert "BR-CO-14" in {error.rule for error in report.errors}


# --- tolerance: one cent per line summed --------------------------------------------------------

def test_a_rounding_difference_within_one_cent_per_line_is_a_warning():
    correct = parse(build.cii()).totals.line_total  # 20 lines: up to 0.20 tolerated
    report = report_of(build.cii(totals={"line_total": str(correct + Decimal("0.05"))}))
    assert report.valid
    (warning,) = report.warnings
    assert warning.rule == "BR-CO-10" and "0.05" in warning.message


def test_a_difference_beyond_the_tolerance_is_an_error():
    correct = parse(build.cii()).totals.line_total
    report = report_of(build.cii(totals={"line_total": str(correct + Decimal("0.21"))}))
    assert [error.rule for error in report.errors] == ["BR-CO-10"]


def test_vat_computed_line_by_line_may_differ_by_a_cent_per_line():
    # Seven lines at 5.5 %: per line VAT rounding can drift from VAT on the total.
    lines = [dict(name="Repas", quantity="1", unit_price="10.09", vat_rate="5.50")] * 7
    on_total = parse(build.cii(lines=lines)).vat_breakdown[0].tax_amount
    drifted = str(on_total + Decimal("0.03"))
    report = report_of(build.cii(lines=lines,
                                 vat_overrides={("S", "5.50"): {"tax_amount": drifted}}))
    assert report.valid
    assert {warning.rule for warning in report.warnings} == {"BR-CO-17", "BR-S-09"}


def test_totals_equal_exactly_where_nothing_is_summed():
    report = report_of(build.cii(totals={"payable": "8707.47"}))
    assert [error.rule for error in report.errors] == ["BR-CO-16"]


# --- outcome ------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    dict(code_service=None),
    dict(engagement=None, contract=None),
    dict(buyer_siret=build.SELLER_SIRET),
    dict(buyer_siret=None),
    dict(code_service=None, engagement=None, contract=None, buyer_siret="20005376700015"),
])
def test_only_recipient_errors_mean_a_recycler(overrides):
    report = report_of(build.cii(**overrides), "fr-public")
    assert report.errors and all(error.category == "recipient" for error in report.errors)
    assert report.outcome == "A_RECYCLER"


@pytest.mark.parametrize("overrides", [
    dict(totals={"payable": "1.00"}),
    dict(iban=None),
    dict(seller_siret="41234567000018"),
    dict(code_service=None, totals={"payable": "1.00"}),
])
def test_any_billing_error_means_rejetee(overrides):
    report = report_of(build.cii(**overrides), "fr-public")
    assert report.outcome == "REJETEE"


def test_an_engagement_alone_or_a_contract_alone_is_enough():
    assert report_of(build.cii(contract=None), "fr-public").valid
    assert report_of(build.cii(engagement=None), "fr-public").valid


def test_en16931_does_not_judge_the_recipient():
    report = report_of(build.cii(code_service=None, buyer_siret=build.SELLER_SIRET, iban=None))
    assert report.valid


# --- locations ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", GENERATORS)
def test_findings_point_at_the_faulty_element(fmt):
    document = GENERATORS[fmt](
        lines=[dict(name="a"), dict(name="b", quantity="1", unit_price="1.005",
                                    net_amount="1.005")],
        totals={"payable": "1.00"},
    )
    root = etree.fromstring(document)
    errors = {error.rule: error for error in report_of(document).errors}
    (due,) = root.xpath(errors["BR-CO-16"].location, namespaces=build.NAMESPACES)
    assert due.text == "1.00"
    (line_amount,) = root.xpath(errors["BR-DEC-23"].location, namespaces=build.NAMESPACES)
    assert line_amount.text == "1.005"
    assert "line 2" in errors["BR-DEC-23"].message


# --- the profile is a caller's choice, checked ----------------------------------------------------

def test_an_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="unknown validation profile"):
        validate(parse(build.cii(lines=1)), "peppol")


def test_fr_public_needs_a_valid_buyer_siret():
    invoice = parse(build.cii(lines=1))
    with pytest.raises(ValueError, match="buyer_siret"):
        validate(invoice, "fr-public")
    with pytest.raises(ValueError, match="not a valid SIRET"):
        validate(invoice, "fr-public", buyer_siret="20005376700015")
