"""Wiring of the advances service."""

from __future__ import annotations

from pathlib import Path

from services.advances import api
from services.advances.handlers import payments_consumer
from services.advances.metrics import Outstanding
from services.advances.recovery import recovery_consumer
from shared.service import ServiceRuntime

runtime = ServiceRuntime("advances", migrations=Path(__file__).parent / "migrations")
runtime.consume(recovery_consumer(runtime.settings, runtime.clock))
runtime.consume(payments_consumer())
outstanding = Outstanding(lambda: runtime.pool)
runtime.background(outstanding.run)
app = runtime.http_app(api.router, title="Advances service")
app.state.runtime = runtime
