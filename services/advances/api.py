"""HTTP routes of the advances service (thin: validate, call the handler, shape the answer)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from services.advances import handlers, store
from services.advances.domain.advance import percent_text
from shared.auth import User, current_user, require
from shared.events.contracts import ContractNotified

router = APIRouter(tags=["contracts"])


@router.post("/contracts", status_code=201)
async def notify_contract(
    contract: ContractNotified, request: Request, response: Response,
    user: User = Depends(require("admin")),
) -> dict:
    """Notifies a contract (the procurement side, role admin): its advance is decided at once."""
    runtime = request.app.state.runtime
    try:
        outcome = await handlers.notify_contract(
            runtime.pool, runtime.settings, runtime.clock, contract, actor=user.name
        )
    except handlers.ContractConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except handlers.ContractInvalid as exc:
        raise HTTPException(status_code=422, detail=[{
            "type": "advance_rule", "loc": ["body", exc.field], "msg": str(exc)}]) from None
    if not outcome.created:
        response.status_code = 200
    return {"contract_id": outcome.contract_id, "created": outcome.created,
            "url": f"/contracts/{outcome.contract_id}"}


@router.get("/contracts/{contract_id}")
async def get_contract(contract_id: str, request: Request, _: User = Depends(current_user)) -> dict:
    """The contract's terms and its advance ledger: granted, paid, recovered, outstanding."""
    async with request.app.state.runtime.pool.acquire() as conn:
        row = await store.find_contract(conn, contract_id)
        advance = await store.find_advance(conn, contract_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"no contract {contract_id}")
    return {**json.loads(row["terms"]), "notified_by": row["notified_by"],
            "recorded_at": row["recorded_at"].isoformat(), "advance": _advance_view(advance)}


def _advance_view(advance) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {
        "granted": advance["amount"] > 0, "mandatory": advance["mandatory"], "reason": advance["reason"],
        "policy_version": advance["policy_version"], "rate_pct": percent_text(advance["rate_pct"]),
        "base": str(advance["base"]), "amount": str(advance["amount"]),
        "guarantee_may_be_required": advance["guarantee_may_be_required"],
        "recovery_start_pct": percent_text(advance["recovery_start_pct"]),
        "recovery_end_pct": percent_text(advance["recovery_end_pct"]),
        "delay_starts_on": iso(advance["delay_starts_on"]), "delay_start_reason": advance["delay_start_reason"],
        "legal_due": iso(advance["legal_due"]), "target_due": iso(advance["target_due"]),
        "warnings": json.loads(advance["warnings"]),
        "paid": str(advance["paid"]), "paid_on": iso(advance["paid_on"]), "recovered": str(advance["recovered"]),
        "outstanding": str(advance["amount"] - advance["recovered"]),
    }
