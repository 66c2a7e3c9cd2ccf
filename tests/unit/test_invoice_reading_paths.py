"""The shortcuts that keep parsing and validating fast answer what the long way answers: line
locations past the prepared ones, amounts looked up by their text as written, the rules on
lines that only look closer when a line needs it, and a VAT computation too large for the
cent."""

from decimal import Decimal

import pytest
from lxml import etree

from services.invoices.domain.validation import validate
from services.invoices.formats import cii, parse, ubl
from services.invoices.formats._xml import Terms, Values
from deploy.simulators import suppliers as build

LINE_PATHS = {
    "cii": "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
           "/ram:IncludedSupplyChainTradeLineItem",
    "ubl": "/ubl:Invoice/cac:InvoiceLine",
}


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_every_line_of_a_long_invoice_has_its_own_location(syntax):
    generate = build.cii if syntax == "cii" else build.ubl
    invoice = parse(generate(lines=205))
    assert [line.location for line in invoice.lines] == [
        f"{LINE_PATHS[syntax]}[{index}]" for index in range(1, 206)]
    assert [line.id for line in invoice.lines[199:202]] == ["200", "201", "202"]


_AMOUNT = Terms({"v": "a:V"}, {"a": "urn:a"})


@pytest.mark.parametrize("written", ["12.50", " 12.50 ", "\n12.50\t"])
def test_an_amount_read_by_its_text_is_the_amount_read_from_its_element(written):
    values = Values()
    element = etree.fromstring(f'<a:V xmlns:a="urn:a">{written}</a:V>')
    by_element = values.decimal(element, "v", "/x", _AMOUNT)
    assert by_element == Decimal("12.50") and str(by_element) == "12.50"
    assert values.decimals[written] is by_element
    assert values.decimal_text(written, "v", "/x", _AMOUNT) is by_element
    assert values.decimal_text("12.50", "v", "/x", _AMOUNT) is by_element
    assert values.unreadable == []


def test_an_amount_that_is_not_a_decimal_is_reported_each_time_it_is_read():
    values = Values()
    assert values.decimal_text("12,50", "v", "/x[1]", _AMOUNT) is None
    assert values.decimal_text("12,50", "v", "/x[2]", _AMOUNT) is None
    assert values.decimal_text("  ", "v", "/x[3]", _AMOUNT) is None
    assert values.decimal_text(None, "v", "/x[4]", _AMOUNT) is None
    assert [(v.location, v.value) for v in values.unreadable] == [
        ("/x[1]/a:V", "12,50"), ("/x[2]/a:V", "12,50")]


def _line_at(syntax: str, position: int) -> str:
    path = {"cii": cii._LINE_LOCATION, "ubl": ubl._VARIANTS[
        f"{{{ubl.INVOICE}}}Invoice"].line_location}[syntax]
    return f"{path}[{position}]"


# Each anomaly on the 15th of 20 lines: the rule on lines must still see it although the
# lines before it are all well formed.
ANOMALIES = [
    ({"unit_code": None}, "BR-23", "BT-130"),
    ({"unit_price": Decimal("-1.00"), "net_amount": Decimal("-2.00")}, "BR-27", "BT-146"),
    ({"vat_category": "X"}, "BR-CL-18", "BT-151"),
    ({"net_amount": Decimal("10.005")}, "BR-DEC-23", "BT-131"),
    ({"gross_price": Decimal("-5.00")}, "BR-28", "BT-148"),
]


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
@pytest.mark.parametrize("change, rule, term", ANOMALIES)
def test_a_single_wrong_line_among_good_ones_is_reported(syntax, change, rule, term):
    lines = build.default_lines(20)
    lines[14] = build.replace(lines[14], **change)
    generate = build.cii if syntax == "cii" else build.ubl
    errors = validate(parse(generate(lines=lines))).errors
    found = [e for e in errors if e.rule == rule]
    assert found, [e.rule for e in errors]
    assert found[0].term == term
    assert found[0].location.startswith(_line_at(syntax, 15))
    assert "line 15 (id 15)" in found[0].message.lower()


def test_a_vat_computation_beyond_the_cent_is_an_error_not_a_crash():
    raw = build.edit(build.ubl(lines=3), "//cac:TaxTotal/cac:TaxSubtotal[1]/cbc:TaxableAmount",
                     "500000000000000000000000000")
    errors = {e.rule: e for e in validate(parse(raw)).errors}
    for rule in ("BR-CO-17", "BR-S-09"):
        assert errors[rule].term == "BT-117"
        assert "cannot be checked" in errors[rule].message
        assert "500000000000000000000000000 × 20.00 %" in errors[rule].message
