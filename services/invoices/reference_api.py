"""HTTP routes of the reference data: suppliers, their IBAN changes (four eyes), engagements.

Thin: validate the body, call ``reference``, shape the answer. The caller's identity comes from
the bearer token and becomes the events' actor; nobody can claim to be someone else.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.invoices import reference
from shared.auth import User, require
from shared.events.contracts import valid_siret
from shared.events.reference import EngagementRecorded, SupplierRegistered, valid_iban

router = APIRouter(tags=["reference data"])

_READERS = ("approver", "auditor", "admin")
_DECIDERS = ("approver", "admin")


class IbanChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_iban: str = Field(description="the account the supplier asks to be paid on")
    justification: str = Field(
        min_length=1, max_length=1000,
        description="how the new account was obtained and checked, e.g. a bank certificate (RIB) "
                    "received and confirmed by calling the supplier's known contact",
    )

    @field_validator("new_iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        return valid_iban(value)

    @field_validator("justification")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say how the new account was obtained and checked")
        return value.strip()


class IbanChangeRejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000, description="why the change is refused")

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say why the change is refused")
        return value.strip()


def _path_siret(siret: str) -> str:
    try:
        return valid_siret(siret)
    except ValueError as exc:
        raise HTTPException(422, detail=[{"type": "value_error", "loc": ["path", "siret"], "msg": str(exc)}]) from None


_HANDLED = (reference.ReferenceNotFound, reference.ReferenceConflict, reference.FourEyesViolation,
            reference.ReferenceInvalid)
_STATUS = {reference.ReferenceNotFound: 404, reference.ReferenceConflict: 409, reference.FourEyesViolation: 403}


def _http_error(exc: Exception) -> HTTPException:
    if isinstance(exc, reference.ReferenceInvalid):
        return HTTPException(422, detail=[{"type": "reference_rule", "loc": ["body", exc.field], "msg": str(exc)}])
    return HTTPException(_STATUS[type(exc)], detail=str(exc))


def _change_answer(change: reference.IbanChange) -> dict:
    return {
        "change_id": str(change.change_id), "siret": change.siret, "status": change.status,
        "current_iban": change.current_iban, "new_iban": change.new_iban,
        "requested_by": change.requested_by, "requested_at": change.requested_at.isoformat(),
        "decided_by": change.decided_by,
        "decided_at": change.decided_at.isoformat() if change.decided_at else None,
        "url": f"/suppliers/{change.siret}",
    }


@router.post("/suppliers", status_code=201)
async def register_supplier(supplier: SupplierRegistered, request: Request, response: Response,
                            user: User = Depends(require("admin"))) -> dict:
    """Registers a supplier (201), acknowledges it again (200, ``result`` unchanged) or corrects
    its name or SME flag (200, ``result`` updated). Another IBAN is refused (409): use an IBAN
    change, confirmed by a second person."""
    runtime = request.app.state.runtime
    try:
        outcome = await reference.register_supplier(runtime.pool, runtime.settings, runtime.clock, supplier,
                                                    actor=user.name)
    except _HANDLED as exc:
        raise _http_error(exc) from None
    if outcome.result != "created":
        response.status_code = 200
    return {"siret": outcome.id, "result": outcome.result, "url": f"/suppliers/{outcome.id}"}


@router.get("/suppliers/{siret}", dependencies=[Depends(require(*_READERS))])
async def get_supplier(siret: str, request: Request) -> dict:
    """The supplier, the IBAN it is paid on, the change waiting for confirmation and past changes."""
    siret = _path_siret(siret)
    async with request.app.state.runtime.pool.acquire() as conn:
        found = await reference.find_supplier(conn, siret)
    if found is None:
        raise HTTPException(404, detail=f"No supplier {siret} is registered.")
    return found


@router.post("/suppliers/{siret}/iban-changes", status_code=201)
async def request_iban_change(siret: str, body: IbanChangeRequest, request: Request,
                              user: User = Depends(require(*_DECIDERS))) -> dict:
    """Asks to pay the supplier on another account. Nothing changes until another person confirms."""
    siret = _path_siret(siret)
    runtime = request.app.state.runtime
    try:
        change = await reference.request_iban_change(runtime.pool, runtime.settings, runtime.clock, siret,
                                                     body.new_iban, body.justification, actor=user.name)
    except _HANDLED as exc:
        raise _http_error(exc) from None
    return _change_answer(change)


@router.post("/suppliers/{siret}/iban-changes/{change_id}/confirm")
async def confirm_iban_change(siret: str, change_id: UUID, request: Request,
                              user: User = Depends(require(*_DECIDERS))) -> dict:
    """A person other than the requester confirms: the new IBAN replaces the registered one."""
    siret = _path_siret(siret)
    runtime = request.app.state.runtime
    try:
        change = await reference.confirm_iban_change(runtime.pool, runtime.settings, runtime.clock, siret,
                                                     change_id, actor=user.name)
    except _HANDLED as exc:
        raise _http_error(exc) from None
    return _change_answer(change)


@router.post("/suppliers/{siret}/iban-changes/{change_id}/reject")
async def reject_iban_change(siret: str, change_id: UUID, body: IbanChangeRejection, request: Request,
                             user: User = Depends(require(*_DECIDERS))) -> dict:
    """A person other than the requester refuses: the registered IBAN stays."""
    siret = _path_siret(siret)
    runtime = request.app.state.runtime
    try:
        change = await reference.reject_iban_change(runtime.pool, runtime.settings, runtime.clock, siret,
                                                    change_id, actor=user.name, reason=body.reason)
    except _HANDLED as exc:
        raise _http_error(exc) from None
    return _change_answer(change)


@router.post("/engagements", status_code=201)
async def record_engagement(engagement: EngagementRecorded, request: Request, response: Response,
                            user: User = Depends(require("admin"))) -> dict:
    """Records a budget commitment of a registered supplier (201), or acknowledges it (200)."""
    runtime = request.app.state.runtime
    try:
        outcome = await reference.record_engagement(runtime.pool, runtime.settings, runtime.clock, engagement,
                                                    actor=user.name)
    except _HANDLED as exc:
        raise _http_error(exc) from None
    if outcome.result != "created":
        response.status_code = 200
    return {"number": outcome.id, "result": outcome.result, "url": f"/engagements/{outcome.id}"}


@router.get("/engagements/{number}", dependencies=[Depends(require(*_READERS))])
async def get_engagement(number: str, request: Request) -> dict:
    """The commitment, the credit left on it and whether « service fait » is automatic for it."""
    async with request.app.state.runtime.pool.acquire() as conn:
        found = await reference.find_engagement(conn, number)
    if found is None:
        raise HTTPException(404, detail=f"No engagement {number} is recorded.")
    return found
