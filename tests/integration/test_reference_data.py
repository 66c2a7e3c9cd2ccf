"""Suppliers, their bank accounts and budget commitments on the real stack: loaded through the
API and the CSV imports, kept as events with their actors, and a new IBAN applied only after a
second person confirms it (four eyes)."""

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import httpx
import pytest

from cli.reference import import_engagements, import_suppliers
from deploy.simulators.suppliers import make_siret
from services.invoices.reference import approval_references
from shared.auth import issue_token
from shared.events import decode
from tests.support import admin_connection, eventually, read_topic

pytestmark = pytest.mark.integration

SIRET = make_siret(41000001)
IBAN = "FR7630004000031234567890143"
NEW_IBAN = "FR7630006000011234567890189"
THIRD_IBAN = "DE89370400440532013000"
SUPPLIER = {"siret": SIRET, "name": "Atelier Numérique du Nord SAS", "sme": True, "iban": IBAN}


def _client(ns, url: str, user: str | None = None, *roles: str) -> httpx.AsyncClient:
    headers = {}
    if user is not None:
        headers["authorization"] = f"Bearer {issue_token(ns, user, list(roles), datetime.now(UTC))}"
    return httpx.AsyncClient(base_url=url, timeout=30, headers=headers)


async def _events(ns, aggregate_id: str, count: int):
    decoded = [d for d in (decode(r.value) for r in await read_topic(ns, "invoices.events"))
               if d.envelope.aggregate_id == aggregate_id]
    return decoded if len(decoded) >= count else None


async def test_a_new_iban_needs_a_second_person_and_every_step_is_an_event(ns, services):
    await services.start("invoices")
    url = services.url("invoices")
    admin = _client(ns, url, "ref.admin", "admin")
    alice = _client(ns, url, "alice", "approver")
    bob = _client(ns, url, "bob", "approver")
    auditor = _client(ns, url, "audrey", "auditor")
    anonymous, clerk = _client(ns, url), _client(ns, url, "ines", "intake")
    async with admin, alice, bob, auditor, anonymous, clerk:
        # Roles: no token is 401, a token without the role is 403.
        assert (await anonymous.post("/suppliers", json=SUPPLIER)).status_code == 401
        refused = await clerk.post("/suppliers", json=SUPPLIER)
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        assert (await anonymous.get(f"/suppliers/{SIRET}")).status_code == 401

        written = {**SUPPLIER, "iban": "fr76 3000 4000 0312 3456 7890 143", "siret": f" {SIRET[:9]} {SIRET[9:]}"}
        created = await admin.post("/suppliers", json=written)
        assert created.status_code == 201, created.text
        assert created.json() == {"siret": SIRET, "result": "created", "url": f"/suppliers/{SIRET}"}
        again = await admin.post("/suppliers", json=SUPPLIER)
        assert (again.status_code, again.json()["result"]) == (200, "unchanged")

        # Registering again with another IBAN changes nothing and says how to change it.
        hijack = await admin.post("/suppliers", json={**SUPPLIER, "iban": NEW_IBAN, "name": "Other name"})
        assert hijack.status_code == 409
        assert "iban-changes" in hijack.json()["detail"] and "second person" in hijack.json()["detail"]
        assert NEW_IBAN not in hijack.json()["detail"]
        shown = (await auditor.get(f"/suppliers/{SIRET}")).json()
        assert (shown["iban"], shown["name"], shown["pending_iban_change"]) == (IBAN, SUPPLIER["name"], None)

        renamed = await admin.post("/suppliers", json={**SUPPLIER, "name": "Atelier Numérique SAS"})
        assert (renamed.status_code, renamed.json()["result"]) == (200, "updated")

        # Bad input is a 4xx naming the field.
        bad = await admin.post("/suppliers", json={**SUPPLIER, "siret": "12345678901234", "iban": "FR761234"})
        assert bad.status_code == 422
        assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "siret"), ("body", "iban")}
        assert (await auditor.get("/suppliers/123")).json()["detail"][0]["loc"] == ["path", "siret"]
        assert (await auditor.get(f"/suppliers/{make_siret(41000999)}")).status_code == 404

        # Alice asks for the new account; the registered one stays until someone else confirms.
        assert (await auditor.post(f"/suppliers/{SIRET}/iban-changes",
                                   json={"new_iban": NEW_IBAN, "justification": "x"})).status_code == 403
        no_reason = await alice.post(f"/suppliers/{SIRET}/iban-changes", json={"new_iban": NEW_IBAN})
        assert no_reason.json()["detail"][0]["loc"] == ["body", "justification"]
        requested = await alice.post(f"/suppliers/{SIRET}/iban-changes", json={
            "new_iban": NEW_IBAN, "justification": "RIB received 2026-03-02, confirmed by phone with the CFO"})
        assert requested.status_code == 201, requested.text
        change = requested.json()
        assert (change["status"], change["requested_by"], change["current_iban"]) == ("pending", "alice", IBAN)
        change_id = change["change_id"]
        shown = (await bob.get(f"/suppliers/{SIRET}")).json()
        assert shown["iban"] == IBAN
        assert shown["pending_iban_change"]["new_iban"] == NEW_IBAN

        second = await bob.post(f"/suppliers/{SIRET}/iban-changes",
                                json={"new_iban": THIRD_IBAN, "justification": "another letter"})
        assert second.status_code == 409 and change_id in second.json()["detail"]

        db = await admin_connection(ns)
        try:
            await db.execute("SET search_path = invoices")
            references = await approval_references(db, seller_siret=SIRET, engagement_number=None)
            assert (references.supplier.iban, references.pending_iban) == (IBAN, NEW_IBAN)

            own = await alice.post(f"/suppliers/{SIRET}/iban-changes/{change_id}/confirm")
            assert own.status_code == 403 and "Four eyes" in own.json()["detail"]
            # The database refuses it as well, whoever writes to it.
            with pytest.raises(asyncpg.CheckViolationError):
                await db.execute("UPDATE supplier_iban_changes SET status = 'confirmed', decided_by = 'Alice', "
                                 "decided_at = now() WHERE change_id = $1", change_id)
            assert (await bob.get(f"/suppliers/{SIRET}")).json()["iban"] == IBAN

            confirmed = await bob.post(f"/suppliers/{SIRET}/iban-changes/{change_id}/confirm")
            assert confirmed.status_code == 200, confirmed.text
            assert (confirmed.json()["status"], confirmed.json()["decided_by"]) == ("confirmed", "bob")
            shown = (await auditor.get(f"/suppliers/{SIRET}")).json()
            assert (shown["iban"], shown["pending_iban_change"]) == (NEW_IBAN, None)
            references = await approval_references(db, seller_siret=SIRET, engagement_number=None)
            assert (references.supplier.iban, references.pending_iban) == (NEW_IBAN, None)
        finally:
            await db.close()
        assert (await bob.post(f"/suppliers/{SIRET}/iban-changes/{change_id}/confirm")).status_code == 200
        late = await admin.post(f"/suppliers/{SIRET}/iban-changes/{change_id}/reject", json={"reason": "late"})
        assert late.status_code == 409 and "already confirmed by bob" in late.json()["detail"]

        # A rejected change leaves the account as it is.
        other = (await bob.post(f"/suppliers/{SIRET}/iban-changes",
                                json={"new_iban": THIRD_IBAN, "justification": "email from the supplier"})).json()
        own = await bob.post(f"/suppliers/{SIRET}/iban-changes/{other['change_id']}/reject", json={"reason": "no"})
        assert own.status_code == 403
        rejected = await alice.post(f"/suppliers/{SIRET}/iban-changes/{other['change_id']}/reject",
                                    json={"reason": "an e-mail is no proof: ask for a bank certificate"})
        assert rejected.json()["status"] == "rejected"
        shown = (await auditor.get(f"/suppliers/{SIRET}")).json()
        assert shown["iban"] == NEW_IBAN
        assert [c["status"] for c in shown["iban_changes"]] == ["confirmed", "rejected"]
        assert (await alice.post(f"/suppliers/{SIRET}/iban-changes/{uuid4()}/confirm")).status_code == 404
        assert (await alice.post(f"/suppliers/{SIRET}/iban-changes/not-a-uuid/confirm")).status_code == 422

    events = await eventually(lambda: _events(ns, SIRET, 6), timeout=30)
    steps = [(e.envelope.event_type, e.envelope.actor) for e in events]
    assert steps == [
        ("SupplierRegistered", "ref.admin"), ("SupplierDetailsChanged", "ref.admin"),
        ("SupplierIbanChangeRequested", "alice"), ("SupplierIbanChangeConfirmed", "bob"),
        ("SupplierIbanChangeRequested", "bob"), ("SupplierIbanChangeRejected", "alice"),
    ]
    registered, _, request, confirmation, _, rejection = events
    assert registered.event.iban == IBAN and registered.envelope.producer == "invoices"
    assert (request.event.current_iban, request.event.new_iban) == (IBAN, NEW_IBAN)
    assert confirmation.envelope.causation_id == request.envelope.event_id
    assert (confirmation.event.requested_by, confirmation.event.decided_by) == ("alice", "bob")
    assert (confirmation.event.previous_iban, confirmation.event.new_iban) == (IBAN, NEW_IBAN)
    assert rejection.event.reason.startswith("an e-mail")


async def test_engagements_and_csv_imports_report_each_row(ns, services, tmp_path):
    await services.start("invoices")
    url = services.url("invoices")
    first, second, unknown = make_siret(42000001), make_siret(42000002), make_siret(42000003)

    suppliers = tmp_path / "suppliers.csv"
    suppliers.write_text(
        "siret,name,sme,iban\n"
        f"{first},Entreprise Une,oui,{IBAN}\n"
        f"{second},\"Entreprise Deux, SARL\",false,{THIRD_IBAN}\n"
        "12345678901234,Nobody,non,FR7630004000031234567890143\n"
        f"{make_siret(42000004)},Maybe,perhaps,{IBAN}\n"
    )
    report = await asyncio.to_thread(import_suppliers, ns, suppliers)
    assert report["created"] == [first, second]
    assert [(r["line"], r["id"], [e["field"] for e in r["errors"]]) for r in report["refused"]] == [
        (4, "12345678901234", ["siret"]), (5, make_siret(42000004), ["sme"])]

    again = await asyncio.to_thread(import_suppliers, ns, suppliers)
    assert again["already_known"] == [first, second] and again["created"] == []
    changed = tmp_path / "changed.csv"
    changed.write_text(f"siret;name;sme;iban\n{first};Entreprise Une;1;{NEW_IBAN}\n")
    [conflict] = (await asyncio.to_thread(import_suppliers, ns, changed))["refused"]
    assert conflict["errors"][0]["field"] is None and "IBAN change" in conflict["errors"][0]["message"]

    engagements = tmp_path / "engagements.csv"
    engagements.write_text(
        "number,supplier_siret,amount,remaining,service_done_automatic\n"
        f"EJ-2026-0001,{first},50000.00,12000.00,false\n"
        f"EJ-2026-0002,{second},1800.00,,oui\n"
        f"EJ-2026-0003,{unknown},100.00,,\n"
        f"EJ-2026-0004,{first},100.00,100.01,\n"
        f"EJ 5,{first},1.5e3,,\n"
    )
    report = await asyncio.to_thread(import_engagements, ns, engagements)
    assert report["created"] == ["EJ-2026-0001", "EJ-2026-0002"]
    refused = {r["id"]: [e["field"] for e in r["errors"]] for r in report["refused"]}
    assert refused == {"EJ-2026-0003": ["supplier_siret"], "EJ-2026-0004": ["remaining"], "EJ 5": ["number"]}
    assert (await asyncio.to_thread(import_engagements, ns, engagements))["already_known"] == [
        "EJ-2026-0001", "EJ-2026-0002"]

    admin, approver = _client(ns, url, "ref.admin", "admin"), _client(ns, url, "alice", "approver")
    async with admin, approver:
        shown = (await approver.get("/engagements/EJ-2026-0002")).json()
        assert (shown["amount"], shown["remaining"], shown["service_done_automatic"]) == ("1800.00", "1800.00", True)
        assert shown["recorded_by"] == "cli.import"
        assert (await approver.get("/engagements/EJ-404")).status_code == 404
        body = {"number": "EJ-2026-0001", "supplier_siret": first, "amount": "50000.00", "remaining": "12000.00"}
        assert (await approver.post("/engagements", json=body)).status_code == 403
        assert (await admin.post("/engagements", json=body)).status_code == 200
        conflict = await admin.post("/engagements", json={**body, "amount": "60000.00"})
        assert conflict.status_code == 409 and "amount 50000.00 (not 60000.00)" in conflict.json()["detail"]
        floating = await admin.post("/engagements", json={**body, "number": "EJ-9", "amount": 10.5})
        assert floating.json()["detail"][0]["loc"] == ["body", "amount"]

    db = await admin_connection(ns)
    try:
        await db.execute("SET search_path = invoices")
        references = await approval_references(db, seller_siret=first, engagement_number="EJ-2026-0001")
    finally:
        await db.close()
    assert (references.engagement.supplier_siret, str(references.engagement.remaining)) == (first, "12000.00")
    assert references.supplier.iban == IBAN and references.pending_iban is None

    [recorded] = await eventually(lambda: _events(ns, "EJ-2026-0001", 1), timeout=30)
    assert recorded.envelope.event_type == "EngagementRecorded" and recorded.envelope.actor == "cli.import"
    assert str(recorded.event.remaining) == "12000.00" and recorded.event.supplier_siret == first
