"""What people (and the automatic rules) do to an invoice after intake: record the service
done, approve (the « mandat »), interrupt the delay and complete, refuse. Each action locks the
invoice, checks the lifecycle and the segregation of duties, stores the new state with its
recomputed deadline and appends the event, in one transaction.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Callable
from uuid import UUID

import asyncpg
import orjson

from services.invoices import reference, store
from services.invoices.domain.approval import auto_approval
from services.invoices.domain import lifecycle
from services.invoices.domain.deadline import Interruption, deadline_for
from services.invoices.domain.lifecycle import State
from shared.auth import User
from shared.clock import PARIS, Clock
from shared.events import Envelope, Event, new_envelope
from shared.events.invoices import (
    InvoiceApproved,
    InvoiceCompleted,
    InvoiceInterrupted,
    InvoiceRefused,
    PaymentDeadline,
    ServiceDoneRecorded,
)
from shared.money import to_cents
from shared.outbox import append, append_all
from shared.settings import Settings

SERVICE = "invoices"
AUTOMATIC = "invoices.auto-approval"


class NotFound(LookupError):
    pass


class DutiesNotSeparated(PermissionError):
    """The action would let one person do what two must (segregation of duties)."""


class InvalidDate(ValueError):
    pass


@dataclass
class Changes:
    """What one or many workflow actions change, written at the end in a few statements: the
    invoices' columns (one UPDATE per invoice, the columns of its actions merged in order), the
    engagements' credit used, and the events in the order the actions emitted them."""

    columns: dict[UUID, dict] = field(default_factory=dict)
    credits: list[tuple[str, Decimal]] = field(default_factory=list)
    events: list[tuple[Event, str]] = field(default_factory=list)

    def write(self, invoice_id: UUID, columns: dict) -> None:
        self.columns.setdefault(invoice_id, {}).update(columns)

    def commit_credit(self, engagement: str, amount: Decimal) -> None:
        self.credits.append((engagement, amount))

    def emit(self, event: Event, actor: str) -> None:
        self.events.append((event, actor))

    async def save(self, conn: asyncpg.Connection, workflow: Workflow) -> None:
        await store.save_workflow_all(conn, list(self.columns.items()))
        await reference.consume_commitments(conn, self.credits)
        await append_all(conn, [(workflow.settings.topic(event.topic), workflow.envelope(event, actor))
                                for event, actor in self.events])


@dataclass(frozen=True)
class Workflow:
    pool_of: Callable[[], asyncpg.Pool]
    settings: Settings
    clock: Clock

    async def record_service_done(self, invoice_id: UUID, user: User, on: date | None = None) -> str:
        on = on or self.clock.today()
        if on > self.clock.today():
            raise InvalidDate(f"the service cannot be certified done on {on}, a day still to come")
        async with self._locked(invoice_id) as (conn, row, invoice):
            changes = Changes()
            status = self._service_done(changes, row, invoice, on, user.name)["status"]
            await changes.save(conn, self)
            return status

    async def approve(self, invoice_id: UUID, user: User) -> str:
        async with self._locked(invoice_id) as (conn, row, invoice):
            changes = Changes()
            status = self._approve(changes, row, invoice, user.name, automatic=False)
            await changes.save(conn, self)
            return status

    async def consider_automatic_approvals(self, conn: asyncpg.Connection, invoice_ids: list[UUID]) -> None:
        """Approves without a person each invoice for which every condition holds (service
        done, or an engagement that certifies it itself; known engagement of the same supplier
        with enough credit left; the registered IBAN, not one awaiting its second confirmation;
        under the threshold). Otherwise records why the invoice waits for a person. Invoices
        not (or no longer) waiting for an approval are left as they are.

        The invoices are taken in id order, as one at a time would: an engagement's credit used
        by one is no longer there for the next."""
        rows = [row for row in await store.lock_invoices(conn, sorted(set(invoice_ids)))
                if row["status"] in (State.VALIDATED, State.SERVICE_DONE, State.COMPLETED)]
        if not rows:
            return
        canonicals = [_canonical(row) for row in rows]
        references = await reference.approval_references_all(conn, [
            ((c.get("seller") or {}).get("siret"), c.get("purchase_order_reference")) for c in canonicals])
        engagements = {ref.engagement.number: ref.engagement for ref in references if ref.engagement is not None}
        changes = Changes()
        for row, canonical, refs in zip(rows, canonicals, references):
            engagement = engagements.get(refs.engagement.number) if refs.engagement is not None else None
            service_done = row["service_done_on"] is not None
            decision = auto_approval(
                invoice_amount=_amount(canonical), invoice_iban=canonical.get("payee_iban"),
                seller_siret=(canonical.get("seller") or {}).get("siret"),
                engagement_number=canonical.get("purchase_order_reference"), engagement=engagement,
                supplier=refs.supplier, pending_iban=refs.pending_iban,
                service_done=service_done, threshold=self.settings.approval_threshold,
            )
            waits_for = {"approval_waits_for": json.dumps(
                [{"rule": rule, "reason": reason} for rule, reason in zip(decision.rules, decision.reasons)])}
            if not decision.automatic:
                changes.write(row["invoice_id"], waits_for)
                continue
            if not service_done:
                # The engagement certifies the service itself (e.g. a subscription): recorded
                # first; the row with the columns it wrote is the invoice as it now is.
                row = {**row, **self._service_done(changes, row, _invoice(row), self.clock.today(), AUTOMATIC)}
            self._approve(changes, row, _invoice(row), AUTOMATIC, automatic=True, also=waits_for)
            if engagement is not None:
                engagements[engagement.number] = replace(
                    engagement, remaining=max(engagement.remaining - _amount(canonical), Decimal("0")))
        await changes.save(conn, self)

    def _service_done(self, changes: Changes, row, invoice, on: date, actor: str) -> dict:
        """Records the service done; the columns it wrote."""
        changed = lifecycle.record_service_done(invoice, on)
        deadline = self._deadline(row, service_done_on=on)
        columns = {"status": changed.state.value, "service_done_on": on, "service_done_by": actor,
                   **_deadline_columns(deadline)}
        changes.write(row["invoice_id"], columns)
        changes.emit(ServiceDoneRecorded(invoice_id=str(row["invoice_id"]), service_done_on=on,
                                         deadline=deadline), actor)
        return columns

    def _approve(self, changes: Changes, row, invoice, actor: str, *, automatic: bool,
                 also: dict | None = None) -> str:
        """``also``: more columns to write with the approval's."""
        changed = lifecycle.approve(invoice)
        canonical = _canonical(row)
        amount = _amount(canonical)
        if not automatic:
            self._check_duties(row, actor, amount)
        deadline = self._deadline(row, service_done_on=row["service_done_on"])
        engagement = canonical.get("purchase_order_reference")
        changes.write(row["invoice_id"], {
            "status": changed.state.value, "approved_by": actor, "approved_at": self.clock.now(), **(also or {})})
        if engagement:
            changes.commit_credit(engagement, amount)
        changes.emit(InvoiceApproved(
            invoice_id=str(row["invoice_id"]), amount=amount, currency=canonical.get("currency") or "EUR",
            seller_siret=(canonical.get("seller") or {}).get("siret"),
            seller_name=(canonical.get("seller") or {}).get("name"), invoice_number=canonical.get("number"),
            payee_iban=canonical.get("payee_iban"), contract_reference=canonical.get("contract_reference"),
            engagement_number=engagement, automatic=automatic, deadline=deadline), actor)
        return changed.state.value

    async def interrupt(self, invoice_id: UUID, user: User, reason: str, missing_items: list[str]) -> str:
        on = self.clock.today()
        async with self._locked(invoice_id) as (conn, row, invoice):
            changed = lifecycle.interrupt(invoice, on, reason, missing_items)
            # Checks the interruption against the running delay (none once it has run out).
            self._deadline(row, service_done_on=row["service_done_on"], interruption=Interruption(on))
            await store.save_workflow(conn, invoice_id, {
                "status": changed.state.value, "interrupted_on": on, "interruption_reason": changed.interruption_reason,
                "missing_items": list(changed.missing_items), "legal_due": None, "ordonnateur_due": None,
                "target_due": None})
            await self._emit(conn, InvoiceInterrupted(
                invoice_id=str(invoice_id), notified_on=on, reason=changed.interruption_reason,
                missing_items=list(changed.missing_items)), user.name)
            return changed.state.value

    async def complete(self, invoice_id: UUID, user: User) -> str:
        on = self.clock.today()
        async with self._locked(invoice_id) as (conn, row, invoice):
            changed = lifecycle.complete(invoice, on)
            deadline = self._deadline(row, service_done_on=row["service_done_on"],
                                      interruption=Interruption(row["interrupted_on"], on))
            await store.save_workflow(conn, invoice_id, {
                "status": changed.state.value, "completed_on": on, **_deadline_columns(deadline)})
            await self._emit(conn, InvoiceCompleted(invoice_id=str(invoice_id), completed_on=on,
                                                    deadline=deadline), user.name)
            return changed.state.value

    async def refuse(self, invoice_id: UUID, user: User, reason: str) -> str:
        async with self._locked(invoice_id) as (conn, row, invoice):
            changed = lifecycle.refuse(invoice, reason)
            await store.save_workflow(conn, invoice_id, {
                "status": changed.state.value, "refusal_reason": changed.refusal_reason, "refused_by": user.name})
            await self._emit(conn, InvoiceRefused(invoice_id=str(invoice_id), reason=changed.refusal_reason),
                             user.name)
            return changed.state.value

    # ------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _locked(self, invoice_id: UUID):
        async with self.pool_of().acquire() as conn, conn.transaction():
            row = await store.lock_invoice(conn, invoice_id)
            if row is None:
                raise NotFound(f"no invoice {invoice_id}")
            yield conn, row, _invoice(row)

    def _check_duties(self, row: asyncpg.Record, actor: str, amount: Decimal) -> None:
        if row["submitted_by"] == actor:
            raise DutiesNotSeparated(
                f"{actor} submitted this invoice and cannot also approve it (segregation of duties)")
        if row["service_done_by"] == actor and amount > self.settings.approval_threshold:
            raise DutiesNotSeparated(
                f"{actor} certified the service done; above {self.settings.approval_threshold} EUR "
                "another approver must approve (segregation of duties)")

    def _deadline(self, row: asyncpg.Record, *, service_done_on: date | None,
                  interruption: Interruption | None = None) -> PaymentDeadline | None:
        buyer_type = row["buyer_type"] or self.settings.buyer_type
        if interruption is None and row["interrupted_on"] is not None:
            # R2192-29: once interrupted, the delay is the one the completion opened, whatever
            # is recorded afterwards.
            interruption = Interruption(row["interrupted_on"], row["completed_on"])
        deadline = deadline_for(row["received_at"].astimezone(PARIS).date(), buyer_type=buyer_type,
                                service_done_on=service_done_on, interruption=interruption)
        if deadline.legal_due is None:
            return None
        return PaymentDeadline(buyer_type=buyer_type, dgp_start=deadline.dgp_start, legal_due=deadline.legal_due,
                               ordonnateur_due=deadline.ordonnateur_due, target_due=deadline.target_due)

    async def _emit(self, conn: asyncpg.Connection, event: Event, actor: str) -> None:
        await append(conn, self.settings.topic(event.topic), self.envelope(event, actor))

    def envelope(self, event: Event, actor: str) -> Envelope:
        return new_envelope(event, producer=SERVICE, actor=actor, clock=self.clock, correlation_id=event.aggregate_id)


def _amount(canonical: dict) -> Decimal:
    """The amount due (BT-115), exact to the cent once the invoice passed validation."""
    return to_cents(Decimal(canonical["totals"]["payable"]))


def _canonical(row: asyncpg.Record) -> dict:
    return orjson.loads(row["canonical"]) if row["canonical"] else {}


def _invoice(row: asyncpg.Record) -> lifecycle.Invoice:
    return lifecycle.Invoice(
        invoice_id=str(row["invoice_id"]), state=State(row["status"]),
        received_on=row["received_at"].astimezone(PARIS).date(), service_done_on=row["service_done_on"],
        interrupted_on=row["interrupted_on"], completed_on=row["completed_on"],
        interruption_reason=row["interruption_reason"], missing_items=tuple(row["missing_items"] or ()),
        refusal_reason=row["refusal_reason"],
    )


def _deadline_columns(deadline: PaymentDeadline | None) -> dict:
    if deadline is None:
        return {}
    return {"buyer_type": deadline.buyer_type, "dgp_start": deadline.dgp_start, "legal_due": deadline.legal_due,
            "ordonnateur_due": deadline.ordonnateur_due, "target_due": deadline.target_due}

