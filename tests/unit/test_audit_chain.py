"""The audit log's pure rules: what a Kafka record becomes, its canonical form, the hash chains
and what their verification reports, checkpoints, and invoices rebuilt from events."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audit.domain import record as audit_record
from services.audit.domain.chain import (
    GENESIS,
    ChainVerifier,
    Head,
    chain_hash,
    checkpoint_of,
    compare_checkpoint,
    compare_committed,
    head_of,
    link_all,
)
from services.audit.domain.invoices import differences, rebuild
from services.audit.domain.period import period
from services.audit.domain.record import (
    Unstorable,
    as_duplicate,
    canonical_form,
    canonical_json,
    canonical_record,
    entry_from_record,
    parse_json,
    read_record,
    subjects_of,
)

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "invoices.events"


def envelope(event_type="SomethingNobodyKnowsYet", aggregate_id="inv-1", actor="alice", payload=None, **extra):
    document = {
        "event_id": str(uuid.uuid4()), "event_type": event_type, "schema_version": 1,
        "occurred_at": "2026-03-02T10:00:00+01:00", "producer": "invoices", "aggregate_type": "invoice",
        "aggregate_id": aggregate_id, "correlation_id": aggregate_id, "causation_id": None, "actor": actor,
        "payload": payload if payload is not None else {"invoice_id": aggregate_id},
    }
    document.update(extra)
    return document


def entry(value, offset=0, partition=0, topic=TOPIC):
    raw = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
    return entry_from_record(topic=topic, partition=partition, offset=offset, key=b"inv-1",
                             timestamp_ms=1772442000123, value=raw, received_at=AT)


def chain_of(count, partition=0, first_offset=0):
    entries = [entry(envelope(aggregate_id=f"inv-{i}"), offset=first_offset + i, partition=partition)
               for i in range(count)]
    records = link_all({}, entries)
    return [replace(r, id=100 * partition + i + 1) for i, r in enumerate(records)]


def verify(records):
    verifier = ChainVerifier()
    for record in records:
        verifier.feed(record)
    return verifier


# -- canonical form -----------------------------------------------------------------------------

def test_numbers_are_hashed_by_value_as_postgresql_jsonb_keeps_them():
    spellings = ['{"a": 1e2, "b": 1.50, "c": -0.0}', '{"c": 0, "b": 1.5, "a": 100}', '{"b":1.500,"a":100.0,"c":0}']
    assert {canonical_json(parse_json(text)) for text in spellings} == {'{"a":100,"b":1.5,"c":0}'}
    assert canonical_json(parse_json('{"x": 0.1, "y": 12345678901234567890.000001}')) == \
        '{"x":0.1,"y":12345678901234567890.000001}'


def test_canonical_json_is_compact_sorted_utf8_and_refuses_what_postgresql_cannot_store():
    assert canonical_json({"é": ["ü", None, True], "a": {"z": 1, "b": "q\"\n"}}) == \
        '{"a":{"b":"q\\"\\n","z":1},"é":["ü",null,true]}'
    with pytest.raises(Unstorable, match="NUL"):
        canonical_json({"a": "nul \x00 inside"})
    with pytest.raises(Unstorable):
        canonical_json(parse_json('{"a": 1e5000}'))
    with pytest.raises(ValueError):
        parse_json('{"a": NaN}')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**40, 10**40) | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False, min_value=-10**30, max_value=10**30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@given(json_values)
def test_the_canonical_form_reads_back_as_itself(value):
    """What the database returns (the canonical text, re-parsed) hashes as what was written."""
    try:
        text = canonical_json(value)
    except Unstorable:
        return  # kept as raw bytes instead
    assert canonical_json(parse_json(text)) == text
    assert json.loads(text) is not None or text == "null"


# -- what a record becomes ----------------------------------------------------------------------

def test_an_envelope_of_a_type_nobody_knows_is_recorded_as_an_event():
    document = envelope(payload={"invoice_id": "inv-1", "contract_reference": "M-1", "seller_siret": "123",
                                 "nested": {"payable_id": "invoice:inv-1"}, "amount": 12.50})
    recorded = entry(document)
    assert recorded.kind == "event" and recorded.event_type == "SomethingNobodyKnowsYet"
    assert str(recorded.event_id) == document["event_id"] and recorded.actor == "alice"
    assert recorded.occurred_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert recorded.kafka_timestamp == datetime(2026, 3, 2, 9, 0, 0, 123000, tzinfo=UTC)
    assert str(recorded.payload["amount"]) == "12.5"
    assert recorded.subjects == ("contract:M-1", "invoice:inv-1", "payable:invoice:inv-1", "supplier:123")


@pytest.mark.parametrize("value, reason", [
    (b"<Invoice>not json</Invoice>", "not UTF-8 JSON"),
    (b"\xff\xfe", "not UTF-8 JSON"),
    (None, "no value"),
    (b"[1, 2]", "a JSON list, not an event envelope"),
    (json.dumps({"event_type": "X"}).encode(), "event_id: Field required"),
    (json.dumps(envelope(tenant="other")).encode(), "tenant: Extra inputs are not permitted"),
    (json.dumps(envelope(actor="nul\x00")).encode(), "NUL"),
    (b'{"event_id": "%s", "event_type": "X", "schema_version": 1, "occurred_at": "2026-03-02T09:00:00Z", '
     b'"producer": "p", "aggregate_type": "a", "aggregate_id": "1", "correlation_id": "1", "actor": "a", '
     b'"payload": {"x": "\\ud800"}}' % str(uuid.uuid4()).encode(), "lone surrogate"),
])
def test_anything_else_is_kept_as_raw_bytes_with_its_reason(value, reason):
    recorded = entry(value)
    assert recorded.kind == "raw" and reason in recorded.note
    assert recorded.raw == value and recorded.event_id is None
    link_all({}, [recorded])  # and it can be chained: the partition never stalls


def test_a_second_delivery_of_an_event_is_noted_not_recorded_twice():
    first = entry(envelope(), offset=3)
    again = as_duplicate(entry(envelope(event_id=str(first.event_id)), offset=9), first.where, same_bytes=False)
    assert again.kind == "duplicate" and again.event_id == first.event_id and again.payload is None
    assert "invoices.events partition 0 offset 3" in again.note and "DIFFERENT bytes" in again.note


def test_subjects_name_the_seller_of_a_canonical_invoice_and_the_aggregate():
    payload = {"invoice_id": "inv-9", "invoice": {"seller": {"siret": "35600000000048"},
                                                  "buyer": {"siret": "20005376700014"}}}
    assert subjects_of("invoice", "inv-9", payload) == ("invoice:inv-9", "supplier:35600000000048")


# -- the recorder's reading: one serialisation, the same bytes -----------------------------------
# The recorder reads with orjson and serialises each entry once (``read_record``); the chain's
# reference is ``parse_json`` and ``canonical_record``, which verification uses. Both must give
# the same entry and the same bytes, or a record would fail verification the moment it is written.

def _json_text(value, spelling: int, ascii_only: bool) -> str:
    """``value`` as JSON text, its numbers spelled in one of several ways JSON allows."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return [str(value), format(value, "f"), format(value, "e"), format(value, "f") + "E0"][spelling % 4]
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if isinstance(value, list):
        return "[" + ", ".join(_json_text(item, spelling + i, ascii_only) for i, item in enumerate(value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ascii_only)}: {_json_text(v, spelling + i, ascii_only)}"
                           for i, (k, v) in enumerate(value.items())) + "}"


def _read(value: bytes, offset: int = 0):
    return read_record(topic=TOPIC, partition=0, offset=offset, key=b"inv-1", timestamp_ms=1772442000123,
                       value=value, received_at=AT)


def _assert_same_as_the_reference(value: bytes) -> None:
    recorded, canonical = _read(value)
    for seq in (1, 2, 10**12):
        assert canonical.at(seq) == canonical_record(recorded, seq)
        assert canonical.hash_after(GENESIS, seq) == hashlib.sha256(GENESIS + canonical_record(recorded, seq)).digest()
    assert canonical.payload == (canonical_json(recorded.payload) if recorded.payload is not None else None)
    if recorded.kind != "event":
        return
    expected = parse_json(value)["payload"]
    assert repr(recorded.payload) == repr(expected)  # the same values of the same types: Decimal stays Decimal
    assert recorded.subjects == subjects_of(recorded.aggregate_type, recorded.aggregate_id, expected)


# Text with whatever JSON may carry: NUL, lone surrogates, characters beyond the BMP, escapes.
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=8)
payload_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**25, 10**25) | any_text
    | st.decimals(allow_nan=False, allow_infinity=False, places=None),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=20)


@given(st.dictionaries(any_text | st.sampled_from(["invoice_id", "contract_id", "seller", "payable_id"]),
                       payload_values, max_size=6),
       st.integers(0, 3), st.booleans())
def test_the_recorders_reading_gives_the_reference_entry_and_bytes(payload, spelling, ascii_only):
    written = _json_text(payload, spelling, ascii_only)
    value = json.dumps(envelope(payload={})).replace('"payload": {}', f'"payload": {written}').encode(
        "utf-8", "surrogatepass")
    recorded, _ = _read(value)
    try:
        canonical_json(parse_json(value)["payload"]).encode("utf-8")
    except (Unstorable, UnicodeEncodeError):
        assert recorded.kind == "raw" and recorded.note.startswith("the envelope holds")
    else:
        assert recorded.kind == "event", recorded.note
    _assert_same_as_the_reference(value)


def _invoice_journey(i: int) -> list[bytes]:
    """The events of one invoice as the services write them, a 20-line canonical invoice included."""
    from deploy.simulators.suppliers import CONTRACT, SELLER_IBAN, SELLER_SIRET, cii, default_lines
    from services.invoices.formats import parse
    from shared.clock import FixedClock
    from shared.events import encode, new_envelope
    from shared.events.contracts import AdvanceRecoveryApplied
    from shared.events.invoices import InvoiceApproved, InvoiceReceived, InvoiceValidated, PaymentDeadline
    from shared.events.payments import PaymentOrdered

    clock = FixedClock(datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC))
    invoice_id = str(uuid.UUID(int=i + 1))
    amount = Decimal("1234.50") + i
    deadline = PaymentDeadline(buyer_type="local_authority", dgp_start=date(2026, 3, 2), legal_due=date(2026, 4, 1),
                               ordonnateur_due=date(2026, 3, 22), target_due=date(2026, 3, 17))
    received = new_envelope(InvoiceReceived(
        invoice_id=invoice_id, channel="http", source="portal", sha256="ab" * 32, size_bytes=21000,
        received_at=clock.now()), producer="invoices", actor="alice", clock=clock)
    validated = new_envelope(InvoiceValidated(
        invoice_id=invoice_id, profile="fr-public", deadline=deadline,
        invoice=parse(cii(number=f"FA-2026-{i:06d}", lines=default_lines(20)))),
        producer="invoices", actor="intake", clock=clock, caused_by=received)
    approved = new_envelope(InvoiceApproved(
        invoice_id=invoice_id, amount=amount, currency="EUR", seller_siret=SELLER_SIRET,
        seller_name="Atelier Numérique", invoice_number=f"FA-2026-{i:06d}", payee_iban=SELLER_IBAN,
        contract_reference=CONTRACT, engagement_number="EJ-1", automatic=False, deadline=deadline),
        producer="invoices", actor="carol", clock=clock, caused_by=validated)
    recovered = new_envelope(AdvanceRecoveryApplied(
        invoice_id=invoice_id, contract_id=CONTRACT, approved_amount=amount, deduction=Decimal("100.00"),
        net_payable=amount - 100, recovered_after=Decimal("100.00"), outstanding_after=Decimal("0.00"),
        reason="advance recovered"), producer="advances", actor="advances.recovery", clock=clock, caused_by=approved)
    ordered = new_envelope(PaymentOrdered(
        payable_id=f"invoice:{invoice_id}", kind="invoice", invoice_id=invoice_id, contract_id=CONTRACT,
        order_id=f"ORD-{i:08d}", attempt=1, batch_id="B-1", channel="accountant", amount=amount - 100,
        ordered_on=date(2026, 3, 3), requested_execution_date=date(2026, 3, 5), legal_due=date(2026, 4, 1),
        target_due=date(2026, 3, 17), accountant_due=date(2026, 3, 13), urgent=False),
        producer="payments", actor="payments.scheduler", clock=clock, caused_by=recovered)
    return [encode(e) for e in (received, validated, approved, recovered, ordered)]


def test_on_the_events_the_services_write_orjson_writes_the_canonical_bytes_itself():
    for value in _invoice_journey(1) + _invoice_journey(2):
        _assert_same_as_the_reference(value)
        recorded, _ = _read(value)
        assert recorded.kind == "event"
        document = audit_record._document(recorded, 0)
        # Byte for byte, without falling back to canonical_json.
        assert audit_record._orjson_canonical(document) == canonical_json(document).encode("utf-8")


@pytest.mark.parametrize("value", [
    b'{"x": 1.50, "y": 1e2, "z": -0.0, "w": 12345678901234567890.000001}',  # exact decimals, not floats
    b'{"big": 18446744073709551616, "small": -9223372036854775809, "u64": 18446744073709551615}',
    b'{"x": 1, "x": 2, "y": {"z": 1, "z": "two"}}',  # the last of repeated keys wins, as in json
    b'{"a": "\\ud83d\\ude00 \\u00e9", "\\ud800": 1}',  # a lone surrogate: orjson refuses, json reads it
    b'{"a": "backslash \\\\u0000 text", "b": "\\u0000"}',
    b'{"seller": {"siret": "1"}, "nested": [[{"invoice_id": "deep"}]], "invoice_id": 5}',
    b'{"a": ' + b"9" * 1001 + b"}",
    b'{"a": ' + b"9" * 1001 + b', "b": 1.5}',
    b'{"a": ' + b"9" * 5000 + b"}",
    b'{"a": 1e400}', b'{"a": NaN}',
])
def test_numbers_keys_and_text_json_reads_differently_from_orjson_are_read_as_json_reads_them(value):
    text = json.dumps(envelope(payload={})).encode().replace(b'"payload": {}', b'"payload": ' + value)
    _assert_same_as_the_reference(text)
    _assert_same_as_the_reference(b"\xef\xbb\xbf" + text)  # a BOM, which json reads and orjson does not
    _assert_same_as_the_reference(json.dumps(envelope(payload={}, schema_version="<n>")).encode().replace(
        b'"<n>"', b"1.0").replace(b'"payload": {}', b'"payload": ' + value))


def _nested(depth: int, inner: dict) -> dict:
    for _ in range(depth):
        inner = {"n": inner}
    return inner


def test_numbers_are_read_exactly_at_any_depth_and_subjects_are_looked_for_20_levels_deep():
    # The payload is level 0: "a" holds level 1, and so on.
    payload = {"a": _nested(19, {"invoice_id": "at-20"}), "b": _nested(20, {"invoice_id": "at-21"}),
               "l": [[_nested(17, {"seller": {"siret": "s-20"}})]], "c": [_nested(30, {"x": "<n>"})]}
    value = json.dumps(envelope(payload=payload)).encode().replace(b'"<n>"', b"0.10")
    recorded, _ = _read(value)
    assert recorded.subjects == ("invoice:at-20", "invoice:inv-1", "supplier:s-20")
    assert repr(_nested(30, {"x": Decimal("0.10")})) == repr(recorded.payload["c"][0])
    _assert_same_as_the_reference(value)


def test_an_envelope_field_is_read_exactly_too():
    value = json.dumps(envelope(schema_version="<n>")).encode().replace(b'"<n>"', b"1" + b"0" * 30)
    recorded, _ = _read(value)
    assert recorded.kind == "raw" and recorded.note == f"schema_version {10**30} is out of range"


def test_json_nested_deeper_than_python_reads_is_kept_as_raw_bytes():
    deep = b'{"a": ' * 5000 + b"1" + b"}" * 5000
    value = json.dumps(envelope(payload={})).encode().replace(b'"payload": {}', b'"payload": ' + deep)
    recorded, canonical = _read(value)
    assert recorded.kind == "raw" and "nested too deep" in recorded.note and recorded.raw == value
    assert canonical.at(1) == canonical_record(recorded, 1)
    link_all({}, [recorded])


def test_a_canonical_form_splits_where_the_position_goes_whatever_the_payload_holds():
    # The payload's own keys spell the markers the split looks for; its text values too, escaped.
    payload = {"a": 1, "payload": {"b": 2, "producer": "p", "seq": 0, "subjects": []}, "producer": None,
               "seq": 0, "subjects": [',"seq":0,"subjects":[', ',"payload":', ',"producer":']}
    recorded = entry(envelope(payload=payload))
    canonical = canonical_form(recorded)
    assert canonical.at(7) == canonical_record(recorded, 7)
    assert parse_json(canonical.payload) == payload


# -- chains and their verification ---------------------------------------------------------------

def test_each_partition_is_its_own_chain_from_the_zero_hash():
    records = link_all({}, [entry(envelope(), offset=o, partition=p) for o in range(3) for p in (0, 1)])
    assert [(r.partition, r.seq) for r in records] == [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3), (1, 3)]
    first, second = records[0], records[2]
    assert first.hash == chain_hash(GENESIS, first) and second.hash == chain_hash(first.hash, second)
    verifier = verify(records)
    assert verifier.problems == [] and verifier.records == 6 and verifier.kinds["event"] == 6


def test_a_changed_payload_is_reported_at_that_record_only():
    records = chain_of(5)
    records[2] = replace(records[2], payload={"invoice_id": "inv-2", "amount": "1.00"})
    problems = verify(records).problems
    assert [(p.kind, p.record_id, p.kafka_offset) for p in problems] == [("tampered", 3, 2)]
    assert f"event {records[2].event_id}" in problems[0].message
    assert "invoices.events partition 0 offset 2" in problems[0].message


def test_a_record_rewritten_with_a_fresh_hash_breaks_the_link_of_the_next_one():
    records = chain_of(4)
    forged = replace(records[1], actor="mallory")
    records[1] = replace(forged, hash=chain_hash(records[0].hash, forged))
    assert [(p.kind, p.record_id) for p in verify(records).problems] == [("tampered", 3)]


def test_a_deleted_record_is_named_by_its_position_and_offset():
    records = chain_of(5)
    del records[2]
    problems = verify(records).problems
    assert [(p.kind, p.seq, p.kafka_offset) for p in problems] == [("missing", 3, 2)]
    assert "record seq 3 of invoices.events partition 0 (offset 2)" in problems[0].message


def test_swapped_payloads_show_on_both_records():
    records = chain_of(6)
    records[1], records[4] = (replace(records[1], payload=records[4].payload),
                              replace(records[4], payload=records[1].payload))
    assert [(p.kind, p.record_id) for p in verify(records).problems] == [("tampered", 2), ("tampered", 5)]


def test_offsets_never_recorded_are_gaps():
    records = link_all({}, [entry(envelope(), offset=o) for o in (2, 3, 7)])
    problems = verify(records).problems
    assert [(p.kind, p.kafka_offset) for p in problems] == [("gap", 0), ("gap", 4)]
    assert "offsets 4 to 6 never recorded" in problems[1].message


def test_a_range_starts_from_the_stored_predecessor_or_reports_it_deleted():
    records = chain_of(5)
    verifier = ChainVerifier()
    assert not verifier.follows_last(records[2])
    verifier.anchor(records[2], head_of(records[1]))
    for record in records[2:]:
        verifier.feed(record)
    assert verifier.problems == [] and verifier.records == 3

    verifier = ChainVerifier()
    verifier.anchor(records[2], None)
    verifier.feed(records[2])
    assert [(p.kind, p.seq) for p in verifier.problems] == [("missing", 2)]


def test_a_deletion_inside_a_range_is_reported_once_with_its_offset():
    records = chain_of(6)
    stored = {r.seq: r for r in records if r.seq != 4}
    verifier = ChainVerifier()
    for record in [r for r in records[1:] if r.seq != 4]:  # the range starts at seq 2
        if not verifier.follows_last(record):
            before = stored.get(record.seq - 1)
            verifier.anchor(record, head_of(before) if before else None)
        verifier.feed(record)
    assert [(p.kind, p.seq, p.kafka_offset) for p in verifier.problems] == [("missing", 4, 3)]
    assert verifier.records == 4


def test_checkpoints_reveal_a_truncated_or_rewritten_log():
    records = chain_of(4)
    checkpoint = replace(checkpoint_of(head_of(records[3]), AT), source="checkpoints.jsonl line 1")
    assert compare_checkpoint(checkpoint, head_of(records[3]), 4) is None
    truncated = compare_checkpoint(checkpoint, None, 2)
    assert truncated.kind == "truncated" and "attests 4 record(s)" in truncated.message
    assert "the log holds only 2" in truncated.message
    other = Head(TOPIC, 0, 4, b"\x01" * 32, 3)
    assert compare_checkpoint(checkpoint, other, 4).kind == "checkpoint"


def test_a_log_ending_before_the_recorders_committed_offset_lost_its_tail():
    assert compare_committed(TOPIC, 0, 10, 9) is None
    assert compare_committed(TOPIC, 0, 0, None) is None
    lost = compare_committed(TOPIC, 0, 10, 6)
    assert lost.kind == "truncated" and "offsets 7 to 9 were removed" in lost.message


# -- periods --------------------------------------------------------------------------------------

def test_a_period_is_whole_days_in_paris():
    lower, upper = period(date(2026, 3, 2), date(2026, 3, 31))
    assert lower == datetime(2026, 3, 1, 23, tzinfo=UTC)
    assert upper == datetime(2026, 3, 31, 22, tzinfo=UTC)  # summer time from 29 March
    assert period(None, None) == (None, None)
    with pytest.raises(ValueError, match="swap --from and --to"):
        period(date(2026, 3, 2), date(2026, 3, 1))


# -- invoices rebuilt from their events ----------------------------------------------------------

def _event(event_type, payload, actor="intake", aggregate_type="invoice", aggregate_id="inv-1", offset=0):
    document = envelope(event_type, aggregate_id, actor, payload, aggregate_type=aggregate_type)
    return link_all({}, [entry(document, offset=offset)])[0]


DEADLINE = {"buyer_type": "local_authority", "dgp_start": "2026-03-02", "legal_due": "2026-04-01",
            "ordonnateur_due": "2026-03-22", "target_due": "2026-03-17"}


def test_invoices_are_rebuilt_from_their_events_and_compared_with_the_table():
    events = [
        _event("InvoiceReceived", {"invoice_id": "inv-1", "channel": "http", "source": "portal",
                                   "received_at": "2026-03-02T09:00:00Z"}, actor="alice"),
        _event("InvoiceValidated", {"invoice_id": "inv-1", "profile": "fr-public", "deadline": DEADLINE,
                                    "invoice": {"number": "F-1", "seller": {"siret": "35600000000048"}}}),
        _event("InvoiceInterrupted", {"invoice_id": "inv-1", "notified_on": "2026-03-05", "reason": "missing",
                                      "missing_items": ["URSSAF"]}, actor="bob"),
        _event("InvoiceCompleted", {"invoice_id": "inv-1", "completed_on": "2026-03-12",
                                    "deadline": {**DEADLINE, "legal_due": "2026-04-11"}}, actor="bob"),
        _event("ServiceDoneRecorded", {"invoice_id": "inv-1", "service_done_on": "2026-03-12",
                                       "deadline": {**DEADLINE, "legal_due": "2026-04-11"}}, actor="bob"),
        _event("InvoiceApproved", {"invoice_id": "inv-1"}, actor="carol"),
        _event("PaymentOrdered", {"payable_id": "invoice:inv-1", "kind": "invoice", "invoice_id": "inv-1"},
               aggregate_type="payable", aggregate_id="invoice:inv-1"),
        _event("AdvanceGranted", {"contract_id": "M-1"}, aggregate_type="contract", aggregate_id="M-1"),
    ]
    rebuilt = rebuild(events)
    assert list(rebuilt) == ["inv-1"]
    state = rebuilt["inv-1"]
    assert state["status"] == "payment_ordered" and state["submitted_by"] == "alice"
    assert (state["service_done_by"], state["approved_by"]) == ("bob", "carol")
    assert state["legal_due"] == "2026-04-11" and state["missing_items"] == ["URSSAF"]

    live_row = {
        "status": "payment_ordered", "channel": "http", "source": "portal",
        "received_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "submitted_by": "alice", "profile": "fr-public",
        "number": "F-1", "seller_siret": "35600000000048", "buyer_type": "local_authority",
        "dgp_start": date(2026, 3, 2), "legal_due": date(2026, 4, 11), "ordonnateur_due": date(2026, 3, 22),
        "target_due": date(2026, 3, 17), "service_done_on": date(2026, 3, 12), "service_done_by": "bob",
        "approved_by": "carol", "interrupted_on": date(2026, 3, 5), "interruption_reason": "missing",
        "missing_items": ["URSSAF"], "completed_on": date(2026, 3, 12), "refusal_reason": None, "refused_by": None,
    }
    assert differences(rebuilt, {"inv-1": live_row}) == []
    changed = differences(rebuilt, {"inv-1": {**live_row, "approved_by": "mallory"}, "inv-2": {"status": "paid"}})
    assert [d.as_dict() for d in changed] == [
        {"invoice_id": "inv-1", "field": "approved_by", "from_events": "carol", "in_table": "mallory"},
        {"invoice_id": "inv-2", "field": "(invoice)", "from_events": None, "in_table": "paid"},
    ]


def test_the_history_table_lists_one_line_per_event():
    from cli.audit import timeline_table

    entries = [{"occurred_at": "2026-03-02T09:00:00.000000+00:00", "event_type": "InvoiceReceived",
                "actor": "alice", "aggregate": "invoice:inv-1", "event_id": "0a1b2c3d-0000"}]
    table = timeline_table(entries, "invoice inv-1").splitlines()
    assert table[0].split() == ["occurred", "at", "(UTC)", "event", "actor", "about", "event", "id"]
    assert table[2].split() == ["2026-03-02", "09:00:00", "InvoiceReceived", "alice", "invoice:inv-1", "0a1b2c3d"]
    assert table[-1] == "1 event(s) for invoice inv-1"
    assert timeline_table([], "actor nobody") == "no recorded event for actor nobody"
