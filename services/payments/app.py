"""Wiring of the payments service."""

from __future__ import annotations

from pathlib import Path

from shared.service import ServiceRuntime

runtime = ServiceRuntime("payments", migrations=Path(__file__).parent / "migrations")
app = runtime.http_app(title="Payments service")
app.state.runtime = runtime
