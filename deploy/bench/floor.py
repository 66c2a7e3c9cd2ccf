"""The floor of the end-to-end benchmark: a pipeline with as many hops as an invoice's journey
from ``invoices.inbound`` to ``PaymentOrdered`` (intake, approval, advance recovery, payment),
written directly on aiokafka and asyncpg with trivial logic. Each hop is a process and a
consumer group that reads a batch (up to ``consumer_batch_size`` records, as the services'
consumers do), writes one row per record in one transaction, produces one record per record
to the next topic with the outbox's producer settings, and commits its offsets after the
database commit. What the real pipeline takes beyond this is the cost of the framework and of
the domain.

    python -m deploy.bench.floor HOP     # HOP in intake, approval, recovery, payment
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.outbox import idempotent_producer
from shared.settings import Settings, get_settings

# The hops in order, each reading the topic of its index and writing the next one; partitions
# as in the catalogue (invoices.inbound and invoices.events 6, advances and payments 3).
HOPS = ("intake", "approval", "recovery", "payment")
TOPICS = (("floor.inbound", 6), ("floor.validated", 6), ("floor.approved", 6), ("floor.recovered", 3),
          ("floor.ordered", 3))
INBOUND, ORDERED = TOPICS[0][0], TOPICS[-1][0]

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS floor;
CREATE TABLE IF NOT EXISTS floor.passed (
    hop  text    NOT NULL,
    key  text    NOT NULL,
    size integer NOT NULL,
    PRIMARY KEY (hop, key)
);
"""


async def prepare(settings: Settings) -> None:
    """Creates the floor's topics and table in the settings' namespace and database."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(settings.topic(name), partitions, 1) for name, partitions in TOPICS
                  if settings.topic(name) not in existing]
        if wanted:
            await admin.create_topics(wanted)
    finally:
        await admin.close()
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


async def remove_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = [settings.topic(name) for name, _ in TOPICS if settings.topic(name) in existing]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def run_hop(settings: Settings, hop: str) -> None:
    """Runs one hop until cancelled; prints ``ready`` once it holds its partitions."""
    index = HOPS.index(hop)
    source, target = settings.topic(TOPICS[index][0]), settings.topic(TOPICS[index + 1][0])
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    consumer = AIOKafkaConsumer(source, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=settings.topic(f"floor.{hop}"), enable_auto_commit=False,
                                auto_offset_reset="earliest", max_poll_interval_ms=600_000)
    producer = idempotent_producer(settings, f"floor-{hop}")
    await consumer.start()
    await producer.start()
    ready = False
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=settings.consumer_batch_size)
            if not ready and consumer.assignment():
                print("ready", flush=True)
                ready = True
            records = [record for part in batches.values() for record in part]
            if not records:
                continue
            keys = [record.key.decode() for record in records]
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO floor.passed (hop, key, size) SELECT $1, * FROM unnest($2::text[], $3::int[]) "
                    "ON CONFLICT DO NOTHING", hop, keys, [len(record.value or b"") for record in records])
            deliveries = [await producer.send(target, value=json.dumps({"id": key, "hop": hop}).encode(),
                                              key=key.encode()) for key in keys]
            await asyncio.gather(*deliveries)
            await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
        await conn.close()


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in HOPS:
        sys.exit(f"usage: python -m deploy.bench.floor HOP, HOP one of {', '.join(HOPS)}")

    async def serve() -> None:
        task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await run_hop(get_settings(), sys.argv[1])
        except asyncio.CancelledError:
            pass

    asyncio.run(serve())


if __name__ == "__main__":
    main()
