"""A real Prometheus started by the local runner: it loads every alert rule, scrapes the four
services, answers every dashboard query, and renders the alert annotations with the Grafana URL.

The services' ports point at closed ports here, so every target is down and ServiceDown turns
pending on the first evaluations: the annotations can be read without waiting for a breach.
"""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import yaml

from deploy.local import monitoring
from deploy.local.stack import _port_open
from shared.settings import Settings
from tests.unit.test_monitoring_assets import RULES, _panel_queries, _parsable

pytestmark = pytest.mark.integration

GRAFANA_URL = "https://grafana.region.example"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _eventually(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1.0)
    raise AssertionError(f"{what} within {timeout:.0f} s; last answer: {last!r}")


@pytest.fixture(scope="module")
def prometheus(monitoring_tools, tmp_path_factory):
    ports = {name: _closed_port() for name in ("invoices", "payments", "advances", "audit")}
    server = monitoring.PrometheusServer(Settings(http_ports=ports), grafana_url=GRAFANA_URL,
                                         folder=tmp_path_factory.mktemp("prometheus"))
    assert server.start() == "started"
    server.ports = ports
    yield server
    assert server.stop()
    assert not _port_open(server.port)


def test_binds_loopback_only(prometheus):
    assert prometheus.url == f"http://127.0.0.1:{monitoring.PROMETHEUS_PORT}"
    flags = prometheus.api("status/flags")
    assert flags["web.listen-address"] == f"127.0.0.1:{monitoring.PROMETHEUS_PORT}"
    assert prometheus.start() == "already running"


def test_loads_every_alert_rule(prometheus):
    expected = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
                for rule in group["rules"] if "alert" in rule}

    def evaluated():
        rules = [rule for group in prometheus.rules() for rule in group["rules"]]
        return rules if rules and all(rule["health"] == "ok" for rule in rules) else None

    rules = _eventually(evaluated, 90, "every rule evaluated without error")
    assert {rule["name"] for rule in rules if rule["type"] == "alerting"} == expected
    assert {group["file"] for group in prometheus.rules()} == {str(RULES.resolve())}


def test_scrapes_the_four_services(prometheus):
    targets = prometheus.api("targets")["activeTargets"]
    assert {target["labels"]["job"]: target["scrapeUrl"] for target in targets} == {
        name: f"http://127.0.0.1:{port}/metrics" for name, port in prometheus.ports.items()}


def test_every_dashboard_query_runs(prometheus):
    failures = {}
    for place, expr in _panel_queries():
        try:
            prometheus.query(_parsable(expr))
        except monitoring.MonitoringError as exc:
            failures[place] = str(exc)
    assert failures == {}


def test_alert_annotations_link_to_grafana(prometheus):
    def service_down():
        alerts = [alert for alert in prometheus.api("alerts")["alerts"]
                  if alert["labels"]["alertname"] == "ServiceDown"]
        return alerts if len(alerts) == 4 else None

    alerts = _eventually(service_down, 120, "ServiceDown active for the 4 unreachable services")
    assert {alert["labels"]["job"] for alert in alerts} == set(prometheus.ports)
    for alert in alerts:
        assert alert["labels"]["severity"] == "critical"
        assert alert["annotations"]["dashboard"] == f"{GRAFANA_URL}/d/invoicing-pipeline"
        job = alert["labels"]["job"]
        assert alert["annotations"]["summary"] == (
            f"{job} (127.0.0.1:{prometheus.ports[job]}) does not answer Prometheus's scrapes")


def test_up_series_recorded_for_each_service(prometheus):
    result = prometheus.query('up{job=~"invoices|payments|advances|audit"}')["result"]
    assert sorted((series["metric"]["job"], series["value"][1]) for series in result) == sorted(
        (name, "0") for name in prometheus.ports)
    assert httpx.get(f"{prometheus.url}/-/healthy", timeout=5).status_code == 200
