"""Wiring of the invoices service."""

from __future__ import annotations

from pathlib import Path

from services.invoices import api
from services.invoices import reference_api
from services.invoices.handlers import consumers
from services.invoices.inbox import InboxWatcher
from services.invoices.intake import Intake
from services.invoices.metrics import OpenInvoices
from services.invoices.workflow import Workflow
from shared.service import ServiceRuntime

runtime = ServiceRuntime("invoices", migrations=Path(__file__).parent / "migrations")
intake = Intake(lambda: runtime.pool, runtime.settings, runtime.clock)
workflow = Workflow(lambda: runtime.pool, runtime.settings, runtime.clock)
for consumer in consumers(intake, workflow):
    runtime.consume(consumer)
inbox = InboxWatcher(runtime.settings.inbox, intake, runtime.settings.inbox_poll_seconds)


async def watch_inbox() -> None:
    await inbox.run()


runtime.background(watch_inbox)
open_invoices = OpenInvoices(lambda: runtime.pool, runtime.clock)
runtime.background(open_invoices.run)
app = runtime.http_app(api.router, reference_api.router, title="Invoices service")
app.state.runtime = runtime
app.state.intake = intake
app.state.workflow = workflow
