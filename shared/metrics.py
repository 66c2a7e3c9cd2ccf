"""Plumbing metrics every service exports (business metrics live in each service's metrics.py).

One process runs one service, so the default registry is that service's registry.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge

registry = REGISTRY

events_published = Counter(
    "events_published_total", "Events published to Kafka by the outbox relay", ["event_type"]
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
