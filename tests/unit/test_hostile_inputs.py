"""Whatever a sender posts, ``parse`` returns a canonical invoice or raises UnreadableDocument
with a reason; it never reads a local file, never expands entities, never crashes."""

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.invoices.domain.validation import validate
from services.invoices.formats import MAX_DOCUMENT_BYTES, UnreadableDocument, detect, parse
from shared.events.invoice_document import CanonicalInvoice
from deploy.simulators import suppliers as build

CII_ROOT = (b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:'
            b'CrossIndustryInvoice:100">')


def xxe(path: str) -> bytes:
    return (b'<?xml version="1.0"?>\n<!DOCTYPE rsm:CrossIndustryInvoice [\n'
            b'  <!ENTITY secret SYSTEM "file://' + path.encode() + b'">\n]>\n' + CII_ROOT
            + b"<rsm:ExchangedDocument>&secret;</rsm:ExchangedDocument>"
            b"</rsm:CrossIndustryInvoice>")


BILLION_LAUGHS = b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n' + b"".join(
    f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'.encode()
    for i in range(1, 10)
) + b"]>\n<lolz>&lol9;</lolz>"


def reason_of(raw: bytes) -> str:
    with pytest.raises(UnreadableDocument) as raised:
        parse(raw)
    assert raised.value.message.endswith(".")
    return raised.value.reason


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-MARKER")
    return path


def test_an_external_entity_is_refused_and_never_read(secret_file):
    with pytest.raises(UnreadableDocument) as raised:
        parse(xxe(str(secret_file)))
    assert raised.value.reason == "xml_forbidden_construct"
    assert "TOP-SECRET-MARKER" not in str(raised.value)


def test_an_external_entity_to_etc_passwd_is_refused():
    assert reason_of(xxe("/etc/passwd")) == "xml_forbidden_construct"


def test_a_doctype_hidden_by_utf16_is_refused(secret_file):
    document = xxe(str(secret_file)).decode().replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
    assert reason_of(document) == "xml_forbidden_construct"


def test_billion_laughs_is_refused_before_any_expansion():
    assert reason_of(BILLION_LAUGHS) == "xml_forbidden_construct"


@pytest.mark.parametrize("payload", ["xxe", "laughs"])
def test_hostile_xml_inside_a_pdf_is_refused_too(payload, secret_file):
    xml = xxe(str(secret_file)) if payload == "xxe" else BILLION_LAUGHS
    with pytest.raises(UnreadableDocument) as raised:
        parse(build.pdf_with_attachment(xml))
    assert raised.value.reason == "xml_forbidden_construct"
    assert "embedded in the PDF" in raised.value.message
    assert "TOP-SECRET-MARKER" not in str(raised.value)


def test_a_50_megabyte_file_is_too_large():
    assert reason_of(CII_ROOT + b" " * (50 * 1024 * 1024)) == "too_large"


def test_the_limit_is_checked_before_anything_is_parsed():
    assert reason_of(b"%PDF-1.7" + b"\0" * MAX_DOCUMENT_BYTES) == "too_large"


def test_a_deeply_nested_document_is_unreadable_not_a_crash():
    depth = 100_000
    document = b"<a>" * depth + b"</a>" * depth
    assert reason_of(document) == "not_xml"


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b" \r\n\t ", "empty"),
    (bytes(range(256)) * 40, "not_xml"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not_xml"),
    (b'{"invoice": 1}', "not_xml"),
    (b"<Invoice><ID>1</ID>", "not_xml"),
    (b"<Invoice/>", "unknown_namespace"),
    (b'<Invoice xmlns="urn:example:invoice"/>', "unknown_namespace"),
    (b'<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"/>',
     "unsupported_document"),
    (b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>',
     "unsupported_document"),
    (b"%PDF-1.7\n", "pdf_unreadable"),
    (b"%PDF-1.4\n" + bytes(range(256)) * 20, "pdf_unreadable"),
])
def test_unreadable_inputs_have_a_reason(raw, reason):
    assert reason_of(raw) == reason


def test_a_truncated_pdf_is_unreadable():
    pdf = build.facturx_pdf(lines=2)
    assert reason_of(pdf[: len(pdf) // 2]) == "pdf_unreadable"


def test_a_pdf_without_xml_is_not_a_factur_x():
    assert reason_of(build.plain_pdf("Facture papier")) == "pdf_without_xml"
    assert detect(build.plain_pdf()) == "facturx"


def test_an_embedded_file_that_is_not_xml_is_named_as_such():
    with pytest.raises(UnreadableDocument) as raised:
        parse(build.pdf_with_attachment(b"PK\x03\x04 not xml", "factur-x.xml"))
    assert raised.value.reason == "not_xml"
    assert "embedded in the PDF" in raised.value.message


def test_detect_refuses_what_parse_refuses():
    with pytest.raises(UnreadableDocument):
        detect(b"<Invoice/>")


# --- fuzzing ------------------------------------------------------------------------------------

def parse_and_validate(raw: bytes) -> None:
    """The property: a canonical invoice that every profile can judge, or UnreadableDocument."""
    try:
        invoice = parse(raw)
    except UnreadableDocument as exc:
        assert exc.reason and exc.message
        return
    assert isinstance(invoice, CanonicalInvoice)
    validate(invoice)
    validate(invoice, "fr-public", buyer_siret=build.REGION_SIRET)
    assert CanonicalInvoice.model_validate_json(invoice.model_dump_json()) == invoice


FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = {
    "cii": build.cii(lines=3, allowances=[dict(amount="5.00", reason="Remise")]),
    "ubl": build.ubl(lines=3, charges=[dict(amount="5.00", reason="Port")]),
    "credit_note": build.ubl_credit_note(lines=2),
}
TEXT_VALUE = re.compile(rb">([^<>]+)<")


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(raw):
    parse_and_validate(raw)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_documents(seed, data):
    raw = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        position = data.draw(st.integers(0, len(raw)), label="position")
        operation = data.draw(st.sampled_from(["flip", "cut", "insert", "delete", "truncate"]))
        if operation == "flip" and position < len(raw):
            raw[position] ^= data.draw(st.integers(1, 255))
        elif operation == "insert":
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del raw[position:position + data.draw(st.integers(1, 64))]
        elif operation == "cut":
            raw = raw[:position] + raw[position + 1:]
        elif operation == "truncate":
            raw = raw[:position]
    parse_and_validate(bytes(raw))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_documents_with_odd_values(seed, data):
    """Well-formed documents whose texts are replaced by anything: unreadable values are
    recorded, never raised."""
    raw = SEEDS[seed]
    values = list(TEXT_VALUE.finditer(raw))
    for _ in range(data.draw(st.integers(1, 5))):
        match = data.draw(st.sampled_from(values))
        text = data.draw(st.one_of(
            st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
            st.decimals(allow_nan=True, allow_infinity=True).map(str),
            st.sampled_from(["", " ", "-0", "1e999", "NaN", "0.000000001", "99999999999999999999",
                             "2026-02-30", "20260230", "true", "S", "O", "380"]),
        ))
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").encode()
        raw = raw[:match.start(1)] + escaped + raw[match.end(1):]
        values = list(TEXT_VALUE.finditer(raw))
    parse_and_validate(raw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_pdfs(data):
    raw = bytearray(PDF_SEED)
    position = data.draw(st.integers(0, len(raw) - 1))
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[:position]
    else:
        raw[position] ^= data.draw(st.integers(1, 255))
    parse_and_validate(bytes(raw))


PDF_SEED = build.facturx_pdf(lines=1)
