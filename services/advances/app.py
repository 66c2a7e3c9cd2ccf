"""Wiring of the advances service."""

from __future__ import annotations

from pathlib import Path

from services.advances import api
from shared.service import ServiceRuntime

runtime = ServiceRuntime("advances", migrations=Path(__file__).parent / "migrations")
app = runtime.http_app(api.router, title="Advances service")
app.state.runtime = runtime
