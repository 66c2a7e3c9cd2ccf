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
from services.invoices.domain.intake import assess, business_key, duplicate_reason
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
from shared.outbox import append
from shared.settings import Settings

SERVICE = "invoices"
log = get_logger("intake")


@dataclass(frozen=True)
class Receipt:
    invoice_id: UUID
    status: str
    already_received: bool


@dataclass(frozen=True)
class Intake:
    pool_of: Callable[[], asyncpg.Pool]
    settings: Settings
    clock: Clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self.pool_of()

    async def receive(self, content: bytes, channel: Channel, source: str, actor: str | None = None) -> Receipt:
        """``actor``: the authenticated sender; channels without one are named by channel and source."""
        sha256 = hashlib.sha256(content).hexdigest()
        event = InvoiceReceived(
            invoice_id=str(uuid4()), channel=channel, source=source[:500], sha256=sha256,
            size_bytes=len(content), received_at=self.clock.now(),
        )
        envelope = new_envelope(event, producer=SERVICE, actor=actor or f"{channel}:{source}"[:200], clock=self.clock)
        # One connection for both transactions: a pool checkout costs a round trip.
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                if not await store.insert_received(conn, event, content, submitted_by=envelope.actor):
                    known = await store.invoice_by_sha256(conn, sha256)
                    return Receipt(known["invoice_id"], known["status"], already_received=True)
                await append(conn, self.settings.topic(InvoiceReceived.topic), envelope)
            with bind_event(envelope):
                log.info("document received", channel=channel, source=source, size=len(content))
            failpoint("intake.after_receipt")
            async with counted_on_commit(), conn.transaction():
                status = await self.decide(conn, envelope, content)
        return Receipt(UUID(event.invoice_id), status, already_received=False)

    def deadline_of(self, received_at: datetime) -> PaymentDeadline:
        """R2192-12: the delay starts on the receipt date, a date of the French calendar."""
        buyer_type = self.settings.buyer_type
        deadline = deadline_for(received_at.astimezone(PARIS).date(), buyer_type=buyer_type)
        return PaymentDeadline(buyer_type=buyer_type, dgp_start=deadline.dgp_start, legal_due=deadline.legal_due,
                               ordonnateur_due=deadline.ordonnateur_due, target_due=deadline.target_due)

    async def decide(self, conn: asyncpg.Connection, received: Envelope, content: bytes | None = None) -> str:
        """Takes the intake decision for the invoice of ``received`` unless it was already taken.
        ``content``: the document's bytes when the caller holds them (else read from the store)."""
        invoice_id = received.aggregate_id
        row = await store.lock_for_decision(conn, invoice_id)
        if row is None:
            raise LookupError(f"invoice {invoice_id} of {received.event_id} is not stored")
        if row["status"] != "received":
            return row["status"]
        if content is None:
            content = await store.document_of(conn, UUID(invoice_id))
        profile = self.settings.validation_profile
        outcome = assess(content, profile, self.settings.buyer_siret)
        status, reasons, invoice = outcome.status, list(outcome.reasons), outcome.invoice
        key = business_key(invoice) if invoice is not None and status != "to_recycle" else None
        if key is not None:
            # Two documents with one key decided at once: the second waits here for the first.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"invoice-key:{key}"))
            holder = await store.holder_of(conn, key)
            if holder is not None:
                status, key = "rejected", None
                reasons = [duplicate_reason(invoice, holder["invoice_id"], holder["received_at"]), *reasons]
        now = self.clock.now()
        canonical = invoice.model_dump(mode="json") if invoice is not None else None
        deadline = self.deadline_of(row["received_at"]) if status == "validated" else None
        await store.record_decision(
            conn, invoice_id, status=status, profile=profile, business_key=key, canonical=canonical,
            reasons=[r.model_dump() for r in reasons], warnings=[w.model_dump() for w in outcome.warnings],
            decided_at=now, deadline=deadline,
        )
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
        envelope = new_envelope(event, producer=SERVICE, actor="intake", clock=self.clock, caused_by=received)
        await append(conn, self.settings.topic(event.topic), envelope)
        # Counted here, once per invoice, where the format is known; the channel is the receipt's.
        on_commit(partial(metrics.count_decision, received.payload.get("channel", "unknown"),
                          invoice.format if invoice is not None else None, status, reasons))
        with bind_event(envelope):
            log.info("intake decision", status=status, rules=[r.rule for r in reasons][:20])
        return status
