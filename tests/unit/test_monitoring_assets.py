"""The monitoring assets as ops rely on them: alert rules that promtool accepts and whose unit
tests pass, Alertmanager routing by severity, a scrape config Prometheus accepts, and the
generated Grafana dashboards (up to date, valid for the SDK's models, every query parses and
reads a metric the services export)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models.dashboard import Dashboard, RowPanel
from grafana_foundation_sdk.models.prometheus import Dataquery

from deploy.grafana import generator
from deploy.local import monitoring
from deploy.local.stack import _port_open
from shared.settings import Settings

GRAFANA_DIR = Path(generator.__file__).parent
RULES = monitoring.PROMETHEUS_DIR / "invoicing.rules.yml"
RULE_TESTS = monitoring.PROMETHEUS_DIR / "invoicing.rules.test.yml"

# The observability contract (DESIGN.md): every metric a rule or a panel may read.
CONTRACT_METRICS = {
    "invoices_received_total", "invoices_rejected_total", "invoices_open", "invoices_open_by_days_left",
    "invoices_overdue", "invoices_open_past_target", "invoice_oldest_open_age_days",
    "payments_executed_total", "payments_amount_eur_total", "payments_failed_total", "payment_orders_total",
    "late_payments_total", "late_interest_eur_total", "payables_pending", "payment_confirmations_unmatched",
    "advances_granted_total", "advances_granted_eur_total", "advance_recovered_eur_total",
    "advances_outstanding_eur",
    "events_published_total", "events_consumed_total", "dead_letters_total", "outbox_pending",
    "outbox_oldest_pending_age_seconds", "consumer_batch_retries_total", "kafka_consumer_lag",
    "dead_letter_records",
    "up", "ALERTS",
}
CONTRACT_HISTOGRAMS = {"invoice_payment_delay_days", "invoice_leg_delay_days", "outbox_publish_delay_seconds",
                       "consumer_batch_seconds", "consumer_batch_records", "outbox_relay_batch_seconds"}

REQUIRED_ALERTS = {
    "InvoiceDeadlineWarning": "warning", "InvoiceDeadlineCritical": "critical",
    "InvoiceDeadlineBreached": "page", "InvoiceTargetMissed": "info", "ServiceDown": None,
    "OutboxStuck": None, "ConsumerLagGrowing": None, "DeadLettersNotEmpty": None,
    "RejectionSpike": None, "PaymentConfirmationUnmatched": None,
}
SEVERITIES = ("page", "critical", "warning", "info")

# What Grafana puts in place of its variables, for Prometheus to parse the query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30d", "$__range": "30d"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan"}


def _alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text())
            for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def _panels(dashboard: dict) -> list[dict]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _panel_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and annotation of every dashboard."""
    found = []
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                found.append((f"{name} panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]))
        for annotation in dashboard["annotations"]["list"]:
            if "expr" in annotation:
                found.append((f"{name} annotation {annotation['name']!r}", annotation["expr"]))
    return found


def _parsable(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (identifiers that are not functions,
    keywords, label names, durations or strings)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end():].lstrip().startswith("(") or match[0].lower() in PROMQL_WORDS:
            continue
        names.add(match[0])
    return names


def _in_contract(name: str) -> bool:
    if name in CONTRACT_METRICS or name.startswith("faststream_"):
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in ("bucket", "sum", "count") and base in CONTRACT_HISTOGRAMS


def _run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd)


# ---------------------------------------------------------------- the tools

def test_installed_tools_leave_no_server_running(monitoring_tools):
    for program in (monitoring_tools.promtool, monitoring_tools.amtool, monitoring_tools.prometheus):
        assert _run(program, "--version").returncode == 0, program
    # Debian's services would listen on every interface: Prometheus 9090, Alertmanager 9093/9094.
    assert [port for port in (9090, 9093, 9094) if _port_open(port)] == []


def test_ensure_tools_does_nothing_when_the_tools_are_there(monitoring_tools, monkeypatch):
    def no_apt(command):
        raise AssertionError(f"ran {command} although every tool is installed")

    monkeypatch.setattr(monitoring, "_run", no_apt)
    assert monitoring.ensure_tools() == monitoring_tools


def test_ensure_tools_without_root_says_what_to_run(monkeypatch):
    monkeypatch.setattr(monitoring.shutil, "which", lambda name: None)
    monkeypatch.setattr(monitoring.os, "geteuid", lambda: 1000)
    with pytest.raises(monitoring.MonitoringError, match="apt-get install --no-install-recommends prometheus"):
        monitoring.ensure_tools()


def test_a_failed_install_names_the_command_and_blocks_no_service_start_afterwards(monkeypatch, tmp_path):
    policy = tmp_path / "policy-rc.d"
    commands, stopped = [], []

    def apt(command):
        commands.append(command)
        assert policy.read_text().rstrip().endswith("exit 101"), "services may start during the install"
        failed = command[1] == "install"
        return subprocess.CompletedProcess(command, 100 if failed else 0, "", "E: Unable to locate package")

    monkeypatch.setattr(monitoring.shutil, "which", lambda name: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(monitoring.os, "geteuid", lambda: 0)
    monkeypatch.setattr(monitoring, "POLICY_RC_D", policy)
    monkeypatch.setattr(monitoring, "_run", apt)
    monkeypatch.setattr(monitoring, "_stop_system_services", lambda: stopped.append(True))
    with pytest.raises(monitoring.MonitoringError, match=r"(?s)apt-get install -y -qq --no-install-recommends "
                                                         r"prometheus prometheus-alertmanager.*Unable to locate"):
        monitoring.ensure_tools()
    assert [command[:2] for command in commands] == [["apt-get", "update"], ["apt-get", "install"]]
    assert not policy.exists(), "the temporary policy-rc.d is removed"
    assert stopped == [True]


# ---------------------------------------------------------------- alert rules

def test_rules_pass_promtool_check(monitoring_tools):
    result = _run(monitoring_tools.promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(group["rules"]) for group in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_rule_unit_tests_pass(monitoring_tools):
    result = _run(monitoring_tools.promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_silent():
    firing, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in _alert_rules()}
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown silent"


def test_required_alerts_with_their_severity_and_where_to_look():
    rules = {rule["alert"]: rule for rule in _alert_rules()}
    assert set(REQUIRED_ALERTS) <= set(rules)
    for name, severity in REQUIRED_ALERTS.items():
        if severity:
            assert rules[name]["labels"]["severity"] == severity, name
    uids = {dashboard["uid"] for dashboard in _dashboards().values()}
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description", "dashboard"} <= set(rule["annotations"]), name
        link = re.fullmatch(r"\{\{ \$externalLabels\.grafana_url \}\}/d/([\w-]+)", rule["annotations"]["dashboard"])
        assert link and link[1] in uids, f"{name} links to no generated dashboard"


def test_rules_read_only_contract_metrics():
    unknown = {rule["alert"]: sorted(name for name in metric_names(rule["expr"]) if not _in_contract(name))
               for rule in _alert_rules()}
    assert {alert: names for alert, names in unknown.items() if names} == {}


def test_metric_names_are_found_in_promql():
    assert metric_names('sum by (le) (increase(invoice_payment_delay_days_bucket{le="30"}[$__interval]))'
                        " / ignoring(le) max without (instance) (up) > 0.95") == {
        "invoice_payment_delay_days_bucket", "up"}


# ---------------------------------------------------------------- Alertmanager

def test_alertmanager_config_is_valid(monitoring_tools):
    result = _run(monitoring_tools.amtool, "check-config", str(monitoring.ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 receivers" in result.stdout


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=page", "alertname=InvoiceDeadlineBreached"], "page"),
    (["severity=critical", "alertname=InvoiceDeadlineCritical"], "critical"),
    (["severity=warning", "alertname=InvoiceDeadlineWarning"], "warning"),
    (["severity=info", "alertname=InvoiceTargetMissed"], "info"),
    (["alertname=SomethingNew"], "warning"),
])
def test_alertmanager_routes_by_severity(monitoring_tools, labels, receiver):
    result = _run(monitoring_tools.amtool, "config", "routes", "test",
                  f"--config.file={monitoring.ALERTMANAGER_CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == receiver


def test_every_rule_severity_has_a_receiver():
    config = yaml.safe_load(monitoring.ALERTMANAGER_CONFIG.read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}
    routed = {route["receiver"] for route in config["route"]["routes"]}
    assert set(SEVERITIES) == routed <= receivers
    for receiver in config["receivers"]:
        for webhook in receiver["webhook_configs"]:
            assert webhook["url"].startswith("http://127.0.0.1:"), webhook


# ---------------------------------------------------------------- scrape config

def test_scrape_targets_are_the_services_on_loopback():
    assert monitoring.scrape_targets(Settings()) == {
        "invoices": "127.0.0.1:8101", "payments": "127.0.0.1:8102",
        "advances": "127.0.0.1:8103", "audit": "127.0.0.1:8104"}
    moved = Settings(http_ports={"invoices": 18101, "payments": 18102, "advances": 18103})
    assert monitoring.scrape_targets(moved)["invoices"] == "127.0.0.1:18101"
    assert monitoring.scrape_targets(moved)["audit"] == "127.0.0.1:8104"


def test_rendered_config_passes_promtool(monitoring_tools, tmp_path):
    text = monitoring.render_config(monitoring.scrape_targets(Settings()), grafana_url="https://grafana.example/")
    config = yaml.safe_load(text)
    assert config["global"]["external_labels"]["grafana_url"] == "https://grafana.example"
    assert config["rule_files"] == [str(RULES.resolve())]
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    result = _run(monitoring_tools.promtool, "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"SUCCESS: \d+ rules found", result.stdout)


# ---------------------------------------------------------------- Grafana dashboards

def test_committed_dashboards_are_up_to_date():
    assert sorted(path.name for path in (GRAFANA_DIR / "dashboards").glob("*.json")) == sorted(generator.DASHBOARDS)
    assert generator.stale_files() == [], "run `python -m deploy.grafana.generator` and commit the JSON"


def test_dashboards_are_the_three_ops_need():
    titles = {dashboard["title"]: dashboard for dashboard in _dashboards().values()}
    assert set(titles) == {"Payment deadlines", "Pipeline", "Advances"}
    for dashboard in titles.values():
        assert dashboard["schemaVersion"] >= 39, "Grafana 11 schema"
        ids = [panel["id"] for panel in _panels(dashboard)]
        assert len(ids) == len(set(ids)), dashboard["title"]
    deadlines = " ".join(target["expr"] for panel in _panels(titles["Payment deadlines"])
                         for target in panel.get("targets", []))
    for metric in ("invoices_open_by_days_left", "invoices_overdue", "invoices_open_past_target",
                   "invoice_oldest_open_age_days", "invoice_payment_delay_days_bucket",
                   "invoice_payment_delay_days_sum"):
        assert metric in deadlines, metric


def test_dashboards_decode_into_the_sdk_models():
    register_default_plugins()
    for name, data in _dashboards().items():
        model = Dashboard.from_json(data)
        # Whatever the models do not know would be lost on this round trip.
        assert json.loads(json.dumps(model, cls=JSONEncoder)) == data, name
        for panel in model.panels:
            if isinstance(panel, RowPanel):
                continue
            assert not isinstance(panel.options, dict), f"{name}: {panel.title!r} has untyped options"
            for target in panel.targets:
                assert isinstance(target, Dataquery) and not isinstance(target, UnknownDataquery), \
                    f"{name}: {panel.title!r}"


def test_dashboards_use_the_provisioned_datasource():
    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning/datasources/prometheus.yml").read_text())
    uid = datasources["datasources"][0]["uid"]
    assert datasources["datasources"][0]["type"] == "prometheus"
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard):
            if panel["type"] == "row":
                continue
            refs = [panel["datasource"], *(target["datasource"] for target in panel["targets"])]
            assert all(ref == {"type": "prometheus", "uid": uid} for ref in refs), (name, panel["title"])
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning/dashboards/invoicing.yml").read_text())
    assert providers["apiVersion"] == 1 and providers["providers"][0]["type"] == "file"


def test_every_panel_query_parses(monitoring_tools, tmp_path):
    queries = _panel_queries()
    # promtool parses a recording rule's expression with Prometheus's own PromQL parser.
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel_query_{index}", "expr": _parsable(expr)} for index, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "panels.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = _run(monitoring_tools.promtool, "check", "rules", str(path))
    where = "\n".join(f"panel_query_{index}: {place}" for index, (place, _) in enumerate(queries))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{where}"
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_panels_read_only_contract_metrics():
    unknown = {place: sorted(name for name in metric_names(_parsable(expr)) if not _in_contract(name))
               for place, expr in _panel_queries()}
    assert {place: names for place, names in unknown.items() if names} == {}
