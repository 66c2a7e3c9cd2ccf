"""One entry of the audit log, its canonical JSON, and how a Kafka record becomes one.

Every record read from an audited partition becomes exactly one entry, whatever it holds:

- ``event``: a valid event envelope, of any type, known to this code or not (a type added by
  another service tomorrow is recorded as it is, never refused);
- ``raw``: anything else (not JSON, not an envelope, text PostgreSQL cannot store); its bytes
  are kept with the reason, so nothing is lost and the partition never stalls;
- ``duplicate``: an envelope whose ``event_id`` is already in the log (an outbox relay that
  re-published after a crash). The event is recorded once; the entry only notes the offset and
  whether the bytes were the same, so every offset of the partition stays accounted for.

Canonical JSON is what the chain hashes: keys sorted by code point, no spaces, UTF-8, instants
in UTC ISO 8601 with microseconds, bytes in base64. Numbers are written by *value* (``1e2``,
``100`` and ``100.0`` all read ``100``) because PostgreSQL's ``jsonb`` keeps a number's value,
not its spelling: the hash computed on arrival must be recomputable from what the database
returns. No library writes JSON that way (RFC 8785 goes through binary floats, which cannot hold
``0.10``), hence the few lines of ``canonical_json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from shared.events import Envelope

KINDS = ("event", "raw", "duplicate")
# PostgreSQL numeric holds at most 131072 digits before the point and 16383 after; a number
# beyond these (or a 4300-digit int Python will not print) is kept as raw bytes instead.
_MAX_EXPONENT = 1000
_INT32 = 2**31 - 1


class Unstorable(ValueError):
    """A value PostgreSQL cannot store as it is (NUL character, lone surrogate, huge number)."""


def _not_a_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(text: str | bytes) -> Any:
    """JSON with numbers read exactly (``Decimal``), and NaN/Infinity refused as JSON does."""
    return json.loads(text, parse_float=Decimal, parse_constant=_not_a_constant)


def _number(value: int | Decimal) -> str:
    if isinstance(value, int):
        text = str(value)  # ValueError beyond 4300 digits (CPython's int-to-str limit)
        if len(text) > _MAX_EXPONENT:
            raise Unstorable("an integer of more than 1000 digits")
        return text
    if not value.is_finite():
        raise Unstorable(f"{value} is not a JSON number")
    if value == 0:
        return "0"
    if abs(value.adjusted()) > _MAX_EXPONENT:
        raise Unstorable(f"the number {value} is beyond what PostgreSQL stores")
    return format(value.normalize(), "f")


def _string(value: str) -> str:
    if "\x00" in value:
        raise Unstorable("a NUL character (U+0000), which PostgreSQL text cannot hold")
    return encode_basestring(value)  # json.dumps(value, ensure_ascii=False), without its overhead


def canonical_json(value: Any) -> str:
    """The one serialisation the chain hashes (see the module docstring)."""
    # The C encoder writes exactly this form for strings, integers, booleans and null; it stops
    # (TypeError) at a Decimal, and a NUL escape needs the precise check: both go the slow way.
    try:
        text = _FAST(value)
    except (TypeError, ValueError):
        return _canonical(value)
    return _canonical(value) if "\\u0000" in text else text


_FAST = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def _canonical(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, Decimal)):
        try:
            return _number(value)
        except ValueError as exc:
            raise Unstorable(str(exc)) from None
    if isinstance(value, float):
        return _number(Decimal(repr(value)))
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_string(str(k))}:{_canonical(v)}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def _instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value is not None else None


def _b64(value: bytes | None) -> str | None:
    return base64.b64encode(value).decode() if value is not None else None


def kafka_time(milliseconds: int | None) -> datetime | None:
    """A Kafka record timestamp, exactly (no float on the way)."""
    if milliseconds is None or milliseconds < 0:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=milliseconds)


@dataclass(frozen=True)
class Entry:
    """What the recorder learned from one Kafka record, before its place in the chain is known."""

    topic: str
    partition: int
    kafka_offset: int
    kafka_key: bytes | None
    kafka_timestamp: datetime | None
    received_at: datetime
    kind: str
    value_sha256: str
    event_id: UUID | None = None
    event_type: str | None = None
    schema_version: int | None = None
    occurred_at: datetime | None = None
    producer: str | None = None
    aggregate_type: str | None = None
    aggregate_id: str | None = None
    correlation_id: str | None = None
    causation_id: UUID | None = None
    actor: str | None = None
    payload: Any = None
    subjects: tuple[str, ...] = ()
    raw: bytes | None = None
    note: str | None = None

    @property
    def where(self) -> str:
        return f"{self.topic} partition {self.partition} offset {self.kafka_offset}"


@dataclass(frozen=True)
class AuditRecord(Entry):
    """An entry at its place in its partition's chain: position ``seq`` (from 1) and ``hash``."""

    seq: int = 0
    hash: bytes = field(default=b"", repr=False)
    id: int | None = None  # the database's row id, once stored (not hashed: assigned by the database)

    def canonical(self) -> bytes:
        return canonical_record(self, self.seq)


ENTRY_FIELDS = tuple(f.name for f in fields(Entry))


def canonical_record(entry: Entry, seq: int) -> bytes:
    """The canonical JSON of ``entry`` at position ``seq`` of its chain: what its hash covers."""
    document = {
        "v": 1,
        "topic": entry.topic, "partition": entry.partition, "seq": seq,
        "kafka_offset": entry.kafka_offset, "kafka_key": _b64(entry.kafka_key),
        "kafka_timestamp": _instant(entry.kafka_timestamp), "received_at": _instant(entry.received_at),
        "kind": entry.kind, "value_sha256": entry.value_sha256,
        "event_id": str(entry.event_id) if entry.event_id else None, "event_type": entry.event_type,
        "schema_version": entry.schema_version, "occurred_at": _instant(entry.occurred_at),
        "producer": entry.producer, "aggregate_type": entry.aggregate_type, "aggregate_id": entry.aggregate_id,
        "correlation_id": entry.correlation_id,
        "causation_id": str(entry.causation_id) if entry.causation_id else None,
        "actor": entry.actor, "payload": entry.payload, "subjects": sorted(entry.subjects),
        "raw": _b64(entry.raw), "note": entry.note,
    }
    try:
        return canonical_json(document).encode("utf-8")
    except UnicodeEncodeError:
        raise Unstorable("a lone surrogate (e.g. \\ud800), which is not Unicode text") from None


def _plain(text: str) -> str:
    """A note PostgreSQL and the canonical form accept, whatever text an error message quoted."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def as_raw(entry: Entry, reason: str, value: bytes | None) -> Entry:
    """The same record kept as raw bytes with the reason it is not stored as an event."""
    return Entry(
        topic=entry.topic, partition=entry.partition, kafka_offset=entry.kafka_offset,
        kafka_key=entry.kafka_key, kafka_timestamp=entry.kafka_timestamp, received_at=entry.received_at,
        kind="raw", value_sha256=entry.value_sha256, raw=value, note=_plain(reason),
    )


def as_duplicate(entry: Entry, original_where: str, same_bytes: bool) -> Entry:
    """A second delivery of an event already recorded: noted, not recorded twice."""
    kept = "identical bytes" if same_bytes else "DIFFERENT bytes (the first recording stands)"
    return replace(
        as_raw(entry, "", None), kind="duplicate", event_id=entry.event_id, event_type=entry.event_type,
        note=f"event {entry.event_id} was already recorded at {original_where}; {kept}",
    )


def entry_from_record(
    *, topic: str, partition: int, offset: int, key: bytes | None, timestamp_ms: int | None,
    value: bytes | None, received_at: datetime,
) -> Entry:
    """Classifies one Kafka record (pure: no I/O). Never raises on the record's content."""
    base = Entry(
        topic=topic, partition=partition, kafka_offset=offset, kafka_key=key,
        kafka_timestamp=kafka_time(timestamp_ms), received_at=received_at, kind="raw",
        value_sha256=hashlib.sha256(value or b"").hexdigest(),
    )
    if value is None:
        return as_raw(base, "the record has no value (a tombstone)", None)
    try:
        document = parse_json(value)
    except (UnicodeDecodeError, ValueError) as exc:
        return as_raw(base, f"not UTF-8 JSON: {exc}", value)
    if not isinstance(document, dict):
        return as_raw(base, f"a JSON {type(document).__name__}, not an event envelope", value)
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors(include_url=False))
        return as_raw(base, f"not an event envelope: {problems}", value)
    if not 1 <= envelope.schema_version <= _INT32:
        return as_raw(base, f"schema_version {envelope.schema_version} is out of range", value)
    payload = document["payload"]
    entry = replace(
        base, kind="event", event_id=envelope.event_id, event_type=envelope.event_type,
        schema_version=envelope.schema_version, occurred_at=envelope.occurred_at, producer=envelope.producer,
        aggregate_type=envelope.aggregate_type, aggregate_id=envelope.aggregate_id,
        correlation_id=envelope.correlation_id, causation_id=envelope.causation_id, actor=envelope.actor,
        payload=payload, subjects=subjects_of(envelope.aggregate_type, envelope.aggregate_id, payload),
    )
    try:
        canonical_record(entry, 0)
    except Unstorable as exc:
        return as_raw(base, f"the envelope holds {exc}; kept as bytes", value)
    return entry


# Keys that name what an event is about, wherever they appear in a payload. A new event type
# using these names is found by the history queries without any change here.
_SUBJECT_KEYS = {
    "invoice_id": "invoice",
    "contract_id": "contract",
    "contract_reference": "contract",
    "supplier_siret": "supplier",
    "seller_siret": "supplier",
    "payable_id": "payable",
    "principal_payable_id": "payable",
}


def subjects_of(aggregate_type: str, aggregate_id: str, payload: Any) -> tuple[str, ...]:
    """``kind:id`` tags of everything an event is about: its aggregate, and the invoices,
    contracts, suppliers (SIRET) and payables its payload names (the seller of a canonical
    invoice too). The history queries search these tags."""
    found = {f"{aggregate_type}:{aggregate_id}"}

    def walk(value: Any, depth: int) -> None:
        if depth > 20:
            return
        if isinstance(value, dict):
            for key, item in value.items():
                kind = _SUBJECT_KEYS.get(key)
                if kind and isinstance(item, str) and item:
                    found.add(f"{kind}:{item}")
                elif key == "seller" and isinstance(item, dict) and isinstance(item.get("siret"), str):
                    found.add(f"supplier:{item['siret']}")
                walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)

    walk(payload, 0)
    return tuple(sorted(found))
