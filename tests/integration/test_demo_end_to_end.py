"""The demo's code path on a smaller scenario, on the real stack: contracts, suppliers' invoices
through the three channels with their defects, approvers, the simulated accountant, and the
invariants a finance user checks at the end."""

import asyncio
from decimal import Decimal

import pytest

from cli.demo import run_demo

pytestmark = pytest.mark.integration


async def test_a_small_demo_run_keeps_every_invariant(ns, tmp_path):
    summary = await asyncio.to_thread(run_demo, ns, contracts=6, invoices=90, days=30, output=tmp_path)

    assert summary["invariants"] == {
        "invoices_neither_terminal_nor_explained": [], "payables_paid_twice": [],
        "invoices_paid_without_an_executed_order": [], "late_payments_without_interest": [],
        "finished_contracts_not_fully_recovered": []}
    assert summary["audit"]["verified"], summary["audit"]
    assert summary["dead_letters"] == 0

    invoices = summary["invoices"]
    scenario = summary["scenario"]
    assert invoices["received"] == scenario["planned_invoices"]
    # Every wrong document was refused with its reason, and nothing else was.
    assert sum(invoices["by_status"].get(s, 0) for s in ("rejected", "to_recycle")) == scenario["planned_defective"]
    assert {reason.split()[1] for reason in invoices["rejected_by_reason"]} >= {
        "BR-CO-16", "FR-SIRET-RECIPIENT", "FR-DUPLICATE", "FR-ENGAGEMENT"}
    assert invoices["paid"] > 0.6 * (invoices["received"] - scenario["planned_defective"])
    assert 0 < invoices["average_payment_delay_days"] <= invoices["p95_payment_delay_days"]

    # The advances were paid and part of them recovered on the invoices.
    advances = summary["advances"]
    assert advances["granted"] >= 5 and Decimal(advances["paid_eur"]) == Decimal(advances["granted_eur"])
    assert 0 < Decimal(advances["recovered_eur"]) < Decimal(advances["granted_eur"])
    assert scenario["iban_change_attempt"]["self_confirmation_status"] == 403

    assert (tmp_path / "demo-report.json").is_file()
    page = (tmp_path / "demo-report.html").read_text()
    assert "<svg" in page and "within the legal 30 days" in page
