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

``canonical_json`` and ``canonical_record`` are the reference: verification recomputes every hash
with them. The recorder reaches the same bytes faster (``read_record``): it reads with orjson and
serialises each entry once with orjson, wherever orjson gives exactly what ``parse_json`` and
``canonical_json`` give, and goes their way wherever it would not.
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

import orjson
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


def _read_json(value: bytes) -> Any:
    """``parse_json(value)``, faster, but for one thing left to the caller: the ``payload`` of an
    envelope may hold floats where ``parse_json`` holds exact numbers.

    orjson reads the same strings, integers, objects (the last of repeated keys wins) and arrays
    as ``json``; it makes a float of a number with a fraction or an exponent, or of an integer
    beyond 64 bits, and it refuses some texts ``json`` reads (a BOM, UTF-16, lone surrogates) or
    refuses others in other words. ``parse_json`` reads those texts, anything but an object, and
    an object whose fields besides ``payload`` are not all text, integers, booleans or null."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return parse_json(value)
    if type(document) is not dict or not {type(v) for k, v in document.items() if k != "payload"} <= _FIELD_TYPES:
        return parse_json(value)
    return document


_FIELD_TYPES = frozenset({str, int, bool, type(None)})


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


def _decimal_as_number(value: Any) -> orjson.Fragment:
    if type(value) is Decimal:
        return orjson.Fragment(_number(value))  # Unstorable (a ValueError) for what _canonical refuses
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _orjson_canonical(value: Any) -> bytes:
    return orjson.dumps(value, default=_decimal_as_number, option=orjson.OPT_SORT_KEYS)


def canonical_bytes(value: Any) -> bytes:
    """``canonical_json(value)`` in UTF-8, for a value read from JSON (objects with text keys,
    arrays, text, integers, ``Decimal``, booleans, null: never a float, whose spelling orjson
    and ``json`` do not share).

    On such values orjson writes what ``canonical_json`` writes: the same escapes, keys sorted by
    code point, integers as digits and each ``Decimal`` through ``_number``. What it cannot
    write (an integer beyond 64 bits, a lone surrogate, deep nesting, a number ``_number``
    refuses) raises, and a NUL shows as ``\\u0000``: those take ``canonical_json``'s own way,
    which writes or refuses them as it always has."""
    if _ORJSON_AGREES:
        try:
            text = _orjson_canonical(value)
        except TypeError:  # orjson.JSONEncodeError
            pass
        else:
            if b"\\u0000" not in text:
                return text
    try:
        return canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:
        raise Unstorable("a lone surrogate (e.g. \\ud800), which is not Unicode text") from None


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


# Every escape, keys whose code-point order differs from their UTF-16 order, integers at the
# edges of 64 bits, exact decimals: orjson is used only if it writes these as canonical_json does,
# both for a value without decimals (which canonical_json writes in C) and with (in Python).
_PROBE = {
    "".join(map(chr, range(1, 128))) + "\u2028\u2029\ufeff\uffff\U0001f600é": ["\U0010ffff", "\\"],
    "\uffff": 2**64 - 1, "\U00010000": -(2**63), "\ue000": "", "e\u0301": [True, False, None, {}, [], 0],
    "é": {"b": 1, "a": "x"},
}
try:
    _ORJSON_AGREES = all(
        _orjson_canonical(probe) == canonical_json(probe).encode("utf-8")
        for probe in (_PROBE, {**_PROBE, "": [Decimal("-12.50"), Decimal("1E+2"), Decimal("0.000001"), Decimal("-0")]}))
except (TypeError, ValueError):
    _ORJSON_AGREES = False


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
    try:
        return canonical_json(_document(entry, seq)).encode("utf-8")
    except UnicodeEncodeError:
        raise Unstorable("a lone surrogate (e.g. \\ud800), which is not Unicode text") from None


def _document(entry: Entry, seq: int) -> dict:
    return {
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


_SEQ = b',"seq":0,"subjects":'
_PAYLOAD_KEY, _AFTER_PAYLOAD = b',"payload":', b',"producer":'


@dataclass(frozen=True)
class Canonical:
    """An entry's canonical JSON with its position in the chain left blank, computed once: at
    position ``seq`` it is ``before + str(seq) + after``, byte for byte what
    ``canonical_record(entry, seq)`` gives. ``payload``: the payload's own canonical text (what
    the database stores), None when the entry has no payload."""

    before: bytes
    after: bytes
    payload: str | None

    def at(self, seq: int) -> bytes:
        return b"%s%d%s" % (self.before, seq, self.after)

    def hash_after(self, previous: bytes, seq: int) -> bytes:
        """``SHA-256(previous || canonical JSON at seq)``: the entry's hash as record ``seq``."""
        digest = hashlib.sha256(previous)
        digest.update(self.before)
        digest.update(b"%d" % seq)
        digest.update(self.after)
        return digest.digest()


def canonical_form(entry: Entry) -> Canonical:
    """The entry's canonical JSON at position 0, split around that position. ``entry`` holds what
    JSON was read into (no float). Raises ``Unstorable`` as ``canonical_record`` does."""
    text = canonical_bytes(_document(entry, 0))
    # Keys are sorted: "seq" is followed by "subjects", "topic", "v" and "value_sha256", and
    # "payload" by "producer". Within a JSON string every quote is escaped, so a comma, a quoted
    # key and a colon occur together only where an object has that key. The payload may have
    # such keys: each marker is searched from the end of the document away from the payload.
    split = text.rindex(_SEQ)
    payload = None
    if entry.payload is not None:
        start = text.index(_PAYLOAD_KEY) + len(_PAYLOAD_KEY)
        payload = text[start:text.rindex(_AFTER_PAYLOAD, start, split)].decode("utf-8")
    return Canonical(text[:split + 7], text[split + 8:], payload)


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
    return read_record(topic=topic, partition=partition, offset=offset, key=key, timestamp_ms=timestamp_ms,
                       value=value, received_at=received_at)[0]


def read_record(
    *, topic: str, partition: int, offset: int, key: bytes | None, timestamp_ms: int | None,
    value: bytes | None, received_at: datetime,
) -> tuple[Entry, Canonical]:
    """The entry of one Kafka record (as ``entry_from_record``) and its canonical form, which
    the recorder chains and stores without serialising the entry again."""
    kafka_timestamp = kafka_time(timestamp_ms)
    value_sha256 = hashlib.sha256(value or b"").hexdigest()

    def kept_raw(reason: str) -> tuple[Entry, Canonical]:
        record = Entry(topic=topic, partition=partition, kafka_offset=offset, kafka_key=key,
                       kafka_timestamp=kafka_timestamp, received_at=received_at, kind="raw", value_sha256=value_sha256)
        entry = as_raw(record, reason, value)
        return entry, canonical_form(entry)

    if value is None:
        return kept_raw("the record has no value (a tombstone)")
    try:
        document = _read_json(value)
    except (UnicodeDecodeError, ValueError) as exc:
        return kept_raw(f"not UTF-8 JSON: {exc}")
    except RecursionError:
        return kept_raw("JSON nested too deep to be read")
    if not isinstance(document, dict):
        return kept_raw(f"a JSON {type(document).__name__}, not an event envelope")
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors(include_url=False))
        return kept_raw(f"not an event envelope: {problems}")
    if not 1 <= envelope.schema_version <= _INT32:
        return kept_raw(f"schema_version {envelope.schema_version} is out of range")
    payload = document["payload"]
    tags, holds_float = _walk(payload, to_the_bottom=True)
    if holds_float:
        # Numbers orjson made floats: the payload as parse_json reads it, exactly. Its tags are
        # the same (they come from text values only).
        try:
            payload = parse_json(value)["payload"]
        except (UnicodeDecodeError, ValueError) as exc:
            return kept_raw(f"not UTF-8 JSON: {exc}")
        except RecursionError:
            return kept_raw("JSON nested too deep to be read")
    tags.add(f"{envelope.aggregate_type}:{envelope.aggregate_id}")
    entry = Entry(
        topic=topic, partition=partition, kafka_offset=offset, kafka_key=key,
        kafka_timestamp=kafka_timestamp, received_at=received_at, kind="event",
        value_sha256=value_sha256, event_id=envelope.event_id, event_type=envelope.event_type,
        schema_version=envelope.schema_version, occurred_at=envelope.occurred_at, producer=envelope.producer,
        aggregate_type=envelope.aggregate_type, aggregate_id=envelope.aggregate_id,
        correlation_id=envelope.correlation_id, causation_id=envelope.causation_id, actor=envelope.actor,
        payload=payload, subjects=tuple(sorted(tags)),
    )
    try:
        return entry, canonical_form(entry)
    except Unstorable as exc:
        return kept_raw(f"the envelope holds {exc}; kept as bytes")
    except RecursionError:
        return kept_raw("the envelope is nested too deep to be written as canonical JSON; kept as bytes")


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
_WATCHED_KEYS = frozenset(_SUBJECT_KEYS) | {"seller"}
_SCALARS = frozenset({str, int, float, Decimal, bool, type(None)})


def subjects_of(aggregate_type: str, aggregate_id: str, payload: Any) -> tuple[str, ...]:
    """``kind:id`` tags of everything an event is about: its aggregate, and the invoices,
    contracts, suppliers (SIRET) and payables its payload names (the seller of a canonical
    invoice too), at most 20 levels deep. The history queries search these tags."""
    tags, _ = _walk(payload, to_the_bottom=False)
    tags.add(f"{aggregate_type}:{aggregate_id}")
    return tuple(sorted(tags))


def _walk(payload: Any, to_the_bottom: bool) -> tuple[set[str], bool]:
    """The tags the payload's first 20 levels name, and whether it holds a float in the levels
    walked: the first 20, or every level ``to_the_bottom``."""
    tags: set[str] = set()
    holds_float = False
    pending = [(payload, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            if depth <= 20:
                for key in value.keys() & _WATCHED_KEYS:
                    item = value[key]
                    kind = _SUBJECT_KEYS.get(key)
                    if kind:
                        if isinstance(item, str) and item:
                            tags.add(f"{kind}:{item}")
                    elif isinstance(item, dict) and isinstance(item.get("siret"), str):  # "seller"
                        tags.add(f"supplier:{item['siret']}")
            items = value.values()
        elif isinstance(value, list):
            items = value
        else:
            continue
        # Most containers hold only text and numbers: their item types, collected in C, say so.
        kinds = set(map(type, items))
        holds_float = holds_float or float in kinds
        if (depth < 20 or to_the_bottom) and not kinds <= _SCALARS:
            pending += [(item, depth + 1) for item in items if isinstance(item, (dict, list))]
    return tags, holds_float
