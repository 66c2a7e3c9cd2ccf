"""Wiring of the audit service."""

from __future__ import annotations

from pathlib import Path

from services.audit import api
from services.audit.checkpoints import checkpoint_loop
from services.audit.recorder import AuditRecorder
from shared.service import ServiceRuntime

runtime = ServiceRuntime("audit", migrations=Path(__file__).parent / "migrations")
runtime.consume(AuditRecorder(runtime.settings.audit_topics))


async def publish_checkpoints() -> None:
    await checkpoint_loop(runtime.settings, runtime.clock, lambda: runtime.pool, lambda: runtime.producer)


runtime.background(publish_checkpoints)
app = runtime.http_app(api.router, title="Audit service")
app.state.runtime = runtime
