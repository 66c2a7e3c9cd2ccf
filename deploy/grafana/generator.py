"""The Grafana dashboards of the invoicing services, built from code with grafana-foundation-sdk.

``python -m deploy.grafana.generator`` rewrites ``deploy/grafana/dashboards/*.json``, the files
Grafana provisions (``provisioning/dashboards/invoicing.yml``); ``--check`` only says whether
they are up to date. Never edit the JSON by hand: change this module and regenerate.

The queries read the metrics of the observability contract (DESIGN.md). Business gauges are
refreshed from each service's database, so every replica exports the same value: they are read
with ``max``, never summed. Durations in ``[...]`` are Grafana's ``$__rate_interval``,
``$__interval`` (the panel's step) or ``$__range`` (the dashboard's time range).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, heatmap, stat
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery,
    Dashboard,
    DashboardLink,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.heatmap import HeatmapColorOptions, YAxisConfig
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import units
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DASHBOARDS_DIR = Path(__file__).parent / "dashboards"

# The Prometheus datasource provisioned by provisioning/datasources/prometheus.yml.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="invoicing-prometheus")
TAGS = ["invoicing", "generated"]

# Dashboard uids: alert annotations (deploy/prometheus/invoicing.rules.yml) link to /d/<uid>.
DEADLINES_UID = "invoicing-payment-deadlines"
PIPELINE_UID = "invoicing-pipeline"
ADVANCES_UID = "invoicing-advances"

# The legal delay (CCP R2192-10) and the Region's own target, in days.
LEGAL_DELAY_DAYS = 30
TARGET_DAYS = 15
# Monthly panels step by 30 days: Prometheus has no calendar month.
MONTH = "30d"
# The `le` values of invoices_open_by_days_left and how a person reads them.
DAYS_LEFT_BANDS = (
    ("0", "due today or overdue"), ("3", "≤ 3 days left"), ("5", "≤ 5 days left"),
    ("10", "≤ 10 days left"), ("15", "≤ 15 days left"), ("30", "≤ 30 days left"),
    ("+Inf", "all unpaid, not interrupted"),
)
SERVICES_MATCHER = 'job=~"invoices|payments|advances|audit"'


# ---------------------------------------------------------------- small builders

def query(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    target = Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    return target.legend_format(legend) if legend else target


def instant(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
    return query(expr, legend, ref).instant()


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def number(title: str, expr: str, *, unit: str = units.Short, description: str = "",
           steps: tuple[tuple[float | None, str], ...] = ((None, "green"),), width: int = 4,
           decimals: int | None = None) -> stat.Panel:
    """A big number: the last value of one instant query."""
    panel = (stat.Panel().title(title).datasource(DATASOURCE).with_target(instant(expr))
             .unit(unit).span(width).height(4).thresholds(thresholds(*steps))
             .color_mode(BigValueColorMode.BACKGROUND).graph_mode(BigValueGraphMode.NONE)
             .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel.description(description) if description else panel


def graph(title: str, *targets: Dataquery, unit: str = units.Short, description: str = "",
          width: int = 12, height: int = 8, stacked: bool = False, bars: bool = False,
          interval: str | None = None) -> Timeseries:
    panel = (Timeseries().title(title).datasource(DATASOURCE).targets(list(targets)).unit(unit)
             .span(width).height(height).fill_opacity(20 if stacked or bars else 10)
             .legend(VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                     .placement(LegendPlacement.BOTTOM).show_legend(True)))
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS)
    if interval:
        panel = panel.interval(interval)
    return panel.description(description) if description else panel


def _numbered(dashboard: dict) -> dict:
    """Stable panel ids (1, 2, ...) in layout order, so that links to a panel survive a rebuild."""
    next_id = 1
    for panel in dashboard["panels"]:
        panel["id"] = next_id
        next_id += 1
        for inner in panel.get("panels", []):
            inner["id"] = next_id
            next_id += 1
    return dashboard


def _dashboard(uid: str, title: str, description: str, time_from: str, refresh: str) -> Dashboard:
    return (Dashboard(title).uid(uid).description(description).tags(TAGS).timezone("browser")
            .time(time_from, "now").refresh(refresh).editable()
            .annotation(AnnotationQuery().name("Annotations & Alerts").built_in(1).enable(True).hide(True)
                        .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                        .icon_color("rgba(0, 211, 255, 1)").type("dashboard"))
            # When Prometheus's alerts fired, drawn over every graph.
            .annotation(AnnotationQuery().name("Firing alerts").datasource(DATASOURCE).enable(True)
                        .icon_color("red").expr('ALERTS{alertstate="firing"}'))
            .link(DashboardLink("Invoicing dashboards").type(DashboardLinkType.DASHBOARDS)
                  .tags(["invoicing"]).as_dropdown(True).keep_time(False).include_vars(False)))


def _build(builder: Dashboard) -> dict:
    return _numbered(json.loads(json.dumps(builder.build(), cls=JSONEncoder)))


# ---------------------------------------------------------------- Payment deadlines

def _monthly_ratio(numerator: str, denominator: str) -> str:
    return (f"sum(increase({numerator}[$__interval]))\n"
            f"/ sum(increase({denominator}[$__interval]))")


def payment_deadlines() -> dict:
    delay = "invoice_payment_delay_days"
    # The services' Python client writes bucket bounds as floats: le="30.0", not le="30".
    board = (
        _dashboard(DEADLINES_UID, "Payment deadlines",
                   "Unpaid invoices against their 30-day legal payment deadline (CCP R2192-10) and "
                   "the Region's 15-day target; how long paid invoices took, per month.",
                   "now-7d", "1m")
        .with_row(Row("Unpaid invoices now"))
        .with_panel(number(
            "Past the legal deadline", "max(invoices_overdue)",
            steps=((None, "green"), (1, "red")),
            description="Unpaid invoices past their legal due date: late interest and the 40 EUR "
                        "indemnity are owed (CCP L2192-13, D2192-35). Alert InvoiceDeadlineBreached."))
        .with_panel(number(
            "5 days or fewer left", 'max(invoices_open_by_days_left{le="5"})',
            steps=((None, "green"), (1, "orange")),
            description="Unpaid, not interrupted invoices with at most 5 days before their legal "
                        "due date (overdue ones included). Alert InvoiceDeadlineCritical."))
        .with_panel(number(
            "10 days or fewer left", 'max(invoices_open_by_days_left{le="10"})',
            steps=((None, "green"), (1, "yellow")),
            description="Unpaid, not interrupted invoices with at most 10 days before their legal "
                        "due date (overdue ones included). Alert InvoiceDeadlineWarning."))
        .with_panel(number(
            "Past the 15-day target", "max(invoices_open_past_target)",
            steps=((None, "green"), (1, "blue")),
            description="Unpaid invoices older than the Region's own 15-day payment target."))
        .with_panel(number(
            "Oldest unpaid invoice", "max(invoice_oldest_open_age_days)", unit=units.Days,
            steps=((None, "green"), (TARGET_DAYS, "yellow"), (LEGAL_DELAY_DAYS - 5, "orange"),
                   (LEGAL_DELAY_DAYS, "red")),
            description="Age of the oldest unpaid, not interrupted invoice."))
        .with_panel(number(
            "Unpaid invoices", "sum(max by (stage) (invoices_open))",
            description="Every invoice not yet paid, whatever its stage (interrupted ones included)."))
        .with_panel(
            bargauge.Panel().title("Unpaid invoices by days left before the legal deadline")
            .datasource(DATASOURCE).span(12).height(9)
            .targets([instant(f'max(invoices_open_by_days_left{{le="{le}"}})', legend, chr(ord("A") + i))
                      for i, (le, legend) in enumerate(DAYS_LEFT_BANDS)])
            .display_mode(BarGaugeDisplayMode.GRADIENT).orientation(VizOrientation.HORIZONTAL)
            .unit(units.Short).thresholds(thresholds((None, "green")))
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .description("Cumulative: each bar counts the unpaid invoices with at most that many "
                         "days left, overdue ones included. Interrupted invoices (CCP R2192-27) "
                         "are not counted: their delay is stopped until the supplier completes them."))
        .with_panel(graph(
            "Invoices at risk",
            query("max(invoices_overdue)", "overdue", "A"),
            query('max(invoices_open_by_days_left{le="5"})', "≤ 5 days left", "B"),
            query('max(invoices_open_by_days_left{le="10"})', "≤ 10 days left", "C"),
            query("max(invoices_open_past_target)", "past the 15-day target", "D"),
            height=9))
        .with_panel(graph(
            "Unpaid invoices by stage",
            query("max by (stage) (invoices_open)", "{{stage}}"),
            stacked=True, width=24,
            description="received → validated → service_done → approved (« mandat ») → ordered "
                        "(« mise en paiement »); interrupted: waiting for the supplier."))
        .with_row(Row("Paid invoices: payment delay per month (30-day steps)"))
        .with_panel(number(
            "Average payment delay, last 30 days",
            f"sum(increase({delay}_sum[30d])) / sum(increase({delay}_count[30d]))",
            unit=units.Days, decimals=1, width=8,
            steps=((None, "green"), (TARGET_DAYS, "yellow"), (LEGAL_DELAY_DAYS, "red")),
            description="From receipt to « mise en paiement », invoices paid in the last 30 days."))
        .with_panel(number(
            "Paid within 30 days, last 30 days",
            f'sum(increase({delay}_bucket{{le="30.0"}}[30d])) / sum(increase({delay}_count[30d]))',
            unit=units.PercentUnit, decimals=1, width=8,
            steps=((None, "red"), (0.95, "yellow"), (1, "green"))))
        .with_panel(number(
            "Paid within the 15-day target, last 30 days",
            f'sum(increase({delay}_bucket{{le="15.0"}}[30d])) / sum(increase({delay}_count[30d]))',
            unit=units.PercentUnit, decimals=1, width=8,
            steps=((None, "orange"), (0.8, "yellow"), (0.95, "green"))))
        .with_panel(graph(
            "Average payment delay per month",
            query(_monthly_ratio(f"{delay}_sum", f"{delay}_count"), "average delay"),
            unit=units.Days, bars=True, interval=MONTH,
            description="Each bar: invoices paid in the 30 days before it, receipt to « mise en "
                        "paiement ». Legal limit 30 days, Region's target 15.")
            .time_from("1y").thresholds(thresholds((None, "green"), (TARGET_DAYS, "yellow"),
                                                   (LEGAL_DELAY_DAYS, "red"))))
        .with_panel(graph(
            "Share paid on time per month",
            query(_monthly_ratio(f'{delay}_bucket{{le="30.0"}}', f"{delay}_count"),
                  "within 30 days (legal)", "A"),
            query(_monthly_ratio(f'{delay}_bucket{{le="15.0"}}', f"{delay}_count"),
                  "within 15 days (target)", "B"),
            unit=units.PercentUnit, bars=True, interval=MONTH)
            .time_from("1y").min(0).max(1))
        .with_panel(
            heatmap.Panel().title("Payment delay distribution per month").datasource(DATASOURCE)
            .span(12).height(8).time_from("1y").interval(MONTH)
            .with_target(query(f"sum by (le) (increase({delay}_bucket[$__interval]))", "{{le}}")
                         .format(PromQueryFormat.HEATMAP))
            .calculate(False).y_axis(YAxisConfig().unit(units.Days))
            .color(HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges"))
            .description("Invoices paid per 30-day step, by delay band (days, histogram buckets "
                         "5 to 90)."))
        .with_panel(graph(
            "Delay per leg, average per month",
            query("sum by (leg) (increase(invoice_leg_delay_days_sum[$__interval]))\n"
                  "/ sum by (leg) (increase(invoice_leg_delay_days_count[$__interval]))", "{{leg}}"),
            unit=units.Days, bars=True, interval=MONTH,
            description="The legal delay split between the ordonnateur (20 days) and the comptable "
                        "(10 days), décret 2013-269 art. 12.")
            .time_from("1y"))
        .with_row(Row("Late payments"))
        .with_panel(graph(
            "Late payments per month",
            query("sum(increase(late_payments_total[$__interval]))", "late payments"),
            bars=True, interval=MONTH).time_from("1y"))
        .with_panel(graph(
            "Late-payment interest per month",
            query("sum(increase(late_interest_eur_total[$__interval]))", "interest (EUR)"),
            unit=units.Euro, bars=True, interval=MONTH,
            description="Interest paid automatically on late invoices (CCP L2192-13, R2192-31).")
            .time_from("1y"))
    )
    return _build(board)


# ---------------------------------------------------------------- Pipeline

def pipeline() -> dict:
    up_mapping = ValueMap(options={
        "0": ValueMappingResult(text="DOWN", color="red", index=0),
        "1": ValueMappingResult(text="UP", color="green", index=1),
    })
    board = (
        _dashboard(PIPELINE_UID, "Pipeline",
                   "Throughput per stage, processing latency, Kafka consumer lag, outbox, dead "
                   "letters and errors of the invoicing services.",
                   "now-6h", "30s")
        .with_row(Row("Services"))
        .with_panel(
            stat.Panel().title("Scraped by Prometheus").datasource(DATASOURCE).span(24).height(3)
            .with_target(instant(f"up{{{SERVICES_MATCHER}}}", "{{job}}"))
            .mappings([up_mapping]).thresholds(thresholds((None, "red"), (1, "green")))
            .color_mode(BigValueColorMode.BACKGROUND).graph_mode(BigValueGraphMode.NONE)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .description("DOWN: the service does not serve /metrics (alert ServiceDown)."))
        .with_row(Row("Throughput per stage"))
        .with_panel(graph(
            "Invoices received per minute, by channel",
            query("sum by (channel) (rate(invoices_received_total[$__rate_interval])) * 60", "{{channel}}"),
            unit=units.CountsPerMinute, width=8))
        .with_panel(graph(
            "Invoices rejected per minute, by reason",
            query("sum by (reason) (rate(invoices_rejected_total[$__rate_interval])) * 60", "{{reason}}"),
            unit=units.CountsPerMinute, width=8,
            description="Alert RejectionSpike: more than 20 % rejected over an hour of at least 20 invoices."))
        .with_panel(graph(
            "Payment orders per minute, by channel and kind",
            query("sum by (channel, kind) (rate(payment_orders_total[$__rate_interval])) * 60",
                  "{{channel}} {{kind}}"),
            unit=units.CountsPerMinute, width=8))
        .with_panel(graph(
            "Events published per second, by type",
            query("sum by (event_type) (rate(events_published_total[$__rate_interval]))", "{{event_type}}"),
            unit=units.EventsPerSecond, stacked=True))
        .with_panel(graph(
            "Events consumed per second, by service and result",
            query("sum by (job, result) (rate(events_consumed_total[$__rate_interval]))",
                  "{{job}} {{result}}"),
            unit=units.EventsPerSecond, stacked=True,
            description="processed: applied once; duplicate: already applied (idempotent consumer); "
                        "ignored: not for this service."))
        .with_panel(graph(
            "Payments executed per minute, by kind",
            query("sum by (kind) (rate(payments_executed_total[$__rate_interval])) * 60", "{{kind}}"),
            unit=units.CountsPerMinute))
        .with_panel(graph(
            "Payables waiting for payment, by kind",
            query("max by (kind) (payables_pending)", "{{kind}}"),
            stacked=True))
        .with_row(Row("Latency"))
        .with_panel(graph(
            "Handler time, 95th percentile",
            query("histogram_quantile(0.95, sum by (le, app_name, handler) "
                  "(rate(faststream_received_processed_messages_duration_seconds_bucket[$__rate_interval])))",
                  "{{app_name}} {{handler}}"),
            unit=units.Seconds, width=8))
        .with_panel(graph(
            "Outbox to Kafka, 95th percentile",
            query("histogram_quantile(0.95, sum by (le, job) "
                  "(rate(outbox_publish_delay_seconds_bucket[$__rate_interval])))",
                  "{{job}}"),
            unit=units.Seconds, width=8,
            description="From an event's commit with its state change to Kafka's acknowledgement."))
        .with_panel(graph(
            "Messages being processed",
            query("sum by (app_name, handler) (faststream_received_messages_in_process)",
                  "{{app_name}} {{handler}}"),
            width=8))
        .with_row(Row("Consumers"))
        .with_panel(graph(
            "Time spent applying batches, by consumer",
            query("sum by (job, consumer) (rate(consumer_batch_seconds_sum[$__rate_interval]))",
                  "{{job}} {{consumer}}"),
            unit=units.PercentUnit, width=12,
            description="Share of the time each consumer is busy applying batches (database work and commit "
                        "included). Near 100 %: that consumer sets the pace of the pipeline; run more replicas."))
        .with_panel(graph(
            "Records per batch, by consumer",
            query("sum by (job, consumer) (rate(consumer_batch_records_sum[$__rate_interval])) / "
                  "sum by (job, consumer) (rate(consumer_batch_records_count[$__rate_interval]))",
                  "{{job}} {{consumer}}"),
            width=12,
            description="Large batches under load mean the consumers catch up by working set-based."))
        .with_row(Row("Kafka lag and outbox"))
        .with_panel(graph(
            "Consumer lag, by consumer and topic",
            query("sum by (consumer, topic) (kafka_consumer_lag)", "{{consumer}} ← {{topic}}"),
            width=8,
            description="Records not yet consumed. Alert ConsumerLagGrowing: above 500 and rising for 10 minutes."))
        .with_panel(graph(
            "Outbox rows waiting to be published",
            query("max by (job) (outbox_pending)", "{{job}}"),
            width=8))
        .with_panel(graph(
            "Oldest unpublished outbox row",
            query("max by (job) (outbox_oldest_pending_age_seconds)", "{{job}}"),
            unit=units.Seconds, width=8,
            description="Alert OutboxStuck: rows waiting and the oldest older than 5 minutes.")
            .thresholds(thresholds((None, "green"), (300, "red"))))
        .with_row(Row("Dead letters and errors"))
        .with_panel(graph(
            "Records held in dead-letter topics",
            query("max by (topic) (dead_letter_records)", "{{topic}}"),
            width=8,
            description="Inspect with `invoicing dlq list`, replay with `invoicing dlq replay TOPIC:OFFSET`."))
        .with_panel(graph(
            "Dead-lettered per minute, by topic and reason",
            query("sum by (topic, reason) (rate(dead_letters_total[$__rate_interval])) * 60",
                  "{{topic}} {{reason}}"),
            unit=units.CountsPerMinute, width=8))
        .with_panel(graph(
            "Consumer batch retries per minute",
            query("sum by (job, consumer) (rate(consumer_batch_retries_total[$__rate_interval])) * 60",
                  "{{job}} {{consumer}}"),
            unit=units.CountsPerMinute, width=8,
            description="Batches rolled back on an infrastructure error (database, Kafka) and retried."))
        .with_panel(graph(
            "Messages not acknowledged, per second",
            query('sum by (app_name, handler, status) '
                  '(rate(faststream_received_processed_messages_total{status!="acked"}[$__rate_interval])) '
                  'or on() vector(0)',
                  "{{app_name}} {{handler}} {{status}}"),
            unit=units.EventsPerSecond, width=8))
        .with_panel(graph(
            "Handler exceptions per second, by type",
            query("sum by (app_name, exception_type) "
                  "(rate(faststream_received_processed_messages_exceptions_total[$__rate_interval])) "
                  "or on() vector(0)",
                  "{{app_name}} {{exception_type}}"),
            unit=units.EventsPerSecond, width=8))
        .with_panel(graph(
            "Failed payments and unmatched confirmations",
            query("sum by (kind) (increase(payments_failed_total[$__rate_interval]))", "failed {{kind}}", "A"),
            query("max(payment_confirmations_unmatched)", "unmatched confirmations", "B"),
            width=8,
            description="Alerts PaymentsFailing and PaymentConfirmationUnmatched."))
    )
    return _build(board)


# ---------------------------------------------------------------- Advances

def advances() -> dict:
    board = (
        _dashboard(ADVANCES_UID, "Advances",
                   "Advances granted on new contracts (doubled: 10 %, SMEs 20 %, CCP R2191-7), paid, "
                   "and recovered on later invoices (R2191-11/-12).",
                   "now-90d", "5m")
        .with_row(Row("Over the dashboard's time range"))
        .with_panel(number(
            "Outstanding advances", "max(advances_outstanding_eur)", unit=units.Euro, width=6,
            description="Advances paid and not yet recovered, now."))
        .with_panel(number(
            "Granted", "sum(increase(advances_granted_eur_total[$__range]))", unit=units.Euro, width=6))
        .with_panel(number(
            "Paid", 'sum(increase(payments_amount_eur_total{kind="advance"}[$__range]))',
            unit=units.Euro, width=6))
        .with_panel(number(
            "Recovered", "sum(increase(advance_recovered_eur_total[$__range]))", unit=units.Euro, width=6))
        .with_panel(number(
            "Advances granted", "sum(increase(advances_granted_total[$__range]))", width=6, decimals=0))
        .with_panel(number(
            "Advance payments", 'sum(increase(payments_executed_total{kind="advance"}[$__range]))',
            width=6, decimals=0))
        .with_row(Row("Per week"))
        .with_panel(graph(
            "Granted, paid and recovered per week",
            query("sum(increase(advances_granted_eur_total[$__interval]))", "granted", "A"),
            query('sum(increase(payments_amount_eur_total{kind="advance"}[$__interval]))', "paid", "B"),
            query("sum(increase(advance_recovered_eur_total[$__interval]))", "recovered", "C"),
            unit=units.Euro, bars=True, interval="7d", width=24))
        .with_panel(graph(
            "Outstanding advances",
            query("max(advances_outstanding_eur)", "outstanding"),
            unit=units.Euro, width=24,
            description="Rises when an advance is paid, falls as later invoices recover it."))
    )
    return _build(board)


# ---------------------------------------------------------------- files

DASHBOARDS = {
    "payment-deadlines.json": payment_deadlines,
    "pipeline.json": pipeline,
    "advances.json": advances,
}


def render(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name -> the JSON text of each dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def stale_files(folder: Path = DASHBOARDS_DIR) -> list[str]:
    """The dashboard files that differ from what this module generates (or are missing)."""
    return [name for name, text in generate().items()
            if not (folder / name).exists() or (folder / name).read_text() != text]


def write(folder: Path = DASHBOARDS_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.grafana.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed dashboard is out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"{DASHBOARDS_DIR / name} is out of date: run `python -m deploy.grafana.generator`",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in write():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
