"""The end-to-end benchmark's workload: suppliers and their budget commitments set up so that
every invoice takes the automatic-approval path, distinct CII invoices for them, and the Kafka
side of the measurement (a gateway producing the documents, a reader timing what comes out).

Automatic approval (``services/invoices/domain/approval.py``) needs: the engagement recorded, held
by the seller, with credit left and certifying the service itself; the invoice's IBAN the
supplier's registered one; the amount under the threshold. Each invoice differs from every other
by its number and by its amounts (its first line's unit price), so none is a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from stdnum import iban as stdnum_iban

from deploy.simulators.suppliers import cii, default_lines, make_siret
from shared.settings import Settings
from shared.topics import partitions_of

# Far above what the invoices of one run consume: an engagement never runs out of credit.
ENGAGEMENT_AMOUNT = Decimal("900000000.00")
LINES = default_lines(20)


def supplier_siret(k: int) -> str:
    return make_siret(52_000_000 + k)


def supplier_iban(k: int) -> str:
    bban = f"30004000031{k:010d}00"
    return f"FR{stdnum_iban.calc_check_digits('FR00' + bban)}{bban}"


def supplier(k: int) -> dict:
    """The body of ``POST /suppliers`` for the k-th supplier of the benchmark."""
    return {"siret": supplier_siret(k), "name": f"Fournisseur de référence {k}", "sme": k % 2 == 0,
            "iban": supplier_iban(k)}


def engagement_number(k: int) -> str:
    return f"EJ-BENCH-{k:04d}"


def engagement(k: int) -> dict:
    """The body of ``POST /engagements``: held by the k-th supplier, certifying the service done."""
    return {"number": engagement_number(k), "supplier_siret": supplier_siret(k),
            "amount": str(ENGAGEMENT_AMOUNT), "service_done_automatic": True}


def _vat_id(siret: str) -> str:
    # A French VAT number is FR + a key computed from the SIREN + the SIREN (CGI art. 286 ter).
    siren = siret[:9]
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def invoice_number(i: int) -> str:
    return f"BENCH-{i:07d}"


def document(i: int, suppliers: int) -> bytes:
    """The i-th invoice: a valid 20-line EN 16931 CII of supplier ``i % suppliers`` whose first
    line's unit price is raised by i cents (so its amounts are its own), under the approval
    threshold for any i below a million."""
    k = i % suppliers
    siret = supplier_siret(k)
    first = replace(LINES[0], unit_price=LINES[0].unit_price + Decimal(i) / 100)
    return cii(number=invoice_number(i), lines=[first, *LINES[1:]], seller_siret=siret,
               seller_vat_id=_vat_id(siret), seller_name=f"Fournisseur de référence {k}",
               iban=supplier_iban(k), engagement=engagement_number(k), contract=None)


def _documents(first: int, count: int, suppliers: int) -> list[bytes]:
    return [document(i, suppliers) for i in range(first, first + count)]


def documents(first: int, count: int, suppliers: int, workers: int) -> list[bytes]:
    """Invoices ``first`` to ``first + count - 1``, built on ``workers`` processes (a 20-line CII
    takes a few milliseconds to build)."""
    chunk = 500
    starts = range(first, first + count, chunk)
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = pool.map(_documents, starts, [min(chunk, first + count - s) for s in starts],
                         [suppliers] * len(starts))
        return [doc for part in parts for doc in part]


@dataclass
class Sent:
    """When each document was produced: the Kafka timestamp of its record (ms), by key."""

    at_ms: dict[str, int] = field(default_factory=dict)


async def produce(producer: AIOKafkaProducer, topic: str, items: list[tuple[str, bytes]],
                  rate: float | None, sent: Sent) -> None:
    """Produces ``(key, document)`` items as a gateway would (raw bytes, keyed); at full speed
    when ``rate`` is None, else paced at ``rate`` records per second. Each record's timestamp
    is the one Kafka stores (the producer's create time)."""
    async def remember(key: str, delivery: asyncio.Future) -> None:
        sent.at_ms[key] = (await delivery).timestamp

    waits = []
    began = time.monotonic()
    for n, (key, value) in enumerate(items):
        if rate is not None:
            ahead = began + n / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        delivery = await producer.send(topic, value=value, key=key.encode(),
                                       headers=[("source", b"bench.edi-gateway")])
        waits.append(asyncio.ensure_future(remember(key, delivery)))
    await asyncio.gather(*waits)


class Arrivals:
    """Reads a topic from its beginning, without a consumer group, and keeps the timestamp of
    the first record seen for each id that ``identify`` finds in a record (None: not counted)."""

    def __init__(self, settings: Settings, topic: str, identify: Callable[[bytes | None, bytes | None], str | None]):
        self.settings = settings
        self.topic = topic
        self.identify = identify
        self.at_ms: dict[str, int] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, enable_auto_commit=False,
                                    fetch_max_bytes=64 * 1024 * 1024)
        await consumer.start()
        try:
            partitions = await partitions_of(self.settings, [self.topic])
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batches.values():
                    for record in records:
                        found = self.identify(record.key, record.value)
                        if found is not None and found not in self.at_ms:
                            self.at_ms[found] = record.timestamp
                if batches:
                    self.changed.set()
        finally:
            await consumer.stop()

    async def wait_until(self, count: int, stall_seconds: float,
                         progress: Callable[[int, int], None] | None = None) -> int:
        """Waits until ``count`` ids arrived, or none for ``stall_seconds``; the count reached."""
        last_count, last_change, last_report = -1, time.monotonic(), time.monotonic()
        while len(self.at_ms) < count:
            now = time.monotonic()
            if len(self.at_ms) != last_count:
                last_count, last_change = len(self.at_ms), now
            elif now - last_change > stall_seconds:
                break
            if progress is not None and now - last_report >= 5:
                progress(len(self.at_ms), count)
                last_report = now
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return len(self.at_ms)
