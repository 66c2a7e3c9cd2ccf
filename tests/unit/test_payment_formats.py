"""Payment files: what the bank and the accountant receive is valid, exact and reproducible;
what they send back is read into confirmations, and a hostile file is refused."""

from __future__ import annotations

import http.server
import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from deploy.simulators import counterparty
from services.payments import formats
from services.payments.formats import (
    Confirmation,
    ConfirmationFileInvalid,
    Debtor,
    InvalidOrderBatch,
    OrderBatch,
    OrderLine,
    PaymentFileInvalid,
    accountant,
    file_name,
    pain001,
    read_confirmations,
    render,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "payments"
PAIN = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}
BORDEREAU = {"b": accountant.ORDER_NAMESPACE}
# EPC basic Latin character set, what every SEPA bank carries.
SEPA_CHARACTERS = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]*")

REGION = Debtor(name="Région Hauts-de-France", iban="FR76 3000 1007 9412 3456 7890 185",
                bic="BDFEFRPPCCT", siret="20005376700014")
CREATED = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)


def official_pain001_schema() -> etree.XMLSchema:
    path = resources.files("sepaxml") / "schemas" / "pain.001.001.09.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def own_schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(resources.files(formats) / "schemas" / name)))


def order(number: int = 1, **changes) -> OrderLine:
    line = OrderLine(
        order_id=f"ORD-{number:06d}-1",
        payable_id=f"invoice:7d1c0e52-0000-4000-8000-{number:012d}",
        kind="invoice",
        amount=Decimal("1234.56"),
        payee_name="Atelier Numérique du Nord SAS",
        payee_iban="FR9210207012340001234567890",
        payee_bic="CCBPFRPPLIL",
        payee_siret="41234567000019",
        remittance=f"Facture FA-2026-{number:04d} marché MAR-2025-0451",
        invoice_id=f"7d1c0e52-0000-4000-8000-{number:012d}",
        contract_id="MAR-2025-0451",
        legal_due=date(2026, 3, 20),
    )
    return replace(line, **changes)


def batch(channel: str = "sepa", lines: tuple[OrderLine, ...] | None = None, **changes) -> OrderBatch:
    made = OrderBatch(
        batch_id=f"PR-20260302-{'SEPA' if channel == 'sepa' else 'ACC'}-1",
        channel=channel,
        created_at=CREATED,
        execution_date=date(2026, 3, 4),
        debtor=REGION,
        lines=lines if lines is not None else (order(1), order(2, amount=Decimal("10.05"))),
    )
    return replace(made, **changes)


def texts(document: etree._Element, path: str, namespaces: dict[str, str]) -> list[str]:
    return [element.text for element in document.xpath(path, namespaces=namespaces)]


# --- pain.001 ----------------------------------------------------------------------------------

ODD_CHARACTERS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=90)
NAMES = st.builds(lambda before, core, after: before + core + after, ODD_CHARACTERS,
                  st.sampled_from(["Société Générale", "Œuvres & Fils", "Łódź Straße GmbH",
                                   "L'Atelier « Nord »", "Müller_&_Söhne", "Ångström AB"]),
                  ODD_CHARACTERS)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999.99"), places=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payees=st.lists(st.tuples(NAMES, AMOUNTS, ODD_CHARACTERS, st.booleans()),
                       min_size=1, max_size=25),
       debtor_has_bic=st.booleans())
def test_every_generated_pain001_is_valid_against_the_official_schema(payees, debtor_has_bic):
    lines = tuple(
        order(number, payee_name=name, amount=amount, payee_bic="COBADEFFXXX" if bic else None,
              remittance=f"Facture {number} {remittance}")
        for number, (name, amount, remittance, bic) in enumerate(payees, start=1)
    )
    debtor = REGION if debtor_has_bic else replace(REGION, bic=None)
    content = render(batch(lines=lines, debtor=debtor))

    document = etree.fromstring(content)
    schema = official_pain001_schema()
    assert schema.validate(document), schema.error_log
    names = texts(document, "//p:Cdtr/p:Nm", PAIN)
    assert len(names) == len(lines)
    for name in names:
        assert SEPA_CHARACTERS.fullmatch(name) and 0 < len(name) <= 70
    for remittance in texts(document, "//p:RmtInf/p:Ustrd", PAIN):
        assert SEPA_CHARACTERS.fullmatch(remittance) and 0 < len(remittance) <= 140
    assert texts(document, "//p:EndToEndId", PAIN) == [line.order_id for line in lines]
    total = sum(line.amount for line in lines)
    for level in ("p:GrpHdr", "p:PmtInf"):
        assert Decimal(texts(document, f"//{level}/p:CtrlSum", PAIN)[0]) == total
        assert texts(document, f"//{level}/p:NbOfTxs", PAIN) == [str(len(lines))]


def test_the_group_header_and_payment_block_carry_the_batch():
    document = etree.fromstring(render(batch()))
    assert texts(document, "//p:GrpHdr/p:MsgId", PAIN) == ["PR-20260302-SEPA-1"]
    assert texts(document, "//p:PmtInfId", PAIN) == ["PR-20260302-SEPA-1"]
    assert texts(document, "//p:GrpHdr/p:CreDtTm", PAIN) == ["2026-03-02T07:30:00+00:00"]
    assert texts(document, "//p:ReqdExctnDt/p:Dt", PAIN) == ["2026-03-04"]
    assert texts(document, "//p:PmtMtd", PAIN) == ["TRF"]
    assert texts(document, "//p:BtchBookg", PAIN) == ["true"]
    assert texts(document, "//p:SvcLvl/p:Cd", PAIN) == ["SEPA"]
    assert texts(document, "//p:PmtInf/p:ChrgBr", PAIN) == ["SLEV"]
    assert texts(document, "//p:DbtrAcct/p:Id/p:IBAN", PAIN) == ["FR7630001007941234567890185"]
    assert texts(document, "//p:DbtrAgt//p:BICFI", PAIN) == ["BDFEFRPPCCT"]
    assert [a.get("Ccy") for a in document.xpath("//p:InstdAmt", namespaces=PAIN)] == ["EUR"] * 2
    assert texts(document, "//p:InstdAmt", PAIN) == ["1234.56", "10.05"]


def test_the_control_sum_is_the_exact_decimal_sum():
    amounts = [Decimal("0.10")] * 3 + [Decimal("999999999.99"), Decimal("0.01")]
    lines = tuple(order(number, amount=amount) for number, amount in enumerate(amounts, 1))
    document = etree.fromstring(render(batch(lines=lines)))
    # 0.1 + 0.1 + 0.1 is not 0.3 in binary floating point; 1 000 000 000.30 needs 12 digits.
    assert texts(document, "//p:GrpHdr/p:CtrlSum", PAIN) == ["1000000000.30"]
    assert texts(document, "//p:PmtInf/p:CtrlSum", PAIN) == ["1000000000.30"]


def test_names_and_remittance_are_transliterated_and_cut_to_the_sepa_lengths():
    long_name = "Société Coopérative d'Intérêt Collectif des Œuvres Sociales & Culturelles du Nord"
    lines = (order(1, payee_name=long_name, remittance="Réf. « FA-2026/0117 » — 2ᵉ acompte " * 6),)
    document = etree.fromstring(render(batch(lines=lines)))
    name = texts(document, "//p:Cdtr/p:Nm", PAIN)[0]
    assert name == "Societe Cooperative d'Interet Collectif des OEuvres Sociales + Culturel"[:70]
    assert len(name) == 70
    remittance = texts(document, "//p:RmtInf/p:Ustrd", PAIN)[0]
    assert remittance.startswith("Ref. FA-2026/0117 -- 2e acompte Ref.")
    assert len(remittance) <= 140
    assert texts(document, "//p:Dbtr/p:Nm", PAIN) == ["Region Hauts-de-France"]


def test_unknown_bics_use_the_forms_the_schema_allows():
    lines = (order(1, payee_bic=None), order(2, payee_bic="cobadeff xxx"))
    document = etree.fromstring(render(batch(lines=lines, debtor=replace(REGION, bic=None))))
    assert texts(document, "//p:DbtrAgt/p:FinInstnId/p:Othr/p:Id", PAIN) == ["NOTPROVIDED"]
    transfers = document.xpath("//p:CdtTrfTxInf", namespaces=PAIN)
    assert transfers[0].find("p:CdtrAgt", PAIN) is None
    assert texts(transfers[1], "p:CdtrAgt/p:FinInstnId/p:BICFI", PAIN) == ["COBADEFFXXX"]


@pytest.mark.parametrize("channel", ["sepa", "accountant"])
def test_the_same_batch_gives_the_same_bytes(channel):
    first = render(batch(channel))
    again = render(batch(channel, lines=tuple(replace(line) for line in batch(channel).lines)))
    assert first == again
    later = render(batch(channel, created_at=CREATED + timedelta(seconds=1)))
    assert later != first


@pytest.mark.parametrize("channel", ["sepa", "accountant"])
@pytest.mark.parametrize(("change", "field"), [
    (dict(lines=(order(1, order_id="X" * 36),)), "lines[0].order_id"),
    (dict(lines=(order(1, order_id="ORD/1"),)), "lines[0].order_id"),
    (dict(lines=(order(1, amount=Decimal("0.00")),)), "lines[0].amount"),
    (dict(lines=(order(1, amount=Decimal("-5.00")),)), "lines[0].amount"),
    (dict(lines=(order(1, amount=Decimal("10.005")),)), "lines[0].amount"),
    (dict(lines=(order(1, amount=10.5),)), "lines[0].amount"),
    (dict(lines=(order(1, amount=Decimal("NaN")),)), "lines[0].amount"),
    (dict(lines=(order(1, amount=Decimal("1000000000.00")),)), "lines[0].amount"),
    (dict(lines=(order(1, payee_iban="FR7630004000031234567890144"),)), "lines[0].payee_iban"),
    (dict(lines=(order(1, payee_bic="BNPA"),)), "lines[0].payee_bic"),
    (dict(lines=(order(1, payee_siret="41234567000018"),)), "lines[0].payee_siret"),
    (dict(lines=(order(1, payee_name="😀 🚀"),)), "lines[0].payee_name"),
    (dict(lines=(order(1, remittance=" \t "),)), "lines[0].remittance"),
    (dict(lines=(order(1), order(2, order_id=order(1).order_id))), "lines[1].order_id"),
    (dict(lines=()), "lines"),
    (dict(batch_id="PR 2026 03 02"), "batch_id"),
    (dict(created_at=datetime(2026, 3, 2, 8, 0)), "created_at"),
    (dict(debtor=replace(REGION, siret="123")), "debtor.siret"),
])
def test_a_batch_the_files_cannot_carry_is_refused_before_rendering(channel, change, field):
    with pytest.raises(InvalidOrderBatch) as raised:
        render(batch(channel, **change))
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_a_file_failing_the_official_schema_is_never_returned(monkeypatch):
    # A writer fault the checks cannot see: a name longer than the XSD allows.
    monkeypatch.setattr(pain001, "sepa_text", lambda value, length: "N" * 141)
    with pytest.raises(PaymentFileInvalid) as raised:
        render(batch())
    message = str(raised.value)
    assert "PR-20260302-SEPA-1.pain.001.xml" in message and "pain.001.001.09.xsd" in message
    assert re.search(r"line \d+: .*Nm.*length", message)
    assert raised.value.errors


def test_a_channel_module_refuses_the_other_channels_batch():
    with pytest.raises(InvalidOrderBatch, match="channel"):
        pain001.render(batch("accountant"))
    with pytest.raises(InvalidOrderBatch, match="channel"):
        accountant.render(batch("sepa"))


def test_file_names_say_what_the_file_is():
    assert file_name(batch("sepa")) == "PR-20260302-SEPA-1.pain.001.xml"
    assert file_name(batch("accountant")) == "PR-20260302-ACC-1.mandats.xml"


# --- camt.054 ----------------------------------------------------------------------------------

def test_the_banks_notification_of_a_settled_batch_confirms_each_transfer():
    lines = tuple(order(number, amount=Decimal(f"{number}00.{number:02d}")) for number in range(1, 6))
    sent = render(batch(lines=lines))
    returned = lines[3].order_id
    notification = counterparty.settle(
        sent, executed_on=date(2026, 3, 4),
        fail=lambda order_id: "AC04" if order_id == returned else None)

    confirmations = read_confirmations(notification)

    by_order = {c.order_id: c for c in confirmations}
    assert sorted(by_order) == sorted(line.order_id for line in lines)
    assert len(confirmations) == len(lines)
    for line in lines:
        confirmation = by_order[line.order_id]
        assert confirmation.amount == line.amount
        assert confirmation.batch_id == "PR-20260302-SEPA-1"
        if line.order_id == returned:
            assert confirmation.status == "failed"
            assert confirmation.executed_on is None
            assert confirmation.reason == "AC04 closed account number"
        else:
            assert confirmation.status == "executed"
            assert confirmation.executed_on == date(2026, 3, 4)
            assert confirmation.reason is None
    assert len({c.reference for c in confirmations}) == len(confirmations)


def test_settling_the_same_file_twice_gives_the_same_notification():
    sent = render(batch())
    assert (counterparty.settle(sent, executed_on=date(2026, 3, 4))
            == counterparty.settle(sent, executed_on=date(2026, 3, 4)))


def test_a_realistic_camt054_001_02_file_with_a_returned_transfer():
    confirmations = read_confirmations(
        (FIXTURES / "camt054.001.02-debit-notification.xml").read_bytes())
    assert confirmations == [
        Confirmation("ORD-7F3A2C-1", "executed", date(2026, 3, 4), Decimal("12450.00"), None,
                     "2026030400A1B2-001", "PR-20260302-SEPA-1"),
        Confirmation("ORD-91B4E0-1", "executed", date(2026, 3, 4), Decimal("3240.00"), None,
                     "2026030400A1B2-002", "PR-20260302-SEPA-1"),
        Confirmation("ORD-C2D8A5-1", "executed", date(2026, 3, 4), Decimal("71.29"), None,
                     "2026030400A1B2-003", "PR-20260302-SEPA-1"),
        # Returned by the payee's bank: charges, money received and pending entries are not
        # confirmations and do not appear.
        Confirmation("ORD-5E21B7-1", "failed", None, Decimal("980.40"),
                     "AC04 closed account number (COMPTE CLOTURE)", "2026030400C3D4",
                     "PR-20260227-SEPA-1"),
    ]


def test_a_camt054_001_08_file_with_a_reversal_and_a_debit_we_did_not_order():
    confirmations = read_confirmations((FIXTURES / "camt054.001.08-reversal.xml").read_bytes())
    assert [(c.order_id, c.status, c.executed_on, c.amount) for c in confirmations] == [
        ("ORD-AA11BB-1", "executed", date(2026, 3, 9), Decimal("640.00")),
        ("ORD-CC22DD-1", "failed", None, Decimal("1500.00")),
        (None, "executed", date(2026, 3, 9), Decimal("89.90")),
    ]
    assert "revers" in confirmations[1].reason
    assert [c.reference for c in confirmations] == ["K9-88120", "K9-88121", "K9-88122"]


def test_a_debit_without_our_reference_is_reported_unmatched():
    content = counterparty.unmatched_debit(
        account_iban="FR7630001007941234567890185", amount=Decimal("42.00"),
        booked_on=date(2026, 3, 6), reference="BQ-20260306-77")
    [confirmation] = read_confirmations(content)
    assert confirmation.order_id is None
    assert confirmation.status == "executed"
    assert confirmation.amount == Decimal("42.00")
    assert confirmation.executed_on == date(2026, 3, 6)
    assert confirmation.reference.startswith("BQ-20260306-77")


CAMT_ENTRY = """<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>M</MsgId><CreDtTm>2026-03-04T20:00:00+01:00</CreDtTm></GrpHdr>
<Ntfctn><Id>N</Id><Acct><Id><IBAN>FR7630001007941234567890185</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>{booked}
<NtryDtls><TxDtls><Refs><EndToEndId>ORD-1</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"""


@pytest.mark.parametrize(("amount", "booked", "reason", "says"), [
    ("10.00", "", "missing_value", "BookgDt"),
    ("10,00", "<BookgDt><Dt>2026-03-04</Dt></BookgDt>", "bad_value", "'10,00'"),
    ("10.00", "<BookgDt><Dt>2026-02-30</Dt></BookgDt>", "bad_value", "'2026-02-30'"),
])
def test_an_unusable_value_in_a_bank_file_says_which_and_where(amount, booked, reason, says):
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(CAMT_ENTRY.format(amount=amount, booked=booked).encode())
    assert raised.value.reason == reason
    assert says in raised.value.message
    assert re.search(r"line \d+, Document/BkToCstmrDbtCdtNtfctn/Ntfctn/Ntry", raised.value.message)


@pytest.mark.parametrize(("content", "reason", "says"), [
    (b"", "empty", "empty"),
    (b"MT940 :20:STATEMENT", "not_xml", "well-formed"),
    (b"<Document><unclosed></Document>", "not_xml", "well-formed"),
    (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>', "unknown_format",
     "camt.053"),
    (b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>',
     "unknown_format", "Invoice"),
])
def test_a_file_that_is_no_confirmation_is_refused_with_its_reason(content, reason, says):
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(content)
    assert raised.value.reason == reason
    assert says in raised.value.message


@pytest.mark.parametrize("channel", ["sepa", "accountant"])
def test_our_own_order_file_is_not_taken_for_a_confirmation(channel):
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(render(batch(channel)))
    assert raised.value.reason == "not_a_confirmation"


# --- hostile files -----------------------------------------------------------------------------

def with_doctype(declarations: str, body: str = "&e;") -> bytes:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE Document [\n{declarations}\n]>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
            f"<BkToCstmrDbtCdtNtfctn><GrpHdr><MsgId>{body}</MsgId></GrpHdr>"
            "</BkToCstmrDbtCdtNtfctn></Document>").encode()


def test_an_external_file_entity_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(with_doctype(f'<!ENTITY e SYSTEM "file://{secret}">'))
    assert raised.value.reason == "xml_forbidden_construct"
    assert "TOP-SECRET-MARKER" not in str(raised.value)


class _Recorder(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<x>fetched</x>")

    def log_message(self, *args):
        pass


@pytest.fixture
def listening_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_an_external_network_entity_or_dtd_is_never_fetched(listening_server):
    for content in (
        with_doctype(f'<!ENTITY e SYSTEM "{listening_server}/entity">'),
        with_doctype(f'<!ENTITY % remote SYSTEM "{listening_server}/dtd"> %remote;', body="x"),
        ('<?xml version="1.0"?>\n<!DOCTYPE Document SYSTEM "' + listening_server + '/doc.dtd">'
         '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"/>').encode(),
    ):
        with pytest.raises(ConfirmationFileInvalid) as raised:
            read_confirmations(content)
        assert raised.value.reason == "xml_forbidden_construct"
    assert _Recorder.requests == []


def test_entity_expansion_bombs_are_refused():
    laughs = '<!ENTITY l0 "lol">\n' + "\n".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(with_doctype(laughs, body="&l9;"))
    assert raised.value.reason == "xml_forbidden_construct"


def test_a_doctype_hidden_by_utf16_is_refused(tmp_path):
    content = with_doctype(f'<!ENTITY e SYSTEM "file://{tmp_path}/x">').decode().replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(content)
    assert raised.value.reason == "xml_forbidden_construct"


def test_an_oversized_file_is_refused_before_parsing():
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(b"<a>" + b" " * formats.MAX_INCOMING_BYTES + b"</a>")
    assert raised.value.reason == "too_large"


# --- the public accountant ---------------------------------------------------------------------

def test_the_accountant_round_trip_with_a_rejected_mandate():
    lines = (
        order(1, amount=Decimal("48210.36")),
        order(2, kind="advance", payable_id="advance:MAR-2026-0032", invoice_id=None,
              contract_id="MAR-2026-0032", amount=Decimal("30000.00"), payee_bic=None,
              remittance="Avance 10 % marché MAR-2026-0032"),
        order(3, kind="interest", payable_id="interest:invoice:7d1c0e52", payee_siret=None,
              amount=Decimal("71.29"), remittance="Intérêts moratoires et indemnité 40 EUR"),
    )
    sent = render(batch("accountant", lines=lines))
    schema = own_schema(accountant.ORDER_SCHEMA)
    assert schema.validate(etree.fromstring(sent)), schema.error_log
    rejected = lines[1].order_id

    answer = counterparty.settle(
        sent, executed_on=date(2026, 3, 5),
        fail=lambda order_id: "RIB" if order_id == rejected else None)
    confirmations = read_confirmations(answer)

    assert [(c.order_id, c.status, c.executed_on, c.amount) for c in confirmations] == [
        (lines[0].order_id, "executed", date(2026, 3, 5), Decimal("48210.36")),
        (rejected, "failed", None, None),
        (lines[2].order_id, "executed", date(2026, 3, 5), Decimal("71.29")),
    ]
    assert confirmations[1].reason.startswith("RIB ")
    assert "libératoire" in confirmations[1].reason
    assert {c.batch_id for c in confirmations} == {"PR-20260302-ACC-1"}
    assert len({c.reference for c in confirmations}) == 3


def test_the_bordereau_carries_the_mandate_data():
    lines = (order(1), order(2, kind="interest", invoice_id=None, contract_id=None,
                            payee_siret=None, payee_bic=None, amount=Decimal("40.00")))
    created = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)  # already 2 March in Paris
    document = etree.fromstring(render(batch("accountant", lines=lines, created_at=created)))
    assert texts(document, "/b:Bordereau/b:IdBordereau", BORDEREAU) == ["PR-20260302-ACC-1"]
    assert texts(document, "/b:Bordereau/b:DateBordereau", BORDEREAU) == ["2026-03-02"]
    assert texts(document, "/b:Bordereau/b:NbMandats", BORDEREAU) == ["2"]
    assert texts(document, "/b:Bordereau/b:MontantTotal", BORDEREAU) == ["1274.56"]
    assert texts(document, "//b:Ordonnateur/b:Siret", BORDEREAU) == ["20005376700014"]
    assert texts(document, "//b:Ordonnateur/b:Nom", BORDEREAU) == ["Région Hauts-de-France"]
    assert texts(document, "//b:NumMandat", BORDEREAU) == [line.order_id for line in lines]
    assert texts(document, "//b:Nature", BORDEREAU) == ["facture", "interets-moratoires"]
    assert texts(document, "//b:Creancier/b:Nom", BORDEREAU) == [
        "Atelier Numérique du Nord SAS"] * 2
    assert texts(document, "//b:Creancier/b:Siret", BORDEREAU) == ["41234567000019"]
    assert texts(document, "//b:RefFacture", BORDEREAU) == [lines[0].invoice_id]
    assert texts(document, "//b:Objet", BORDEREAU)[0] == "Facture FA-2026-0001 marché MAR-2025-0451"
    assert texts(document, "//b:DateEcheanceLegale", BORDEREAU) == ["2026-03-20"] * 2


def test_a_bordereau_failing_its_schema_is_never_returned(monkeypatch):
    monkeypatch.setattr(accountant, "_text", lambda value, length: "")
    with pytest.raises(PaymentFileInvalid) as raised:
        render(batch("accountant"))
    assert "bordereau-mandats-1.xsd" in str(raised.value)
    assert re.search(r"line \d+: .*Nom", str(raised.value))


def test_a_hand_written_accountant_answer():
    confirmations = read_confirmations((FIXTURES / "compte-rendu-paiement.xml").read_bytes())
    assert confirmations == [
        Confirmation("MDT-3A9F01-1", "executed", date(2026, 3, 5), Decimal("48210.36"), None,
                     "2026-DEP-0045512", "PR-20260302-ACC-1"),
        Confirmation("MDT-3A9F02-1", "failed", None, None,
                     "RIB IBAN du créancier clôturé selon sa banque : fournir un RIB à jour",
                     "2026-REJ-0000713", "PR-20260302-ACC-1"),
        Confirmation("MDT-3A9F03-1", "executed", date(2026, 3, 5), Decimal("1250.00"), None,
                     "2026-DEP-0045513", "PR-20260302-ACC-1"),
    ]


@pytest.mark.parametrize(("original", "broken", "says"), [
    (b"<Montant>1250.00</Montant>", b"<Montant>1250,00</Montant>", "Montant"),
    (b"<DateMiseEnPaiement>2026-03-05</DateMiseEnPaiement>",
     b"<DateMiseEnPaiement>05/03/2026</DateMiseEnPaiement>", "DateMiseEnPaiement"),
    (b"<NumMandat>MDT-3A9F03-1</NumMandat>", b"<NumMandat>MDT-3A9F01-1</NumMandat>", "unique"),
])
def test_an_accountant_answer_off_its_schema_is_refused_with_the_line(original, broken, says):
    content = (FIXTURES / "compte-rendu-paiement.xml").read_bytes()
    assert original in content
    with pytest.raises(ConfirmationFileInvalid) as raised:
        read_confirmations(content.replace(original, broken))
    assert raised.value.reason == "schema"
    assert says in raised.value.message
    assert re.search(r"line \d+:", raised.value.message)


def test_random_failures_are_reproducible_from_the_seed():
    ids = [f"ORD-{n:06d}-1" for n in range(2000)]
    first = counterparty.random_failures(0.1, seed=7)
    again = counterparty.random_failures(0.1, seed=7)
    other = counterparty.random_failures(0.1, seed=8)
    failed = [order_id for order_id in ids if first(order_id)]
    assert failed == [order_id for order_id in ids if again(order_id)]
    assert failed != [order_id for order_id in ids if other(order_id)]
    assert 120 < len(failed) < 280
    assert {first(order_id) for order_id in failed} <= {"AC04", "AC01", "MD07"}


def test_the_created_at_offset_is_kept_as_given():
    paris_winter = timezone(timedelta(hours=1))
    document = etree.fromstring(render(batch(created_at=datetime(2026, 3, 2, 8, 30,
                                                                  tzinfo=paris_winter))))
    assert texts(document, "//p:GrpHdr/p:CreDtTm", PAIN) == ["2026-03-02T08:30:00+01:00"]
