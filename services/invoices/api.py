"""HTTP routes of the invoices service (thin: read the request, call intake or the store)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.invoices import store
from services.invoices.domain.deadline import DeadlineError
from services.invoices.domain.lifecycle import PUBLIC_STATUS, IllegalTransition, State
from services.invoices.workflow import DutiesNotSeparated, InvalidDate, NotFound
from shared.auth import User, current_user, require
from services.invoices.formats import MAX_DOCUMENT_BYTES

router = APIRouter(tags=["invoices"])


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise HTTPException(413, f"documents above {MAX_DOCUMENT_BYTES} bytes are refused")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise HTTPException(413, f"documents above {MAX_DOCUMENT_BYTES} bytes are refused")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/invoices", status_code=202,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/xml": {"schema": {"type": "string", "format": "binary"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def submit_invoice(
    request: Request,
    x_source: str = Header(default="http", description="who sends the document (supplier platform, portal…)"),
    user: User = Depends(require("intake")),
) -> JSONResponse:
    """Receives one document (UBL, CII or Factur-X PDF, detected from its bytes)."""
    content = await _read_body(request)
    receipt = await request.app.state.intake.receive(content, "http", x_source, actor=user.name)
    public = PUBLIC_STATUS[receipt.status]
    return JSONResponse(
        status_code=200 if receipt.already_received else 202,
        content={"invoice_id": str(receipt.invoice_id), "status": receipt.status,
                 "chorus_status": public.chorus, "already_received": receipt.already_received,
                 "status_url": f"/invoices/{receipt.invoice_id}"},
    )


@router.get("/invoices")
async def list_invoices(
    request: Request,
    status: State | None = Query(None, description="lifecycle state"),
    supplier: str | None = Query(None, description="seller SIRET", pattern=r"^\d{14}$"),
    days_left_max: int | None = Query(None, description="legal due date at most this many days from today"),
    overdue: bool = Query(False, description="only invoices past their legal due date"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    _: User = Depends(require("approver", "auditor", "accountant")),
) -> dict:
    """Invoices by state, supplier and days left before the legal due date, soonest due first."""
    today = request.app.state.runtime.clock.today()
    due_before = today - timedelta(days=1) if overdue else (
        today + timedelta(days=days_left_max) if days_left_max is not None else None)
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.list_invoices(conn, status=status, seller_siret=supplier, due_before=due_before,
                                         limit=limit, offset=offset)
    return {"today": today.isoformat(), "invoices": [{
        "invoice_id": str(r["invoice_id"]), "status": r["status"], "channel": r["channel"], "number": r["number"],
        "seller_siret": r["seller_siret"], "payable": r["payable"], "received_at": r["received_at"].isoformat(),
        "legal_due": _iso(r["legal_due"]), "target_due": _iso(r["target_due"]),
        "days_left": (r["legal_due"] - today).days if r["legal_due"] else None} for r in rows]}


@router.get("/invoices/{invoice_id}/timeline")
async def get_timeline(invoice_id: UUID, request: Request, _: User = Depends(current_user)) -> dict:
    """Every step of the invoice: what happened, when, who did it, and what it caused."""
    async with request.app.state.runtime.pool.acquire() as conn:
        rows = await store.timeline(conn, invoice_id)
    if not rows:
        raise HTTPException(404, f"no invoice {invoice_id}")
    steps = []
    for row in rows:
        envelope = json.loads(row["body"])
        payload = {k: v for k, v in envelope["payload"].items() if k not in ("invoice", "invoice_id")}
        steps.append({"event_type": envelope["event_type"], "occurred_at": envelope["occurred_at"],
                      "actor": envelope["actor"], "event_id": envelope["event_id"],
                      "causation_id": envelope["causation_id"], "details": payload})
    return {"invoice_id": str(invoice_id), "steps": steps}


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: UUID, request: Request, _: User = Depends(current_user)) -> dict:
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_invoice(conn, invoice_id)
    if row is None:
        raise HTTPException(404, f"no invoice {invoice_id}")
    public = PUBLIC_STATUS[row["status"]]
    return {
        "invoice_id": str(row["invoice_id"]), "status": row["status"], "chorus_status": public.chorus,
        "lifecycle_code": public.lifecycle_code, "lifecycle_label": public.label,
        "channel": row["channel"], "source": row["source"], "received_at": row["received_at"].isoformat(),
        "sha256": row["document_sha256"], "profile": row["profile"], "format": row["format"],
        "number": row["number"], "seller_siret": row["seller_siret"],
        "issue_date": row["issue_date"].isoformat() if row["issue_date"] else None,
        "reasons": json.loads(row["reasons"]), "warnings": json.loads(row["warnings"]),
        "submitted_by": row["submitted_by"], "service_done_on": _iso(row["service_done_on"]),
        "service_done_by": row["service_done_by"], "approved_by": row["approved_by"],
        "interrupted_on": _iso(row["interrupted_on"]), "interruption_reason": row["interruption_reason"],
        "missing_items": list(row["missing_items"] or ()), "completed_on": _iso(row["completed_on"]),
        "refusal_reason": row["refusal_reason"], "approval_waits_for": json.loads(row["approval_waits_for"]),
        "deadline": None if row["legal_due"] is None else {
            "buyer_type": row["buyer_type"], "dgp_start": row["dgp_start"].isoformat(),
            "legal_due": row["legal_due"].isoformat(), "ordonnateur_due": row["ordonnateur_due"].isoformat(),
            "target_due": row["target_due"].isoformat()},
        "payment": {
            "order_id": row["payment_order_id"], "ordered_on": _iso(row["payment_ordered_on"]),
            "paid_on": _iso(row["paid_on"]),
            "paid_amount": None if row["paid_amount"] is None else str(row["paid_amount"]),
            "days_late": row["paid_days_late"], "failure": row["payment_failure"]},
    }


@router.get("/invoices/{invoice_id}/document")
async def get_document(invoice_id: UUID, request: Request, _: User = Depends(current_user)) -> Response:
    """The document exactly as received."""
    async with request.app.state.runtime.pool.acquire() as conn:
        content = await store.document_of(conn, invoice_id)
    if content is None:
        raise HTTPException(404, f"no invoice {invoice_id}")
    media = "application/pdf" if content.startswith(b"%PDF-") else "application/xml"
    return Response(content, media_type=media)


def _iso(value) -> str | None:
    return value.isoformat() if value else None


class ServiceDone(BaseModel):
    on: date | None = Field(default=None, description="the day the service was done (default: today)")


class InterruptionRequest(BaseModel):
    reason: str = Field(min_length=1, description="what is missing or wrong (R2192-28)")
    missing_items: list[str] = Field(min_length=1, description="the pieces the supplier must send")


class Refusal(BaseModel):
    reason: str = Field(min_length=1)


async def _act(request: Request, invoice_id: UUID, action) -> dict:
    try:
        await action(request.app.state.workflow)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (IllegalTransition, DeadlineError) as exc:
        raise HTTPException(409, str(exc)) from None
    except DutiesNotSeparated as exc:
        raise HTTPException(403, str(exc)) from None
    except InvalidDate as exc:
        raise HTTPException(422, [{"loc": ["body", "on"], "msg": str(exc), "type": "value_error"}]) from None
    return await get_invoice(invoice_id, request)


@router.post("/invoices/{invoice_id}/service-done")
async def record_service_done(invoice_id: UUID, body: ServiceDone, request: Request,
                              user: User = Depends(require("approver"))) -> dict:
    return await _act(request, invoice_id, lambda w: w.record_service_done(invoice_id, user, body.on))


@router.post("/invoices/{invoice_id}/approve")
async def approve(invoice_id: UUID, request: Request, user: User = Depends(require("approver"))) -> dict:
    return await _act(request, invoice_id, lambda w: w.approve(invoice_id, user))


@router.post("/invoices/{invoice_id}/interrupt")
async def interrupt(invoice_id: UUID, body: InterruptionRequest, request: Request,
                    user: User = Depends(require("approver"))) -> dict:
    return await _act(request, invoice_id, lambda w: w.interrupt(invoice_id, user, body.reason, body.missing_items))


@router.post("/invoices/{invoice_id}/complete")
async def complete(invoice_id: UUID, request: Request, user: User = Depends(require("approver"))) -> dict:
    return await _act(request, invoice_id, lambda w: w.complete(invoice_id, user))


@router.post("/invoices/{invoice_id}/refuse")
async def refuse(invoice_id: UUID, body: Refusal, request: Request,
                 user: User = Depends(require("approver"))) -> dict:
    return await _act(request, invoice_id, lambda w: w.refuse(invoice_id, user, body.reason))
