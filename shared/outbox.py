"""Transactional outbox: events are rows committed with the state change, then relayed to Kafka.

Writers call ``append`` inside the transaction that changes the aggregate, after taking the
aggregate's row lock (its UPDATE, or the INSERT that creates it): outbox ids are then allocated
in commit order for that aggregate, and the relay, publishing unpublished rows by id, keeps each
aggregate's events in order. Exactly one relay per service is active at a time (a session-level
advisory lock); others wait as standbys. The producer is idempotent with acks=all. A crash
between the Kafka acknowledgement and the ``published_at`` update re-publishes the rows: the
consumers' dedup on ``event_id`` makes that harmless.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.db import connect, lock_key
from shared.events import Envelope, encode
from shared.failpoints import failpoint
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("outbox")


async def append(conn: asyncpg.Connection, topic: str, envelope: Envelope) -> None:
    """Adds one event to the outbox in the caller's transaction. ``topic`` is the resolved name."""
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, msg_key, event_type, body) VALUES ($1, $2, $3, $4, $5)",
        envelope.event_id, topic, envelope.aggregate_id, envelope.event_type, encode(envelope),
    )


async def append_all(conn: asyncpg.Connection, events: list[tuple[str, Envelope]]) -> None:
    """Adds ``(topic, envelope)`` events to the outbox, in this order, in the caller's
    transaction: one pipelined round trip instead of one per event."""
    await conn.executemany(
        "INSERT INTO outbox (event_id, topic, msg_key, event_type, body) VALUES ($1, $2, $3, $4, $5)",
        [(envelope.event_id, topic, envelope.aggregate_id, envelope.event_type, encode(envelope))
         for topic, envelope in events],
    )


def idempotent_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        max_request_size=20 * 1024 * 1024,
        request_timeout_ms=30000,
    )


class OutboxRelay:
    def __init__(self, settings: Settings, service: str, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.service = service
        self.producer = producer
        self._wake = asyncio.Event()
        self.is_leader = False

    async def run(self) -> None:
        """Runs until cancelled: waits for leadership, then relays; reconnects after DB errors."""
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.is_leader = False
                log.warning("outbox relay lost its database connection", error=str(exc))
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        conn = await connect(self.settings, self.service)
        try:
            key = lock_key(f"outbox-relay:{self.service}")
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                await asyncio.sleep(self.settings.relay_poll_seconds)
            self.is_leader = True
            await conn.add_listener(f"outbox_{self.service}", lambda *_: self._wake.set())
            log.info("outbox relay active")
            while True:
                self._wake.clear()
                published = await self.publish_batch(conn)
                if published < self.settings.relay_batch_size:
                    try:
                        await asyncio.wait_for(self._wake.wait(), self.settings.relay_poll_seconds)
                    except asyncio.TimeoutError:
                        pass
        finally:
            self.is_leader = False
            await conn.close()

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, msg_key, event_type, event_id, body, created_at FROM outbox "
            "WHERE published_at IS NULL ORDER BY id LIMIT $1",
            self.settings.relay_batch_size,
        )
        await self._report_backlog(conn, rows)
        if not rows:
            return 0
        failpoint("relay.before_send")
        started = time.perf_counter()
        deliveries = []
        for row in rows:
            headers = [
                ("event_id", str(row["event_id"]).encode()),
                ("event_type", row["event_type"].encode()),
            ]
            deliveries.append(
                await self.producer.send(
                    row["topic"], value=row["body"], key=row["msg_key"].encode(), headers=headers
                )
            )
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        # Only the prefix delivered without error is marked: the rest is retried in id order.
        done: list[int] = []
        error: BaseException | None = None
        acknowledged = time.time()  # a technical latency, on the machines' clock like created_at
        for row, result in zip(rows, results):
            if isinstance(result, BaseException):
                error = result
                break
            done.append(row["id"])
            metrics.events_published.labels(row["event_type"]).inc()
            metrics.outbox_publish_delay.observe(max(0.0, acknowledged - row["created_at"].timestamp()))
        failpoint("relay.after_send")
        if done:
            await conn.execute("UPDATE outbox SET published_at = now(), attempts = attempts + 1 "
                               "WHERE id = ANY($1::bigint[])", done)
        metrics.outbox_relay_batch_seconds.observe(time.perf_counter() - started)
        if error is not None:
            failed = rows[len(done)]
            await conn.execute("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                               failed["id"], repr(error)[:1000])
            log.error("outbox publish failed", outbox_id=failed["id"], error=repr(error))
            await asyncio.sleep(1.0)
        return len(done)

    async def _report_backlog(self, conn: asyncpg.Connection, rows) -> None:
        if len(rows) < self.settings.relay_batch_size:
            metrics.outbox_pending.set(len(rows))
        else:
            metrics.outbox_pending.set(
                await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            )
        metrics.outbox_oldest_age.set(
            max(0.0, time.time() - rows[0]["created_at"].timestamp()) if rows else 0.0
        )
