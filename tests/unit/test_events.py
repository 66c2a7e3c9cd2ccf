import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import uuid4

import pytest

from shared.clock import FixedClock
from shared.events import PoisonMessage, decode, encode, new_envelope, upcaster
from shared.events.contracts import ContractNotified
from tests.support import contract

CLOCK = FixedClock(datetime(2026, 1, 5, 9, 30, tzinfo=timezone(timedelta(hours=1))))


def notified(**changes) -> ContractNotified:
    return ContractNotified.model_validate(contract(7, **changes))


def test_envelope_round_trip_keeps_every_field_and_exact_amounts():
    event = notified(amount_ht="100000.10", amount_ttc="120000.12")
    envelope = new_envelope(event, producer="advances", actor="alice", clock=CLOCK)

    decoded = decode(encode(envelope))

    assert decoded.envelope == envelope
    assert decoded.event == event
    assert decoded.event.amount_ttc == Decimal("120000.12")
    assert isinstance(decoded.event.amount_ttc, Decimal)
    assert decoded.envelope.occurred_at == datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    assert decoded.envelope.aggregate_id == "M-2026-0007"
    assert decoded.envelope.correlation_id == "M-2026-0007"


def test_wire_format_writes_amounts_as_strings_and_dates_in_iso_8601():
    envelope = new_envelope(notified(amount_ht="0.10", amount_ttc="0.12"), producer="advances",
                            actor="alice", clock=CLOCK)
    document = json.loads(encode(envelope))
    assert document["payload"]["amount_ht"] == "0.10"
    assert document["payload"]["amount_ttc"] == "0.12"
    assert document["payload"]["notified_on"] == "2026-01-05"
    assert document["occurred_at"] == "2026-01-05T08:30:00Z"
    assert document["schema_version"] == 1


def test_caused_event_inherits_the_journey():
    first = new_envelope(notified(), producer="advances", actor="alice", clock=CLOCK)
    second = new_envelope(notified(contract_id="OTHER"), producer="advances", actor="system",
                          clock=CLOCK, caused_by=first)
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == first.event_id


def _document(**envelope_changes) -> dict:
    envelope = new_envelope(notified(), producer="advances", actor="alice", clock=CLOCK)
    document = json.loads(encode(envelope))
    document.update(envelope_changes)
    return document


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "undecodable"),
        (b"[1, 2]", "undecodable"),
        (None, "undecodable"),
        (json.dumps({"event_type": "ContractNotified"}).encode(), "invalid_envelope"),
        (json.dumps(_document(event_type="SomethingElse")).encode(), "unknown_event_type"),
        (json.dumps(_document(schema_version=2)).encode(), "unsupported_schema_version"),
        (json.dumps(_document(occurred_at="2026-01-05T08:30:00")).encode(), "invalid_envelope"),
        (json.dumps(_document(occurred_at="0001-01-01T00:00:00+01:00")).encode(), "invalid_envelope"),
    ],
)
def test_undecodable_records_say_why(raw, reason):
    with pytest.raises(PoisonMessage) as caught:
        decode(raw)
    assert caught.value.reason == reason


def test_invalid_payload_names_the_field_and_the_rule():
    document = _document()
    document["payload"]["supplier_siret"] = "12345678901234"
    with pytest.raises(PoisonMessage) as caught:
        decode(json.dumps(document).encode())
    assert caught.value.reason == "invalid_payload"
    assert "supplier_siret" in caught.value.detail
    assert "not a valid SIRET" in caught.value.detail


def test_an_older_payload_version_is_upcast_to_the_current_model(monkeypatch):
    monkeypatch.setattr(ContractNotified, "schema_version", 2)

    @upcaster("ContractNotified", from_version=1)
    def rename(payload: dict) -> dict:
        return payload

    try:
        decoded = decode(encode(new_envelope(notified(), producer="advances", actor="a", clock=CLOCK)
                                .model_copy(update={"schema_version": 1})))
        assert decoded.event.contract_id == "M-2026-0007"
        with pytest.raises(PoisonMessage, match="v3 is newer"):
            decode(json.dumps(_document(schema_version=3)).encode())
    finally:
        from shared.events import _UPCASTERS
        _UPCASTERS.pop(("ContractNotified", 1))


def test_a_missing_upcaster_is_an_explicit_error(monkeypatch):
    monkeypatch.setattr(ContractNotified, "schema_version", 2)
    with pytest.raises(PoisonMessage) as caught:
        decode(json.dumps(_document(schema_version=1)).encode())
    assert caught.value.reason == "unsupported_schema_version"


def test_event_ids_are_unique():
    ids = {new_envelope(notified(), producer="p", actor="a", clock=CLOCK).event_id for _ in range(100)}
    assert len(ids) == 100 and uuid4() not in ids
