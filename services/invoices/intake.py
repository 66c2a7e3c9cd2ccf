"""Intake, whatever the channel: store the bytes with ``InvoiceReceived`` (one transaction), then
decide validated / to recycle / rejected with the matching event (a second transaction).

The decision is taken right after the receipt by the receiving process, and again by the
``InvoiceReceived`` consumer if that process died in between: both lock the invoice row and only
the first one finds it still ``received``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Callable
from uuid import UUID, uuid4

import asyncpg

from services.invoices import metrics, store
from services.invoices.domain.deadline import deadline_for
from services.invoices.domain.intake import Assessment, assess, business_key, duplicate_reason
from shared.clock import PARIS, Clock
from shared.db import lock_key
from shared.events import Envelope, new_envelope
from shared.events.invoices import (
    Channel,
    InvoiceReceived,
    InvoiceRejected,
    InvoiceValidated,
    PaymentDeadline,
)
from shared.failpoints import failpoint
from shared.logging import bind_event, get_logger
from shared.metrics import counted_on_commit, on_commit
from shared.outbox import append_all
from shared.settings import Settings

SERVICE = "invoices"
log = get_logger("intake")


@dataclass(frozen=True)
class Receipt:
    invoice_id: UUID
    status: str
    already_received: bool


@dataclass(frozen=True)
class Arrival:
    """A document as a channel hands it over. ``actor``: the authenticated sender; channels
    without one are named by channel and source."""

    content: bytes
    channel: Channel
    source: str
    actor: str | None = None


@dataclass(frozen=True)
class Intake:
    pool_of: Callable[[], asyncpg.Pool]
    settings: Settings
    clock: Clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self.pool_of()

    async def receive(self, content: bytes, channel: Channel, source: str, actor: str | None = None) -> Receipt:
        return (await self.receive_all([Arrival(content, channel, source, actor)]))[0]

    async def receive_all(self, arrivals: list[Arrival]) -> list[Receipt]:
        """Stores the documents with their ``InvoiceReceived`` (one transaction), then decides
        each (a second one); a receipt per arrival, in order. The same bytes twice, in the
        batch or since a former one, are one invoice: the later ones are acknowledged as
        already received."""
        received: list[tuple[InvoiceReceived, Envelope, Arrival]] = []
        first_of: dict[str, int] = {}
        shas = [hashlib.sha256(arrival.content).hexdigest() for arrival in arrivals]
        for arrival, sha256 in zip(arrivals, shas):
            if sha256 in first_of:
                continue
            first_of[sha256] = len(received)
            event = InvoiceReceived(
                invoice_id=str(uuid4()), channel=arrival.channel, source=arrival.source[:500], sha256=sha256,
                size_bytes=len(arrival.content), received_at=self.clock.now(),
            )
            actor = arrival.actor or f"{arrival.channel}:{arrival.source}"[:200]
            received.append((event, new_envelope(event, producer=SERVICE, actor=actor, clock=self.clock), arrival))
        # One connection for both transactions: a pool checkout costs a round trip.
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                stored = await store.insert_received_all(
                    conn, [(event, arrival.content, envelope.actor) for event, envelope, arrival in received])
                known = await store.invoices_by_sha256(
                    conn, [event.sha256 for event, _, _ in received if event.sha256 not in stored])
                fresh = [(event, envelope, arrival) for event, envelope, arrival in received if event.sha256 in stored]
                await append_all(conn, [(self.settings.topic(InvoiceReceived.topic), envelope)
                                        for _, envelope, _ in fresh])
            for _, envelope, arrival in fresh:
                with bind_event(envelope):
                    log.info("document received", channel=arrival.channel, source=arrival.source,
                             size=len(arrival.content))
            failpoint("intake.after_receipt")
            # Read and checked before the transaction that records the decisions: its locks are
            # then held for its statements only.
            assessed = [(envelope, arrival.content, self.assess(arrival.content)) for _, envelope, arrival in fresh]
            async with counted_on_commit(), conn.transaction():
                statuses = await self.decide_all(conn, assessed)
        receipts, given = [], set()
        for sha256 in shas:
            if sha256 in stored:
                # The first arrival of these bytes; a second one in the batch is a re-send.
                invoice_id = received[first_of[sha256]][0].invoice_id
                receipts.append(Receipt(UUID(invoice_id), statuses[invoice_id], already_received=sha256 in given))
                given.add(sha256)
            else:
                receipts.append(Receipt(known[sha256]["invoice_id"], known[sha256]["status"], already_received=True))
        return receipts

    def assess(self, content: bytes) -> Assessment:
        return assess(content, self.settings.validation_profile, self.settings.buyer_siret)

    def deadline_of(self, received_at: datetime) -> PaymentDeadline:
        """R2192-12: the delay starts on the receipt date, a date of the French calendar."""
        buyer_type = self.settings.buyer_type
        deadline = deadline_for(received_at.astimezone(PARIS).date(), buyer_type=buyer_type)
        return PaymentDeadline(buyer_type=buyer_type, dgp_start=deadline.dgp_start, legal_due=deadline.legal_due,
                               ordonnateur_due=deadline.ordonnateur_due, target_due=deadline.target_due)

    async def decide(self, conn: asyncpg.Connection, received: Envelope) -> str:
        """Takes the intake decision for the invoice of ``received`` unless it was already taken."""
        return (await self.decide_all(conn, [(received, None, None)]))[received.aggregate_id]

    async def decide_all(self, conn: asyncpg.Connection,
                         items: list[tuple[Envelope, bytes | None, Assessment | None]]) -> dict[str, str]:
        """Takes the intake decision of each ``(InvoiceReceived envelope, bytes, assessment)``
        not taken yet (bytes and assessment when the caller holds them; else read from the
        store and made here); the status of every invoice, decided now or before."""
        rows = await store.lock_for_decision(conn, [envelope.aggregate_id for envelope, _, _ in items])
        missing = [envelope for envelope, _, _ in items if envelope.aggregate_id not in rows]
        if missing:
            raise LookupError(f"invoice {missing[0].aggregate_id} of {missing[0].event_id} is not stored")
        statuses = {invoice_id: row["status"] for invoice_id, row in rows.items()}
        pending, seen = [], set()
        for envelope, content, assessment in items:
            if rows[envelope.aggregate_id]["status"] == "received" and envelope.aggregate_id not in seen:
                seen.add(envelope.aggregate_id)
                pending.append([envelope, content, assessment])
        if not pending:
            return statuses
        unread = [UUID(item[0].aggregate_id) for item in pending if item[1] is None and item[2] is None]
        contents = await store.documents_of(conn, unread) if unread else {}
        for item in pending:
            if item[2] is None:
                item[2] = self.assess(item[1] if item[1] is not None else contents[item[0].aggregate_id])
        keys = {}
        for envelope, _, outcome in pending:
            if outcome.invoice is not None and outcome.status != "to_recycle":
                keys[envelope.aggregate_id] = business_key(outcome.invoice)
        wanted = sorted({key for key in keys.values() if key is not None})
        # Two documents with one key decided at once: the second waits here for the first.
        await store.lock_keys(conn, [lock_key(f"invoice-key:{key}") for key in wanted])
        holders = await store.holders_of(conn, wanted)
        profile = self.settings.validation_profile
        now = self.clock.now()
        decisions, events = [], []
        for envelope, _, outcome in pending:
            invoice_id = envelope.aggregate_id
            status, reasons, invoice = outcome.status, list(outcome.reasons), outcome.invoice
            key = keys.get(invoice_id)
            if key is not None:
                holder = holders.get(key)
                if holder is not None:
                    status, key = "rejected", None
                    reasons = [duplicate_reason(invoice, holder["invoice_id"], holder["received_at"]), *reasons]
                else:
                    # The next document of the batch with this key is a duplicate of this one.
                    holders[key] = {"invoice_id": UUID(invoice_id), "received_at": rows[invoice_id]["received_at"]}
            deadline = self.deadline_of(rows[invoice_id]["received_at"]) if status == "validated" else None
            if status == "validated":
                event = InvoiceValidated(invoice_id=invoice_id, profile=profile, invoice=invoice,
                                         deadline=deadline, warnings=outcome.warnings)
            else:
                event = InvoiceRejected(
                    invoice_id=invoice_id, status="A_RECYCLER" if status == "to_recycle" else "REJETEE",
                    profile=profile, reasons=reasons, rejected_at=now,
                    number=invoice.number if invoice else None,
                    seller_siret=invoice.seller.siret if invoice and invoice.seller else None,
                )
            decided = new_envelope(event, producer=SERVICE, actor="intake", clock=self.clock, caused_by=envelope)
            # The validated event carries the canonical invoice as stored: serialised once.
            canonical = decided.payload["invoice"] if status == "validated" else (
                invoice.model_dump(mode="json") if invoice is not None else None)
            decisions.append(store.Decision(
                invoice_id=invoice_id, status=status, profile=profile, business_key=key, canonical=canonical,
                reasons=[r.model_dump() for r in reasons], warnings=[w.model_dump() for w in outcome.warnings],
                decided_at=now, deadline=deadline))
            events.append((self.settings.topic(event.topic), decided))
            statuses[invoice_id] = status
            # Counted here, once per invoice, where the format is known; the channel is the receipt's.
            on_commit(partial(metrics.count_decision, envelope.payload.get("channel", "unknown"),
                              invoice.format if invoice is not None else None, status, reasons))
            with bind_event(decided):
                log.info("intake decision", status=status, rules=[r.rule for r in reasons][:20])
        await store.record_decisions(conn, decisions)
        await append_all(conn, events)
        return statuses

