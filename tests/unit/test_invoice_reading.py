"""How supplier XML is read fast without reading it differently: the generated term readers,
the parser that leaves out indentation, the canonical models built without a second
validation, and the validation groups."""

import re
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel

from services.invoices.domain.validation import validate
from services.invoices.formats import UnreadableDocument, cii, parse, ubl
from services.invoices.formats._xml import Terms, Values, read_xml
from shared.events.invoice_document import CanonicalInvoice
from deploy.simulators import suppliers as build

NS = {"a": "urn:example:a", "b": "urn:example:b"}
RICH = dict(
    allowances=[dict(amount="25.00", reason="Remise", reason_code="95")],
    charges=[dict(amount="12.50", reason="Port", vat_rate="10.00")],
    prepaid="100.00",
    rounding="0.01",
    invoicing_period=(date(2026, 2, 1), date(2026, 2, 28)),
)
DOCUMENTS = {
    "cii": lambda: build.cii(**RICH),
    "cii-minimum": lambda: build.cii(profile="minimum"),
    "ubl": lambda: build.ubl(**RICH),
    "credit-note": lambda: build.ubl_credit_note(lines=3),
    "no-buyer": lambda: build.edit(build.cii(lines=2), "//ram:BuyerTradeParty", None),
    "unreadable": lambda: build.cii(lines=2, totals={"payable": "12,50"}),
}


# --- the term reader ----------------------------------------------------------------------------

def _element(xml: str) -> etree._Element:
    return etree.fromstring(f'<a:root xmlns:a="{NS["a"]}" xmlns:b="{NS["b"]}">{xml}</a:root>')


READER = Terms({"x": "a:P/a:X", "y": "a:P/b:Y", "p": "a:P", "z": "a:Z"}, NS,
               every={"z"}, order=("y", "z", "x", "p"))


def test_the_first_element_of_a_term_is_its_first_in_document_order():
    root = _element("<a:P><!--c--><a:Q><a:X>nested</a:X></a:Q><?pi x?></a:P>"
                    "<a:P><a:X>second</a:X><a:X>third</a:X></a:P>")
    found = READER.read(root)
    assert found["x"].text == "second"
    assert found["p"] is root[0]


def test_a_name_in_another_namespace_or_place_is_not_the_term():
    root = _element("<b:P><a:X>wrong namespace</a:X></b:P><a:X>not below P</a:X>"
                    "<a:P><a:Y>wrong namespace</a:Y></a:P>")
    assert set(READER.read(root)) == {"p"}


def test_every_element_of_a_repeated_term_is_kept_in_order():
    root = _element("<a:Z>1</a:Z><a:P/><a:Z>2</a:Z><a:Z/>")
    assert [z.text for z in READER.read(root)["z"]] == ["1", "2", None]


def test_reading_in_order_answers_the_same_terms():
    root = _element("<a:P><b:Y>y</b:Y><a:X>x</a:X></a:P><a:Z>z</a:Z>")
    found = READER.read(root)
    assert READER.read_in_order(root) == (found["y"], found["z"], found["x"], found["p"])
    assert READER.read_in_order(_element("")) == (None, None, None, None)


@pytest.mark.parametrize("paths, options, message", [
    ({"x": "a:X", "y": "a:X"}, {}, "same path"),
    ({"x": "a:X[1]"}, {}, "not a plain path"),
    ({"x": "a:X"}, {"every": {"y"}}, "unknown terms"),
    ({"x": "a:X", "y": "a:Y"}, {"order": ("x",)}, "does not list"),
    ({"x": "a:X", "y": "a:Y"}, {"order": ("x", "x")}, "does not list"),
])
def test_a_reader_that_cannot_be_right_is_refused_at_import(paths, options, message):
    with pytest.raises(ValueError, match=message):
        Terms(paths, NS, **options)


# --- the parser leaves out indentation, never a value ------------------------------------------

@pytest.mark.parametrize("name", DOCUMENTS)
def test_leaving_out_blank_text_reads_the_same_invoice(name):
    raw = DOCUMENTS[name]()
    assert _parse_tree(read_xml(raw)) == _parse_tree(read_xml(raw, keep_blank_text=True))


def _parse_tree(root: etree._Element) -> CanonicalInvoice:
    if root.tag == cii.ROOT_TAG:
        return cii.parse_cii(root, document_format="cii")
    return ubl.parse_ubl(root, document_format="ubl", blank_text_kept=True)


@pytest.mark.parametrize("value", [
    " <!--c-->FA-1 ", "\n<![CDATA[ FA-1 ]]>", "<!--c-->FA-1", "FA-1<!--c--> ", " \t ",
])
def test_values_around_comments_and_cdata_read_the_same(value):
    raw = build.edit(build.cii(lines=1), "//rsm:ExchangedDocument/ram:ID", "@@")
    raw = raw.replace(b"@@", value.encode())
    assert _parse_tree(read_xml(raw)).number == _parse_tree(
        read_xml(raw, keep_blank_text=True)).number


@pytest.mark.parametrize("scheme", [
    "VAT", " VAT", "V<!--c-->AT", " <!--c-->VAT", "<!--c--> <!--d-->VAT", "VAT<!--c--> ",
    "<x:v xmlns:x='urn:x'>VA</x:v> <x:v xmlns:x='urn:x'>T</x:v>",
])
def test_the_vat_scheme_is_told_as_its_xpath_says(scheme):
    raw = build.ubl(lines=1).replace(b"<cbc:ID>VAT</cbc:ID>", f"<cbc:ID>{scheme}</cbc:ID>".encode())
    as_written = etree.fromstring(raw)
    party_path = f"{ubl._VARIANTS[as_written.tag].root}/{ubl._SELLER_PATH}"
    expected = {
        key: [e.text for e in as_written.xpath(f"{party_path}/{ubl._PARTY_PATHS[key]}",
                                               namespaces=build.NAMESPACES)][:1] or [None]
        for key in ("vat_id", "tax_registration")
    }
    seller = parse(raw).seller
    assert [seller.vat_id] == expected["vat_id"]
    assert [seller.tax_registration_id] == expected["tax_registration"]


@pytest.mark.parametrize("keep_blank_text", [False, True])
def test_both_parsers_refuse_a_doctype(keep_blank_text, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("TOP-SECRET-MARKER")
    raw = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY s SYSTEM "file://'
           + str(secret).encode() + b'">]><r>&s;</r>')
    for document in (raw, raw.decode().replace('<?xml version="1.0"?>',
                                               '<?xml version="1.0" encoding="UTF-16"?>')
                     .encode("utf-16")):
        with pytest.raises(UnreadableDocument) as raised:
            read_xml(document, keep_blank_text=keep_blank_text)
        assert raised.value.reason == "xml_forbidden_construct"


# --- amounts --------------------------------------------------------------------------------------

_XSD_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
_AMOUNT = Terms({"v": "a:V"}, NS)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789.+-eE_ \u0661\u00b2", max_size=8))
def test_an_amount_is_read_exactly_when_it_is_an_xsd_decimal(written):
    element = etree.fromstring(f"<v>{written}</v>")
    values = Values()
    read = values.decimal(element, "v", "/x", _AMOUNT)
    stripped = written.strip()
    if not stripped:
        assert read is None and values.unreadable == []
    elif _XSD_DECIMAL.fullmatch(stripped):
        assert read == Decimal(stripped) and str(read) == str(Decimal(stripped))
    else:
        assert read is None and [v.value for v in values.unreadable] == [stripped]


def test_a_repeated_amount_is_one_decimal_equal_to_its_text():
    invoice = parse(build.cii(lines=6))
    rates = [line.vat_rate for line in invoice.lines]
    assert rates[0] is rates[3] and rates[0] == Decimal("20.00")
    assert str(rates[0]) == "20.00"


# --- the canonical models -------------------------------------------------------------------------

@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_models_built_are_those_validation_would_build(name):
    invoice = parse(DOCUMENTS[name]())
    validated = CanonicalInvoice.model_validate(invoice.model_dump(exclude_unset=True))
    assert _state(invoice) == _state(validated)


def _state(value):
    """Everything a pydantic model holds, recursively: values, fields set, extra, private."""
    if isinstance(value, BaseModel):
        return (type(value), sorted(value.model_fields_set), value.__pydantic_extra__,
                value.__pydantic_private__, {k: _state(v) for k, v in value.__dict__.items()},
                list(value.__dict__))
    if isinstance(value, list):
        return [_state(item) for item in value]
    if isinstance(value, dict):
        return {key: _state(item) for key, item in value.items()}
    return type(value), value


def test_a_missing_party_has_only_its_required_fields_set():
    buyer = parse(DOCUMENTS["no-buyer"]()).buyer
    assert buyer.model_fields_set == {"name", "siret", "vat_id", "country"}
    assert buyer.address is None and buyer.identifier is None


def test_each_invoice_has_its_own_locations_and_fields_set():
    first, second = parse(build.cii(lines=1)), parse(build.cii(lines=1))
    assert first.locations == second.locations and first.locations is not second.locations
    assert first.model_fields_set is not second.model_fields_set


# --- validation -----------------------------------------------------------------------------------

def _findings(invoice: CanonicalInvoice):
    report = validate(invoice, "fr-public", buyer_siret=build.REGION_SIRET)
    return report.errors, report.warnings


@pytest.mark.parametrize("overrides", [
    {},
    dict(lines=[dict(name="a", vat_rate="10.0"), dict(name="b", vat_rate="10.00"),
                dict(name="c", vat_rate="20.00")], vat_overrides={("S", "10"): {
                    "taxable_amount": "1.00"}}),
    dict(lines=[dict(name="a", vat_rate="0"), dict(name="b", net_amount="1.005")],
         allowances=[dict(amount="1.00", reason="r", vat_rate="5.5")]),
])
def test_validation_judges_an_invoice_read_from_json_alike(overrides):
    invoice = parse(build.cii(**overrides))
    from_json = CanonicalInvoice.model_validate_json(invoice.model_dump_json())
    assert _findings(invoice) == _findings(from_json)


def test_equal_rates_written_differently_are_one_group():
    lines = [dict(name="a", vat_rate="10.0"), dict(name="b", vat_rate="10.00"),
             dict(name="c", vat_rate="20.00")]
    assert validate(parse(build.cii(lines=lines))).errors == []
    without_10 = build.edit(build.cii(lines=lines),
                            "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
                            "[ram:RateApplicablePercent='10.0']", None)
    messages = [e.message for e in validate(parse(without_10)).errors if e.rule == "BR-S-08"]
    assert messages == ["Items of VAT category S use the rate 10.0 % but the VAT breakdown "
                        "has no entry for that rate. Add one."]
