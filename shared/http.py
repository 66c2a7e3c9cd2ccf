"""The operations endpoints every service serves on its own port: metrics and health."""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import registry

Check = Callable[[], Awaitable[None]]


def ops_router(checks: dict[str, Check]) -> APIRouter:
    """``/healthz``: the process answers. ``/readyz``: every check passes (each raises if not)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz")
    async def healthz() -> dict:
        return {"status": "alive"}

    @router.get("/readyz")
    async def readyz() -> Response:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; the body says which and why
                results[name] = f"failed: {exc}"
        ready = all(value == "ok" for value in results.values())
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    return router
