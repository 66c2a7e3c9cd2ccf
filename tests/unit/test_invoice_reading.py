"""How supplier XML is read fast without reading it differently: the term readers, compiled
and generated in Python, the parser that leaves out indentation, the canonical models built
without a second validation, and the validation groups."""

import random
import re
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import BaseModel

from services.invoices.domain.validation import validate
from services.invoices.formats import UnreadableDocument, cii, parse, ubl
from services.invoices.formats import _xml
from services.invoices.formats._xml import (
    Terms,
    Values,
    compiled_readers,
    plain_decimal,
    read_xml,
    stripped,
    use_compiled_readers,
)
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

@pytest.fixture(params=["compiled", "python"])
def reading(request):
    """The test runs with the compiled readers, then with the Python ones."""
    use_compiled_readers(request.param == "compiled")
    yield request.param
    use_compiled_readers(True)


def _element(xml: str) -> etree._Element:
    return etree.fromstring(f'<a:root xmlns:a="{NS["a"]}" xmlns:b="{NS["b"]}">{xml}</a:root>')


READER = Terms({"x": "a:P/a:X", "y": "a:P/b:Y", "p": "a:P", "z": "a:Z"}, NS,
               every={"z"}, order=("y", "z", "x", "p"))


def test_the_installed_package_reads_with_the_compiled_readers():
    # Built by pip install -e . (make install); without it every invoice takes the slow path.
    assert compiled_readers()
    assert cii._LINE.read_in_order == cii._LINE.compiled.read_in_order


def test_the_first_element_of_a_term_is_its_first_in_document_order(reading):
    root = _element("<a:P><!--c--><a:Q><a:X>nested</a:X></a:Q><?pi x?></a:P>"
                    "<a:P><a:X>second</a:X><a:X>third</a:X></a:P>")
    found = READER.read(root)
    assert found["x"].text == "second"
    assert found["p"] is root[0]


def test_a_name_in_another_namespace_or_place_is_not_the_term(reading):
    root = _element("<b:P><a:X>wrong namespace</a:X></b:P><a:X>not below P</a:X>"
                    "<a:P><a:Y>wrong namespace</a:Y></a:P>")
    assert set(READER.read(root)) == {"p"}


def test_every_element_of_a_repeated_term_is_kept_in_order(reading):
    root = _element("<a:Z>1</a:Z><a:P/><a:Z>2</a:Z><a:Z/>")
    assert [z.text for z in READER.read(root)["z"]] == ["1", "2", None]


def test_reading_in_order_answers_the_same_terms(reading):
    root = _element("<a:P><b:Y>y</b:Y><a:X>x</a:X></a:P><a:Z>z</a:Z>")
    found = READER.read(root)
    assert READER.read_in_order(root) == (found["y"], found["z"], found["x"], found["p"])
    assert READER.read_in_order(_element("")) == (None, None, None, None)


VALUES = Terms({"text": "a:P/a:T", "stripped": "a:P/a:S", "amount": "a:P/a:A",
                "unit": "a:P/a:A/@unit", "element": "a:P/a:E"}, NS,
               order=("text", "stripped", "amount", "unit", "element"),
               read_as={"text": "text", "stripped": "stripped", "amount": "decimal"})


def test_terms_read_as_values_are_those_of_their_first_element(reading):
    root = _element('<a:P><a:T> t </a:T><a:S> s\n<!--c-->x</a:S><a:A unit="C62">12.50</a:A><a:E/>'
                    '</a:P><a:P><a:T>2</a:T><a:S>2</a:S><a:A unit="2">2</a:A><a:E/></a:P>')
    decimals: dict[str, Decimal] = {}
    text, kept, amount, unit, element = VALUES.read_in_order(root, decimals)
    assert (text, kept, unit) == (" t ", "s", "C62")
    assert repr(amount) == "Decimal('12.50')" and decimals == {"12.50": amount}
    assert element is root[0][3]
    assert VALUES.read(root, {}) == {"text": " t ", "stripped": "s", "amount": amount,
                                     "unit": "C62", "element": element}


def test_an_attribute_is_that_of_the_first_element_at_its_path(reading):
    root = _element('<a:P><a:A>1</a:A><a:A unit="X">2</a:A></a:P>')
    assert VALUES.read_in_order(root, {})[2:4] == (Decimal("1"), None)
    assert VALUES.read(root, {}) == {"amount": Decimal("1"), "unit": None}
    empty = _element("<a:P><a:T/><a:S> </a:S></a:P>")
    assert VALUES.read(empty, {}) == {"text": None, "stripped": None}


def test_an_amount_already_read_is_the_same_decimal(reading):
    known = Decimal("12.5")
    decimals = {" 12.5": known}
    root = _element("<a:P><a:A> 12.5</a:A></a:P>")
    assert VALUES.read_in_order(root, decimals)[2] is known


def test_a_reader_of_amounts_needs_the_amounts_read_so_far(reading):
    with pytest.raises(TypeError, match="decimals"):
        VALUES.read_in_order(_element(""))
    assert READER.read_in_order(_element("")) == (None, None, None, None)


_CONVERT = Terms({"stripped": "a:V", "amount": "a:V/a:W"}, NS, order=("stripped", "amount"),
                 read_as={"stripped": "stripped", "amount": "decimal"})


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="05.+-eE_ \t\n\u00a0\u2003\u3000\u0085\u0661x\u00e9", max_size=8))
def test_both_readers_convert_a_text_alike(written):
    # Stripped as str.strip() strips (Unicode spaces included); a Decimal only for ASCII
    # digits with at most one dot, anything else left as the text for decimal_text.
    root = _element(f"<a:V>{escape(written)}<a:W>{escape(written)}</a:W></a:V>")
    as_read = root[0].text
    expected = (stripped(as_read), plain_decimal(root[0][0].text, {}))
    for read in (_CONVERT.compiled.read_in_order, _CONVERT._python[1]):
        decimals: dict[str, Decimal] = {}
        assert [repr(value) for value in read(root, decimals)] == [repr(v) for v in expected]
        assert decimals == ({} if not isinstance(expected[1], Decimal)
                            else {root[0][0].text: expected[1]})


def test_a_compiled_reader_of_another_source_is_refused(monkeypatch):
    monkeypatch.setattr(_xml._walk, "SOURCE_SHA256", "0" * 64)
    with pytest.raises(ImportError, match="rebuild"):
        _xml._check_built_from_source()


@pytest.mark.parametrize("paths, options, message", [
    ({"x": "a:X", "y": "a:X"}, {}, "same path"),
    ({"x": "a:X", "y": "a:X"}, {"read_as": {"y": "text"}}, "same path"),
    ({"x": "a:X/@u", "y": "a:X/@u"}, {}, "same path"),
    ({"x": "a:X[1]"}, {}, "not a plain path"),
    ({"x": "a:X/@b:u"}, {}, "not a plain path"),
    ({"x": "a:X"}, {"every": {"y"}}, "unknown terms"),
    ({"x": "a:X"}, {"read_as": {"y": "text"}}, "unknown terms"),
    ({"x": "a:X"}, {"read_as": {"x": "number"}}, "not text, stripped or decimal"),
    ({"x": "a:X"}, {"every": {"x"}, "read_as": {"x": "text"}}, "both in every and in read_as"),
    ({"x": "a:X/@u"}, {"read_as": {"x": "text"}}, "attribute"),
    ({"x": "a:X", "y": "a:Y"}, {"order": ("x",)}, "does not list"),
    ({"x": "a:X", "y": "a:Y"}, {"order": ("x", "x")}, "does not list"),
])
def test_a_reader_that_cannot_be_right_is_refused_at_import(paths, options, message):
    with pytest.raises(ValueError, match=message):
        Terms(paths, NS, **options)


# --- the compiled and the Python readers read the same invoices ---------------------------------

def _read_both(raw: bytes) -> list:
    """parse + both validation profiles of ``raw`` with the compiled readers, then the Python
    ones: the canonical invoice as JSON, the fields set, the findings, or why it is unreadable."""
    results = []
    for compiled in (True, False):
        use_compiled_readers(compiled)
        try:
            invoice = parse(raw)
        except UnreadableDocument as exc:
            results.append((exc.reason, exc.message))
            continue
        finally:
            use_compiled_readers(True)
        results.append((invoice.model_dump(mode="json"),
                        invoice.model_dump(mode="json", exclude_unset=True),
                        validate(invoice), _findings(invoice)))
    return results


@pytest.mark.parametrize("name", DOCUMENTS)
def test_both_readers_read_the_same_invoice(name):
    compiled, python = _read_both(DOCUMENTS[name]())
    assert compiled == python


def _mutated(raw: bytes, rng: random.Random) -> bytes:
    """``raw`` with a few elements removed, repeated, moved to another namespace, emptied, or
    given other texts, attributes, comments and processing instructions."""
    root = etree.fromstring(raw)
    for _ in range(rng.randint(1, 3)):
        element = rng.choice(list(root.iter(etree.Element)))
        parent = element.getparent()
        operation = rng.randrange(8)
        if operation == 0 and parent is not None:
            parent.remove(element)
        elif operation == 1 and parent is not None:
            parent.insert(parent.index(element), etree.fromstring(etree.tostring(element)))
        elif operation == 2 and not len(element):
            element.text = rng.choice(["", " ", " 12.50 ", "12,50", "1e3", "+3.", ".5", "VAT",
                                       "\u00a0S\u2003", "x" * 120, "20260230", "0.001"])
        elif operation == 3:
            element.insert(rng.randrange(len(element) + 1), rng.choice(
                [etree.Comment("c"), etree.ProcessingInstruction("pi", "x")]))
        elif operation == 4:
            element.set(rng.choice(["unitCode", "currencyID", "schemeID", "format"]),
                        rng.choice(["", "C62", "EUR", "USD", "0009", "VA", "FC", "103"]))
        elif operation == 5:
            element.tag = etree.QName(rng.choice([*build.NAMESPACES.values(), "urn:other"]),
                                      etree.QName(element).localname)
        elif operation == 6 and not len(element) and element.text:
            element.text = etree.CDATA(f" {element.text} ")
        elif operation == 7 and len(element):
            element[rng.randrange(len(element))].tail = rng.choice(["  ", "text"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8",
                          pretty_print=rng.random() < 0.5)


def test_both_readers_read_the_same_altered_invoices():
    rng = random.Random(20260302)
    originals = [build.cii(lines=3, **RICH), build.ubl(lines=3, **RICH),
                 build.ubl_credit_note(lines=2), build.cii(profile="extended", lines=2),
                 build.cii(profile="basicwl")]
    for _ in range(150):
        raw = _mutated(rng.choice(originals), rng)
        compiled, python = _read_both(raw)
        assert compiled == python, raw.decode()


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
