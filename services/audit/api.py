"""HTTP routes of the audit service, for the role ``auditor`` (thin: parse, query, shape)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.audit import checkpoints, export, history, verification
from services.audit.domain.period import period
from services.audit.domain.record import canonical_json
from shared.auth import User, require

router = APIRouter(prefix="/audit", tags=["audit"])
auditor = require("auditor")


def _period(start: date | None, end: date | None):
    try:
        return period(start, end)
    except ValueError as exc:
        raise HTTPException(422, detail=[{"type": "period", "loc": ["query", "to"], "msg": str(exc)}]) from None


def _json(data: dict) -> Response:
    # Payload numbers are exact decimals: written by value as JSON numbers, never through a float.
    return Response(canonical_json(data), media_type="application/json")


@router.get("/history")
async def get_history(
    request: Request,
    invoice: str | None = Query(None, description="an invoice id"),
    contract: str | None = Query(None, description="a contract id"),
    supplier: str | None = Query(None, description="a supplier's SIRET"),
    actor: str | None = Query(None, description="a user or service name"),
    _: User = Depends(auditor),
) -> Response:
    """The ordered timeline of events about one invoice, contract or supplier, or by one actor."""
    try:
        name, value = history.criterion(invoice=invoice, contract=contract, supplier=supplier, actor=actor)
    except history.HistoryQueryError as exc:
        raise HTTPException(422, detail=[{"type": "criterion", "loc": ["query"], "msg": str(exc)}]) from None
    async with request.app.state.runtime.pool.acquire() as conn:
        records, truncated = await history.find_history(conn, name, value)
    return _json({name: value, "events": [history.timeline_entry(r) for r in records], "truncated": truncated})


@router.get("/verify")
async def get_verify(
    request: Request,
    start: date | None = Query(None, alias="from", description="first day (Europe/Paris) of the records"),
    end: date | None = Query(None, alias="to", description="last day, included"),
    _: User = Depends(auditor),
) -> dict:
    """Recomputes the chains (of the records received in the period) and compares them with the
    checkpoints and Kafka. ``intact`` is the verdict; ``problems`` name each broken record."""
    lower, upper = _period(start, end)
    runtime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        return await verification.verify_log(conn, runtime.settings, lower, upper)


@router.get("/completeness")
async def get_completeness(request: Request, _: User = Depends(auditor)) -> dict:
    """Per audited partition: records, offsets never recorded (gaps), and how far behind."""
    runtime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        return await verification.completeness_report(conn, runtime.settings)


@router.get("/export")
async def get_export(
    request: Request,
    start: date = Query(..., alias="from", description="first day (Europe/Paris)"),
    end: date = Query(..., alias="to", description="last day, included"),
    format: Literal["csv", "jsonl"] = Query("jsonl"),
    _: User = Depends(auditor),
) -> StreamingResponse:
    """Every record received in the period, streamed (CSV or JSON lines) with its hash."""
    lower, upper = _period(start, end)
    pool = request.app.state.runtime.pool

    async def body():
        async with pool.acquire() as conn:
            async for chunk in export.stream(conn, lower, upper, format):
                yield chunk.encode()

    name = f"audit-{start.isoformat()}-{end.isoformat()}.{format}"
    return StreamingResponse(body(), media_type=export.MEDIA_TYPES[format],
                             headers={"content-disposition": f'attachment; filename="{name}"'})


@router.post("/checkpoints", status_code=201)
async def post_checkpoint(request: Request, _: User = Depends(auditor)) -> dict:
    """Publishes the chain heads now (to the checkpoint topic and file)."""
    runtime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        return await checkpoints.take_checkpoint(conn, runtime.settings, runtime.producer, runtime.clock)
