"""The demo workload: start everything, notify contracts through the advances API, watch them
reach the invoices service over Kafka, print a summary, stop what was started.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from decimal import Decimal

import asyncpg
import httpx

from deploy.local import services as local_services
from deploy.local import stack as local_stack
from deploy.simulators import suppliers
from deploy.simulators.suppliers import make_siret
from shared.auth import bearer_header
from shared.db import drop_database, ensure_database
from shared.dlq import read_dead_letters
from shared.money import to_cents
from shared.outbox import idempotent_producer
from shared.settings import Settings
from shared.topics import create_topics, delete_topics, read_all

KINDS = ("works", "supplies", "services")


def demo_contracts(count: int) -> list[dict]:
    contracts = []
    for i in range(1, count + 1):
        amount_ht = Decimal(40_000 + 37_500 * i)
        contracts.append({
            "contract_id": f"DEMO-{i:03d}",
            "supplier_siret": make_siret(41_000_000 + i),
            "supplier_name": f"Entreprise régionale {i}",
            "sme": i % 3 != 0,
            "contract_type": KINDS[i % 3],
            "amount_ht": str(amount_ht),
            "amount_ttc": str(to_cents(amount_ht * Decimal("1.2"))),
            "duration_months": 3 + (i * 5) % 30,
            "notified_on": "2026-01-05",
            "engagement_numbers": [f"EJ-2026-{i:04d}"],
        })
    return contracts


async def _reset_namespace(settings: Settings) -> None:
    shutil.rmtree(settings.inbox, ignore_errors=True)
    await drop_database(settings)
    await delete_topics(settings)
    await ensure_database(settings)
    await create_topics(settings)


async def _scenario(settings: Settings, count: int) -> dict:
    url = f"http://{settings.http_host}:{settings.http_ports['advances']}"
    contracts = demo_contracts(count)
    procurement = bearer_header(settings, "demo.procurement", ["admin"])
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=procurement) as client:
        accepted = [(await client.post("/contracts", json=c)).status_code
                    for c in contracts]
        resent = (await client.post("/contracts", json=contracts[0])).status_code
        broken = dict(contracts[1], contract_id="DEMO-BAD", supplier_siret="12345678901234", amount_ht=1.5)
        refusal = await client.post("/contracts", json=broken)

    db = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        t0 = time.monotonic()
        while await db.fetchval("SELECT count(*) FROM invoices.contract_refs") < count:
            if time.monotonic() - t0 > 60:
                raise RuntimeError("the invoices service did not receive every contract within 60 s")
            await asyncio.sleep(0.1)
        propagation = time.monotonic() - t0
        known = await db.fetchval("SELECT count(*) FROM invoices.contract_refs")
        processed = await db.fetchval("SELECT count(*) FROM invoices.processed_events")
        published = await db.fetchval("SELECT count(*) FROM advances.outbox WHERE published_at IS NOT NULL")
        total_ttc = await db.fetchval("SELECT sum(amount_ttc) FROM advances.contracts")
    finally:
        await db.close()
    on_topic = await read_all(settings, [settings.topic("advances.events")])
    return {
        "contracts_notified": accepted.count(201),
        "resent_acknowledged_without_new_event": resent == 200,
        "invalid_contract_refused": {"status": refusal.status_code,
                                     "fields": [e["loc"][-1] for e in refusal.json()["detail"]]},
        "contracts_total_ttc_eur": str(total_ttc),
        "events_published_by_advances": published,
        "events_on_kafka": len(on_topic),
        "contracts_known_to_invoices": known,
        "events_applied_by_invoices": processed,
        "seconds_until_all_applied": round(propagation, 2),
        "dead_letters": len(await read_dead_letters(settings)),
    }


async def _invoices(settings: Settings) -> dict:
    """Supplier invoices through the three channels, a few of them wrong on purpose."""
    url = f"http://{settings.http_host}:{settings.http_ports['invoices']}"
    by_http = [suppliers.cii(number=f"F-DEMO-{i:04d}", lines=20) for i in range(1, 13)]
    by_http.append(suppliers.ubl(number="F-DEMO-0001"))  # the same number again: a duplicate
    by_http.append(suppliers.cii(number="F-DEMO-0099", totals={"payable": "1.00"}))  # BR-CO-16
    portal = bearer_header(settings, "demo.supplier-portal", ["intake"])
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for document in by_http:
            await client.post("/invoices", content=document, headers={
                "x-source": "demo.supplier-portal", **portal})

    incoming = settings.inbox / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    for i in range(20, 26):
        (incoming / f"F-DEMO-{i:04d}.xml").write_bytes(suppliers.ubl(number=f"F-DEMO-{i:04d}"))
    (incoming / "misaddressed.xml").write_bytes(
        suppliers.ubl(number="F-DEMO-0030", buyer_siret=make_siret(73_282_932)))  # A_RECYCLER

    gateway = [suppliers.facturx_pdf(number=f"F-DEMO-{i:04d}") for i in range(40, 44)]
    gateway.append(b"%PDF-1.7 scanned paper invoice without any XML")
    producer = idempotent_producer(settings, "demo-gateway")
    await producer.start()
    try:
        for document in gateway:
            await producer.send_and_wait(settings.topic("invoices.inbound"), document, key=b"demo-gateway",
                                         headers=[("source", b"demo.edi-gateway")])
    finally:
        await producer.stop()

    expected = len(by_http) + 7 + len(gateway)
    db = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        t0 = time.monotonic()
        while await db.fetchval("SELECT count(*) FROM invoices.invoices WHERE status <> 'received'") < expected:
            if time.monotonic() - t0 > 60:
                raise RuntimeError("not every demo invoice was decided within 60 s")
            await asyncio.sleep(0.2)
        channels = await db.fetch("SELECT channel, format, status, count(*) AS n FROM invoices.invoices "
                                  "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
        rules = await db.fetch("SELECT r->>'rule' AS rule, count(*) AS n FROM invoices.invoices, "
                               "jsonb_array_elements(reasons) r GROUP BY 1 ORDER BY 1")
        next_due = await db.fetchval("SELECT min(legal_due) FROM invoices.invoices WHERE status = 'validated'")
    finally:
        await db.close()
    return {
        "received": expected,
        "by_channel_format_status": [f"{r['channel']}/{r['format'] or '?'}/{r['status']}: {r['n']}" for r in channels],
        "refusal_rules": {r["rule"]: r["n"] for r in rules},
        "earliest_legal_due_date": next_due.isoformat() if next_due else None,
    }


def run_demo(settings: Settings, count: int, keep_running: bool) -> dict:
    before = local_stack.status(settings)
    stack_was_running = before["kafka"]["running"] and before["postgres"]["running"]
    t0 = time.monotonic()
    local_stack.up(settings)
    stack_seconds = time.monotonic() - t0
    asyncio.run(_reset_namespace(settings))
    started = [name for name, state in local_services.up(settings).items() if state.startswith("started")]
    try:
        summary = {"contracts": asyncio.run(_scenario(settings, count)),
                   "invoices": asyncio.run(_invoices(settings))}
    finally:
        if not keep_running:
            local_services.down(settings, started)
            if not stack_was_running:
                local_stack.down(settings)
    summary["kafka_version"] = local_stack.kafka_version()
    summary["stack_start_seconds"] = round(stack_seconds, 1)
    summary["namespace"] = settings.namespace
    if keep_running:
        summary["explore"] = {
            name: {"api": f"http://{settings.http_host}:{port}/docs",
                   "metrics": f"http://{settings.http_host}:{port}/metrics"}
            for name, port in settings.http_ports.items()
        }
    return summary
