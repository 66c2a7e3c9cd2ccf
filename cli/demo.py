"""The demo: start everything, then play a planned workload (`deploy/simulators/workload.py`)
through the real entrypoints while one clock, shared by every service through a file, moves
day by day over about two months:

- the procurement side registers suppliers and budget commitments and notifies ~50 contracts
  (advances granted and paid, one refused, one above 30 % with its guarantee);
- suppliers send ~2,000 invoices by HTTP, the inbox folder and the Kafka inbound topic, in CII,
  UBL and Factur-X PDF, about 5 % of them wrong (rejected or sent back with reasons);
- approvers certify the service and approve the invoices no engagement certifies, some late,
  some after an interruption; someone tries to change a supplier's IBAN alone (four eyes);
- the simulated public accountant pays the payment orders after a few days, some late (interest
  and the 40 EUR indemnity follow), and returns a few for a closed account (corrected by two
  people, then ordered again).

It ends with a summary, `demo-report.json` and `demo-report.html`, and stops what it started.
The harness reads the namespace's database to match its plan with what the services did (which
invoice id a planned document got, which order pays it); it changes data only through the APIs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from cli.demo_report import invariants, open_by_days_left, summarize, verify_audit, write_html
from deploy.local import services as local_services
from deploy.local import stack as local_stack
from deploy.simulators.counterparty import settle
from deploy.simulators.workload import PlannedInvoice, Workload, french_iban, plan
from shared.auth import bearer_header
from shared.clock import FileClock
from shared.db import drop_database, ensure_database
from shared.dlq import read_dead_letters
from shared.outbox import idempotent_producer
from shared.settings import Settings
from shared.topics import create_topics, delete_topics

# Each simulated day starts at 08:30 in Paris, after the day's payment run time (06:00).
MORNING = clock_time(7, 30)
SERVICE_ENV = {"INVOICING_PAYMENT_POLL_SECONDS": "0.2", "INVOICING_INBOX_POLL_SECONDS": "0.2"}


@dataclass
class Tracked:
    plan: PlannedInvoice
    invoice_id: str
    received_on: date
    actions: list[tuple[int, str]] = field(default_factory=list)  # (day, action)


class Demo:
    def __init__(self, settings: Settings, workload: Workload, clock_file: Path) -> None:
        self.settings = settings
        self.workload = workload
        self.clock_file = clock_file
        self.tracked: dict[tuple[str, str], Tracked] = {}
        self.by_invoice_id: dict[str, Tracked] = {}
        self.answered_orders: set[str] = set()
        self.iban: dict[str, str] = {s.siret: s.iban for s in workload.suppliers}
        self.corrections: dict[str, int] = {}  # siret -> day the correction is made
        self.series: list[tuple[str, dict[str, int]]] = []
        self.story: dict = {"manual_approvals": 0, "automatic_fallbacks": 0, "interruptions": 0}

    # -- plumbing ------------------------------------------------------------------------------

    def url(self, service: str) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_ports[service]}"

    async def call(self, service: str, method: str, path: str, user: str, roles: list[str], **kwargs):
        headers = {**bearer_header(self.settings, user, roles), **kwargs.pop("headers", {})}
        answer = await self.http.request(method, f"{self.url(service)}{path}", headers=headers, **kwargs)
        return answer

    def day_of(self, day: int) -> date:
        return self.workload.start + timedelta(days=day)

    async def quiet(self, timeout: float = 120.0) -> None:
        """Waits until every event was published and consumed and every document decided."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the services did not settle within the demo's patience")
            busy = await self.db.fetchval(
                """SELECT (SELECT count(*) FROM invoices.outbox WHERE published_at IS NULL)
                        + (SELECT count(*) FROM advances.outbox WHERE published_at IS NULL)
                        + (SELECT count(*) FROM payments.outbox WHERE published_at IS NULL)
                        + (SELECT count(*) FROM invoices.invoices WHERE status = 'received')""")
            busy += await self.lag()
            busy += sum(1 for _ in (self.settings.inbox / "incoming").glob("*"))
            calm = calm + 1 if busy == 0 else 0
            await asyncio.sleep(0.15)

    async def lag(self) -> int:
        prefix = f"{self.settings.namespace}."
        groups = [g[0] for g in await self.admin.list_consumer_groups() if g[0].startswith(prefix)]
        total = 0
        for group in groups:
            committed = await self.admin.list_consumer_group_offsets(group)
            if not committed:
                continue
            ends = await self.offsets.end_offsets(list(committed))
            total += sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
        return total

    # -- the scenario ----------------------------------------------------------------------------

    async def play(self) -> dict:
        self.http = httpx.AsyncClient(timeout=60)
        self.db = await asyncpg.connect(self.settings.admin_dsn(self.settings.database))
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap)
        await self.admin.start()
        self.offsets = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap)
        await self.offsets.start()
        self.gateway = idempotent_producer(self.settings, "demo-edi-gateway")
        await self.gateway.start()
        try:
            await self.reference_data()
            for day in range(self.workload.days):
                await self.new_day(day)
                await self.send(day)
                await self.quiet()
                await self.learn(day)
                await self.people(day)
                await self.accountant(day)
                await self.correct_ibans(day)
                await self.quiet()
                self.series.append((self.day_of(day).isoformat(), await open_by_days_left(self.db, self.day_of(day))))
        finally:
            await self.gateway.stop()
            await self.offsets.stop()
            await self.admin.close()
            await self.db.close()
            await self.http.aclose()
        return self.story

    async def new_day(self, day: int) -> None:
        FileClock.set(self.clock_file, datetime.combine(self.day_of(day), MORNING, UTC))
        await asyncio.sleep(0.5)  # every service reads the new date, the payment run of the day starts

    async def reference_data(self) -> None:
        await self.new_day(0)
        admin = ("demo.referent.alice", ["admin"])
        for supplier in self.workload.suppliers:
            answer = await self.call("invoices", "POST", "/suppliers", *admin, json={
                "siret": supplier.siret, "name": supplier.name, "sme": supplier.sme, "iban": supplier.iban})
            answer.raise_for_status()
        for contract in self.workload.contracts:
            answer = await self.call("invoices", "POST", "/engagements", *admin, json={
                "number": contract.engagement, "supplier_siret": contract.supplier.siret,
                "amount": str(contract.amount_ttc), "service_done_automatic": contract.service_done_automatic})
            answer.raise_for_status()
        notified = []
        for contract in self.workload.contracts:
            answer = await self.call("advances", "POST", "/contracts", "demo.procurement", ["admin"],
                                     json=contract.notification(self.workload.start - timedelta(days=3)))
            notified.append(answer.status_code)
        self.story["contracts_notified"] = notified.count(201)
        # Someone tries to have a supplier paid on another account alone: the four-eyes rule stops it.
        target = self.workload.fraud_attempt_supplier
        request = await self.call("invoices", "POST", f"/suppliers/{target.siret}/iban-changes", "mallory",
                                  ["approver"], json={"new_iban": french_iban(16958, 1, 66_666_666),
                                                      "justification": "new bank details received by e-mail"})
        change_id = request.json()["change_id"]
        alone = await self.call("invoices", "POST", f"/suppliers/{target.siret}/iban-changes/{change_id}/confirm",
                                "mallory", ["approver"])
        refused = await self.call("invoices", "POST", f"/suppliers/{target.siret}/iban-changes/{change_id}/reject",
                                  "demo.referent.eve", ["approver"],
                                  json={"reason": "the supplier's known contact denies any change"})
        self.story["iban_change_attempt"] = {
            "requested_by": "mallory", "self_confirmation_status": alone.status_code,
            "self_confirmation_answer": alone.json().get("detail"), "then": refused.json().get("status")}
        await self.quiet()

    async def send(self, day: int) -> None:
        today = self.day_of(day)
        documents = [(planned, planned.document(today, iban=self.iban[planned.contract.supplier.siret]))
                     for planned in self.workload.by_day.get(day, [])]
        incoming = self.settings.inbox / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        posts = []
        for planned, document in documents:
            if planned.channel == "inbox":
                suffix = "pdf" if document.startswith(b"%PDF") else "xml"
                partial = incoming.parent / f".{planned.number}-{planned.contract.supplier.siret}.{suffix}"
                partial.write_bytes(document)
                partial.rename(incoming / partial.name.lstrip("."))
            elif planned.channel == "kafka":
                await self.gateway.send_and_wait(self.settings.topic("invoices.inbound"), document,
                                                 key=planned.contract.supplier.siret.encode(),
                                                 headers=[("source", b"demo.edi-gateway")])
            else:
                posts.append(self.call("invoices", "POST", "/invoices", "demo.supplier-portal", ["intake"],
                                       content=document, headers={"x-source": "demo.supplier-portal"}))
        for chunk in range(0, len(posts), 8):
            for answer in await asyncio.gather(*posts[chunk:chunk + 8]):
                if answer.status_code not in (200, 202):
                    raise RuntimeError(f"the invoices service refused a document: {answer.status_code} {answer.text}")

    async def learn(self, day: int) -> None:
        """Finds the invoice id of each planned document decided today and plans what people do."""
        plans = {(p.contract.supplier.siret, p.number): p for p in self.workload.by_day.get(day, []) if p.defect is None}
        rows = await self.db.fetch(
            "SELECT invoice_id::text, seller_siret, number, status FROM invoices.invoices "
            "WHERE status NOT IN ('rejected', 'to_recycle') AND (received_at AT TIME ZONE 'Europe/Paris')::date = $1",
            self.day_of(day))
        for row in rows:
            planned = plans.get((row["seller_siret"], row["number"]))
            if planned is None or (row["seller_siret"], row["number"]) in self.tracked:
                continue
            tracked = Tracked(planned, row["invoice_id"], self.day_of(day))
            if row["status"] == "validated":
                approve_on = day + (planned.approval_after or 2)
                if planned.approval_after is None:
                    self.story["automatic_fallbacks"] += 1
                if planned.interrupted:
                    tracked.actions += [(day + 1, "interrupt"), (day + 4, "complete")]
                    approve_on = max(approve_on, day + 4 + (planned.approval_after or 2))
                tracked.actions.append((approve_on, "approve"))
            self.tracked[(row["seller_siret"], row["number"])] = tracked
            self.by_invoice_id[row["invoice_id"]] = tracked

    async def people(self, day: int) -> None:
        bob, carol, clerk = ("demo.approver.bob", ["approver"]), ("demo.approver.carol", ["approver"]), \
            ("demo.clerk.dave", ["approver"])
        for tracked in self.by_invoice_id.values():
            for when, action in tracked.actions:
                if when != day:
                    continue
                path = f"/invoices/{tracked.invoice_id}"
                if action == "interrupt":
                    answer = await self.call("invoices", "POST", f"{path}/interrupt", *clerk, json={
                        "reason": "the acceptance report (procès-verbal de réception) is missing",
                        "missing_items": ["procès-verbal de réception signé"]})
                    self.story["interruptions"] += answer.status_code == 200
                elif action == "complete":
                    await self.call("invoices", "POST", f"{path}/complete", *clerk)
                else:
                    # The approver certifies the date the work was done (the delivery date), which
                    # is before the receipt: the legal delay runs from the receipt (R2192-12/13).
                    await self.call("invoices", "POST", f"{path}/service-done", *bob,
                                    json={"on": (tracked.received_on - timedelta(days=2)).isoformat()})
                    answer = await self.call("invoices", "POST", f"{path}/approve", *carol)
                    self.story["manual_approvals"] += answer.status_code == 200

    async def accountant(self, day: int) -> None:
        """The public accountant (or the bank) pays each order after the days the plan gives it,
        and returns the transfers the plan says go to a closed account."""
        today = self.day_of(day)
        orders = await self.db.fetch(
            """SELECT order_id, payable_id, attempt, ordered_on, batch_id FROM payments.payment_orders
               WHERE status = 'ordered' ORDER BY batch_id, order_id""")
        due: dict[str, dict[str, str | None]] = {}
        for order in orders:
            if order["order_id"] in self.answered_orders:
                continue
            tracked = self.by_invoice_id.get(order["payable_id"].removeprefix("invoice:"))
            days = tracked.plan.payment_days if tracked else 2
            if order["ordered_on"] + timedelta(days=days) > today:
                continue
            returned = tracked is not None and tracked.plan.payment_returned and order["attempt"] == 1
            code = ("AC04" if self.settings.payment_channel == "sepa" else "RIB") if returned else None
            due.setdefault(order["batch_id"], {})[order["order_id"]] = code
        for batch_id, answers in due.items():
            content = await self.db.fetchval("SELECT content FROM payments.payment_batches WHERE batch_id = $1",
                                             batch_id)
            answer_file = settle(content, executed_on=today, include=answers.__contains__,
                                 fail=answers.get, reference_prefix=f"CPT{today:%Y%m%d}")
            reply = await self.call("payments", "POST", "/confirmations", "demo.comptable", ["accountant"],
                                    content=answer_file, headers={"x-file-name": f"{batch_id}-{today}.xml"})
            reply.raise_for_status()
            self.answered_orders.update(answers)
            for order_id, code in answers.items():
                if code:
                    siret = await self.db.fetchval(
                        "SELECT p.supplier_siret FROM payments.payment_orders o JOIN payments.payables p "
                        "USING (payable_id) WHERE o.order_id = $1", order_id)
                    self.corrections.setdefault(siret, day + 2)

    async def correct_ibans(self, day: int) -> None:
        """A returned transfer: the supplier sends its new bank details, one person enters them and
        another confirms (four eyes); the held payments are then ordered again."""
        for siret, when in list(self.corrections.items()):
            if when != day:
                continue
            supplier = next(s for s in self.workload.suppliers if s.siret == siret)
            request = await self.call("invoices", "POST", f"/suppliers/{siret}/iban-changes", "demo.referent.dan",
                                      ["approver"], json={"new_iban": supplier.corrected_iban,
                                                          "justification": "RIB certified by the bank, checked by phone"})
            if request.status_code == 201:
                await self.call("invoices", "POST", f"/suppliers/{siret}/iban-changes/{request.json()['change_id']}/confirm",
                                "demo.referent.eve", ["approver"])
                self.iban[siret] = supplier.corrected_iban
            self.story.setdefault("iban_corrections", 0)
            self.story["iban_corrections"] += request.status_code == 201


async def _reset_namespace(settings: Settings) -> None:
    shutil.rmtree(settings.inbox, ignore_errors=True)
    shutil.rmtree(settings.payments_outgoing, ignore_errors=True)
    # The audit checkpoints witness the log from outside the database: a new log starts anew.
    shutil.rmtree(settings.state_dir / "audit" / (settings.namespace or "default"), ignore_errors=True)
    await drop_database(settings)
    await delete_topics(settings)
    await ensure_database(settings)
    await create_topics(settings)


async def _report(settings: Settings, demo: Demo, story: dict, seconds: float, output: Path) -> dict:
    summary = await summarize(settings)
    summary["scenario"] = {**story, "simulated_days": demo.workload.days,
                           "from": demo.workload.start.isoformat(),
                           "to": demo.day_of(demo.workload.days - 1).isoformat(),
                           "planned_invoices": len(demo.workload.invoices),
                           "planned_defective": sum(1 for p in demo.workload.invoices if p.defect)}
    summary["invariants"] = await invariants(settings)
    summary["dead_letters"] = len(await read_dead_letters(settings))
    summary["audit"] = verify_audit(settings)
    summary["wall_clock_seconds"] = round(seconds, 1)
    output.mkdir(parents=True, exist_ok=True)
    (output / "demo-report.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    write_html(output / "demo-report.html", summary, demo.series)
    summary["reports"] = [str(output / "demo-report.json"), str(output / "demo-report.html")]
    return summary


def run_demo(settings: Settings, *, contracts: int = 50, invoices: int = 2000, days: int = 60,
             keep_running: bool = False, output: Path = Path(".")) -> dict:
    workload = plan(contracts=contracts, invoices=invoices, days=days,
                    sending_days=max(1, days * 2 // 3))
    clock_file = settings.state_dir / "demo" / (settings.namespace or "default") / "clock"
    FileClock.set(clock_file, datetime.combine(workload.start, MORNING, UTC))
    settings = settings.model_copy(update={"clock": f"file:{clock_file}"})
    before = local_stack.status(settings)
    stack_was_running = before["kafka"]["running"] and before["postgres"]["running"]
    t0 = time.monotonic()
    local_stack.up(settings)
    asyncio.run(_reset_namespace(settings))
    started = [name for name, state in local_services.up(settings, env=SERVICE_ENV).items()
               if state.startswith("started")]
    try:
        demo = Demo(settings, workload, clock_file)
        story = asyncio.run(demo.play())
        summary = asyncio.run(_report(settings, demo, story, time.monotonic() - t0, output))
    finally:
        if not keep_running:
            local_services.down(settings, started)
            if not stack_was_running:
                local_stack.down(settings)
    summary["kafka_version"] = local_stack.kafka_version()
    summary["namespace"] = settings.namespace
    if keep_running:
        summary["explore"] = {
            name: {"api": f"http://{settings.http_host}:{port}/docs",
                   "metrics": f"http://{settings.http_host}:{port}/metrics"}
            for name, port in settings.http_ports.items()
        }
    return summary
