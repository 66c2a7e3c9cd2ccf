"""Approvers act on invoices through the API: roles, segregation of duties, the lifecycle, and
the deadline carried by each event — on the real stack."""

import httpx
import pytest

from deploy.simulators.suppliers import cii
from shared.events import decode
from tests.support import eventually, produce, read_topic, token

pytestmark = pytest.mark.integration

MARCH_2 = "fixed:2026-03-02T09:00:00+00:00"


class Api:
    def __init__(self, ns, url):
        self.ns, self.url = ns, url

    async def call(self, method, path, user=None, roles=(), **kwargs):
        headers = token(self.ns, user, *roles) if user else {}
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.request(method, path, headers=headers, **kwargs)

    async def submit(self, document, user="platform"):
        answer = await self.call("POST", "/invoices", user, ["intake"], content=document)
        assert answer.status_code == 202, answer.text
        return answer.json()["invoice_id"]


async def _events(ns, invoice_id, count):
    events = [d for d in (decode(r.value) for r in await read_topic(ns, "invoices.events"))
              if d.envelope.aggregate_id == invoice_id]
    return events if len(events) >= count else None


async def test_service_done_then_approval_by_someone_else_above_the_threshold(ns, services):
    await services.start("invoices", INVOICING_CLOCK=MARCH_2, INVOICING_APPROVAL_THRESHOLD="1000.00")
    api = Api(ns, services.url("invoices"))
    invoice = await api.submit(cii(number="F-WF-1"), user="alice")

    assert (await api.call("POST", f"/invoices/{invoice}/approve")).status_code == 401
    assert (await api.call("POST", f"/invoices/{invoice}/approve", "alice", ["intake"])).status_code == 403
    too_early = await api.call("POST", f"/invoices/{invoice}/approve", "bob", ["approver"])
    assert too_early.status_code == 409 and "it is 'validated'" in too_early.json()["detail"]

    done = await api.call("POST", f"/invoices/{invoice}/service-done", "bob", ["approver"], json={})
    assert done.status_code == 200 and done.json()["status"] == "service_done"
    assert done.json()["chorus_status"] == "SERVICE_FAIT" and done.json()["service_done_by"] == "bob"

    # 8 707.46 EUR is above the 1 000 EUR threshold: bob certified the service, someone else approves.
    same_person = await api.call("POST", f"/invoices/{invoice}/approve", "bob", ["approver"])
    assert same_person.status_code == 403 and "segregation of duties" in same_person.json()["detail"]
    approved = await api.call("POST", f"/invoices/{invoice}/approve", "carol", ["approver"])
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["lifecycle_code"] == 205

    events = await eventually(lambda: _events(ns, invoice, 4))
    assert [e.envelope.event_type for e in events] == [
        "InvoiceReceived", "InvoiceValidated", "ServiceDoneRecorded", "InvoiceApproved"]
    assert [e.envelope.actor for e in events][2:] == ["bob", "carol"]
    mandat = events[-1].event
    assert str(mandat.amount) == "8707.46" and mandat.automatic is False
    assert mandat.deadline.legal_due.isoformat() == "2026-04-01"
    assert mandat.deadline.target_due.isoformat() == "2026-03-17"
    assert all(e.envelope.correlation_id == invoice for e in events)


async def test_nobody_approves_an_invoice_they_submitted(ns, services):
    await services.start("invoices", INVOICING_CLOCK=MARCH_2)
    api = Api(ns, services.url("invoices"))
    invoice = await api.submit(cii(number="F-WF-2", lines=2), user="dave")
    await api.call("POST", f"/invoices/{invoice}/service-done", "erin", ["approver"], json={})
    refused = await api.call("POST", f"/invoices/{invoice}/approve", "dave", ["approver", "intake"])
    assert refused.status_code == 403 and "submitted this invoice" in refused.json()["detail"]
    # Below the threshold the one who certified the service may approve.
    assert (await api.call("POST", f"/invoices/{invoice}/approve", "erin", ["approver"])).status_code == 200


async def test_an_interruption_stops_the_clock_and_completion_opens_a_new_delay(ns, services):
    invoices = await services.start("invoices", INVOICING_CLOCK=MARCH_2)
    api = Api(ns, services.url("invoices"))
    invoice = await api.submit(cii(number="F-WF-3"))

    missing = await api.call("POST", f"/invoices/{invoice}/interrupt", "bob", ["approver"],
                             json={"reason": "", "missing_items": []})
    assert missing.status_code == 422
    fields = {e["loc"][-1] for e in missing.json()["detail"]}
    assert fields == {"reason", "missing_items"}

    stopped = await api.call("POST", f"/invoices/{invoice}/interrupt", "bob", ["approver"],
                             json={"reason": "URSSAF certificate missing", "missing_items": ["attestation URSSAF"]})
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "interrupted" and stopped.json()["deadline"] is None
    assert stopped.json()["chorus_status"] == "SUSPENDUE"

    # Ten days later the supplier sends the certificate.
    invoices.stop()
    await services.start("invoices", INVOICING_CLOCK="fixed:2026-03-12T09:00:00+00:00")
    completed = await api.call("POST", f"/invoices/{invoice}/complete", "bob", ["approver"])
    assert completed.status_code == 200
    assert completed.json()["deadline"]["dgp_start"] == "2026-03-12"
    assert completed.json()["deadline"]["legal_due"] == "2026-04-11"  # R2192-29: 30 new days

    again = await api.call("POST", f"/invoices/{invoice}/interrupt", "bob", ["approver"],
                           json={"reason": "again", "missing_items": ["x"]})
    assert again.status_code == 409 and "one interruption" in again.json()["detail"]

    events = await eventually(lambda: _events(ns, invoice, 4))
    interrupted, done = events[2], events[3]
    assert interrupted.envelope.event_type == "InvoiceInterrupted"
    assert interrupted.event.missing_items == ["attestation URSSAF"]
    assert interrupted.event.notified_on.isoformat() == "2026-03-02"
    assert done.envelope.event_type == "InvoiceCompleted"
    assert done.event.deadline.legal_due.isoformat() == "2026-04-11"

    # Certifying the service and approving afterwards keep the delay the completion opened.
    certified = await api.call("POST", f"/invoices/{invoice}/service-done", "bob", ["approver"],
                               json={"on": "2026-02-27"})
    assert certified.status_code == 200 and certified.json()["deadline"]["legal_due"] == "2026-04-11"
    assert (await api.call("POST", f"/invoices/{invoice}/approve", "carol", ["approver"])).status_code == 200
    events = await eventually(lambda: _events(ns, invoice, 6))
    assert events[-1].envelope.event_type == "InvoiceApproved"
    assert events[-1].event.deadline.legal_due.isoformat() == "2026-04-11"


async def test_a_refusal_needs_a_reason_and_ends_the_invoice(ns, services):
    await services.start("invoices", INVOICING_CLOCK=MARCH_2)
    api = Api(ns, services.url("invoices"))
    invoice = await api.submit(cii(number="F-WF-4"))
    assert (await api.call("POST", f"/invoices/{invoice}/refuse", "bob", ["approver"], json={})).status_code == 422
    refused = await api.call("POST", f"/invoices/{invoice}/refuse", "bob", ["approver"],
                             json={"reason": "goods never delivered"})
    assert refused.json()["status"] == "refused" and refused.json()["lifecycle_code"] == 210
    late = await api.call("POST", f"/invoices/{invoice}/service-done", "bob", ["approver"], json={})
    assert late.status_code == 409 and "it is 'refused'" in late.json()["detail"]
    unknown = await api.call("POST", "/invoices/00000000-0000-0000-0000-000000000000/approve", "bob", ["approver"])
    assert unknown.status_code == 404
    future = await api.call("POST", f"/invoices/{invoice}/service-done", "bob", ["approver"], json={"on": "2027-01-01"})
    assert future.status_code in (409, 422)


async def test_invoices_are_approved_automatically_only_when_every_condition_holds(ns, services):
    from deploy.simulators.suppliers import ENGAGEMENT, SELLER_IBAN, SELLER_NAME, SELLER_SIRET

    await services.start("invoices", INVOICING_CLOCK=MARCH_2, INVOICING_APPROVAL_THRESHOLD="10000.00")
    api = Api(ns, services.url("invoices"))
    admin = ("root", ["admin"])
    assert (await api.call("POST", "/suppliers", *admin, json={
        "siret": SELLER_SIRET, "name": SELLER_NAME, "sme": True, "iban": SELLER_IBAN})).status_code == 201
    assert (await api.call("POST", "/engagements", *admin, json={
        "number": ENGAGEMENT, "supplier_siret": SELLER_SIRET, "amount": "50000.00"})).status_code == 201
    assert (await api.call("POST", "/engagements", *admin, json={
        "number": "EJ-AUTO-1", "supplier_siret": SELLER_SIRET, "amount": "20000.00",
        "service_done_automatic": True})).status_code == 201

    # Everything holds but the service is not done yet: the invoice waits, and says why.
    waiting = await api.submit(cii(number="F-AUTO-1"))
    view = await eventually(lambda: _waits(api, waiting))
    assert [w["rule"] for w in view["approval_waits_for"]] == ["service_not_done"]
    await api.call("POST", f"/invoices/{waiting}/service-done", "bob", ["approver"], json={})
    approved = await eventually(lambda: _in_state(api, waiting, "approved"))
    assert approved["approved_by"] == "invoices.auto-approval" and approved["approval_waits_for"] == []

    # An engagement that certifies the service itself: approved straight after validation.
    direct = await api.submit(cii(number="F-AUTO-2", engagement="EJ-AUTO-1"))
    assert (await eventually(lambda: _in_state(api, direct, "approved")))["service_done_by"] == "invoices.auto-approval"

    # Above the threshold, or naming an IBAN still waiting for its second confirmation: a person decides.
    big = await api.submit(cii(number="F-AUTO-3", lines=40))
    await api.call("POST", f"/invoices/{big}/service-done", "bob", ["approver"], json={})
    assert "above_threshold" in [w["rule"] for w in (await eventually(lambda: _waits(api, big)))["approval_waits_for"]]
    new_iban = "FR7630006000011234567890189"
    change = await api.call("POST", f"/suppliers/{SELLER_SIRET}/iban-changes", "bob", ["approver"],
                            json={"new_iban": new_iban, "justification": "bank change letter of 1 March"})
    assert change.status_code == 201, change.text
    redirected = await api.submit(cii(number="F-AUTO-4", lines=2, iban=new_iban))
    await api.call("POST", f"/invoices/{redirected}/service-done", "bob", ["approver"], json={})
    rules = [w["rule"] for w in (await eventually(lambda: _waits(api, redirected)))["approval_waits_for"]]
    assert "iban_change_pending" in rules

    events = await eventually(lambda: _events(ns, direct, 4))
    approval = [e for e in events if e.envelope.event_type == "InvoiceApproved"][0]
    assert approval.event.automatic is True and approval.envelope.actor == "invoices.auto-approval"
    engagement = (await api.call("GET", f"/engagements/{ENGAGEMENT}", *admin)).json()
    assert engagement["remaining"] == "41292.54"  # 50 000.00 − 8 707.46


async def test_invoices_approved_together_share_their_engagement_credit_as_one_by_one(ns, services):
    from decimal import Decimal

    from deploy.simulators.suppliers import SELLER_IBAN, SELLER_NAME, SELLER_SIRET
    from services.invoices.formats import parse

    invoices = await services.start("invoices", INVOICING_CLOCK=MARCH_2)
    api = Api(ns, services.url("invoices"))
    admin = ("root", ["admin"])
    documents = [cii(number=f"F-SHARE-{i}", lines=2, engagement="EJ-SHARE") for i in range(3)]
    amount = parse(documents[0]).totals.payable
    assert {parse(d).totals.payable for d in documents} == {amount}
    assert (await api.call("POST", "/suppliers", *admin, json={
        "siret": SELLER_SIRET, "name": SELLER_NAME, "sme": True, "iban": SELLER_IBAN})).status_code == 201
    credit = amount * Decimal("2.5")
    assert (await api.call("POST", "/engagements", *admin, json={
        "number": "EJ-SHARE", "supplier_siret": SELLER_SIRET, "amount": str(credit),
        "service_done_automatic": True})).status_code == 201
    invoices.stop()
    # Waiting on the inbound topic while the service is down: received, decided and considered
    # for approval together.
    await produce(ns, "invoices.inbound", documents, key=b"gateway-1")
    await services.start("invoices", INVOICING_CLOCK=MARCH_2)

    async def settled():
        rows = (await api.call("GET", "/invoices?limit=10", "bob", ["approver"])).json()["invoices"]
        details = [(await api.call("GET", f"/invoices/{r['invoice_id']}", "bob", ["approver"])).json() for r in rows]
        decided = [d for d in details if d["status"] == "approved" or d["approval_waits_for"]]
        return details if len(details) == 3 and len(decided) == 3 else None

    details = await eventually(settled)
    approved = sorted(d["invoice_id"] for d in details if d["status"] == "approved")
    waiting = [d for d in details if d["status"] != "approved"]
    # Taken in id order: the two first ids use the credit, the third waits for a person.
    assert approved == sorted(d["invoice_id"] for d in details)[:2]
    assert [w["rule"] for w in waiting[0]["approval_waits_for"]] == ["above_remaining_commitment"]
    engagement = (await api.call("GET", "/engagements/EJ-SHARE", *admin)).json()
    assert Decimal(engagement["remaining"]) == credit - 2 * amount


async def _waits(api, invoice_id):
    view = (await api.call("GET", f"/invoices/{invoice_id}", "bob", ["approver"])).json()
    return view if view["approval_waits_for"] else None


async def _in_state(api, invoice_id, state):
    view = (await api.call("GET", f"/invoices/{invoice_id}", "bob", ["approver"])).json()
    return view if view["status"] == state else None


async def test_invoices_are_listed_by_days_left_and_each_has_its_timeline(ns, services):
    await services.start("invoices", INVOICING_CLOCK="fixed:2026-03-25T09:00:00+00:00")
    api = Api(ns, services.url("invoices"))
    first = await api.submit(cii(number="F-LIST-1", lines=2), user="alice")
    await api.call("POST", f"/invoices/{first}/service-done", "bob", ["approver"], json={})

    listed = (await api.call("GET", "/invoices", "audrey", ["auditor"], params={"status": "service_done"})).json()
    assert [i["invoice_id"] for i in listed["invoices"]] == [first]
    assert listed["invoices"][0]["days_left"] == 30 and listed["invoices"][0]["payable"] == "315.90"
    assert (await api.call("GET", "/invoices", "audrey", ["auditor"], params={"days_left_max": 10})).json()["invoices"] == []
    assert (await api.call("GET", "/invoices", "audrey", ["auditor"], params={"status": "flying"})).status_code == 422
    assert (await api.call("GET", "/invoices", "alice", ["intake"])).status_code == 403

    steps = (await api.call("GET", f"/invoices/{first}/timeline", "audrey", ["auditor"])).json()["steps"]
    assert [(s["event_type"], s["actor"]) for s in steps] == [
        ("InvoiceReceived", "alice"), ("InvoiceValidated", "intake"), ("ServiceDoneRecorded", "bob")]
    assert steps[1]["causation_id"] == steps[0]["event_id"]
    assert steps[2]["details"]["deadline"]["legal_due"] == "2026-04-24"
