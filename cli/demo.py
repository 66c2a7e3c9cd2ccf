"""The demo workload: start everything, notify contracts through the advances API, watch them
reach the invoices service over Kafka, print a summary, stop what was started.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import asyncpg
import httpx
from stdnum import luhn

from deploy.local import services as local_services
from deploy.local import stack as local_stack
from shared.db import drop_database, ensure_database
from shared.dlq import read_dead_letters
from shared.money import to_cents
from shared.settings import Settings
from shared.topics import create_topics, delete_topics, read_all

KINDS = ("works", "supplies", "services")


def _siret(n: int) -> str:
    siren = f"{n:08d}"
    siren += luhn.calc_check_digit(siren)
    return siren + "0001" + luhn.calc_check_digit(siren + "0001")


def demo_contracts(count: int) -> list[dict]:
    contracts = []
    for i in range(1, count + 1):
        amount_ht = Decimal(40_000 + 37_500 * i)
        contracts.append({
            "contract_id": f"DEMO-{i:03d}",
            "supplier_siret": _siret(41_000_000 + i),
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
    await drop_database(settings)
    await delete_topics(settings)
    await ensure_database(settings)
    await create_topics(settings)


async def _scenario(settings: Settings, count: int) -> dict:
    url = f"http://{settings.http_host}:{settings.http_ports['advances']}"
    contracts = demo_contracts(count)
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        accepted = [(await client.post("/contracts", json=c, headers={"x-actor": "demo.procurement"})).status_code
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


def run_demo(settings: Settings, count: int, keep_running: bool) -> dict:
    before = local_stack.status(settings)
    stack_was_running = before["kafka"]["running"] and before["postgres"]["running"]
    t0 = time.monotonic()
    local_stack.up(settings)
    stack_seconds = time.monotonic() - t0
    asyncio.run(_reset_namespace(settings))
    started = [name for name, state in local_services.up(settings).items() if state.startswith("started")]
    try:
        summary = asyncio.run(_scenario(settings, count))
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
