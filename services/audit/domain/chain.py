"""The hash chains of the audit log and their verification (pure: no I/O).

One chain per Kafka partition: ``hash(n) = SHA-256(hash(n-1) || canonical JSON of record n)``,
starting from 32 zero bytes. Why per partition rather than one global chain:

- Kafka orders records within a partition only. A partition's chain follows its offsets, so the
  chain's order is the topic's own order: anyone can re-read the topic and find the same
  sequence, and an offset missing from a chain is a record missing from the log.
- Partitions are recorded in parallel (several recorder replicas in one consumer group) without
  a global lock; each chain has one writer at a time (a lock per chain).
- A checkpoint attests each chain's head separately (a compacted topic keyed by chain keeps the
  latest head of every chain).

Verification recomputes every hash from the stored content and the *stored* hash of the
previous record, so one altered record is reported once, at that record; a deleted record shows
as a jump in the sequence numbers; a consistently rewritten or truncated tail is caught by the
checkpoints published outside the database and by the recorder's committed Kafka offsets.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Iterable, Sequence

from services.audit.domain.record import ENTRY_FIELDS, AuditRecord, Canonical, Entry, canonical_record

GENESIS = bytes(32)
MAX_PROBLEMS = 100


def chain_hash(previous: bytes, record: AuditRecord) -> bytes:
    return hashlib.sha256(previous + record.canonical()).digest()


def _next_hash(previous: bytes, entry: Entry, seq: int, canonical: Canonical | None) -> bytes:
    if canonical is not None:
        return canonical.hash_after(previous, seq)
    return hashlib.sha256(previous + canonical_record(entry, seq)).digest()


@dataclass(frozen=True)
class Head:
    """The last record of a chain: its position, hash and Kafka offset."""

    topic: str
    partition: int
    seq: int
    hash: bytes
    kafka_offset: int

    @property
    def chain(self) -> str:
        return chain_name(self.topic, self.partition)


def chain_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


def link(head: Head | None, entry: Entry, canonical: Canonical | None = None) -> AuditRecord:
    """The entry as the next record of the chain whose head is ``head`` (None: a new chain).
    ``canonical``: the entry's canonical form when already computed (``canonical_form``)."""
    seq = head.seq + 1 if head else 1
    # An Entry's attributes are its fields; a record being linked again has more (seq, hash, id).
    fields = vars(entry) if type(entry) is Entry else {name: getattr(entry, name) for name in ENTRY_FIELDS}
    return AuditRecord(**fields, seq=seq, hash=_next_hash(head.hash if head else GENESIS, entry, seq, canonical))


def head_of(record: AuditRecord) -> Head:
    return Head(record.topic, record.partition, record.seq, record.hash, record.kafka_offset)


def link_all(heads: dict[tuple[str, int], Head], entries: Iterable[Entry],
             canonicals: Sequence[Canonical] | None = None) -> list[AuditRecord]:
    """Chains entries (in each partition's offset order), moving ``heads`` forward.
    ``canonicals``: the entries' canonical forms, in the same order, when already computed."""
    records = []
    for i, entry in enumerate(entries):
        key = (entry.topic, entry.partition)
        record = link(heads.get(key), entry, canonicals[i] if canonicals is not None else None)
        heads[key] = head_of(record)
        records.append(record)
    return records


@dataclass(frozen=True)
class Problem:
    """Something that makes the log not intact; ``message`` says what and where."""

    kind: str  # tampered | missing | out_of_order | gap | checkpoint | truncated
    message: str
    topic: str | None = None
    partition: int | None = None
    seq: int | None = None
    kafka_offset: int | None = None
    record_id: int | None = None
    event_id: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _describe(record: AuditRecord) -> str:
    what = f"event {record.event_id} ({record.event_type})" if record.event_id else f"a {record.kind} record"
    return f"record {record.id} ({record.where}, seq {record.seq}, {what})"


@dataclass
class ChainVerifier:
    """Fed the records of each chain in ``seq`` order (chains one after the other or interleaved);
    collects the problems. ``anchor`` gives the predecessor of a record that starts a date range."""

    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    records: int = 0
    kinds: dict[str, int] = field(default_factory=lambda: {"event": 0, "raw": 0, "duplicate": 0})
    _last: dict[tuple[str, int], Head | None] = field(default_factory=dict)

    def follows_last(self, record: AuditRecord) -> bool:
        """Whether the record's predecessor is the last record fed for its chain."""
        last = self._last.get((record.topic, record.partition))
        return record.seq == 1 or (last is not None and last.seq == record.seq - 1)

    def anchor(self, record: AuditRecord, predecessor: Head | None) -> None:
        """Before ``record`` (not the first of its chain), its stored predecessor, or None if the
        database has none: then the predecessor was deleted."""
        key = (record.topic, record.partition)
        if predecessor is not None:
            self._last[key] = predecessor
        elif self._last.get(key) is None:
            self._report(Problem(
                "missing", f"record seq {record.seq - 1} of {record.topic} partition {record.partition}, "
                f"just before {_describe(record)}, is missing from the log (deleted)",
                record.topic, record.partition, record.seq - 1))
            self._last[key] = None
        # Otherwise ``feed`` reports the jump from the last record fed, offsets included.

    def feed(self, record: AuditRecord) -> None:
        self.records += 1
        self.kinds[record.kind] = self.kinds.get(record.kind, 0) + 1
        key = (record.topic, record.partition)
        previous: bytes | None
        if record.seq == 1 and key not in self._last:
            previous, last_offset = GENESIS, -1
        elif key in self._last:
            last = self._last[key]
            if last is None:  # after a deletion reported by ``anchor``: nothing to chain to
                previous, last_offset = None, None
            elif record.seq == last.seq + 1:
                previous, last_offset = last.hash, last.kafka_offset
            elif record.seq <= last.seq:
                self._report(Problem(
                    "out_of_order", f"{_describe(record)} repeats position {record.seq} of its chain",
                    *self._where(record)))
                return
            else:
                first, end = last.seq + 1, record.seq - 1
                span = f"seq {first}" if first == end else f"seq {first} to {end}"
                offsets = _span(last.kafka_offset + 1, record.kafka_offset - 1)
                self._report(Problem(
                    "missing", f"record {span} of {record.topic} partition {record.partition} "
                    f"({offsets}), between record seq {last.seq} and {_describe(record)}, "
                    "is missing from the log (deleted)",
                    record.topic, record.partition, first, last.kafka_offset + 1, None, None))
                previous, last_offset = None, None
        else:
            self._report(Problem(
                "missing", f"the first {record.seq - 1} record(s) of {record.topic} partition "
                f"{record.partition} are missing: the chain starts at {_describe(record)}",
                record.topic, record.partition, 1, None, None, None))
            previous, last_offset = None, None

        if previous is not None and chain_hash(previous, record) != record.hash:
            self._report(Problem(
                "tampered", f"{_describe(record)} does not match its hash: its content or its hash "
                "was changed after it was recorded", *self._where(record)))
        if last_offset is not None:
            if record.kafka_offset <= last_offset:
                self._report(Problem(
                    "out_of_order", f"{_describe(record)} has an offset not after its predecessor's "
                    f"({last_offset})", *self._where(record)))
            elif record.kafka_offset > last_offset + 1:
                self._report(Problem(
                    "gap", f"{record.topic} partition {record.partition}: "
                    f"{_span(last_offset + 1, record.kafka_offset - 1)} never recorded, "
                    f"before {_describe(record)}",
                    record.topic, record.partition, record.seq, last_offset + 1, None, None))
        self._last[key] = Head(record.topic, record.partition, record.seq, record.hash, record.kafka_offset)

    def _where(self, record: AuditRecord) -> tuple:
        return (record.topic, record.partition, record.seq, record.kafka_offset, record.id,
                str(record.event_id) if record.event_id else None)

    def _report(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def heads(self) -> dict[str, Head]:
        return {h.chain: h for h in self._last.values() if h is not None}


def _span(first: int, last: int) -> str:
    return f"offset {first}" if first == last else f"offsets {first} to {last}"


@dataclass(frozen=True)
class Checkpoint:
    """A chain head published outside the database: ``count`` records ending in ``hash``."""

    topic: str
    partition: int
    count: int
    hash: str  # hex
    kafka_offset: int
    at: datetime
    source: str = ""  # where it was read: the file or the topic

    @property
    def chain(self) -> str:
        return chain_name(self.topic, self.partition)

    def as_dict(self) -> dict:
        return {"chain": self.chain, "topic": self.topic, "partition": self.partition, "count": self.count,
                "hash": self.hash, "kafka_offset": self.kafka_offset, "at": self.at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict, source: str) -> Checkpoint:
        return cls(topic=data["topic"], partition=int(data["partition"]), count=int(data["count"]),
                   hash=data["hash"], kafka_offset=int(data["kafka_offset"]),
                   at=datetime.fromisoformat(data["at"]), source=source)


def checkpoint_of(head: Head, at: datetime) -> Checkpoint:
    return Checkpoint(head.topic, head.partition, head.seq, head.hash.hex(), head.kafka_offset, at)


def compare_checkpoint(checkpoint: Checkpoint, stored: Head | None, log_count: int) -> Problem | None:
    """The log must still hold, at the checkpoint's position, the record it attested.

    ``stored``: the log's record at position ``checkpoint.count`` of that chain (None if none);
    ``log_count``: how many records the chain holds now."""
    attested = (f"the checkpoint of {checkpoint.at.isoformat()} ({checkpoint.source}) attests "
                f"{checkpoint.count} record(s) on {checkpoint.topic} partition {checkpoint.partition} "
                f"up to offset {checkpoint.kafka_offset}, ending in hash {checkpoint.hash[:16]}…")
    if stored is None:
        return Problem("truncated", f"{attested}; the log holds only {log_count}: records were removed",
                       checkpoint.topic, checkpoint.partition, checkpoint.count, checkpoint.kafka_offset)
    if stored.hash.hex() != checkpoint.hash:
        return Problem("checkpoint", f"{attested}; the log's record at that position (offset "
                       f"{stored.kafka_offset}) has hash {stored.hash.hex()[:16]}…: the log was rewritten",
                       checkpoint.topic, checkpoint.partition, checkpoint.count, stored.kafka_offset)
    return None


def compare_committed(topic: str, partition: int, committed: int, last_offset: int | None) -> Problem | None:
    """The recorder commits a Kafka offset only after the records before it are in the log: a log
    ending before the committed offset lost its tail."""
    recorded_up_to = -1 if last_offset is None else last_offset
    if committed - 1 > recorded_up_to:
        return Problem(
            "truncated", f"the recorder confirmed to Kafka every record of {topic} partition {partition} "
            f"before offset {committed}, but the log ends at offset {recorded_up_to}: "
            f"{_span(recorded_up_to + 1, committed - 1)} were removed from the log",
            topic, partition, None, recorded_up_to + 1)
    return None
