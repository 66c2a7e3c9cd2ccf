"""Supplier documents through every channel, on the real stack: stored first, decided, never lost."""

import asyncio
import json
import signal

import httpx
import pytest

from shared.events import decode
from deploy.simulators.suppliers import REGION_SIRET, cii, facturx_pdf, ubl
from shared.settings import Settings
from tests.support import admin_connection, eventually, produce, read_topic, token

pytestmark = pytest.mark.integration


@pytest.fixture
def region(ns):
    assert ns.buyer_siret == REGION_SIRET
    return ns


HEADERS = token(Settings(), "platform", "intake")


async def _post(url: str, content: bytes, source: str = "test-platform") -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.post("/invoices", content=content, headers={
            "x-source": source, "content-type": "application/xml", **HEADERS})


async def _get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.get(path, headers=HEADERS)


async def _events(ns, invoice_id: str) -> list:
    return [d for d in (decode(r.value) for r in await read_topic(ns, "invoices.events"))
            if d.envelope.aggregate_id == invoice_id]


async def test_http_intake_stores_decides_and_tells_why(region, services):
    ns = region
    await services.start("invoices")
    url = services.url("invoices")
    document = cii(number="F-2026-0001")

    answer = await _post(url, document)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "validated" and body["chorus_status"] == "MISE_A_DISPOSITION"
    invoice_id = body["invoice_id"]

    shown = (await _get(url, body["status_url"])).json()
    assert shown["format"] == "cii" and shown["number"] == "F-2026-0001"
    assert shown["lifecycle_code"] == 203 and shown["reasons"] == []
    assert (await _get(url, f"/invoices/{invoice_id}/document")).content == document

    events = await eventually(lambda: _two(ns, invoice_id))
    received, validated = events
    assert received.envelope.event_type == "InvoiceReceived"
    assert validated.envelope.event_type == "InvoiceValidated"
    assert validated.envelope.causation_id == received.envelope.event_id
    assert validated.envelope.correlation_id == invoice_id
    assert received.event.channel == "http" and received.event.source == "test-platform"
    assert validated.event.invoice.number == "F-2026-0001"
    assert str(validated.event.invoice.totals.payable) == shown_payable(document)

    again = await _post(url, document)
    assert again.status_code == 200 and again.json()["already_received"] is True
    assert again.json()["invoice_id"] == invoice_id
    await asyncio.sleep(1.0)
    assert len(await _events(ns, invoice_id)) == 2


def shown_payable(document: bytes) -> str:
    from services.invoices.formats import parse

    return str(parse(document).totals.payable)


async def _two(ns, invoice_id):
    events = await _events(ns, invoice_id)
    return events if len(events) >= 2 else None


async def test_refusals_name_the_rule_and_map_to_public_statuses(region, services):
    await services.start("invoices")
    url = services.url("invoices")

    wrong_buyer = (await _post(url, ubl(number="F-2026-0100", buyer_siret="73282932000074"))).json()
    assert wrong_buyer["status"] == "to_recycle" and wrong_buyer["chorus_status"] == "A_RECYCLER"
    detail = (await _get(url, wrong_buyer["status_url"])).json()
    assert any(r["term"] == "BT-47" or "buyer" in r["message"].lower() for r in detail["reasons"])

    garbage = (await _post(url, b"\x00\x01\x02 this is not an invoice")).json()
    assert garbage["status"] == "rejected" and garbage["chorus_status"] == "REJETEE"
    reasons = (await _get(url, garbage["status_url"])).json()["reasons"]
    assert reasons[0]["rule"].startswith("DOC-")
    assert (await _get(url, f"/invoices/{garbage['invoice_id']}/document")).content.startswith(b"\x00\x01")

    xxe = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
    refused = (await _post(url, xxe)).json()
    assert refused["status"] == "rejected"
    assert "root:" not in json.dumps((await _get(url, refused["status_url"])).json())

    too_big = await _post(url, b"<x>" + b" " * (50 * 1024 * 1024) + b"</x>")
    assert too_big.status_code == 413
    assert (await _get(url, "/readyz")).status_code == 200


async def test_a_number_already_used_by_the_supplier_is_a_duplicate_across_channels(region, services, tmp_path):
    ns = region
    await services.start("invoices")
    url = services.url("invoices")
    first = (await _post(url, cii(number="F-2026-0200"))).json()
    assert first["status"] == "validated"

    # Same supplier, same number, same year, other format, other channel.
    inbox = ns.inbox / "incoming"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "resend.xml").write_bytes(ubl(number="F-2026-0200"))
    rejected = ns.inbox / "rejected" / "resend.xml"
    await eventually(lambda: _exists(rejected), timeout=30)
    why = json.loads((ns.inbox / "rejected" / "resend.xml.reasons.json").read_text())
    assert why["status"] == "rejected"
    assert why["reasons"][0]["rule"] == "FR-DUPLICATE"
    assert first["invoice_id"] in why["reasons"][0]["message"]


async def _exists(path):
    return path.exists()


async def test_inbox_files_are_taken_once_and_settled_with_reasons(region, services):
    ns = region
    incoming = ns.inbox / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / "good.pdf").write_bytes(facturx_pdf(number="F-2026-0300"))
    (incoming / "bad.xml").write_bytes(b"<Invoice>truncated")
    (incoming / "half-written.xml.part").write_bytes(b"<not yet")
    await services.start("invoices")

    await eventually(lambda: _exists(ns.inbox / "rejected" / "bad.xml"), timeout=30)
    await eventually(lambda: _exists(ns.inbox / "processed" / "good.pdf"), timeout=30)
    assert (incoming / "half-written.xml.part").exists()
    assert not any((ns.inbox / "work").iterdir())
    reasons = json.loads((ns.inbox / "rejected" / "bad.xml.reasons.json").read_text())
    assert reasons["stored"] is True and reasons["reasons"][0]["rule"].startswith("DOC-")

    db = await admin_connection(ns)
    try:
        rows = await db.fetch("SELECT source, status, format FROM invoices.invoices ORDER BY source")
    finally:
        await db.close()
    assert [(r["source"], r["status"], r["format"]) for r in rows] == [
        ("bad.xml", "rejected", None), ("good.pdf", "validated", "facturx")]


async def test_kafka_inbound_documents_are_received_like_the_others(region, services):
    ns = region
    await services.start("invoices")
    await produce(ns, "invoices.inbound", [cii(number="F-2026-0400"), b"", ubl(number="F-2026-0401")],
                  key=b"gateway-1")
    db = await admin_connection(ns)
    try:
        rows = await eventually(lambda: _decided(db, 3))
    finally:
        await db.close()
    assert sorted((r["number"] or "", r["status"]) for r in rows) == [
        ("", "rejected"), ("F-2026-0400", "validated"), ("F-2026-0401", "validated")]
    assert all(r["channel"] == "kafka" for r in rows)


async def test_one_inbound_batch_sees_its_own_resends_and_duplicates(region, services):
    ns = region
    first, same_number = cii(number="F-2026-0410"), ubl(number="F-2026-0410")
    # Produced before the service starts: read back as one batch.
    await produce(ns, "invoices.inbound", [first, first, same_number, b"%PDF-1.4 garbage", cii(number="F-2026-0411")],
                  key=b"gateway-1")
    await services.start("invoices")
    db = await admin_connection(ns)
    try:
        rows = await eventually(lambda: _decided(db, 4))
        assert await db.fetchval("SELECT count(*) FROM invoices.invoices") == 4
        holder = await db.fetchval("SELECT invoice_id FROM invoices.invoices WHERE format = 'cii' "
                                   "AND number = 'F-2026-0410'")
        duplicate = await db.fetchrow("SELECT status, reasons FROM invoices.invoices WHERE format = 'ubl'")
    finally:
        await db.close()
    assert sorted((r["number"] or "", r["status"]) for r in rows) == [
        ("", "rejected"), ("F-2026-0410", "rejected"), ("F-2026-0410", "validated"), ("F-2026-0411", "validated")]
    reasons = json.loads(duplicate["reasons"])
    assert duplicate["status"] == "rejected" and reasons[0]["rule"] == "FR-DUPLICATE"
    assert str(holder) in reasons[0]["message"]
    events = [decode(r.value).envelope.event_type for r in await read_topic(ns, "invoices.events")]
    assert sorted(events) == ["InvoiceReceived"] * 4 + ["InvoiceRejected"] * 2 + ["InvoiceValidated"] * 2


async def _decided(db, count):
    rows = await db.fetch("SELECT number, status, channel FROM invoices.invoices WHERE status <> 'received'")
    return rows if len(rows) >= count else None


async def test_a_crash_between_receipt_and_decision_loses_nothing(region, services):
    ns = region
    invoices = await services.start("invoices", INVOICING_FAILPOINTS="intake.after_receipt")
    url = services.url("invoices")
    with pytest.raises(httpx.HTTPError):
        await _post(url, cii(number="F-2026-0500"))
    assert await asyncio.to_thread(invoices.exited, 30) == -signal.SIGKILL

    db = await admin_connection(ns)
    try:
        assert await db.fetchval("SELECT status FROM invoices.invoices") == "received"
        await services.start("invoices")
        status = await eventually(lambda: db.fetchval(
            "SELECT status FROM invoices.invoices WHERE status <> 'received'"))
        assert status == "validated"
        assert await db.fetchval("SELECT count(*) FROM invoices.invoices") == 1
    finally:
        await db.close()


async def test_a_validated_invoice_carries_its_legal_deadline(region, services):
    ns = region
    # 23:30 UTC on 1 March is 2 March in Paris: the receipt date of the French calendar counts.
    await services.start("invoices", INVOICING_CLOCK="fixed:2026-03-01T23:30:00+00:00")
    url = services.url("invoices")
    body = (await _post(url, cii(number="F-2026-0600"))).json()
    shown = (await _get(url, body["status_url"])).json()
    assert shown["deadline"] == {"buyer_type": "local_authority", "dgp_start": "2026-03-02",
                                 "legal_due": "2026-04-01", "ordonnateur_due": "2026-03-22",
                                 "target_due": "2026-03-17"}
    _, validated = await eventually(lambda: _two(ns, body["invoice_id"]))
    assert validated.event.deadline.legal_due.isoformat() == "2026-04-01"
    assert validated.event.deadline.target_due.isoformat() == "2026-03-17"
