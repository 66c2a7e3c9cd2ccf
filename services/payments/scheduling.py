"""Turns upstream events into payables: an approved invoice joined with its advance recovery
(either may arrive first), a granted advance, and the supplier accounts they are paid on. Each
handler runs inside the consumer's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date

import asyncpg

from services.payments import store
from services.payments.domain.payables import (
    Payable, Placement, advance_payable, invoice_payable, place,
)
from services.payments.domain.schedule import PaymentCalendar, accountant_due
from shared.clock import Clock
from shared.events import Decoded, Envelope, new_envelope
from shared.events.contracts import AdvanceGranted, AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved
from shared.events.payments import PaymentExecuted
from shared.events.reference import SupplierIbanChangeConfirmed, SupplierRegistered
from shared.logging import bind_event, get_logger
from shared.outbox import append, append_all
from shared.settings import Settings

SERVICE = "payments"
log = get_logger("payments.scheduling")


def calendar_of(settings: Settings) -> PaymentCalendar:
    return PaymentCalendar(run_weekdays=frozenset(settings.payment_run_weekdays))


def cause_of(envelope: Envelope) -> dict:
    """What a payable keeps of the event that created it, to name it as the cause of its orders."""
    return {"event_id": str(envelope.event_id), "event_type": envelope.event_type,
            "correlation_id": envelope.correlation_id}


@dataclass
class Scheduling:
    settings: Settings
    clock: Clock

    def __post_init__(self) -> None:
        self.calendar = calendar_of(self.settings)

    def accountant_due(self, ordered_on: date) -> date:
        return accountant_due(ordered_on, self.settings.accountant_days)

    async def on_invoice_halves(self, conn: asyncpg.Connection, events: list[Decoded]) -> None:
        """Joins a batch's approvals and recoveries per invoice, and creates the payable of each
        invoice whose two halves are in, exactly as if the events came one by one.

        One by one, each event stores its half (a later half replacing an earlier one) and, once
        both halves are in, builds the payable, which the first such event creates. Replayed
        here in Python: the halves as stored are read first when an invoice has several events
        in the batch (the join in between them decides which halves its payable gets)."""
        now = self.clock.now()
        by_invoice: dict[str, list[Decoded]] = {}
        for decoded in events:
            by_invoice.setdefault(decoded.event.invoice_id, []).append(decoded)
        invoice_ids = list(by_invoice)
        stored: dict[str, asyncpg.Record] | None = None
        if any(len(decodeds) > 1 for decodeds in by_invoice.values()):
            stored = await store.lock_joins(conn, invoice_ids, now)
        latest = {invoice_id: _joined(None, decodeds) for invoice_id, decodeds in by_invoice.items()}
        rows = await store.join_invoices(conn, [
            (invoice_id, join["approved"], join["approved_envelope"], join["recovery"])
            for invoice_id, join in latest.items()], now)

        # The events after which an invoice's two halves are in, with the join at that moment.
        complete: list[tuple[Decoded, dict]] = []
        for invoice_id, decodeds in by_invoice.items():
            if stored is None:
                joins = [_join_of(rows[invoice_id])]
            else:
                join, joins = _join_of(stored[invoice_id]), []
                for decoded in decodeds:
                    join = _joined(join, [decoded])
                    joins.append(join)
            complete += [(decoded, join) for decoded, join in zip(decodeds, joins)
                         if join["approved"] is not None and join["recovery"] is not None]
        if not complete:
            return

        halves = [(decoded, InvoiceApproved.model_validate(join["approved"]),
                   AdvanceRecoveryApplied.model_validate(join["recovery"]), join["approved_envelope"])
                  for decoded, join in complete]
        payees = await store.find_payees(conn, sorted({approved.seller_siret for _, approved, _, _ in halves
                                                       if approved.seller_siret}))
        payables: list[tuple[Payable, dict, Envelope]] = []
        built: set[str] = set()
        for decoded, approved, recovery, cause in halves:
            # Built at each complete join (a mismatch fails the event that makes it, as one by
            # one); the first one is created, the later ones would find it there.
            payable = invoice_payable(approved, recovery, payees.get(approved.seller_siret))
            if payable.payable_id not in built:
                built.add(payable.payable_id)
                payables.append((payable, cause, decoded.envelope))
        await self.create_all(conn, payables)

    async def on_advance_granted(self, conn: asyncpg.Connection, decoded: Decoded) -> None:
        granted: AdvanceGranted = decoded.event
        payee = await store.find_payee(conn, granted.supplier_siret)
        await self.create(conn, advance_payable(granted, payee), cause_of(decoded.envelope))

    async def create(self, conn: asyncpg.Connection, payable: Payable, cause: dict) -> None:
        """Records the payable and places it; an amount fully offset (an invoice whose advance
        recovery absorbs it) is settled at once, without a transfer."""
        today = self.clock.today()
        placement = self._placement(payable, today)
        created = await store.insert_payable(conn, payable, placement, correlation_id=cause["correlation_id"],
                                             cause=cause, created_at=self.clock.now())
        if created:
            await self._created(conn, payable, placement, cause, today)

    async def create_all(self, conn: asyncpg.Connection, payables: list[tuple[Payable, dict, Envelope]]) -> None:
        """``create`` for many ``(payable, cause, envelope)`` in one statement; ``envelope`` is
        the event that made the payable due, named in its log line."""
        if not payables:
            return
        today = self.clock.today()
        placed = [(payable, self._placement(payable, today), cause, envelope) for payable, cause, envelope in payables]
        created = await store.insert_payables(conn, [(payable, placement, cause)
                                                     for payable, placement, cause, _ in placed], self.clock.now())
        for payable, placement, cause, envelope in placed:
            if payable.payable_id in created:
                with bind_event(envelope):
                    await self._created(conn, payable, placement, cause, today)

    def _placement(self, payable: Payable, today: date) -> Placement:
        if payable.amount == 0 and payable.hold_reason is None:
            return Placement("scheduled", today, False, None)
        return place(payable, today, self.calendar)

    async def _created(self, conn: asyncpg.Connection, payable: Payable, placement: Placement, cause: dict,
                       today: date) -> None:
        log.info("payable created", payable_id=payable.payable_id, amount=str(payable.amount),
                 status=placement.status, order_on=str(placement.order_on), urgent=placement.urgent,
                 hold_reason=placement.hold_reason)
        if payable.amount == 0 and placement.status == "scheduled":
            await self._settle_by_offset(conn, payable, cause, today)

    async def _settle_by_offset(self, conn: asyncpg.Connection, payable: Payable, cause: dict, today: date) -> None:
        number = await conn.fetchval("SELECT nextval('offset_orders')")
        order_id = f"OFS-{today:%Y%m%d}-{number}"
        await store.mark_ordered(conn, payable.payable_id)
        await store.insert_order(conn, order_id=order_id, payable_id=payable.payable_id, attempt=1, batch_id="OFFSET",
                                 channel="offset", amount=payable.amount, payee_iban=None, ordered_on=today,
                                 status="executed", executed_on=today)
        await store.payable_paid(conn, payable.payable_id, today)
        event = PaymentExecuted(
            payable_id=payable.payable_id, kind=payable.kind, invoice_id=payable.invoice_id,
            contract_id=payable.contract_id, order_id=order_id, batch_id="OFFSET", channel="offset",
            amount=payable.amount, executed_on=today, ordered_on=today, legal_due=payable.legal_due,
            dgp_start=payable.dgp_start, days_late=0,
            ordonnateur_days=(today - payable.dgp_start).days if payable.dgp_start else None,
            accountant_days=0, counterparty_reference="offset against the advance")
        await self.emit(conn, event, actor="payments.scheduler", cause=cause)

    async def on_supplier_registered(self, conn: asyncpg.Connection, decoded: Decoded) -> None:
        event: SupplierRegistered = decoded.event
        await store.save_payee(conn, event.siret, name=event.name, iban=event.iban, at=self.clock.now(),
                               event_id=decoded.envelope.event_id)
        await self._release_held(conn, event.siret, event.iban, event.name)

    async def on_iban_confirmed(self, conn: asyncpg.Connection, decoded: Decoded) -> None:
        event: SupplierIbanChangeConfirmed = decoded.event
        await store.save_payee(conn, event.siret, name=None, iban=event.new_iban, at=self.clock.now(),
                               event_id=decoded.envelope.event_id)
        await self._release_held(conn, event.siret, event.new_iban, None)

    async def _release_held(self, conn: asyncpg.Connection, siret: str, iban: str, name: str | None) -> None:
        """A supplier's account is now known (or corrected after a failed payment): its held
        payables are scheduled on it."""
        for row in await store.held_for_payee(conn, siret):
            if row["payee_iban"] == iban:
                continue  # the account that failed is still the registered one
            payable = store.payable_of(row)
            placement = place(replace(payable, payee_iban=iban, hold_reason=None), self.clock.today(), self.calendar)
            await store.place_payable(conn, payable.payable_id, placement, payee_iban=iban, payee_name=name)
            log.info("held payable released", payable_id=payable.payable_id, order_on=str(placement.order_on))

    async def emit(self, conn: asyncpg.Connection, event, *, actor: str, cause: dict) -> Envelope:
        envelope = self._envelope(event, actor, cause)
        await append(conn, self.settings.topic(event.topic), envelope)
        return envelope

    async def emit_all(self, conn: asyncpg.Connection, events: list[tuple[object, dict]], *, actor: str) -> None:
        """``emit`` for several ``(event, cause)`` at once (a payment run's orders)."""
        await append_all(conn, [(self.settings.topic(event.topic), self._envelope(event, actor, cause))
                                for event, cause in events])

    def _envelope(self, event, actor: str, cause: dict) -> Envelope:
        return new_envelope(event, producer=SERVICE, actor=actor, clock=self.clock,
                            correlation_id=cause["correlation_id"], causation_id=cause["event_id"])


_NO_HALVES = {"approved": None, "approved_envelope": None, "recovery": None}


def _join_of(row: asyncpg.Record) -> dict:
    """An invoice's join as stored: each half as a dict, None while it is missing."""
    return {half: None if row[half] is None else json.loads(row[half]) for half in _NO_HALVES}


def _joined(join: dict | None, events: list[Decoded]) -> dict:
    """The join after ``events``, each storing its half over ``join`` (no half stored when None)."""
    join = dict(join or _NO_HALVES)
    for decoded in events:
        if isinstance(decoded.event, InvoiceApproved):
            join["approved"] = decoded.event.model_dump(mode="json")
            join["approved_envelope"] = decoded.envelope.model_dump(mode="json", exclude={"payload"})
        else:
            join["recovery"] = decoded.event.model_dump(mode="json")
    return join
