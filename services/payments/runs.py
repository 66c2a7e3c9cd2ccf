"""Payment runs: the payables due are ordered in one batch file for the deployment's channel
(the public accountant's « mandats », or SEPA credit transfers), in one transaction with their
``PaymentOrdered`` events. A run that crashes before its commit leaves nothing behind, and the
next run orders the same payables under the same batch id; after the commit, the payables are
ordered and no run takes them again. Files are written to the channel's drop folder only from
committed batches, so a crash between the two is caught up by the next dispatch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import asyncpg

from services.payments import metrics, store
from services.payments.formats import Debtor, OrderBatch, OrderLine, file_name, render
from services.payments.scheduling import Scheduling
from shared.clock import PARIS
from shared.db import lock_key
from shared.events.payments import PaymentOrdered
from shared.failpoints import failpoint
from shared.logging import get_logger

log = get_logger("payments.runs")
CHANNEL_CODES = {"accountant": "CPT", "sepa": "SEPA"}


@dataclass(frozen=True)
class RunResult:
    run_date: str
    batch_id: str | None
    orders: int
    total: Decimal
    urgent_only: bool
    payables: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"run_date": self.run_date, "batch_id": self.batch_id, "orders": self.orders,
                "total": str(self.total), "urgent_only": self.urgent_only, "payables": self.payables}


class PaymentRuns:
    def __init__(self, scheduling: Scheduling, pool) -> None:
        self.scheduling = scheduling
        self.settings = scheduling.settings
        self.clock = scheduling.clock
        self._pool = pool
        self._last_run = float("-inf")

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    async def run(self, *, triggered_by: str, urgent_only: bool = False, scheduled: bool = False) -> RunResult:
        """Orders every scheduled payable (only the urgent ones with ``urgent_only``).
        ``scheduled`` marks the day's regular run, held once per run day."""
        today = self.clock.today()
        channel = self.settings.payment_channel
        async with self.pool.acquire() as conn, conn.transaction():
            # One run at a time, whichever process or request starts it.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"payment-run:{self.settings.namespace}"))
            if scheduled and not await store.claim_run_day(conn, today, self.clock.now()):
                return RunResult(today.isoformat(), None, 0, Decimal("0"), urgent_only)
            rows = await store.to_order(conn, today, urgent_only=urgent_only)
            if not rows:
                return RunResult(today.isoformat(), None, 0, Decimal("0"), urgent_only)
            sequence = await store.next_sequence(conn, today, channel)
            batch_id = f"PR-{today:%Y%m%d}-{CHANNEL_CODES[channel]}-{sequence}"
            execution_date = self.scheduling.calendar.next_run_day(today)
            lines = tuple(
                OrderLine(order_id=f"{batch_id}-{n:05d}", payable_id=row["payable_id"], kind=row["kind"],
                          amount=row["amount"], payee_name=row["payee_name"] or row["supplier_siret"] or "Fournisseur",
                          payee_iban=row["payee_iban"], payee_bic=row["payee_bic"], payee_siret=row["supplier_siret"],
                          remittance=row["remittance"], invoice_id=row["invoice_id"], contract_id=row["contract_id"],
                          legal_due=row["legal_due"] or execution_date)
                for n, row in enumerate(rows, start=1))
            batch = OrderBatch(batch_id=batch_id, channel=channel, created_at=self.clock.now(),
                               execution_date=execution_date, debtor=self.debtor, lines=lines)
            content = render(batch)
            sha256 = hashlib.sha256(content).hexdigest()
            total = sum((line.amount for line in lines), Decimal("0"))
            await store.insert_batch(conn, batch_id=batch_id, run_date=today, channel=channel, sequence=sequence,
                                     created_at=batch.created_at, execution_date=execution_date,
                                     file_name=file_name(batch), content=content, sha256=sha256,
                                     order_count=len(lines), total=total, triggered_by=triggered_by)
            if scheduled:
                await conn.execute("UPDATE payment_runs SET batch_id = $2 WHERE run_date = $1", today, batch_id)
            # A run orders every payable at once: a few statements for the batch, not a few per order.
            attempts = await store.mark_all_ordered(conn, [row["payable_id"] for row in rows])
            await store.insert_orders(conn, [
                {"order_id": line.order_id, "payable_id": line.payable_id, "attempt": attempts[line.payable_id],
                 "batch_id": batch_id, "channel": channel, "amount": line.amount, "payee_iban": line.payee_iban,
                 "ordered_on": today} for line in lines])
            await self.scheduling.emit_all(conn, [(PaymentOrdered(
                payable_id=row["payable_id"], kind=row["kind"], invoice_id=row["invoice_id"],
                contract_id=row["contract_id"], order_id=line.order_id, attempt=attempts[row["payable_id"]],
                batch_id=batch_id, channel=channel, file_sha256=sha256, amount=line.amount, ordered_on=today,
                requested_execution_date=execution_date, legal_due=row["legal_due"], target_due=row["target_due"],
                accountant_due=self.scheduling.accountant_due(today), urgent=row["urgent"],
            ), _cause(row)) for row, line in zip(rows, lines)], actor=triggered_by)
            failpoint("payments.run.before_commit")
        for line in lines:
            metrics.payment_orders.labels(channel, line.kind).inc()
        log.info("payment run ordered a batch", batch_id=batch_id, orders=len(lines), total=str(total),
                 triggered_by=triggered_by, urgent_only=urgent_only)
        await self.dispatch()
        return RunResult(today.isoformat(), batch_id, len(lines), total, urgent_only,
                         [line.payable_id for line in lines])

    @property
    def debtor(self) -> Debtor:
        s = self.settings
        return Debtor(name=s.buyer_name, iban=s.buyer_iban, bic=s.buyer_bic, siret=s.buyer_siret)

    async def dispatch(self) -> list[Path]:
        """Writes the committed batches not yet delivered into the channel's drop folder (atomic
        rename, so the counterparty never reads half a file)."""
        folder = self.settings.payments_outgoing
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        async with self.pool.acquire() as conn:
            for batch in await store.undispatched_batches(conn):
                target = folder / batch["file_name"]
                partial = target.with_name(f".{target.name}.partial")
                partial.write_bytes(batch["content"])
                os.replace(partial, target)
                await store.mark_dispatched(conn, batch["batch_id"], self.clock.now())
                written.append(target)
        return written

    async def tick(self) -> RunResult | None:
        """The scheduler's step: the day's regular run once its time has come on a run day, and
        at any moment the urgent payables, which cannot wait for the next run."""
        every = self.settings.payment_run_every_seconds
        if every is not None:
            if time.monotonic() - self._last_run < every:
                return None
            self._last_run = time.monotonic()
            result = await self.run(triggered_by="payments.scheduler")
            return result if result.batch_id else None
        now = self.clock.now()
        today = self.clock.today()
        local_time = now.astimezone(PARIS).time()
        if self.scheduling.calendar.is_run_day(today) and local_time >= self.settings.payment_run_time:
            result = await self.run(triggered_by="payments.scheduler", scheduled=True)
            if result.batch_id:
                return result
        result = await self.run(triggered_by="payments.scheduler", urgent_only=True)
        return result if result.batch_id else None


def _cause(row: asyncpg.Record) -> dict:
    return json.loads(row["cause"])
