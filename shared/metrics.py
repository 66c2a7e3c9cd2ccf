"""Plumbing metrics every service exports (business metrics live in each service's metrics.py).

One process runs one service, so the default registry is that service's registry.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import Histogram, REGISTRY, Counter, Gauge

from shared.logging import get_logger

registry = REGISTRY
_log = get_logger("metrics")

events_published = Counter(
    "events_published_total", "Events published to Kafka by the outbox relay", ["event_type"]
)
outbox_publish_delay = Histogram(
    "outbox_publish_delay_seconds",
    "From an event's commit in the outbox to Kafka's acknowledgement of its publication",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
events_consumed = Counter(
    "events_consumed_total",
    "Events read from Kafka, by outcome (processed, duplicate, ignored, dead_lettered)",
    ["event_type", "result"],
)
dead_letters = Counter(
    "dead_letters_total", "Records sent to a dead-letter topic", ["topic", "reason"]
)
outbox_pending = Gauge("outbox_pending", "Outbox rows committed but not yet published")
outbox_oldest_age = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row (0 when none)"
)
consumer_retries = Counter(
    "consumer_batch_retries_total", "Batches rolled back on an infrastructure error and retried",
    ["consumer"],
)
consumer_batch_seconds = Histogram(
    "consumer_batch_seconds",
    "Time a consumer took to apply a batch of records (database work and commit included)",
    ["consumer"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
consumer_batch_records = Histogram(
    "consumer_batch_records", "Records in each batch a consumer applied",
    ["consumer"], buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
outbox_relay_batch_seconds = Histogram(
    "outbox_relay_batch_seconds", "Time the outbox relay took to publish a batch and mark it published",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
db_pool_size = Gauge("db_pool_size", "Connections open in the service's PostgreSQL pool")
db_pool_in_use = Gauge("db_pool_in_use", "Connections of the pool lent to a handler or a request")
db_pool_max = Gauge("db_pool_max", "Connections the pool may open at most (INVOICING_DB_POOL_MAX)")
kafka_consumer_lag = Gauge(
    "kafka_consumer_lag", "Records on a partition after the consumer group's committed offset",
    ["consumer", "topic", "partition"],
)
dead_letter_records = Gauge(
    "dead_letter_records", "Records held in a dead-letter topic the service writes to", ["topic"]
)

# How often gauges read from a database or from Kafka are refreshed: a few scrapes apart, and
# cheap enough that every replica can do it.
REFRESH_SECONDS = 15.0


# ---------------------------------------------------------------- counting after the commit

_scope: ContextVar[list[Callable[[], None]] | None] = ContextVar("counted_on_commit", default=None)


class counted_on_commit:
    """Holds back the increments ``on_commit`` registers inside the block until it ends.

    Put the block around a transaction (``async with counted_on_commit(), pool.acquire() as
    conn, conn.transaction():``, or a ``with`` around it): when the block ends normally the
    transaction has committed and the increments apply (or, in a nested block, pass to the
    enclosing one); when it raises, the work rolled back and the increments are dropped, so a
    retried batch or a failed request never counts twice.
    """

    def __enter__(self) -> None:
        self._pending: list[Callable[[], None]] = []
        self._token = _scope.set(self._pending)

    def __exit__(self, exc_type, exc, traceback) -> None:
        _scope.reset(self._token)
        if exc_type is not None:
            return
        outer = _scope.get()
        if outer is not None:
            outer.extend(self._pending)
            return
        for increment in self._pending:
            increment()

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type, exc, traceback) -> None:
        self.__exit__(exc_type, exc, traceback)


def on_commit(increment: Callable[[], None]) -> None:
    """Counts once the enclosing ``counted_on_commit`` block ends normally; at once outside one."""
    pending = _scope.get()
    if pending is None:
        increment()
    else:
        pending.append(increment)


# ---------------------------------------------------------------- pool and Kafka gauges

def watch_pool(pool: asyncpg.Pool) -> None:
    """The pool gauges read the pool itself at each scrape."""
    db_pool_size.set_function(pool.get_size)
    db_pool_in_use.set_function(lambda: pool.get_size() - pool.get_idle_size())
    db_pool_max.set_function(pool.get_max_size)


@dataclass(frozen=True)
class Subscription:
    """One consumer group of the service: its name (the ``consumer`` label), its Kafka group id
    and the topics it reads (resolved names)."""

    consumer: str
    group_id: str
    topics: tuple[str, ...]


class KafkaBacklog:
    """Refreshes ``kafka_consumer_lag`` (end offset − committed offset, per partition of each
    consumer group) and ``dead_letter_records`` (records between the start and the end of each
    dead-letter topic) from the broker, with clients of its own: it never touches the offsets
    or the group membership of the consumers it measures."""

    def __init__(self, bootstrap: str, subscriptions: list[Subscription], dead_letter_topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.subscriptions = subscriptions
        self.dead_letter_topics = dead_letter_topics

    async def run(self, every: float = REFRESH_SECONDS) -> None:
        while True:
            # aiokafka binds its clients to the running loop: they are created here, in the task,
            # and created again after a failure (the broker was away when they started, say).
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10000)
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                       request_timeout_ms=10000)
            try:
                await admin.start()
                await offsets.start()
                while True:
                    await self.refresh(admin, offsets)
                    await asyncio.sleep(every)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # tried again next round; until then the gauges keep their values
                _log.warning("Kafka lag not refreshed", error=repr(exc))
            finally:
                await offsets.stop()
                await admin.close()
            await asyncio.sleep(every)

    async def refresh(self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer) -> None:
        topics = sorted({t for s in self.subscriptions for t in s.topics} | set(self.dead_letter_topics))
        if not topics:
            return
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in await admin.describe_topics(topics) if topic["error_code"] == 0
            for partition in topic["partitions"]
        ]
        starts = await offsets.beginning_offsets(partitions)
        ends = await offsets.end_offsets(partitions)
        for subscription in self.subscriptions:
            read = [tp for tp in partitions if tp.topic in subscription.topics]
            if not read:
                continue
            # Partitions named explicitly come back with offset -1 when the group never committed
            # there (a new group): it then starts from the log start (auto_offset_reset=earliest).
            committed = await admin.list_consumer_group_offsets(subscription.group_id, partitions=read)
            for tp in read:
                position = committed.get(tp)
                offset = position.offset if position is not None and position.offset >= 0 else starts[tp]
                kafka_consumer_lag.labels(subscription.consumer, tp.topic, str(tp.partition)).set(
                    max(0, ends[tp] - max(offset, starts[tp])))
        for topic in self.dead_letter_topics:
            dead_letter_records.labels(topic).set(
                sum(ends[tp] - starts[tp] for tp in partitions if tp.topic == topic))
