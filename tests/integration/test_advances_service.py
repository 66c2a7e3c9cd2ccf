"""Contracts notified to the advances service get their advance decided, stored and announced."""

import httpx
import pytest

from shared.events import decode
from tests.support import contract, eventually, post_contracts, read_topic, token

pytestmark = pytest.mark.integration


async def _events(ns, count):
    records = await read_topic(ns, "advances.events")
    return [decode(r.value) for r in records] if len(records) >= count else None


async def test_the_doubled_advance_is_granted_with_its_deadline_and_shown_in_the_ledger(ns, services):
    await services.start("advances")
    url = services.url("advances")
    sme_works = contract(1, sme=True, amount_ht="600000.00", amount_ttc="720000.00", duration_months=18,
                         notified_on="2026-01-05")
    small = contract(2, amount_ht="50000.00", amount_ttc="60000.00", duration_months=12)
    awaiting_guarantee = contract(3, sme=False, amount_ht="100000.00", amount_ttc="120000.00",
                                  duration_months=6, advance_rate_pct="40", guarantee_required=True)
    assert await post_contracts(url, [sme_works, small, awaiting_guarantee]) == [201, 201, 201]

    events = await eventually(lambda: _events(ns, 5), timeout=30)
    types = [(e.envelope.event_type, e.envelope.aggregate_id) for e in events]
    assert ("AdvanceGranted", "M-2026-0002") not in types
    granted = {e.envelope.aggregate_id: e for e in events if e.envelope.event_type == "AdvanceGranted"}
    first = granted["M-2026-0001"].event
    assert (str(first.rate_pct), str(first.base), str(first.amount)) == ("20", "480000.00", "96000.00")
    assert (str(first.delay_starts_on), str(first.legal_due), str(first.target_due)) == (
        "2026-01-05", "2026-02-04", "2026-01-20")
    assert granted["M-2026-0001"].envelope.causation_id is not None

    third = granted["M-2026-0003"].event
    assert third.guarantee_may_be_required and third.rate_from_contract
    assert str(third.amount) == "48000.00"
    assert third.delay_starts_on is None and third.legal_due is None
    assert "guarantee" in third.delay_start_reason

    async with httpx.AsyncClient(base_url=url, headers=token(ns, "procurement", "admin")) as client:
        ledger = (await client.get("/contracts/M-2026-0001")).json()["advance"]
        none = (await client.get("/contracts/M-2026-0002")).json()["advance"]
        refused = await client.post("/contracts", json=contract(4, advance_rate_pct="2"))
    assert (ledger["amount"], ledger["paid"], ledger["recovered"], ledger["outstanding"]) == (
        "96000.00", "0.00", "0.00", "96000.00")
    assert none["granted"] is False and none["amount"] == "0.00" and "R2191-3" in none["reason"]
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "advance_rate_pct"]


async def test_contracts_import_from_csv_reports_each_row_and_show_prints_the_ledger(ns, services, tmp_path):
    import asyncio
    import json
    import os
    import subprocess
    import sys

    from tests.support import env_of

    await services.start("advances")
    csv_file = tmp_path / "contracts.csv"
    good, other = contract(10), contract(11, sme=True)
    header = "contract_id,supplier_siret,supplier_name,sme,contract_type,amount_ht,amount_ttc,duration_months,notified_on,engagement_numbers"
    rows = [
        ",".join([good["contract_id"], good["supplier_siret"], good["supplier_name"], "false", good["contract_type"],
                  good["amount_ht"], good["amount_ttc"], str(good["duration_months"]), good["notified_on"], "EJ-10;EJ-10b"]),
        ",".join([other["contract_id"], other["supplier_siret"], other["supplier_name"], "oui", other["contract_type"],
                  other["amount_ht"], other["amount_ttc"], str(other["duration_months"]), other["notified_on"], ""]),
        ",".join(["M-BAD", "12345678901234", "Nobody", "no", "works", "1000.00", "900.00", "3", "2026-01-05", ""]),
    ]
    csv_file.write_text("\n".join([header, *rows]) + "\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                              env={**os.environ, **env_of(ns)}, timeout=120)

    done = await asyncio.to_thread(run, "contracts", "import", str(csv_file))
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["created"] == ["M-2026-0010", "M-2026-0011"]
    [refused] = report["refused"]
    assert refused["line"] == 4 and refused["contract_id"] == "M-BAD"
    assert {e["field"] for e in refused["errors"]} >= {"supplier_siret"}

    again = json.loads((await asyncio.to_thread(run, "contracts", "import", str(csv_file))).stdout)
    assert again["already_known"] == ["M-2026-0010", "M-2026-0011"]

    shown = await asyncio.to_thread(run, "contracts", "show", "M-2026-0010")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["engagement_numbers"] == ["EJ-10", "EJ-10b"]
    assert json.loads(shown.stdout)["advance"]["outstanding"] == json.loads(shown.stdout)["advance"]["amount"]


async def test_approved_invoices_bear_the_recovery_of_the_worked_example_even_when_concurrent(ns, services):
    """domain-rules.md §3.6: 18 monthly invoices of 40 000 EUR on a 720 000 EUR SME works contract
    with a 96 000 EUR advance; invoices on many partitions, applied in commit order per contract."""
    import json
    from datetime import date
    from decimal import Decimal

    from shared.clock import SystemClock
    from shared.events import encode, new_envelope
    from shared.events.invoices import InvoiceApproved, PaymentDeadline
    from tests.support import admin_connection, produce

    await services.start("advances")
    works = contract(1, contract_id="M-WORKS-18", sme=True, amount_ht="600000.00", amount_ttc="720000.00",
                     duration_months=18, engagement_numbers=["EJ-WORKS"])
    assert await post_contracts(services.url("advances"), [works]) == [201]

    deadline = PaymentDeadline(buyer_type="local_authority", dgp_start=date(2026, 3, 2), legal_due=date(2026, 4, 1),
                               ordonnateur_due=date(2026, 3, 22), target_due=date(2026, 3, 17))
    approvals = []
    for i in range(18):
        approved = InvoiceApproved(
            invoice_id=f"inv-{i:02d}", amount="40000.00", currency="EUR", seller_siret=works["supplier_siret"],
            payee_iban=None, contract_reference=None if i % 2 else "M-WORKS-18",
            engagement_number="EJ-WORKS", automatic=False, deadline=deadline)
        approvals.append(encode(new_envelope(approved, producer="invoices", actor="carol", clock=SystemClock())))
    stray = InvoiceApproved(invoice_id="inv-stray", amount="1200.00", currency="EUR", seller_siret=None,
                            payee_iban=None, contract_reference="NO-SUCH", engagement_number=None,
                            automatic=True, deadline=deadline)
    approvals.append(encode(new_envelope(stray, producer="invoices", actor="carol", clock=SystemClock())))
    for document in approvals:  # one key per invoice: they spread over the partitions
        await produce(ns, "invoices.events", [document], key=json.loads(document)["aggregate_id"].encode())

    records = await eventually(lambda: _recoveries(ns, 19), timeout=60)
    by_invoice = {r.event.invoice_id: r.event for r in records}
    deductions = sorted((by_invoice[f"inv-{i:02d}"].deduction for i in range(18)), reverse=True)
    assert deductions[:4] == [Decimal("35555.56"), Decimal("35555.55"), Decimal("14222.22"), Decimal("10666.67")]
    assert set(deductions[4:]) == {Decimal("0.00")}
    assert sum(deductions) == Decimal("96000.00")
    assert all(e.net_payable == Decimal("40000.00") - e.deduction for e in by_invoice.values() if e.contract_id)
    assert by_invoice["inv-stray"].contract_id is None and by_invoice["inv-stray"].deduction == 0
    assert by_invoice["inv-stray"].net_payable == Decimal("1200.00")

    db = await admin_connection(ns)
    try:
        ledger = await db.fetchrow("SELECT executed, recovered FROM advances.advances WHERE contract_id = 'M-WORKS-18'")
    finally:
        await db.close()
    assert (ledger["executed"], ledger["recovered"]) == (Decimal("720000.00"), Decimal("96000.00"))


async def _recoveries(ns, count):
    records = [decode(r.value) for r in await read_topic(ns, "advances.events")
               if dict(r.headers)["event_type"] == b"AdvanceRecoveryApplied"]
    return records if len(records) >= count else None
