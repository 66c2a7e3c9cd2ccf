"""Wiring of the invoices service."""

from __future__ import annotations

from pathlib import Path

from services.invoices.handlers import contracts_consumer
from shared.service import ServiceRuntime

runtime = ServiceRuntime("invoices", migrations=Path(__file__).parent / "migrations")
runtime.consume(contracts_consumer)
app = runtime.http_app(title="Invoices service")
app.state.runtime = runtime
