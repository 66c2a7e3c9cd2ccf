"""HTTP routes of the advances service (thin: validate, call the handler, shape the answer)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Header, HTTPException, Request, Response

from services.advances import handlers, store
from shared.events.contracts import ContractNotified

router = APIRouter(tags=["contracts"])


@router.post("/contracts", status_code=201)
async def notify_contract(
    contract: ContractNotified, request: Request, response: Response,
    x_actor: str = Header(default="procurement", description="who notifies the contract"),
) -> dict:
    runtime = request.app.state.runtime
    try:
        outcome = await handlers.notify_contract(
            runtime.pool, runtime.settings, runtime.clock, contract, actor=x_actor
        )
    except handlers.ContractConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    if not outcome.created:
        response.status_code = 200
    return {"contract_id": outcome.contract_id, "created": outcome.created,
            "url": f"/contracts/{outcome.contract_id}"}


@router.get("/contracts/{contract_id}")
async def get_contract(contract_id: str, request: Request) -> dict:
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_contract(conn, contract_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no contract {contract_id}")
    return {**json.loads(row["terms"]), "notified_by": row["notified_by"],
            "recorded_at": row["recorded_at"].isoformat()}
