"""The topic catalogue: every topic the system uses, with its partitions and retention.

Each service publishes its events on one topic (``<service>.events``) keyed by aggregate id, so
one invoice's or contract's events stay in order on one partition. Every consumed topic has a
dead-letter twin ``<topic>.dlq``. Domain events are kept forever: they are the audit trail.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from shared.settings import Settings

FOREVER = "-1"
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    purpose: str
    config: dict[str, str] = field(default_factory=dict)


EVENTS = {"retention.ms": FOREVER, "cleanup.policy": "delete", "min.insync.replicas": "1"}

CATALOGUE: tuple[Topic, ...] = (
    Topic("invoices.inbound", 6, "raw supplier documents from an upstream gateway",
          {"retention.ms": str(30 * DAY_MS), "max.message.bytes": str(20 * 1024 * 1024)}),
    Topic("invoices.events", 6, "invoice lifecycle events", EVENTS),
    Topic("advances.events", 3, "contracts, advances and their recovery", EVENTS),
    Topic("payments.events", 3, "payment orders, executions, late interest", EVENTS),
    Topic("audit.checkpoints", 1, "chain heads of the audit log, one per chain",
          {"cleanup.policy": "compact", "retention.ms": FOREVER}),
)

CONSUMED = ("invoices.inbound", "invoices.events", "advances.events", "payments.events")
DEAD_LETTERS: tuple[Topic, ...] = tuple(
    Topic(f"{name}.dlq", 1, f"records of {name} that could not be processed",
          {"retention.ms": FOREVER, "max.message.bytes": str(20 * 1024 * 1024)})
    for name in CONSUMED
)


def all_topics() -> tuple[Topic, ...]:
    return CATALOGUE + DEAD_LETTERS


async def create_topics(settings: Settings, replication: int = 1) -> list[str]:
    """Creates the missing topics of the catalogue (under the settings' namespace).

    Returns the names created; existing topics are left as they are.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(settings.topic(t.name), t.partitions, replication, topic_configs=t.config)
            for t in all_topics()
            if settings.topic(t.name) not in existing
        ]
        if not wanted:
            return []
        try:
            await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            pass  # created concurrently by another process: that is the wanted end state
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def partitions_of(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """The partitions of the given (resolved) topic names; topics that do not exist are left out."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described if topic["error_code"] == 0
        for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
    ]


async def read_all(settings: Settings, topics: list[str], timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record on the topics up to their current end, read without a consumer group."""
    partitions = await partitions_of(settings, topics)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {', '.join(topics)} to the end within {timeout:.0f} s")
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records.extend(record for record in batch if record.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def delete_topics(settings: Settings) -> list[str]:
    """Deletes the catalogue's topics of the settings' namespace and waits until they are gone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = [settings.topic(t.name) for t in all_topics() if settings.topic(t.name) in existing]
        if mine:
            await admin.delete_topics(mine)
            deadline = time.monotonic() + 30
            while set(await admin.list_topics()) & set(mine) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        return mine
    finally:
        await admin.close()
