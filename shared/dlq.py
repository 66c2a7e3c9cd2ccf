"""Dead letters: records a consumer could not process, kept with their reason on ``<topic>.dlq``.

The dead-letter record carries the original bytes and key untouched; headers say where it came
from (topic, partition, offset), which consumer gave up, why (a reason code and a sentence) and
when. ``invoicing dlq list | show | replay`` reads them back; a replay re-publishes the original
bytes to the original topic, where the normal consumer (deduplicating on ``event_id``) sees it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from shared.settings import Settings
from shared.topics import CONSUMED, read_all

H_TOPIC, H_PARTITION, H_OFFSET = "dlq.original_topic", "dlq.original_partition", "dlq.original_offset"
H_CONSUMER, H_REASON, H_DETAIL, H_AT = "dlq.consumer", "dlq.reason", "dlq.detail", "dlq.failed_at"
H_REPLAYED_FROM = "dlq.replayed_from"


def dead_letter_headers(
    record: ConsumerRecord, consumer: str, reason: str, detail: str, at: datetime
) -> list[tuple[str, bytes]]:
    carried = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq.")]
    return carried + [
        (H_TOPIC, record.topic.encode()),
        (H_PARTITION, str(record.partition).encode()),
        (H_OFFSET, str(record.offset).encode()),
        (H_CONSUMER, consumer.encode()),
        (H_REASON, reason.encode()),
        (H_DETAIL, detail[:4000].encode()),
        (H_AT, at.isoformat().encode()),
    ]


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    dlq_offset: int
    original_topic: str
    original_partition: int
    original_offset: int
    consumer: str
    reason: str
    detail: str
    failed_at: str
    key: str | None
    value: bytes | None

    @property
    def ref(self) -> str:
        return f"{self.dlq_topic}:{self.dlq_offset}"

    def summary(self) -> dict:
        data = asdict(self)
        data.pop("value")
        data["ref"] = self.ref
        data["size"] = len(self.value or b"")
        return data


def _from_record(record: ConsumerRecord) -> DeadLetter:
    headers = {k: v.decode(errors="replace") for k, v in (record.headers or ())}
    return DeadLetter(
        dlq_topic=record.topic,
        dlq_offset=record.offset,
        original_topic=headers.get(H_TOPIC, ""),
        original_partition=int(headers.get(H_PARTITION, "-1")),
        original_offset=int(headers.get(H_OFFSET, "-1")),
        consumer=headers.get(H_CONSUMER, ""),
        reason=headers.get(H_REASON, ""),
        detail=headers.get(H_DETAIL, ""),
        failed_at=headers.get(H_AT, ""),
        key=record.key.decode(errors="replace") if record.key is not None else None,
        value=record.value,
    )


def dlq_topics(settings: Settings) -> list[str]:
    return [settings.topic(f"{name}.dlq") for name in CONSUMED]


async def read_dead_letters(settings: Settings, topics: list[str] | None = None) -> list[DeadLetter]:
    """Every dead letter currently on the DLQ topics."""
    records = await read_all(settings, topics or dlq_topics(settings))
    return sorted((_from_record(r) for r in records), key=lambda d: (d.dlq_topic, d.dlq_offset))


async def find_dead_letter(settings: Settings, ref: str) -> DeadLetter:
    topic, _, offset = ref.rpartition(":")
    if not topic or not offset.isdigit():
        raise ValueError(f"{ref!r} is not a dead-letter reference like 'advances.events.dlq:3'")
    for letter in await read_dead_letters(settings, [topic]):
        if letter.dlq_offset == int(offset):
            return letter
    raise LookupError(f"no dead letter {ref}")


async def replay(settings: Settings, letter: DeadLetter) -> None:
    """Puts the original record back on its topic, marked as a replay of this dead letter."""
    if not letter.original_topic:
        raise ValueError(f"{letter.ref} does not say which topic it came from")
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            letter.original_topic,
            value=letter.value,
            key=letter.key.encode() if letter.key is not None else None,
            headers=[(H_REPLAYED_FROM, letter.ref.encode())],
        )
    finally:
        await producer.stop()
