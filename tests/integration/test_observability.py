"""The observability chain on the real system: the invoices, advances and payments services run
on the real Kafka and PostgreSQL, a real Prometheus scrapes them with the repository's scrape
config and alert rules, and ops see what they must.

Invoices are received on days set so that, on the day the test looks, they have 12, 8, 3 and -1
days left before their legal payment deadline (and one received that day, 30 days left): the
services share a clock file the test moves, as the demo does. Prometheus then shows the deadline
gauges, fires the warning (<= 10 days), critical (<= 5 days) and breach alerts, answers every
dashboard query with data, and the alerts resolve once the invoices are ordered and paid.

Prometheus scrapes and evaluates every second, and every ``for:`` of the rules is read in
seconds instead of minutes (5m -> 5s): the rules' expressions are the committed ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from deploy.local import monitoring
from deploy.simulators.counterparty import settle
from deploy.simulators.suppliers import CONTRACT, SELLER_IBAN, SELLER_NAME, SELLER_SIRET, cii
from shared.clock import PARIS, FileClock
from tests.support import eventually, free_port, post_contracts, produce, token
from tests.unit.test_monitoring_assets import RULES, _panel_queries, _parsable

pytestmark = pytest.mark.integration

TODAY = datetime.fromisoformat("2026-03-02T09:00:00+00:00")  # a Monday
# Days left before the legal due date on TODAY -> the invoice's number. The legal delay is 30
# days from receipt (CCP R2192-10, R2192-12), so an invoice with N days left arrived 30 - N days ago.
DAYS_LEFT = {12: "F-OBS-12", 8: "F-OBS-08", 3: "F-OBS-03", -1: "F-OBS-LATE", 30: "F-OBS-FAILS"}
SERVICES = ("invoices", "advances", "payments")
DEADLINE_ALERTS = {"InvoiceDeadlineWarning": "warning", "InvoiceDeadlineCritical": "critical",
                   "InvoiceDeadlineBreached": "page"}
# Panels whose series only exist after a failure this test does not cause, or that nothing in
# the system produces; each query must still run.
# Every panel shows data on a running system: the error panels show 0 when nothing failed.
NO_DATA_EXPECTED: dict[str, str] = {}


# ---------------------------------------------------------------- Prometheus, in seconds

def _seconds_for_minutes(rules_text: str) -> str:
    """The rules with every ``for: Nm`` read as N seconds."""
    rules = yaml.safe_load(rules_text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                amount, unit = re.fullmatch(r"(\d+)([smh])", rule["for"]).groups()
                rule["for"] = f"{amount}s" if unit == "m" else f"{int(amount) * 60}s" if unit == "h" else "1s"
    return yaml.safe_dump(rules, sort_keys=False)


@pytest.fixture
def prometheus(ns, monitoring_tools, tmp_path, monkeypatch):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    fast_rules = folder / "invoicing.rules.yml"
    fast_rules.write_text(_seconds_for_minutes(RULES.read_text()))
    committed = monitoring.render_config

    def fast_config(targets, rule_files=monitoring.RULE_FILES, grafana_url=monitoring.GRAFANA_URL):
        config = yaml.safe_load(committed(targets, rule_files=(fast_rules,), grafana_url=grafana_url))
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        return yaml.safe_dump(config, sort_keys=False)

    monkeypatch.setattr(monitoring, "render_config", fast_config)
    server = monitoring.PrometheusServer(ns, port=free_port(), folder=folder)
    assert server.start() == "started"
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- the services' side

class Region:
    """The people and systems around the services, through their HTTP APIs."""

    def __init__(self, ns, services, clock_file: Path) -> None:
        self.ns, self.services, self.clock_file = ns, services, clock_file

    def move_clock(self, at: datetime) -> None:
        FileClock.set(self.clock_file, at)

    async def call(self, service, method, path, user="ops", roles=("admin",), **kwargs) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.services.url(service), timeout=60) as client:
            return await client.request(method, path, headers=token(self.ns, user, *roles), **kwargs)

    async def approved_invoice(self, number: str, received: datetime, **document) -> str:
        """Received on ``received``, the service certified done and approved that same day."""
        self.move_clock(received)
        await asyncio.sleep(0.3)  # the services read the clock file every 0.1 s
        day = received.astimezone(PARIS).date()
        answer = await self.call("invoices", "POST", "/invoices", "platform", ["intake"], content=cii(
            number=number, issue_date=day, delivery_date=day - timedelta(days=3),
            due_date=day + timedelta(days=30), **document))
        assert answer.status_code == 202 and answer.json()["status"] == "validated", answer.text
        invoice = answer.json()["invoice_id"]
        done = await self.call("invoices", "POST", f"/invoices/{invoice}/service-done", "bob", ["approver"], json={})
        assert done.status_code == 200, done.text
        approved = await self.call("invoices", "POST", f"/invoices/{invoice}/approve", "carol", ["approver"])
        assert approved.status_code == 200 and approved.json()["deadline"]["dgp_start"] == day.isoformat()
        return invoice

    async def status(self, invoice: str) -> str:
        return (await self.call("invoices", "GET", f"/invoices/{invoice}")).json()["status"]

    async def ordered_payable(self, payable_id: str) -> dict | None:
        answer = await self.call("payments", "GET", f"/payables/{payable_id}", "audit", ["auditor"])
        body = answer.json() if answer.status_code == 200 else {}
        return body if body.get("status") == "ordered" else None

    async def pay_every_batch(self, failing_order: str) -> list[dict]:
        """The accountant pays every mandate of every batch today, but rejects one (bank details)."""
        batches = (await self.call("payments", "GET", "/batches", "audit", ["auditor"])).json()
        reports = []
        for batch in batches:
            content = (await self.call("payments", "GET", f"/batches/{batch['batch_id']}/file", "audit",
                                       ["auditor"])).content
            answer = settle(content, executed_on=TODAY.date(),
                            fail=lambda order_id: "RIB" if order_id == failing_order else None)
            confirmed = await self.call("payments", "POST", "/confirmations", "comptable", ["accountant"],
                                        content=answer)
            assert confirmed.status_code == 200, confirmed.text
            reports.append(confirmed.json())
        return reports


# ---------------------------------------------------------------- reading Prometheus

def _by(server, expr: str, label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1])
            for series in server.query(expr)["result"]}


def _value(server, expr: str) -> float | None:
    result = server.query(expr)["result"]
    return float(result[0]["value"][1]) if result else None


def _alerts(server, state: str = "firing") -> dict[str, dict]:
    return {alert["labels"]["alertname"]: alert for alert in server.api("alerts")["alerts"]
            if alert["state"] == state}


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(check)
        if last:
            return last
        await asyncio.sleep(1.0)
    raise AssertionError(f"{what} within {timeout:.0f} s; last answer: {last!r}")


# ---------------------------------------------------------------- the test

async def test_deadline_alerts_fire_before_the_breach_and_resolve_once_paid(ns, services, prometheus, tmp_path):
    clock_file = tmp_path / "clock"
    region = Region(ns, services, clock_file)
    received_on = {days: TODAY - timedelta(days=30 - days) for days in DAYS_LEFT}
    region.move_clock(min(received_on.values()))
    env = {"INVOICING_CLOCK": f"file:{clock_file}", "INVOICING_PAYMENT_RUN_TIME": "23:59",
           "INVOICING_PAYMENT_POLL_SECONDS": "0.5"}
    for name in SERVICES:
        await services.start(name, **env)

    # A contract with a 40 % advance, which the supplier's invoices recover from the first one
    # (R2191-11), and the supplier's account, on which the advance is paid.
    assert await post_contracts(services.url("advances"), [{
        "contract_id": CONTRACT, "supplier_siret": SELLER_SIRET, "supplier_name": SELLER_NAME, "sme": False,
        "contract_type": "services", "amount_ht": "120000.00", "amount_ttc": "144000.00", "duration_months": 10,
        "notified_on": "2026-01-05", "advance_rate_pct": "40"}]) == [201]
    registered = await region.call("invoices", "POST", "/suppliers", json={
        "siret": SELLER_SIRET, "name": SELLER_NAME, "sme": False, "iban": SELLER_IBAN})
    assert registered.status_code == 201, registered.text

    invoices = {}
    for days in (-1, 3, 8, 12):  # oldest receipt first, as the calendar runs
        invoices[days] = await region.approved_invoice(DAYS_LEFT[days], received_on[days],
                                                       contract=CONTRACT if days == 12 else None)

    # On the day of the last receipt, 18 days before today, every deadline is 17 days away or more.
    def earlier_gauges():
        bands = _by(prometheus, 'max by (le) (invoices_open_by_days_left{job="invoices"})', "le")
        return bands if bands.get("+Inf") == 4 else None

    bands = await _until(earlier_gauges, 40, "the gauges of the four invoices received")
    assert (bands["15"], bands["30"]) == (0, 4)
    raised = {alert["labels"]["alertname"] for alert in prometheus.api("alerts")["alerts"]}  # pending or firing
    assert raised & DEADLINE_ALERTS.keys() == set()

    # Today, nobody has paid yet. One more invoice arrives, and a document that is no invoice.
    invoices[30] = await region.approved_invoice(DAYS_LEFT[30], TODAY, contract=None)
    unreadable = await region.call("invoices", "POST", "/invoices", "platform", ["intake"], content=b"%PDF-1.7 torn")
    assert unreadable.json()["status"] == "rejected"
    # A record no consumer can read: dead-lettered by each consumer of the topic.
    await produce(ns, "invoices.events", [b"\xff not an event"], key=b"poison")

    def deadline_gauges():
        bands = _by(prometheus, 'max by (le) (invoices_open_by_days_left{job="invoices"})', "le")
        return bands if bands.get("10") == 3 else None

    bands = await _until(deadline_gauges, 40, "the gauges of today's open invoices")
    assert bands == {"0": 1, "3": 2, "5": 2, "10": 3, "15": 4, "30": 5, "+Inf": 5}
    assert _value(prometheus, "max(invoices_overdue)") == 1
    assert _value(prometheus, "max(invoices_open_past_target)") == 4, "received more than 15 days ago"
    assert _value(prometheus, "max(invoice_oldest_open_age_days)") == 31
    stages = _by(prometheus, "max by (stage) (invoices_open)", "stage")
    assert set(stages) == {"received", "validated", "service_done", "approved", "ordered", "interrupted"}
    assert sum(stages.values()) == 5 and stages["approved"] + stages["ordered"] == 5

    def deadline_alerts():
        alerts = _alerts(prometheus)
        return alerts if DEADLINE_ALERTS.keys() <= alerts.keys() else None

    firing = await _until(deadline_alerts, 40, "the warning, critical and breach alerts firing")
    for name, severity in DEADLINE_ALERTS.items():
        assert firing[name]["labels"]["severity"] == severity
    assert firing["InvoiceDeadlineWarning"]["annotations"]["summary"].startswith("3 unpaid invoice(s) have 10 days")
    assert firing["InvoiceDeadlineCritical"]["annotations"]["summary"].startswith("2 unpaid invoice(s) have 5 days")
    assert firing["InvoiceDeadlineBreached"]["annotations"]["summary"].startswith("1 unpaid invoice(s) are past")

    # The accountant orders everything today, pays it, and rejects the mandate of the invoice
    # received today (closed account): that one stays open, with 30 days left.
    run = await region.call("payments", "POST", "/payment-runs", "treasurer", ["accountant"], json={})
    assert run.status_code == 200, run.text
    payables = {days: await eventually(lambda: region.ordered_payable(f"invoice:{invoice}"))
                for days, invoice in invoices.items()}
    await eventually(lambda: region.ordered_payable(f"advance:{CONTRACT}"))
    reports = await region.pay_every_batch(failing_order=payables[30]["orders"][-1]["order_id"])
    assert sum(len(report["executed"]) for report in reports) == 5, "four invoices and the advance"
    assert sum(len(report["failed"]) for report in reports) == 1
    # Paid today: the invoice received 31 days ago, and the advance due since 4 February.
    assert {payable for report in reports for payable in report["late"]} == {
        f"invoice:{invoices[-1]}", f"advance:{CONTRACT}"}
    for days in (12, 8, 3, -1):
        await eventually(lambda: _is(region.status(invoices[days]), "paid"))

    def resolved():
        bands = _by(prometheus, 'max by (le) (invoices_open_by_days_left{job="invoices"})', "le")
        return bands if bands.get("+Inf") == 1 and not _alerts(prometheus).keys() & DEADLINE_ALERTS.keys() else None

    bands = await _until(resolved, 40, "the deadline alerts resolved once paid")
    assert bands == {"0": 0, "3": 0, "5": 0, "10": 0, "15": 0, "30": 1, "+Inf": 1}
    assert _value(prometheus, "max(invoices_overdue)") == 0
    assert _value(prometheus, "max(invoice_oldest_open_age_days)") == 0

    # What paid invoices took, receipt to « mise en paiement » (18, 22, 27 and 31 days), and
    # the money on the advances dashboard.
    def paid_delays():
        count = _value(prometheus, "max(invoice_payment_delay_days_count)")
        return count if count == 4 else None

    await _until(paid_delays, 20, "four payment delays observed")
    assert _value(prometheus, 'max(invoice_payment_delay_days_bucket{le="30.0"})') == 3
    assert _value(prometheus, "max(invoice_payment_delay_days_sum)") == 18 + 22 + 27 + 31
    assert _by(prometheus, "max by (leg) (invoice_leg_delay_days_count)", "leg") == {"ordonnateur": 4, "comptable": 4}
    assert _value(prometheus, "max(advances_granted_total)") == 1
    recovered = _value(prometheus, "max(advance_recovered_eur_total)")
    assert recovered and recovered > 0
    outstanding = await _until(lambda: _value(prometheus, "max(advances_outstanding_eur)"), 30,
                               "the advance paid and partly recovered")
    granted = _value(prometheus, "max(advances_granted_eur_total)")
    assert outstanding == pytest.approx(granted - recovered)

    # Plumbing: consumer lag of each group, dead letters held, the outbox and the pool.
    lag = _by(prometheus, 'sum by (consumer) (kafka_consumer_lag{job="invoices"})', "consumer")
    assert set(lag) == {"invoices.contracts", "invoices.intake", "invoices.approval", "invoices.inbound",
                        "invoices.payments"}
    held = _by(prometheus, "max by (topic) (dead_letter_records)", "topic")
    assert held.get(ns.topic("invoices.events.dlq"), 0) >= 1
    rejected = _by(prometheus, "sum by (reason) (invoices_rejected_total)", "reason")
    assert rejected == {"unreadable": 1}
    pools = _by(prometheus, "db_pool_size", "job")
    assert set(pools) == set(SERVICES) and min(pools.values()) >= 1

    # Every dashboard panel has data to show.
    empty = {}
    for place, expr in _panel_queries():
        expected_empty = [reason for name, reason in NO_DATA_EXPECTED.items() if name in expr]
        result = prometheus.query(_parsable(expr))["result"]
        if not result and not expected_empty:
            empty[place] = expr
    assert empty == {}

    # One JSON log line per API action and per event handled, with who, what and how long; no
    # IBAN in clear anywhere.
    lines = [json.loads(line) for name in SERVICES
             for line in (services.folder / f"{name}.log").read_text().splitlines() if line.startswith("{")]
    approvals = [line for line in lines if line.get("event") == "api action"
                 and line.get("route") == "/invoices/{invoice_id}/approve"]
    assert {(line["actor"], line["outcome"], line["service"]) for line in approvals} == {("carol", "ok", "invoices")}
    assert {line["invoice_id"] for line in approvals} == set(invoices.values())
    handled = [line for line in lines if line.get("event") == "event handled"]
    assert {line["service"] for line in handled} == set(SERVICES)
    assert all({"event_id", "event_type", "correlation_id", "actor", "duration_ms"} <= set(line) for line in handled)
    assert any(line["correlation_id"] == invoices[-1] and line["event_type"] == "PaymentExecuted"
               and line["service"] == "invoices" for line in handled)
    assert all(SELLER_IBAN not in json.dumps(line) for line in lines)


async def _is(coroutine, expected):
    return await coroutine == expected
