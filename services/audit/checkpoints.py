"""Checkpoints: the head of every chain (record count, last hash, last offset, time) published
outside the database, to the compacted ``audit.checkpoints`` topic (key: the chain, so the topic
keeps each chain's latest head forever) and as one JSON line per checkpoint in
``<state dir>/audit/<namespace>/checkpoints.jsonl``. Whoever truncates or rewrites the log in
the database would also have to rewrite both, and the copies auditors keep of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from services.audit import metrics, store
from services.audit.domain.chain import Checkpoint, Problem, checkpoint_of
from shared.clock import Clock
from shared.periodic import every
from shared.logging import get_logger
from shared.settings import Settings
from shared.topics import read_all

log = get_logger("audit.checkpoints")

TOPIC = "audit.checkpoints"


def checkpoint_file(settings: Settings) -> Path:
    return settings.state_dir / "audit" / (settings.namespace or "default") / "checkpoints.jsonl"


async def take_checkpoint(conn: asyncpg.Connection, settings: Settings, producer: AIOKafkaProducer,
                          clock: Clock) -> dict:
    """Publishes the current head of every chain; returns what was published."""
    at = clock.now()
    checkpoints = [checkpoint_of(head, at) for head in await store.heads(conn)]
    summary = {"at": at.isoformat(), "records": sum(c.count for c in checkpoints),
               "chains": [c.as_dict() for c in checkpoints]}
    path = checkpoint_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(summary, sort_keys=True) + "\n")
        out.flush()
        os.fsync(out.fileno())
    for checkpoint in checkpoints:
        await producer.send_and_wait(settings.topic(TOPIC), key=checkpoint.chain.encode(),
                                     value=json.dumps(checkpoint.as_dict(), sort_keys=True).encode())
    metrics.checkpoints_published.inc()
    metrics.last_checkpoint.set(at.timestamp())
    log.info("checkpoint published", chains=len(checkpoints), records=summary["records"], file=str(path))
    return {**summary, "file": str(path), "topic": settings.topic(TOPIC)}


@dataclass
class Published:
    checkpoints: list[Checkpoint]
    problems: list[Problem]
    latest: datetime | None


def read_file(settings: Settings) -> Published:
    path = checkpoint_file(settings)
    checkpoints, problems, latest = [], [], None
    if not path.exists():
        return Published([], [], None)
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                summary = json.loads(line)
                at = datetime.fromisoformat(summary["at"])
                found = [Checkpoint.from_dict(chain, f"{path.name} line {number}") for chain in summary["chains"]]
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(Problem("checkpoint", f"{path} line {number} is not a checkpoint ({exc}): "
                                        "the file was edited"))
                continue
            checkpoints += found
            latest = at if latest is None or at > latest else latest
    return Published(checkpoints, problems, latest)


async def read_topic(settings: Settings) -> Published:
    checkpoints, problems, latest = [], [], None
    for record in await read_all(settings, [settings.topic(TOPIC)]):
        try:
            checkpoint = Checkpoint.from_dict(json.loads(record.value), f"{TOPIC} offset {record.offset}")
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(Problem("checkpoint", f"{TOPIC} offset {record.offset} is not a checkpoint ({exc})"))
            continue
        checkpoints.append(checkpoint)
        latest = checkpoint.at if latest is None or checkpoint.at > latest else latest
    return Published(checkpoints, problems, latest)


async def checkpoint_loop(settings: Settings, clock: Clock, pool_of, producer_of) -> None:
    """Publishes a checkpoint whenever the last one is older than the configured interval, by
    the configured clock (a demo clock moved ten days ahead checkpoints at once)."""
    interval = timedelta(seconds=settings.audit_checkpoint_seconds)
    last = read_file(settings).latest

    async def step() -> None:
        nonlocal last
        if last is None or clock.now() - last >= interval:
            async with pool_of().acquire() as conn:
                if await store.heads(conn):
                    last = datetime.fromisoformat((await take_checkpoint(conn, settings, producer_of(), clock))["at"])

    await every(min(settings.audit_checkpoint_seconds, 30.0), step, what="audit checkpoint")
