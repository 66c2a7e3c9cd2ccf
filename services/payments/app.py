"""Wiring of the payments service."""

from __future__ import annotations

from pathlib import Path

from services.payments import api, handlers, metrics
from services.payments.confirmations import Confirmations
from services.payments.runs import PaymentRuns
from services.payments.scheduling import Scheduling, log as scheduling_log
from shared.periodic import every
from shared.service import ServiceRuntime


class Payments:
    """The service's parts, shared by its subscribers, its scheduler and its HTTP routes."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.clock = runtime.clock
        self.settings = runtime.settings
        self.pool = lambda: runtime.pool
        self.scheduling = Scheduling(runtime.settings, runtime.clock)
        self.scheduling_log = scheduling_log
        self.runs = PaymentRuns(self.scheduling, lambda: runtime.pool)
        self.confirmations = Confirmations(self.scheduling, lambda: runtime.pool)

    async def schedule(self) -> None:
        """The scheduler: payment runs when due, files delivered, interest waiting for its rate
        assessed, gauges refreshed from the database."""
        await self.runs.dispatch()
        await every(min(self.settings.payment_poll_seconds, self.settings.payment_run_every_seconds or float("inf")),
                    self.step, what="payment scheduler step")

    async def step(self) -> None:
        await self.confirmations.assess_pending()
        await self.runs.tick()
        await self.refresh_gauges()

    async def refresh_gauges(self) -> None:
        async with self.pool().acquire() as conn:
            pending = dict(await conn.fetch(
                "SELECT kind, count(*) FROM payables WHERE status <> 'paid' GROUP BY kind"))
        for kind in ("invoice", "advance", "interest"):
            metrics.payables_pending.labels(kind).set(pending.get(kind, 0))
        await self.confirmations.refresh_unmatched()


runtime = ServiceRuntime("payments", migrations=Path(__file__).parent / "migrations")
payments = Payments(runtime)
for consumer in handlers.consumers(payments.scheduling):
    runtime.consume(consumer)
runtime.background(payments.schedule)
app = runtime.http_app(api.router, title="Payments service")
app.state.runtime = runtime
app.state.payments = payments
