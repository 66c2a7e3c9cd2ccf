"""The end-to-end benchmark's figures: percentiles, throughput, the JSON it writes, and the
workload it sends (valid invoices, each its own, all approvable without a person). One small
real run on the local stack checks the whole path."""

import json
from decimal import Decimal

import pytest

from cli.bench_e2e import _payment_ordered, percentiles, results, run_bench, summarise, table
from deploy.bench import workload
from services.invoices.domain.approval import EngagementView, SupplierView, auto_approval
from services.invoices.domain.intake import assess
from shared.settings import Settings

REQUIRED = {"invoices", "throughput_per_s", "p50_ms", "p95_ms", "p99_ms", "floor_throughput_per_s",
            "ratio_to_floor", "cpu_count", "kafka_version", "postgres_version", "fixed_load"}
ENVIRONMENT = {"kafka_version": "4.4.0", "postgres_version": "15.18", "setup": {}}


def test_percentiles_interpolate_between_ranks():
    # 101 values 1..101: the p-th percentile sits at rank p exactly.
    assert percentiles([float(v) for v in range(101, 0, -1)]) == {"p50_ms": 51.0, "p95_ms": 96.0, "p99_ms": 100.0}
    between = percentiles([10.0, 20.0])
    assert between["p50_ms"] == 15.0 and between["p99_ms"] == pytest.approx(19.9)
    assert percentiles([7.0]) == {"p50_ms": 7.0, "p95_ms": 7.0, "p99_ms": 7.0}
    assert percentiles([]) == {"p50_ms": None, "p95_ms": None, "p99_ms": None}


def test_a_phase_counts_from_the_first_sent_to_the_last_done():
    sent = {f"F-{i}": 1_000 + 10 * i for i in range(100)}             # one every 10 ms
    done = {key: at + 500 for key, at in sent.items() if key != "F-7"}  # 500 ms each, one missing
    phase = summarise(sent, done)
    assert phase["invoices"] == 100 and phase["completed"] == 99
    span = (1_000 + 990 + 500 - 1_000) / 1000
    assert phase["seconds"] == span and phase["throughput_per_s"] == round(99 / span, 1)
    assert phase["p50_ms"] == phase["p99_ms"] == 500.0

    assert summarise(sent, {})["throughput_per_s"] is None


def test_the_results_hold_every_figure_and_compare_with_the_floor():
    system = summarise({"a": 0, "b": 0}, {"a": 1_000, "b": 2_000})     # 1 invoice/s
    fixed = summarise({"c": 0}, {"c": 300})
    floor = summarise({"a": 0, "b": 0}, {"a": 200, "b": 250})         # 8 invoices/s
    result = results(system, fixed, floor, offered_per_s=200.0, environment=ENVIRONMENT)

    assert REQUIRED <= result.keys()
    assert {"offered_per_s", "p50_ms", "p95_ms", "p99_ms"} <= result["fixed_load"].keys()
    assert result["throughput_per_s"] == 1.0 and result["floor_throughput_per_s"] == 8.0
    assert result["ratio_to_floor"] == 0.125
    assert result["fixed_load"]["offered_per_s"] == 200.0 and result["fixed_load"]["p99_ms"] == 300.0
    json.dumps(result)  # written as is

    printed = table(result)
    assert "NOT met: throughput >= 1,000/s" in printed and "met: p99 <= 2,000 ms at 200/s" in printed


def test_only_an_invoice_payment_order_completes_an_invoice():
    def record(event_type, kind):
        return json.dumps({"event_type": event_type, "payload": {"kind": kind, "invoice_id": "inv-1"}}).encode()

    assert _payment_ordered(b"k", record("PaymentOrdered", "invoice")) == "inv-1"
    assert _payment_ordered(b"k", record("PaymentOrdered", "advance")) is None
    assert _payment_ordered(b"k", record("PaymentExecuted", "invoice")) is None
    assert _payment_ordered(b"k", None) is None


def test_the_workload_is_distinct_valid_invoices_approved_without_a_person():
    settings = Settings()
    suppliers = 7
    seen_numbers, seen_amounts = set(), set()
    for i in (0, 1, 8, 12_345):
        outcome = assess(workload.document(i, suppliers), "fr-public", settings.buyer_siret)
        assert outcome.status == "validated", outcome.reasons
        invoice = outcome.invoice
        seen_numbers.add(invoice.number)
        seen_amounts.add(invoice.totals.payable)

        k = i % suppliers
        supplier, engagement = workload.supplier(k), workload.engagement(k)
        decision = auto_approval(
            invoice_amount=Decimal(invoice.totals.payable), invoice_iban=invoice.payee_iban,
            seller_siret=invoice.seller.siret, engagement_number=invoice.purchase_order_reference,
            engagement=EngagementView(engagement["number"], engagement["supplier_siret"],
                                      Decimal(engagement["amount"]), Decimal(engagement["amount"]),
                                      engagement["service_done_automatic"]),
            supplier=SupplierView(supplier["siret"], supplier["name"], supplier["sme"], supplier["iban"]),
            pending_iban=None, service_done=False, threshold=settings.approval_threshold,
        )
        assert decision.automatic, decision.reasons
    assert len(seen_numbers) == 4 and len(seen_amounts) == 4


@pytest.mark.integration
def test_a_small_run_measures_every_invoice_and_writes_its_results(tmp_path):
    output = tmp_path / "bench-results.json"
    result = run_bench(Settings(), invoices=60, rate=20.0, seconds=2.0, output=output)

    assert json.loads(output.read_text()) == result
    assert result["full_speed"]["completed"] == 60 and result["floor"]["completed"] == 60
    assert result["fixed_load"]["completed"] == 40
    assert result["throughput_per_s"] > 0 and 0 < result["p50_ms"] <= result["p95_ms"] <= result["p99_ms"]
    # Every invoice approved without a person; the invoices service may still be recording the order.
    statuses = result["setup"]["invoice_statuses"]
    assert sum(statuses.values()) == 100 and set(statuses) <= {"approved", "payment_ordered"}
    # Where the time went: every service's CPU, the machine's, and each consumer's batches.
    cpu = result["full_speed"]["cpu_seconds"]
    assert set(cpu) == {"invoices", "payments", "advances", "audit", "postgresql", "kafka", "machine"}
    assert cpu["machine"] >= cpu["invoices"] > 0 and cpu["postgresql"] > 0 and cpu["kafka"] > 0
    stages = result["full_speed"]["stages"]
    assert stages["invoices.inbound"]["records"] == 60 and stages["invoices.inbound"]["batches"] >= 1
    assert stages["advances.recovery"]["records"] >= 60 and stages["audit.recorder"]["seconds"] > 0
    assert "where the time goes" in table(result) and "invoices.inbound" in table(result)
