"""HTTP routes of the payments service (thin: check the role, call the service, shape the answer)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

from services.payments import store
from services.payments.confirmations import UnreadableConfirmations
from services.payments.domain.payables import place
from shared.auth import User, require

router = APIRouter(tags=["payments"])
READERS = ("accountant", "auditor")


class RunRequest(BaseModel):
    urgent_only: bool = False


@router.post("/payment-runs")
async def run_payments(request: Request, body: RunRequest | None = None,
                       user: User = Depends(require("accountant"))) -> dict:
    """Orders now every scheduled payable, in one batch file (an extra run)."""
    runs = request.app.state.payments.runs
    result = await runs.run(triggered_by=user.name, urgent_only=bool(body and body.urgent_only))
    return result.as_dict()


@router.get("/payables")
async def list_payables(request: Request, status: str | None = None, kind: str | None = None,
                        limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                        _: User = Depends(require(*READERS))) -> list[dict]:
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_payables(conn, status=status, kind=kind, limit=limit, offset=offset)
    return [_plain(row) for row in rows]


@router.get("/payables/{payable_id}")
async def get_payable(payable_id: str, request: Request, _: User = Depends(require(*READERS))) -> dict:
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_payable(conn, payable_id)
        if row is None:
            raise HTTPException(404, f"no payable {payable_id}")
        orders = await store.orders_of(conn, payable_id)
    view = _plain(row, drop=("cause",))
    view["orders"] = [_plain(order) for order in orders]
    return view


@router.post("/payables/{payable_id}/release")
async def release_payable(payable_id: str, request: Request, user: User = Depends(require("accountant"))) -> dict:
    """Lifts a hold an operator has cleared (a guarantee received, a payee confirmed): the payable
    is scheduled on the earliest run that meets its target."""
    payments = request.app.state.payments
    async with request.app.state.runtime.pool.acquire() as conn, conn.transaction():
        row = await store.lock_payable(conn, payable_id)
        if row is None:
            raise HTTPException(404, f"no payable {payable_id}")
        if row["status"] != "on_hold":
            raise HTTPException(409, f"payable {payable_id} is {row['status']}, not on hold")
        payable = store.payable_of(row)
        placement = place(replace(payable, hold_reason=None), payments.clock.today(), payments.scheduling.calendar)
        if placement.status != "scheduled":
            raise HTTPException(409, placement.hold_reason)
        await store.place_payable(conn, payable_id, placement)
    payments.scheduling_log.info("hold released", payable_id=payable_id, actor=user.name,
                                 previous_reason=row["hold_reason"])
    return {"payable_id": payable_id, "status": placement.status, "order_on": placement.order_on.isoformat(),
            "urgent": placement.urgent}


@router.get("/batches")
async def list_batches(request: Request, since: date | None = None, limit: int = Query(100, ge=1, le=1000),
                       _: User = Depends(require(*READERS))) -> list[dict]:
    async with request.app.state.runtime.pool.acquire() as conn:
        return [_plain(row) for row in await store.list_batches(conn, since=since, limit=limit)]


@router.get("/batches/{batch_id}/file")
async def batch_file(batch_id: str, request: Request, _: User = Depends(require(*READERS))) -> Response:
    """The batch file exactly as it left (its SHA-256 is in ``PaymentOrdered``)."""
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_batch(conn, batch_id)
    if row is None:
        raise HTTPException(404, f"no batch {batch_id}")
    return Response(row["content"], media_type="application/xml",
                    headers={"content-disposition": f'attachment; filename="{row["file_name"]}"',
                             "x-sha256": row["sha256"]})


@router.post("/confirmations")
async def receive_confirmations(request: Request, user: User = Depends(require("accountant"))) -> dict:
    """A confirmation file (the accountant's « mises en paiement », or a bank camt.054), raw in
    the body. An unreadable file is kept and answered 422 with the reason."""
    content = await request.body()
    if not content:
        raise HTTPException(422, "the body is empty: send the confirmation file's bytes")
    source = request.headers.get("x-file-name") or f"http:{request.client.host if request.client else 'unknown'}"
    try:
        report = await request.app.state.payments.confirmations.ingest(content, source=source, actor=user.name)
    except UnreadableConfirmations as exc:
        raise HTTPException(422, f"confirmation file not applied (kept for inspection): {exc}") from None
    return report.as_dict()


@router.get("/confirmations/open")
async def open_confirmations(request: Request, _: User = Depends(require(*READERS))) -> list[dict]:
    """Entries that matched no order or contradicted one: an operator must look at each."""
    async with request.app.state.runtime.pool.acquire() as conn:
        return [_plain(row) for row in await store.open_confirmations(conn)]


def _plain(row, drop: tuple[str, ...] = ()) -> dict:
    view = {}
    for key, value in dict(row).items():
        if key in drop or key == "content":
            continue
        if isinstance(value, str) and key in ("cause", "report"):
            value = json.loads(value)
        elif value is not None and not isinstance(value, (str, int, bool, list, dict)):
            value = value.isoformat() if hasattr(value, "isoformat") else str(value)
        view[key] = value
    return view
