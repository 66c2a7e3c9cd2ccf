"""Metrics of the audit service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

records_appended = Counter(
    "audit_records_total", "Records appended to the audit log, by kind (event, raw, duplicate)", ["kind"]
)
checkpoints_published = Counter(
    "audit_checkpoints_total", "Checkpoints of the chain heads published (topic and file)"
)
last_checkpoint = Gauge(
    "audit_last_checkpoint_timestamp_seconds", "When the last checkpoint was published (Unix time)"
)
