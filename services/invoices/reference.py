"""Commands on the invoices service's reference data (suppliers, their bank accounts, budget
commitments) and the reads the approval rule needs. Each command changes the tables and appends
its event to the outbox in one transaction, after taking the aggregate's row lock.

Anti-fraud (« fraude au changement de RIB »): registering a supplier again never replaces its
IBAN. A new account is requested by one person and confirmed or rejected by another; the
database refuses a decision by the requester too (``supplier_iban_changes_four_eyes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID, uuid4

import asyncpg

from services.invoices.domain.approval import EngagementView, SupplierView
from shared.clock import Clock
from shared.events import Envelope, Event, new_envelope
from shared.events.contracts import valid_siret
from shared.events.reference import (
    EngagementRecorded,
    SupplierDetailsChanged,
    SupplierIbanChangeConfirmed,
    SupplierIbanChangeRejected,
    SupplierIbanChangeRequested,
    SupplierRegistered,
    valid_iban,
)
from shared.logging import bind_event, get_logger, mask_iban
from shared.outbox import append
from shared.settings import Settings

SERVICE = "invoices"
log = get_logger("reference")


class ReferenceConflict(Exception):
    """The command contradicts what is recorded (HTTP 409)."""


class ReferenceNotFound(Exception):
    """The supplier, change or engagement does not exist (HTTP 404)."""


class FourEyesViolation(Exception):
    """The person who requested an IBAN change tried to decide on it (HTTP 403)."""


class ReferenceInvalid(Exception):
    """A field names something that does not exist, e.g. an unregistered supplier (HTTP 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Outcome:
    """``created``: recorded now; ``updated``: corrected now; ``unchanged``: already so."""

    result: Literal["created", "updated", "unchanged"]
    id: str


@dataclass(frozen=True)
class IbanChange:
    change_id: UUID
    siret: str
    status: Literal["pending", "confirmed", "rejected"]
    current_iban: str
    new_iban: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None


def _envelope(event: Event, actor: str, clock: Clock, caused_by_event_id: UUID | None = None) -> Envelope:
    envelope = new_envelope(event, producer=SERVICE, actor=actor, clock=clock)
    if caused_by_event_id is not None:
        # The decision on an IBAN change is caused by its request, stored by event id only.
        envelope = envelope.model_copy(update={"causation_id": caused_by_event_id})
    return envelope


async def _emit(conn: asyncpg.Connection, settings: Settings, event: Event, envelope: Envelope, message: str,
                **fields: str) -> None:
    await append(conn, settings.topic(event.topic), envelope)
    with bind_event(envelope):
        log.info(message, **fields)


# --- suppliers ---------------------------------------------------------------------------------

async def register_supplier(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, supplier: SupplierRegistered, actor: str
) -> Outcome:
    """Registers a supplier with the account it is paid on.

    Sending the same supplier again is acknowledged without an event; a corrected name or SME
    flag is applied (``SupplierDetailsChanged``). Another IBAN is a conflict and nothing is
    applied: a new account goes through ``request_iban_change`` and a second person.
    """
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.execute(
            "INSERT INTO suppliers (siret, name, sme, iban, registered_by, registered_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (siret) DO NOTHING",
            supplier.siret, supplier.name, supplier.sme, supplier.iban, actor, now,
        )
        if inserted.endswith(" 1"):
            await _emit(conn, settings, supplier, _envelope(supplier, actor, clock), "supplier registered",
                        siret=supplier.siret, iban=supplier.iban)
            return Outcome("created", supplier.siret)
        row = await conn.fetchrow("SELECT name, sme, iban FROM suppliers WHERE siret = $1 FOR UPDATE",
                                  supplier.siret)
        if row["iban"] != supplier.iban:
            pending = await _pending_change(conn, supplier.siret)
            waiting = (f" A change to {mask_iban(pending['new_iban'])} (change {pending['change_id']}) already "
                       "waits for a second person's confirmation." if pending else "")
            raise ReferenceConflict(
                f"Supplier {supplier.siret} is registered with the IBAN {mask_iban(row['iban'])}; registering "
                "it again does not change its bank account. Request an IBAN change "
                f"(POST /suppliers/{supplier.siret}/iban-changes) and have a second person confirm it.{waiting}"
            )
        if (row["name"], row["sme"]) == (supplier.name, supplier.sme):
            return Outcome("unchanged", supplier.siret)
        await conn.execute("UPDATE suppliers SET name = $2, sme = $3, updated_at = $4 WHERE siret = $1",
                           supplier.siret, supplier.name, supplier.sme, now)
        changed = SupplierDetailsChanged(siret=supplier.siret, name=supplier.name, sme=supplier.sme,
                                         previous_name=row["name"], previous_sme=row["sme"])
        await _emit(conn, settings, changed, _envelope(changed, actor, clock), "supplier details changed",
                    siret=supplier.siret)
        return Outcome("updated", supplier.siret)


async def request_iban_change(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, siret: str, new_iban: str, justification: str,
    actor: str,
) -> IbanChange:
    """Records a request to pay the supplier on ``new_iban``; the registered IBAN stays in use
    until another person confirms. One request per supplier waits at a time."""
    siret, new_iban = valid_siret(siret), valid_iban(new_iban)
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchval("SELECT iban FROM suppliers WHERE siret = $1 FOR UPDATE", siret)
        if current is None:
            raise ReferenceNotFound(f"No supplier {siret} is registered.")
        if current == new_iban:
            raise ReferenceConflict(f"{mask_iban(new_iban)} is already the IBAN registered for supplier {siret}.")
        pending = await _pending_change(conn, siret)
        if pending is not None:
            raise ReferenceConflict(
                f"Supplier {siret} already has an IBAN change waiting (change {pending['change_id']}, to "
                f"{mask_iban(pending['new_iban'])}, requested by {pending['requested_by']}): have it confirmed "
                "or rejected before requesting another."
            )
        change_id = uuid4()
        event = SupplierIbanChangeRequested(siret=siret, change_id=str(change_id), current_iban=current,
                                            new_iban=new_iban, justification=justification)
        envelope = _envelope(event, actor, clock)
        await conn.execute(
            "INSERT INTO supplier_iban_changes (change_id, siret, current_iban, new_iban, justification, "
            "requested_by, requested_at, request_event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            change_id, siret, current, new_iban, justification, actor, now, envelope.event_id,
        )
        await _emit(conn, settings, event, envelope, "supplier IBAN change requested", siret=siret,
                    change_id=str(change_id), new_iban=new_iban)
    return IbanChange(change_id, siret, "pending", current, new_iban, actor, now, None, None)


async def confirm_iban_change(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, siret: str, change_id: UUID, actor: str
) -> IbanChange:
    """A second person confirms: the supplier is paid on the new IBAN from now on."""
    return await _decide(pool, settings, clock, siret, change_id, actor, "confirmed", reason=None)


async def reject_iban_change(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, siret: str, change_id: UUID, actor: str, reason: str
) -> IbanChange:
    """A second person refuses: the registered IBAN stays."""
    return await _decide(pool, settings, clock, siret, change_id, actor, "rejected", reason=reason)


async def _decide(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, siret: str, change_id: UUID, actor: str,
    status: Literal["confirmed", "rejected"], reason: str | None,
) -> IbanChange:
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        # The supplier row first, as every writer of this aggregate does: one lock order.
        if await conn.fetchval("SELECT 1 FROM suppliers WHERE siret = $1 FOR UPDATE", siret) is None:
            raise ReferenceNotFound(f"No supplier {siret} is registered.")
        change = await conn.fetchrow(
            "SELECT * FROM supplier_iban_changes WHERE change_id = $1 AND siret = $2", change_id, siret)
        if change is None:
            raise ReferenceNotFound(f"Supplier {siret} has no IBAN change {change_id}.")
        if change["status"] != "pending":
            if change["status"] == status and change["decided_by"] == actor:
                # The same decision sent again (a retried request) is acknowledged.
                return _change(change)
            raise ReferenceConflict(
                f"IBAN change {change_id} was already {change['status']} by {change['decided_by']} "
                f"on {change['decided_at'].isoformat()}."
            )
        if actor.casefold() == change["requested_by"].casefold():
            raise FourEyesViolation(
                f"Four eyes: {actor} requested IBAN change {change_id} and cannot also "
                f"{'confirm' if status == 'confirmed' else 'reject'} it; another person must decide."
            )
        common = dict(siret=siret, change_id=str(change_id), new_iban=change["new_iban"],
                      requested_by=change["requested_by"], decided_by=actor)
        if status == "confirmed":
            event: Event = SupplierIbanChangeConfirmed(**common, previous_iban=change["current_iban"])
            await conn.execute("UPDATE suppliers SET iban = $2, updated_at = $3 WHERE siret = $1",
                               siret, change["new_iban"], now)
        else:
            event = SupplierIbanChangeRejected(**common, reason=reason)
        decided = await conn.fetchrow(
            "UPDATE supplier_iban_changes SET status = $2, decided_by = $3, decided_at = $4, "
            "decision_reason = $5 WHERE change_id = $1 RETURNING *",
            change_id, status, actor, now, reason,
        )
        await _emit(conn, settings, event, _envelope(event, actor, clock, change["request_event_id"]),
                    f"supplier IBAN change {status}", siret=siret, change_id=str(change_id))
    return _change(decided)


def _change(row: asyncpg.Record) -> IbanChange:
    return IbanChange(row["change_id"], row["siret"], row["status"], row["current_iban"], row["new_iban"],
                      row["requested_by"], row["requested_at"], row["decided_by"], row["decided_at"])


async def _pending_change(conn: asyncpg.Connection, siret: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM supplier_iban_changes WHERE siret = $1 AND status = 'pending'", siret)


# --- engagements -------------------------------------------------------------------------------

async def record_engagement(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, engagement: EngagementRecorded, actor: str
) -> Outcome:
    """Records a budget commitment of a registered supplier. The same commitment sent again is
    acknowledged without an event; the same number with other terms is a conflict."""
    async with pool.acquire() as conn, conn.transaction():
        # FOR KEY SHARE: the supplier cannot disappear meanwhile, and its IBAN may still change.
        if await conn.fetchval("SELECT 1 FROM suppliers WHERE siret = $1 FOR KEY SHARE",
                               engagement.supplier_siret) is None:
            raise ReferenceInvalid(
                "supplier_siret",
                f"No supplier {engagement.supplier_siret} is registered: register the supplier first.")
        inserted = await conn.execute(
            "INSERT INTO engagements (number, supplier_siret, amount, remaining, service_done_automatic, "
            "recorded_by, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (number) DO NOTHING",
            engagement.number, engagement.supplier_siret, engagement.amount, engagement.remaining,
            engagement.service_done_automatic, actor, clock.now(),
        )
        if inserted.endswith(" 1"):
            await _emit(conn, settings, engagement, _envelope(engagement, actor, clock), "engagement recorded",
                        engagement=engagement.number, supplier_siret=engagement.supplier_siret,
                        amount=str(engagement.amount))
            return Outcome("created", engagement.number)
        row = await conn.fetchrow("SELECT * FROM engagements WHERE number = $1", engagement.number)
    recorded = (row["supplier_siret"], row["amount"], row["remaining"], row["service_done_automatic"])
    asked = (engagement.supplier_siret, engagement.amount, engagement.remaining, engagement.service_done_automatic)
    if recorded != asked:
        differences = ", ".join(
            f"{name} {was} (not {now})"
            for name, was, now in zip(("supplier_siret", "amount", "remaining", "service_done_automatic"),
                                      recorded, asked)
            if was != now
        )
        raise ReferenceConflict(
            f"Engagement {engagement.number} is already recorded with {differences}; a commitment is "
            "changed in the finance system, not by recording it again."
        )
    return Outcome("unchanged", engagement.number)


# --- reads -------------------------------------------------------------------------------------

async def find_supplier(conn: asyncpg.Connection, siret: str) -> dict | None:
    """The supplier, its change waiting for confirmation (or None) and its changes' history."""
    row = await conn.fetchrow("SELECT * FROM suppliers WHERE siret = $1", siret)
    if row is None:
        return None
    changes = await conn.fetch(
        "SELECT * FROM supplier_iban_changes WHERE siret = $1 ORDER BY requested_at, change_id", siret)
    history = [_change_view(change) for change in changes]
    return {
        "siret": row["siret"], "name": row["name"], "sme": row["sme"], "iban": row["iban"],
        "registered_by": row["registered_by"], "registered_at": row["registered_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "pending_iban_change": next((c for c in history if c["status"] == "pending"), None),
        "iban_changes": history,
    }


def _change_view(row: asyncpg.Record) -> dict:
    return {
        "change_id": str(row["change_id"]), "status": row["status"], "current_iban": row["current_iban"],
        "new_iban": row["new_iban"], "justification": row["justification"],
        "requested_by": row["requested_by"], "requested_at": row["requested_at"].isoformat(),
        "decided_by": row["decided_by"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None,
        "decision_reason": row["decision_reason"],
    }


async def find_engagement(conn: asyncpg.Connection, number: str) -> dict | None:
    row = await conn.fetchrow("SELECT * FROM engagements WHERE number = $1", number)
    if row is None:
        return None
    return {
        "number": row["number"], "supplier_siret": row["supplier_siret"], "amount": str(row["amount"]),
        "remaining": str(row["remaining"]), "service_done_automatic": row["service_done_automatic"],
        "recorded_by": row["recorded_by"], "recorded_at": row["recorded_at"].isoformat(),
    }


@dataclass(frozen=True)
class ApprovalReferences:
    """What ``domain.approval.auto_approval`` compares an invoice with."""

    supplier: SupplierView | None
    engagement: EngagementView | None
    pending_iban: str | None


async def approval_references(
    conn: asyncpg.Connection, *, seller_siret: str | None, engagement_number: str | None
) -> ApprovalReferences:
    """Reads, in the caller's transaction, the supplier, the engagement and the IBAN waiting
    for confirmation that the approval of an invoice depends on."""
    return (await approval_references_all(conn, [(seller_siret, engagement_number)]))[0]


async def approval_references_all(
    conn: asyncpg.Connection, invoices: list[tuple[str | None, str | None]]
) -> list[ApprovalReferences]:
    """``approval_references`` of each ``(seller SIRET, engagement number)``, in one query."""
    rows = await conn.fetch(
        """SELECT q.i, s.siret, s.name, s.sme, s.iban, c.new_iban AS pending_iban, e.number,
                  e.supplier_siret AS engagement_siret, e.amount, e.remaining, e.service_done_automatic
           FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS q (siret, number, i)
           LEFT JOIN suppliers s ON s.siret = q.siret
           LEFT JOIN supplier_iban_changes c ON c.siret = s.siret AND c.status = 'pending'
           LEFT JOIN engagements e ON e.number = q.number
           ORDER BY q.i""",
        [siret or None for siret, _ in invoices], [number or None for _, number in invoices])
    references = []
    for row in rows:
        supplier = engagement = None
        if row["siret"] is not None:
            supplier = SupplierView(row["siret"], row["name"], row["sme"], row["iban"])
        if row["number"] is not None:
            engagement = EngagementView(row["number"], row["engagement_siret"], row["amount"], row["remaining"],
                                        row["service_done_automatic"])
        references.append(ApprovalReferences(supplier, engagement, row["pending_iban"]))
    return references


async def consume_commitments(conn: asyncpg.Connection, uses: list[tuple[str, Decimal]]) -> None:
    """Approved invoices use their engagements' credit, ``(number, amount)`` in order. A person
    may approve beyond what is left (the automatic rule never does); the remaining credit then
    stops at zero."""
    if uses:
        await conn.executemany(
            "UPDATE engagements SET remaining = GREATEST(remaining - $2, 0) WHERE number = $1", uses)
