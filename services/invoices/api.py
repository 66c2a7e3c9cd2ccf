"""HTTP routes of the invoices service (thin: read the request, call intake or the store)."""

from __future__ import annotations

import json
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from services.invoices import store
from services.invoices.domain.lifecycle import PUBLIC_STATUS
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
) -> JSONResponse:
    """Receives one document (UBL, CII or Factur-X PDF, detected from its bytes)."""
    content = await _read_body(request)
    receipt = await request.app.state.intake.receive(content, "http", x_source)
    public = PUBLIC_STATUS[receipt.status]
    return JSONResponse(
        status_code=200 if receipt.already_received else 202,
        content={"invoice_id": str(receipt.invoice_id), "status": receipt.status,
                 "chorus_status": public.chorus, "already_received": receipt.already_received,
                 "status_url": f"/invoices/{receipt.invoice_id}"},
    )


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: UUID, request: Request) -> dict:
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
        "deadline": None if row["legal_due"] is None else {
            "buyer_type": row["buyer_type"], "dgp_start": row["dgp_start"].isoformat(),
            "legal_due": row["legal_due"].isoformat(), "ordonnateur_due": row["ordonnateur_due"].isoformat(),
            "target_due": row["target_due"].isoformat()},
    }


@router.get("/invoices/{invoice_id}/document")
async def get_document(invoice_id: UUID, request: Request) -> Response:
    """The document exactly as received."""
    async with request.app.state.runtime.pool.acquire() as conn:
        content = await store.document_of(conn, invoice_id)
    if content is None:
        raise HTTPException(404, f"no invoice {invoice_id}")
    media = "application/pdf" if content.startswith(b"%PDF-") else "application/xml"
    return Response(content, media_type=media)
