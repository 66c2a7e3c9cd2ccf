"""``verify`` and the completeness report: the log read back through a cursor and checked by
the pure ``ChainVerifier``, then held against what lives outside the database — the published
checkpoints and the offsets the recorder committed to Kafka."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.audit import checkpoints, store
from services.audit.domain.chain import ChainVerifier, Checkpoint, Problem, compare_checkpoint, compare_committed
from services.audit.recorder import CONSUMER
from shared.settings import Settings
from shared.topics import partitions_of


async def verify_log(conn: asyncpg.Connection, settings: Settings, start: datetime | None = None,
                     end: datetime | None = None, outside: bool = True) -> dict:
    """The verdict on the log (records received in ``[start, end)`` when given): ``intact`` and,
    when not, the first problem named by record, partition and offset. ``outside``: also compare
    with the checkpoints and the recorder's committed Kafka offsets."""
    # What lives outside is read first: the recorder publishes a checkpoint or commits an offset
    # only after the rows it covers are committed, so the database snapshot taken afterwards
    # holds them all, however busy the recorder is meanwhile.
    if outside:
        published = await _published_checkpoints(settings)
        committed = await _committed_or_note(settings)
    verifier = ChainVerifier()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for record in store.chain_records(conn, start, end):
            if not verifier.follows_last(record):
                verifier.anchor(record, await store.at_position(conn, record.topic, record.partition, record.seq - 1))
            verifier.feed(record)
        report: dict = {"records": verifier.records, "kinds": verifier.kinds, "chains": len(verifier.heads)}
        if start or end:
            report["period"] = {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None}
        outside_problems: list[Problem] = []
        if outside:
            report["checkpoints"], found = await _against_checkpoints(conn, settings, *published)
            outside_problems += found
            report["kafka"], found = await _against_kafka(conn, settings, committed)
            outside_problems += found
    problems = verifier.problems + outside_problems
    report["intact"] = not problems
    report["problem_count"] = verifier.problem_count + len(outside_problems)
    if problems:
        report["first_problem"] = problems[0].message
    report["problems"] = [p.as_dict() for p in problems]
    return report


async def _published_checkpoints(settings: Settings) -> tuple[checkpoints.Published, checkpoints.Published, str | None]:
    in_file = checkpoints.read_file(settings)
    try:
        return in_file, await checkpoints.read_topic(settings), None
    except (KafkaError, OSError, TimeoutError) as exc:
        return in_file, checkpoints.Published([], [], None), f"the checkpoint topic could not be read: {exc}"


async def _against_checkpoints(conn: asyncpg.Connection, settings: Settings, in_file: checkpoints.Published,
                               in_topic: checkpoints.Published, note: str | None) -> tuple[dict, list[Problem]]:
    problems = in_file.problems + in_topic.problems
    unique: dict[tuple, Checkpoint] = {}
    for checkpoint in in_file.checkpoints + in_topic.checkpoints:
        unique.setdefault((checkpoint.topic, checkpoint.partition, checkpoint.count, checkpoint.hash), checkpoint)
    counts = await store.counts(conn)
    for checkpoint in unique.values():
        stored = await store.at_position(conn, checkpoint.topic, checkpoint.partition, checkpoint.count)
        problem = compare_checkpoint(checkpoint, stored, counts.get((checkpoint.topic, checkpoint.partition), 0))
        if problem:
            problems.append(problem)
    latest = max(filter(None, (in_file.latest, in_topic.latest)), default=None)
    summary = {"checked": len(unique), "file": str(checkpoints.checkpoint_file(settings)),
               "latest": latest.isoformat() if latest else None}
    if note:
        summary["note"] = note
    return summary, problems


async def committed_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """The offsets the recorder's consumer group committed, per audited partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.topic(CONSUMER))
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items() if meta.offset >= 0}


async def _committed_or_note(settings: Settings) -> dict[tuple[str, int], int] | str:
    try:
        return await committed_offsets(settings)
    except (KafkaError, OSError, TimeoutError) as exc:
        return f"Kafka could not be asked for the recorder's offsets: {exc}"


async def _against_kafka(conn: asyncpg.Connection, settings: Settings,
                         committed: dict[tuple[str, int], int] | str) -> tuple[dict, list[Problem]]:
    if isinstance(committed, str):
        return {"checked": False, "note": committed}, []
    heads = {(h.topic, h.partition): h.kafka_offset for h in await store.heads(conn)}
    audited = {settings.topic(t) for t in settings.audit_topics}
    problems = []
    for (topic, partition), offset in sorted(committed.items()):
        if topic not in audited:
            continue
        problem = compare_committed(topic, partition, offset, heads.get((topic, partition)))
        if problem:
            problems.append(problem)
    return {"checked": True, "partitions": len(committed)}, problems


async def completeness_report(conn: asyncpg.Connection, settings: Settings) -> dict:
    """Per audited partition: what the log holds, the offsets it never recorded, and how far it
    is behind the topic's end (records published and not yet recorded)."""
    chains = await store.completeness(conn)
    ends: dict[tuple[str, int], int] = {}
    note = None
    try:
        ends = await _end_offsets(settings)
    except (KafkaError, OSError, TimeoutError) as exc:
        note = f"Kafka could not be asked for the topics' ends: {exc}"
    known = {(c["topic"], c["partition"]) for c in chains}
    for topic, partition in sorted(set(ends) - known):
        chains.append({"topic": topic, "partition": partition, "records": 0, "first_offset": None,
                       "last_offset": None, "last_seq": 0, "events": 0, "raw": 0, "duplicates": 0, "gaps": []})
    for chain in chains:
        first = chain["first_offset"]
        if first:  # the chain does not start at the partition's first offset
            chain["gaps"].insert(0, {"first_missing": 0, "last_missing": first - 1})
        end = ends.get((chain["topic"], chain["partition"]))
        if end is not None:
            chain["kafka_end_offset"] = end
            chain["behind"] = end - 1 - (chain["last_offset"] if chain["last_offset"] is not None else -1)
    report = {"complete": not any(c["gaps"] for c in chains), "chains": chains}
    if note:
        report["note"] = note
    return report


async def _end_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    partitions: list[TopicPartition] = await partitions_of(settings, [settings.topic(t) for t in settings.audit_topics])
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
