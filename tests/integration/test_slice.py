"""A contract notified to the advances service reaches the invoices service, through Kafka."""

import json

import httpx
import pytest

from shared.events import decode
from tests.support import admin_connection, contract, eventually, post_contracts, read_topic, token

pytestmark = pytest.mark.integration


async def test_contract_notified_flows_from_advances_to_invoices(ns, services):
    await services.start("advances")
    await services.start("invoices")

    codes = await post_contracts(services.url("advances"), [contract(1)], actor="alice")
    assert codes == [201]

    db = await admin_connection(ns)
    try:
        row = await eventually(lambda: db.fetchrow(
            "SELECT * FROM invoices.contract_refs WHERE contract_id = 'M-2026-0001'"))
        assert row["engagement_numbers"] == ["EJ-1"]
        assert str(row["amount_ttc"]) == contract(1)["amount_ttc"]
    finally:
        await db.close()

    [record] = [r for r in await read_topic(ns, "advances.events")
                if dict(r.headers)["event_type"] == b"ContractNotified"]
    decoded = decode(record.value)
    assert record.key == b"M-2026-0001"
    assert decoded.envelope.actor == "alice"
    assert decoded.envelope.producer == "advances"
    assert decoded.envelope.event_id == row["source_event_id"]
    assert dict(record.headers)["event_type"] == b"ContractNotified"


async def test_resending_a_contract_is_idempotent_and_changing_it_is_a_conflict(ns, services):
    await services.start("advances")
    url = services.url("advances")
    assert await post_contracts(url, [contract(2), contract(2)]) == [201, 200]
    assert await post_contracts(url, [contract(2, amount_ht="70000.00")]) == [409]
    async with httpx.AsyncClient(base_url=url) as anonymous:
        assert (await anonymous.post("/contracts", json=contract(5))).status_code == 401

    async with httpx.AsyncClient(base_url=url, headers=token(ns, "procurement", "admin")) as client:
        shown = (await client.get("/contracts/M-2026-0002")).json()
        assert shown["amount_ht"] == contract(2)["amount_ht"]
        assert (await client.get("/contracts/NOPE")).status_code == 404
        bad = await client.post("/contracts", json=contract(3, amount_ht=1.5, supplier_siret="123"))
    assert bad.status_code == 422
    fields = {tuple(error["loc"]): error["msg"] for error in bad.json()["detail"]}
    assert "decimal strings" in fields[("body", "amount_ht")]
    assert "not a valid SIRET" in fields[("body", "supplier_siret")]

    await eventually(lambda: _published(ns), timeout=15)
    records = await read_topic(ns, "advances.events")
    assert [dict(r.headers)["event_type"] for r in records] == [b"ContractNotified", b"AdvanceGranted"]


async def _published(ns) -> bool:
    db = await admin_connection(ns)
    try:
        return await db.fetchval("SELECT count(*) = 0 FROM advances.outbox WHERE published_at IS NULL")
    finally:
        await db.close()


async def test_services_report_ready_and_export_metrics(ns, services):
    await services.start("payments")
    async with httpx.AsyncClient(base_url=services.url("payments")) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert json.loads(ready.text)["checks"] == {"database": "ok", "kafka": "ok"}
        assert (await client.get("/healthz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert "outbox_pending" in metrics
