"""The services' metrics as ops read them: every name the alert rules and dashboards select is
exported; counts apply only once the work they count is committed; intake and payment counts
land on the right labels and buckets; the open-invoice gauges; Kafka lag and dead-letter counts
computed from offsets; one log line per API action with who, what, outcome and duration."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import httpx
import pytest
import structlog
from aiokafka import TopicPartition
from fastapi import FastAPI, HTTPException
from prometheus_client import REGISTRY

import services.advances.metrics  # noqa: F401  (registers the advances metrics)
import services.payments.metrics  # noqa: F401  (registers the payments metrics)
from services.invoices import metrics as invoice_metrics
from shared import metrics
from shared.auth import bearer_header
from shared.events.invoices import Reason
from shared.service import ApiActionLog
from shared.settings import Settings
from tests.unit.test_monitoring_assets import CONTRACT_HISTOGRAMS, CONTRACT_METRICS


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ---------------------------------------------------------------- the contract's names

def test_every_metric_the_rules_and_dashboards_read_is_exported():
    exported = set()
    for family in REGISTRY.collect():
        exported.add(f"{family.name}_total" if family.type == "counter" else family.name)
    # up and ALERTS are Prometheus's own series.
    assert CONTRACT_METRICS - {"up", "ALERTS"} - exported == set()
    assert CONTRACT_HISTOGRAMS - exported == set()


def test_both_delay_legs_are_exported_before_any_payment():
    for leg in invoice_metrics.LEGS:
        assert REGISTRY.get_sample_value("invoice_leg_delay_days_count", {"leg": leg}) is not None


# ---------------------------------------------------------------- counting after the commit

def test_increments_wait_for_the_end_of_the_block():
    seen = []
    with metrics.counted_on_commit():
        metrics.on_commit(lambda: seen.append("decided"))
        assert seen == [], "nothing counts before the transaction committed"
    assert seen == ["decided"]


def test_a_block_that_raises_counts_nothing():
    seen = []
    with pytest.raises(RuntimeError):
        with metrics.counted_on_commit():
            metrics.on_commit(lambda: seen.append("decided"))
            raise RuntimeError("rolled back")
    assert seen == []


def test_a_failed_handler_inside_a_batch_loses_only_its_own_counts():
    seen = []
    with metrics.counted_on_commit():
        metrics.on_commit(lambda: seen.append("first"))
        with pytest.raises(ValueError):
            with metrics.counted_on_commit():
                metrics.on_commit(lambda: seen.append("failed handler"))
                raise ValueError("savepoint rolled back")
        with metrics.counted_on_commit():
            metrics.on_commit(lambda: seen.append("second"))
        assert seen == [], "a nested block hands its counts to the batch"
    assert seen == ["first", "second"]


def test_a_batch_rolled_back_drops_what_its_handlers_counted():
    seen = []
    with pytest.raises(OSError):
        with metrics.counted_on_commit():
            with metrics.counted_on_commit():
                metrics.on_commit(lambda: seen.append("handled"))
            raise OSError("database gone before the commit")
    assert seen == []


async def test_the_block_works_in_an_async_with_beside_the_transaction():
    seen = []
    async with metrics.counted_on_commit():
        metrics.on_commit(lambda: seen.append("granted"))
        assert seen == []
    assert seen == ["granted"]


def test_outside_a_block_the_increment_applies_at_once():
    seen = []
    metrics.on_commit(lambda: seen.append("now"))
    assert seen == ["now"]


# ---------------------------------------------------------------- intake and payment counts

def test_an_intake_decision_counts_received_and_rejected_by_first_rule():
    before = (value("invoices_received_total", channel="http", format="cii"),
              value("invoices_rejected_total", reason="BR-CO-15"),
              value("invoices_received_total", channel="inbox", format="unreadable"),
              value("invoices_rejected_total", reason="unreadable"))
    invoice_metrics.count_decision("http", "cii", "validated", [])
    invoice_metrics.count_decision("http", "cii", "rejected", [
        Reason(rule="BR-CO-15", message="total"), Reason(rule="BR-16", message="lines")])
    invoice_metrics.count_decision("inbox", None, "rejected", [Reason(rule="DOC-not_xml", message="not XML")])
    after = (value("invoices_received_total", channel="http", format="cii"),
             value("invoices_rejected_total", reason="BR-CO-15"),
             value("invoices_received_total", channel="inbox", format="unreadable"),
             value("invoices_rejected_total", reason="unreadable"))
    assert [a - b for a, b in zip(after, before)] == [2, 1, 1, 1]


def test_rejection_reasons_stay_a_bounded_set():
    assert invoice_metrics.rejection_reason([Reason(rule="DOC-pdf_without_xml", message="m")]) == "unreadable"
    assert invoice_metrics.rejection_reason([Reason(rule="FR-DUPLICATE", message="m")]) == "FR-DUPLICATE"
    assert invoice_metrics.rejection_reason([]) == "unknown"


def test_a_payment_is_observed_in_days_per_leg():
    def bucket(name, le, **labels):
        return value(f"{name}_bucket", le=le, **labels)

    before = (bucket("invoice_payment_delay_days", "15.0"), bucket("invoice_payment_delay_days", "20.0"),
              bucket("invoice_leg_delay_days", "10.0", leg="ordonnateur"),
              bucket("invoice_leg_delay_days", "5.0", leg="comptable"),
              value("invoice_payment_delay_days_sum"))
    # Received 2 March, ordered 12 March (10 days), paid 20 March (8 more): 18 days in all.
    invoice_metrics.count_payment(date(2026, 3, 2), date(2026, 3, 20), ordonnateur_days=10, accountant_days=8)
    after = (bucket("invoice_payment_delay_days", "15.0"), bucket("invoice_payment_delay_days", "20.0"),
             bucket("invoice_leg_delay_days", "10.0", leg="ordonnateur"),
             bucket("invoice_leg_delay_days", "5.0", leg="comptable"),
             value("invoice_payment_delay_days_sum"))
    assert [a - b for a, b in zip(after, before)] == [0, 1, 1, 0, 18]


# ---------------------------------------------------------------- open invoices

@pytest.mark.parametrize(("status", "service_done", "stage"), [
    ("received", False, "received"), ("validated", False, "validated"),
    ("completed", False, "validated"), ("completed", True, "service_done"),
    ("service_done", True, "service_done"), ("approved", True, "approved"),
    ("payment_ordered", True, "ordered"), ("interrupted", False, "interrupted"),
])
def test_stages_ops_read(status, service_done, stage):
    assert invoice_metrics.stage_of(status, service_done) == stage


def test_a_snapshot_sets_every_stage_and_band():
    invoice_metrics.OpenSnapshot(
        by_stage={"approved": 3, "interrupted": 1},
        by_days_left={"0": 1, "3": 1, "5": 2, "10": 3, "15": 3, "30": 4, "+Inf": 4},
        overdue=1, past_target=2, oldest_age_days=31).publish()
    assert value("invoices_open", stage="approved") == 3
    assert value("invoices_open", stage="received") == 0 and REGISTRY.get_sample_value(
        "invoices_open", {"stage": "received"}) is not None, "empty stages are exported as 0"
    assert [value("invoices_open_by_days_left", le=le) for le in ("0", "5", "10", "+Inf")] == [1, 2, 3, 4]
    assert (value("invoices_overdue"), value("invoices_open_past_target"),
            value("invoice_oldest_open_age_days")) == (1, 2, 31)


# ---------------------------------------------------------------- Kafka lag and dead letters

class FakeAdmin:
    def __init__(self, partitions: dict[str, int], committed: dict[str, dict[TopicPartition, int]]):
        self.partitions = partitions
        self.committed = committed

    async def describe_topics(self, topics):
        return [{"topic": t, "error_code": 0 if t in self.partitions else 3,
                 "partitions": [{"partition": p} for p in range(self.partitions.get(t, 0))]} for t in topics]

    async def list_consumer_group_offsets(self, group_id, partitions):
        known = self.committed.get(group_id, {})
        return {tp: SimpleNamespace(offset=known.get(tp, -1)) for tp in partitions}


class FakeOffsets:
    def __init__(self, starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]):
        self.starts, self.ends = starts, ends

    async def beginning_offsets(self, partitions):
        return {tp: self.starts.get(tp, 0) for tp in partitions}

    async def end_offsets(self, partitions):
        return {tp: self.ends.get(tp, 0) for tp in partitions}


async def test_lag_is_end_minus_committed_and_a_new_group_counts_from_the_log_start():
    events0, events1 = TopicPartition("u.invoices.events", 0), TopicPartition("u.invoices.events", 1)
    dlq = TopicPartition("u.invoices.events.dlq", 0)
    admin = FakeAdmin({"u.invoices.events": 2, "u.invoices.events.dlq": 1},
                      {"u.invoices.approval": {events0: 40}})
    offsets = FakeOffsets(starts={events1: 5, dlq: 2}, ends={events0: 100, events1: 30, dlq: 9})
    backlog = metrics.KafkaBacklog("kafka:9092", [
        metrics.Subscription("invoices.approval", "u.invoices.approval", ("u.invoices.events",)),
        metrics.Subscription("invoices.fresh", "u.invoices.fresh", ("u.invoices.events",)),
    ], ["u.invoices.events.dlq"])
    await backlog.refresh(admin, offsets)

    def lag(consumer, partition):
        return value("kafka_consumer_lag", consumer=consumer, topic="u.invoices.events", partition=partition)

    assert (lag("invoices.approval", "0"), lag("invoices.approval", "1")) == (60, 25)
    assert (lag("invoices.fresh", "0"), lag("invoices.fresh", "1")) == (100, 25)
    # Records between the log start and the end: the ones deleted by retention are not held.
    assert value("dead_letter_records", topic="u.invoices.events.dlq") == 7


# ---------------------------------------------------------------- API action log

@pytest.fixture
def api():
    settings = Settings()
    app = FastAPI()
    app.state.runtime = SimpleNamespace(settings=settings)

    @app.post("/invoices/{invoice_id}/approve")
    async def approve(invoice_id: str) -> dict:
        if invoice_id == "unknown":
            raise HTTPException(404, "no invoice unknown")
        return {"invoice_id": invoice_id}

    @app.get("/metrics")
    async def scraped() -> dict:
        return {}

    app.add_middleware(ApiActionLog, settings=settings)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    return settings, client


async def test_each_api_action_is_logged_with_actor_outcome_and_duration(api):
    settings, client = api
    with structlog.testing.capture_logs() as logs:
        await client.post("/invoices/F-1/approve", headers=bearer_header(settings, "carol", ["approver"]))
        await client.post("/invoices/unknown/approve")
        await client.post("/invoices/F-2/approve", headers={"authorization": "Bearer forged"})
        await client.get("/metrics")
    lines = [line for line in logs if line["event"] == "api action"]
    assert [(line["actor"], line["invoice_id"], line["status"], line["outcome"]) for line in lines] == [
        ("carol", "F-1", 200, "ok"), ("unauthenticated", "unknown", 404, "refused"),
        ("invalid token", "F-2", 200, "ok")]
    assert {line["route"] for line in lines} == {"/invoices/{invoice_id}/approve"}
    assert all(line["method"] == "POST" and line["duration_ms"] >= 0 for line in lines)
