"""Idempotent, batched consumption: each batch of records is applied in one PostgreSQL
transaction that also records every applied ``event_id``; Kafka offsets are committed only
after that transaction commits.

- A redelivered event (same ``event_id`` for the same consumer) has no second effect.
- A record that can never be processed (undecodable, unknown type, newer schema, invalid payload,
  or a handler that raises a non-infrastructure error) is written to ``<topic>.dlq`` with its
  reason; the records behind it on the partition carry on.
- An infrastructure error (database or broker unreachable) rolls the whole batch back; the batch
  is read again after a growing pause. Nothing is committed past an unprocessed record.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Awaitable, Callable

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from shared import metrics
from shared.clock import Clock
from shared.dlq import dead_letter_headers
from shared.events import Decoded, Event, PoisonMessage, decode_document, event_types
from shared.failpoints import failpoint
from shared.logging import bind_event, get_logger
from shared.settings import Settings

log = get_logger("consumer")

Handler = Callable[[asyncpg.Connection, Decoded], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, list[Decoded]], Awaitable[None]]
RawHandler = Callable[[list[ConsumerRecord]], Awaitable[None]]


@dataclass(frozen=True)
class Batched:
    """A handler that applies many events at once (a few set-based statements instead of a
    few per event). It receives the batch's new events of its types in aggregate order, one
    aggregate's events in the order they were published, and must give the same result as
    applying them one at a time: when it fails, the batch is applied again event by event,
    each in its own savepoint, calling it with a list of one."""

    handler: BatchHandler

INFRASTRUCTURE_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.CannotConnectNowError,
    KafkaError,
)


async def _records_as_read(message: KafkaMessage) -> tuple[ConsumerRecord, ...]:
    """The batch's body is its records as read: each consumer decodes what it needs, once
    (FastStream would otherwise parse every record as JSON for a body nobody reads)."""
    return message.raw_message


class _HandlerFailed(Exception):
    """A handler failed in a batch applied without savepoints: the batch is applied again
    event by event."""


@dataclass
class Letter:
    record: ConsumerRecord
    reason: str
    detail: str


class BatchConsumer(ABC):
    """A consumer group reading batches of records; subclasses say how a batch is applied.

    ``apply`` commits its own database work and returns the records to dead-letter; the
    offsets are committed after it returns. Infrastructure errors rewind the batch.
    """

    def __init__(self, name: str, topics: list[str]) -> None:
        self.name = name
        self.topics = topics
        self._failures = 0

    def subscribe(
        self,
        broker: KafkaBroker,
        *,
        settings: Settings,
        pool: Callable[[], asyncpg.Pool],
        producer: Callable[[], AIOKafkaProducer],
        clock: Clock,
    ) -> None:
        self.settings = settings
        self._pool = pool
        self._producer = producer
        self.clock = clock
        # Exported at 0 from the start: a retry shows as an increase, not as a new series.
        metrics.consumer_retries.labels(self.name)

        @broker.subscriber(
            *(settings.topic(t) for t in self.topics),
            group_id=f"{settings.topic(self.name)}",
            batch=True,
            max_records=settings.consumer_batch_size,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
            decoder=_records_as_read,
            title=self.name,
        )
        async def consume(body: list, msg: KafkaMessage) -> None:
            await self.consume_batch(msg)

    async def consume_batch(self, msg: KafkaMessage) -> None:
        records: tuple[ConsumerRecord, ...] = msg.raw_message
        started = time.perf_counter()
        try:
            letters = await self.apply(records)
            for letter in letters:
                await self._dead_letter(letter)
        except INFRASTRUCTURE_ERRORS as exc:
            self._failures += 1
            pause = min(0.25 * 2 ** self._failures, 15.0)
            metrics.consumer_retries.labels(self.name).inc()
            log.warning("batch rolled back, will be read again", consumer=self.name,
                        records=len(records), error=repr(exc), pause_s=pause)
            await asyncio.sleep(pause)
            await msg.nack()
            return
        self._failures = 0
        metrics.consumer_batch_seconds.labels(self.name).observe(time.perf_counter() - started)
        metrics.consumer_batch_records.labels(self.name).observe(len(records))
        failpoint("consumer.after_db_commit")
        await msg.ack()

    @abstractmethod
    async def apply(self, records: tuple[ConsumerRecord, ...]) -> list[Letter]: ...

    async def _dead_letter(self, letter: Letter) -> None:
        record = letter.record
        await self._producer().send_and_wait(
            f"{record.topic}.dlq",
            value=record.value,
            key=record.key,
            headers=dead_letter_headers(record, self.name, letter.reason, letter.detail, self.clock.now()),
        )
        metrics.dead_letters.labels(record.topic, letter.reason).inc()
        metrics.events_consumed.labels(_event_type_of(record), "dead_lettered").inc()
        log.warning("record dead-lettered", consumer=self.name, topic=record.topic,
                    partition=record.partition, offset=record.offset, reason=letter.reason,
                    detail=letter.detail[:300])


class IdempotentConsumer(BatchConsumer):
    """Applies domain events, each at most once per consumer (dedup on ``event_id``)."""

    def __init__(self, name: str, topics: list[str], handlers: dict[type[Event], Handler | Batched], *,
                 read_payload: bool = True) -> None:
        """``read_payload=False``: the handlers use the events' envelopes only (their ``event``
        is None); the payloads are not decoded, nor checked."""
        super().__init__(name, topics)
        self.handlers = {model.event_type: handler for model, handler in handlers.items()}
        self.read_payload = read_payload
        self.known_types = set(event_types())

    async def apply(self, records: tuple[ConsumerRecord, ...]) -> list[Letter]:
        """Applies a batch in one transaction; returns the records to dead-letter."""
        # Counts made while applying the batch apply once its transaction committed: a batch
        # rolled back and read again counts once.
        with metrics.counted_on_commit():
            return await self._apply(records)

    async def _apply(self, records: tuple[ConsumerRecord, ...]) -> list[Letter]:
        letters: list[Letter] = []
        wanted: list[tuple[ConsumerRecord, Decoded]] = []
        for record in records:
            # Another consumer's event, as its header says: skipped without reading its value.
            declared = _declared_type(record)
            if declared in self.known_types and declared not in self.handlers:
                metrics.on_commit(metrics.events_consumed.labels(declared, "ignored").inc)
                continue
            try:
                document = orjson.loads(record.value) if record.value is not None else None
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                letters.append(Letter(record, "undecodable", f"not UTF-8 JSON: {exc}"))
                continue
            event_type = document.get("event_type") if isinstance(document, dict) else None
            # Another consumer's event is skipped; a type nobody knows is decoded below and
            # dead-lettered as unknown.
            if event_type in self.known_types and event_type not in self.handlers:
                metrics.on_commit(metrics.events_consumed.labels(event_type, "ignored").inc)
                continue
            try:
                wanted.append((record, decode_document(document, read_payload=self.read_payload)))
            except PoisonMessage as poison:
                letters.append(Letter(record, poison.reason, poison.detail))
        if not wanted:
            return letters
        # Aggregate after aggregate, in one order for every consumer: the batches of two
        # consumers then lock the rows they share (an invoice) in the same order and cannot
        # deadlock each other. The sort is stable: one aggregate's events keep their order.
        wanted.sort(key=lambda item: item[1].envelope.aggregate_id)

        async with self._pool().acquire() as conn:
            # First without a savepoint per event (two round trips less each). When a handler
            # fails, that attempt is rolled back whole and the batch applied again with each
            # event in its savepoint, so that only the failing one is dead-lettered.
            try:
                async with metrics.counted_on_commit(), conn.transaction():
                    await self._apply_events(conn, wanted, None)
                return letters
            except _HandlerFailed:
                pass
            async with conn.transaction():
                await self._apply_events(conn, wanted, letters)
        return letters

    async def _apply_events(self, conn: asyncpg.Connection, wanted: list[tuple[ConsumerRecord, Decoded]],
                            letters: list[Letter] | None) -> None:
        """Records the events' ids and hands each new event to its handler. With ``letters``,
        each handler runs in a savepoint and a failing event is rolled back, forgotten and
        added to ``letters``; without, a failing handler raises ``_HandlerFailed``."""
        fresh = set(await conn.fetchval(
            "WITH ins AS (INSERT INTO processed_events (consumer, event_id, topic, partition, kafka_offset) "
            "SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::int[], $5::bigint[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id) SELECT coalesce(array_agg(event_id), '{}') FROM ins",
            self.name,
            [d.envelope.event_id for _, d in wanted],
            [r.topic for r, _ in wanted],
            [r.partition for r, _ in wanted],
            [r.offset for r, _ in wanted],
        ))
        new: list[tuple[ConsumerRecord, Decoded]] = []
        for record, decoded in wanted:
            if decoded.envelope.event_id in fresh:
                fresh.discard(decoded.envelope.event_id)
                new.append((record, decoded))
            else:
                metrics.on_commit(metrics.events_consumed.labels(decoded.envelope.event_type, "duplicate").inc)
        if letters is None:
            for step in self._steps(new):
                await self._run(conn, step)
            return
        for item in new:
            try:
                # The handler's own counts fall with its savepoint.
                async with metrics.counted_on_commit(), conn.transaction():
                    await self._run(conn, [item])
            except INFRASTRUCTURE_ERRORS:
                raise
            except _HandlerFailed as failed:
                record, decoded = item
                # The effect was rolled back to its savepoint; forget the event so a replay of
                # the dead letter is applied.
                await conn.execute(
                    "DELETE FROM processed_events WHERE consumer = $1 AND event_id = $2",
                    self.name, decoded.envelope.event_id,
                )
                exc = failed.__cause__
                letters.append(Letter(record, "handler_failed", f"{type(exc).__name__}: {exc}"))
                with bind_event(decoded.envelope):
                    log.error("handler failed, event dead-lettered", consumer=self.name, outcome="dead_lettered",
                              error=repr(exc))

    def _steps(self, new: list[tuple[ConsumerRecord, Decoded]]) -> list[list[tuple[ConsumerRecord, Decoded]]]:
        """The events in the order they are applied: each event of a plain handler alone, the
        events of a batched handler together, where the first of them stands."""
        steps: list[list[tuple[ConsumerRecord, Decoded]]] = []
        together: dict[BatchHandler, list[tuple[ConsumerRecord, Decoded]]] = {}
        for item in new:
            handler = self.handlers[item[1].envelope.event_type]
            if not isinstance(handler, Batched):
                steps.append([item])
            elif handler.handler in together:
                together[handler.handler].append(item)
            else:
                together[handler.handler] = step = [item]
                steps.append(step)
        return steps

    async def _run(self, conn: asyncpg.Connection, step: list[tuple[ConsumerRecord, Decoded]]) -> None:
        """Applies one step (one event, or a batched handler's events); a handler's failure
        other than an infrastructure error raises ``_HandlerFailed``."""
        events = [decoded for _, decoded in step]
        handler = self.handlers[events[0].envelope.event_type]
        started = time.perf_counter()
        try:
            if isinstance(handler, Batched):
                await handler.handler(conn, events)
            else:
                with bind_event(events[0].envelope):
                    await handler(conn, events[0])
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            raise _HandlerFailed from exc
        # One line per event handled; a batched handler's time is shared among its events.
        duration_ms = _ms_since(started) / len(events)
        for decoded in events:
            event_type = decoded.envelope.event_type
            metrics.on_commit(metrics.events_consumed.labels(event_type, "processed").inc)
            with bind_event(decoded.envelope):
                log.info("event handled", consumer=self.name, outcome="processed", duration_ms=round(duration_ms, 2))


class RawRecordConsumer(BatchConsumer):
    """Hands the batch's records (not events: e.g. raw supplier documents) to a function that
    takes them all at once and is idempotent by itself, for instance keyed on the content's
    hash. When it fails (other than an infrastructure error), each record is handed to it
    alone and only those that fail again are dead-lettered."""

    def __init__(self, name: str, topics: list[str], handler: RawHandler) -> None:
        super().__init__(name, topics)
        self.handler = handler

    async def apply(self, records: tuple[ConsumerRecord, ...]) -> list[Letter]:
        try:
            await self.handler(list(records))
            return []
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            log.warning("batch handler failed, records taken one by one", consumer=self.name, error=repr(exc))
        letters = []
        for record in records:
            try:
                await self.handler([record])
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception as exc:
                log.error("record handler failed, record dead-lettered", consumer=self.name, error=repr(exc))
                letters.append(Letter(record, "handler_failed", f"{type(exc).__name__}: {exc}"))
        return letters


def _declared_type(record: ConsumerRecord) -> str | None:
    """The ``event_type`` header the outbox relay puts on every event, if any."""
    for key, value in record.headers or ():
        if key == "event_type":
            return value.decode(errors="replace")
    return None


def _event_type_of(record: ConsumerRecord) -> str:
    """The record's ``event_type`` header when it names a known type: a label value must stay
    within a bounded set whatever a producer writes."""
    declared = _declared_type(record)
    return declared if declared in event_types() else "unknown"


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
