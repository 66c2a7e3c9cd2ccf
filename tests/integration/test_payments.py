"""Paying approved invoices on the real stack: the payable joins the approval and the advance
recovery, a payment run orders it in a batch file, the simulated accountant confirms, the
invoice is paid; a late payment brings its interest and indemnity; a crash during a run orders
nothing twice."""

import asyncio
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest

from deploy.local.services import ServiceError
from deploy.simulators.counterparty import settle, unmatched_debit
from deploy.simulators.suppliers import CONTRACT, SELLER_IBAN, SELLER_SIRET, cii
from shared.events import decode
from tests.support import admin_connection, eventually, post_contracts, read_topic, token

pytestmark = pytest.mark.integration

MARCH_2 = "fixed:2026-03-02T09:00:00+00:00"
# The scheduled run is set late in the day so that only the runs a test triggers order payments.
QUIET = {"INVOICING_CLOCK": MARCH_2, "INVOICING_PAYMENT_RUN_TIME": "23:59", "INVOICING_PAYMENT_POLL_SECONDS": "0.5"}


class Api:
    def __init__(self, ns, services):
        self.ns, self.services = ns, services

    async def call(self, service, method, path, user="ops", roles=("admin",), **kwargs):
        async with httpx.AsyncClient(base_url=self.services.url(service), timeout=60) as client:
            return await client.request(method, path, headers=token(self.ns, user, *roles), **kwargs)

    async def approved_invoice(self, number, **document):
        answer = await self.call("invoices", "POST", "/invoices", "platform", ["intake"],
                                 content=cii(number=number, **document))
        assert answer.status_code == 202, answer.text
        invoice = answer.json()["invoice_id"]
        await eventually(lambda: self._status_in(invoice, {"validated", "approved"}))
        if (await self.invoice(invoice))["status"] == "validated":
            done = await self.call("invoices", "POST", f"/invoices/{invoice}/service-done", "bob", ["approver"], json={})
            assert done.status_code == 200, done.text
            approved = await self.call("invoices", "POST", f"/invoices/{invoice}/approve", "carol", ["approver"])
            assert approved.status_code == 200, approved.text
        return invoice

    async def invoice(self, invoice_id):
        return (await self.call("invoices", "GET", f"/invoices/{invoice_id}")).json()

    async def _status_in(self, invoice_id, states):
        body = await self.invoice(invoice_id)
        return body if body.get("status") in states else None

    async def payable(self, payable_id, status=None):
        answer = await self.call("payments", "GET", f"/payables/{payable_id}", "audit", ["auditor"])
        if answer.status_code != 200:
            return None
        body = answer.json()
        return body if status is None or body["status"] == status else None

    async def run(self):
        answer = await self.call("payments", "POST", "/payment-runs", "treasurer", ["accountant"], json={})
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def confirm(self, content):
        answer = await self.call("payments", "POST", "/confirmations", "comptable", ["accountant"], content=content)
        assert answer.status_code == 200, answer.text
        return answer.json()


async def _payment_events(ns, payable_id=None):
    events = [decode(r.value) for r in await read_topic(ns, "payments.events")]
    return [e for e in events if payable_id is None or e.envelope.aggregate_id == payable_id]


async def _start_all(services, **env):
    for name in ("invoices", "advances", "payments"):
        await services.start(name, **{**QUIET, **env})


async def test_an_approved_invoice_is_ordered_paid_and_shown_paid(ns, services):
    await _start_all(services)
    api = Api(ns, services)
    invoice = await api.approved_invoice("F-PAY-1", contract=None)
    payable_id = f"invoice:{invoice}"
    payable = await eventually(lambda: api.payable(payable_id, "scheduled"))
    assert payable["amount"] == "8707.46" and payable["deduction"] == "0.00"
    assert payable["legal_due"] == "2026-04-01" and payable["target_due"] == "2026-03-17"

    run = await api.run()
    assert run["orders"] == 1 and run["payables"] == [payable_id] and run["batch_id"] == "PR-20260302-CPT-1"
    order_file = ns.payments_outgoing / (await api.call("payments", "GET", "/batches", "audit", ["auditor"])).json()[0]["file_name"]
    content = order_file.read_bytes()  # delivered to the channel's drop folder before the run answered
    assert b"<" in content and ns.buyer_siret.encode() in content
    assert (await api.run())["orders"] == 0, "a second run orders nothing already ordered"

    report = await api.confirm(settle(content, executed_on=date(2026, 3, 10)))
    assert len(report["executed"]) == 1 and report["unmatched"] == [] and report["late"] == []
    again = await api.confirm(settle(content, executed_on=date(2026, 3, 10)))
    assert again["already_received"] is True

    paid = await eventually(lambda: api._status_in(invoice, {"paid"}))
    assert paid["chorus_status"] == "MISE_EN_PAIEMENT"
    assert paid["payment"]["paid_on"] == "2026-03-10" and paid["payment"]["paid_amount"] == "8707.46"
    assert paid["payment"]["days_late"] == 0

    events = await eventually(lambda: _at_least(_payment_events(ns, payable_id), 2))
    assert [e.envelope.event_type for e in events] == ["PaymentOrdered", "PaymentExecuted"]
    ordered, executed = (e.event for e in events)
    assert ordered.channel == "accountant" and ordered.accountant_due == date(2026, 3, 12)
    assert executed.executed_on == date(2026, 3, 10) and executed.days_late == 0
    assert executed.ordonnateur_days == 0 and executed.accountant_days == 8
    assert all(e.envelope.correlation_id == invoice for e in events)
    assert events[1].envelope.actor == "comptable"


async def _at_least(coroutine, count):
    events = await coroutine
    return events if len(events) >= count else None


async def test_recovery_is_deducted_and_a_late_payment_brings_interest_and_indemnity(ns, services):
    await _start_all(services)
    api = Api(ns, services)
    # A contract with a doubled advance, the invoice's contract reference (BT-12) naming it.
    assert await post_contracts(services.url("advances"), [{
        "contract_id": CONTRACT, "supplier_siret": SELLER_SIRET, "supplier_name": "Fournisseur SA",
        "sme": False, "contract_type": "services", "amount_ht": "60000.00", "amount_ttc": "72000.00",
        "duration_months": 10, "notified_on": "2026-01-05", "advance_rate_pct": "40"}]) == [201]
    invoice = await api.approved_invoice("F-PAY-2")
    payable_id = f"invoice:{invoice}"
    payable = await eventually(lambda: api.payable(payable_id, "scheduled"))
    # Above 30 % the advance is recovered from the first payment request (R2191-11).
    assert Decimal(payable["deduction"]) > 0
    assert Decimal(payable["amount"]) == Decimal("8707.46") - Decimal(payable["deduction"])

    await api.run()
    batches = (await api.call("payments", "GET", "/batches", "audit", ["auditor"])).json()
    content = (await api.call("payments", "GET", f"/batches/{batches[0]['batch_id']}/file", "audit", ["auditor"])).content
    # Paid on 21 April: 20 days after the legal due date of 1 April (H1 2026: 2.15 % + 8 points).
    report = await api.confirm(settle(content, executed_on=date(2026, 4, 21)))
    assert report["late"] == [payable_id]

    interest_id = f"interest:{payable_id}"
    interest = await eventually(lambda: api.payable(interest_id, "scheduled"))
    expected = (Decimal(payable["amount"]) * Decimal("10.15") * 20 / (100 * 365)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(interest["amount"]) == expected + Decimal("40.00")
    assert interest["legal_due"] == (date(2026, 4, 21) + timedelta(days=45)).isoformat()

    assessed = [e for e in await _payment_events(ns, interest_id) if e.envelope.event_type == "LatePaymentInterestAssessed"]
    assert len(assessed) == 1
    event = assessed[0].event
    assert (event.days_late, event.rate, event.interest, event.indemnity) == (20, Decimal("10.15"), expected, Decimal("40.00"))
    assert assessed[0].envelope.correlation_id == invoice

    # The interest is a payable like any other: ordered on the next run and paid.
    run = await api.run()
    assert run["payables"] == [interest_id]
    content = (await api.call("payments", "GET", f"/batches/{run['batch_id']}/file", "audit", ["auditor"])).content
    report = await api.confirm(settle(content, executed_on=date(2026, 4, 30)))
    assert len(report["executed"]) == 1 and report["late"] == []
    await eventually(lambda: api.payable(interest_id, "paid"))


async def test_a_confirmation_matching_no_order_is_kept_and_raised(ns, services):
    await services.start("payments", **QUIET)
    api = Api(ns, services)
    report = await api.confirm(unmatched_debit(account_iban=ns.buyer_iban, amount=Decimal("1234.56"),
                                               booked_on=date(2026, 3, 3), reference="BANK-REF-1"))
    assert len(report["unmatched"]) == 1 and report["executed"] == []
    kept = (await api.call("payments", "GET", "/confirmations/open", "audit", ["auditor"])).json()
    assert len(kept) == 1 and kept[0]["outcome"] == "unmatched" and kept[0]["amount"] == "1234.56"
    metrics = (await api.call("payments", "GET", "/metrics")).text
    assert "payment_confirmations_unmatched 1.0" in metrics

    garbage = await api.call("payments", "POST", "/confirmations", "comptable", ["accountant"], content=b"not xml")
    assert garbage.status_code == 422 and "kept for inspection" in garbage.json()["detail"]
    conn = await admin_connection(ns)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM payments.confirmation_files WHERE error IS NOT NULL")
    finally:
        await conn.close()
    assert stored == 1


async def test_a_crash_during_a_run_orders_each_payable_exactly_once(ns, services):
    await services.start("invoices", **QUIET)
    await services.start("advances", **QUIET)
    await services.start("payments", **QUIET, INVOICING_FAILPOINTS="payments.run.before_commit")
    api = Api(ns, services)
    invoices = [await api.approved_invoice(f"F-CRASH-{i}", contract=None) for i in range(5)]
    for invoice in invoices:
        await eventually(lambda: api.payable(f"invoice:{invoice}", "scheduled"))

    # The service dies (SIGKILL) inside the run, after the file and the events were written in
    # the transaction and before its commit.
    with pytest.raises(httpx.HTTPError):
        await api.run()
    with pytest.raises(ServiceError):
        services.running["payments"].wait_ready(timeout=2)
    await services.start("payments", **QUIET)
    run = await api.run()
    assert run["batch_id"] == "PR-20260302-CPT-1" and run["orders"] == 5
    assert (await api.run())["orders"] == 0

    conn = await admin_connection(ns)
    try:
        orders = await conn.fetch("SELECT payable_id, count(*) AS n FROM payments.payment_orders GROUP BY payable_id")
        batches = await conn.fetchval("SELECT count(*) FROM payments.payment_batches")
    finally:
        await conn.close()
    assert sorted(r["payable_id"] for r in orders) == sorted(f"invoice:{i}" for i in invoices)
    assert {r["n"] for r in orders} == {1} and batches == 1
    await eventually(lambda: _at_least(_payment_events(ns), 5))
    await asyncio.sleep(2)  # anything the relay would still publish, published
    ordered = [e for e in await _payment_events(ns) if e.envelope.event_type == "PaymentOrdered"]
    assert sorted(e.envelope.aggregate_id for e in ordered) == sorted(f"invoice:{i}" for i in invoices)


async def test_sepa_a_transfer_returned_for_a_closed_account_is_ordered_again_on_the_corrected_iban(ns, services):
    await _start_all(services, INVOICING_PAYMENT_CHANNEL="sepa")
    api = Api(ns, services)
    registered = await api.call("invoices", "POST", "/suppliers", "referent", ["admin"], json={
        "siret": SELLER_SIRET, "name": "Fournisseur SA", "sme": False, "iban": SELLER_IBAN})
    assert registered.status_code == 201, registered.text
    invoice = await api.approved_invoice("F-SEPA-1", contract=None)
    payable_id = f"invoice:{invoice}"
    await eventually(lambda: api.payable(payable_id, "scheduled"))

    run = await api.run()
    assert run["batch_id"] == "PR-20260302-SEPA-1"
    pain = (await api.call("payments", "GET", f"/batches/{run['batch_id']}/file", "audit", ["auditor"])).content
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09" in pain
    returned = await api.confirm(settle(pain, executed_on=date(2026, 3, 4), fail=lambda _order: "AC04"))
    assert len(returned["failed"]) == 1

    held = await eventually(lambda: api.payable(payable_id, "on_hold"))
    assert "AC04" in held["hold_reason"]
    back = await eventually(lambda: api._status_in(invoice, {"approved"}))
    assert "AC04" in back["payment"]["failure"]
    assert (await api.run())["orders"] == 0, "nothing is ordered again on the closed account"

    # The corrected account needs two people (four eyes); once confirmed, the payable is ordered again.
    new_iban = "FR7610107001011234567890129"
    change = await api.call("invoices", "POST", f"/suppliers/{SELLER_SIRET}/iban-changes", "dan", ["approver"],
                            json={"new_iban": new_iban, "justification": "RIB received and confirmed by phone"})
    assert change.status_code == 201, change.text
    change_id = change.json()["change_id"]
    confirmed = await api.call("invoices", "POST", f"/suppliers/{SELLER_SIRET}/iban-changes/{change_id}/confirm",
                               "eve", ["approver"])
    assert confirmed.status_code == 200, confirmed.text
    await eventually(lambda: api.payable(payable_id, "scheduled"))

    rerun = await api.run()
    assert rerun["payables"] == [payable_id]
    pain = (await api.call("payments", "GET", f"/batches/{rerun['batch_id']}/file", "audit", ["auditor"])).content
    assert new_iban.encode() in pain
    report = await api.confirm(settle(pain, executed_on=date(2026, 3, 6)))
    assert len(report["executed"]) == 1
    await eventually(lambda: api._status_in(invoice, {"paid"}))
    orders = (await api.payable(payable_id))["orders"]
    assert [(o["attempt"], o["status"]) for o in orders] == [(1, "failed"), (2, "executed")]
