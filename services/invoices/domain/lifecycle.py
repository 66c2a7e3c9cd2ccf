"""The life of an invoice after intake: which action is allowed in which state, and what the
state reads as in Chorus Pro (statutFacture) and in the 2026 life-cycle codes (200…213).

received → validated → service_done → approved (« mandatée », the payment order)
         → payment_ordered → paid; side states: to_recycle, rejected (intake), interrupted →
completed (R2192-27…29), refused (the buyer's business refusal, with its reason).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import NamedTuple


class State(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    TO_RECYCLE = "to_recycle"
    REJECTED = "rejected"
    SERVICE_DONE = "service_done"
    APPROVED = "approved"
    PAYMENT_ORDERED = "payment_ordered"
    PAID = "paid"
    INTERRUPTED = "interrupted"
    COMPLETED = "completed"
    REFUSED = "refused"


class PublicStatus(NamedTuple):
    chorus: str
    lifecycle_code: int
    label: str


# Suggested mapping of domain-rules.md §4.2; 213 is the platform's conformity refusal (both
# intake refusals), 210 the buyer's business refusal.
PUBLIC_STATUS: dict[State, PublicStatus] = {
    State.RECEIVED: PublicStatus("DEPOSEE", 200, "Déposée"),
    State.VALIDATED: PublicStatus("MISE_A_DISPOSITION", 203, "Mise à disposition"),
    State.TO_RECYCLE: PublicStatus("A_RECYCLER", 213, "À recycler"),
    State.REJECTED: PublicStatus("REJETEE", 213, "Rejetée"),
    State.SERVICE_DONE: PublicStatus("SERVICE_FAIT", 204, "Prise en charge"),
    State.APPROVED: PublicStatus("MANDATEE", 205, "Approuvée"),
    State.PAYMENT_ORDERED: PublicStatus("MISE_A_DISPOSITION_COMPTABLE", 205, "Approuvée"),
    State.PAID: PublicStatus("MISE_EN_PAIEMENT", 211, "Paiement transmis"),
    State.INTERRUPTED: PublicStatus("SUSPENDUE", 208, "Suspendue"),
    State.COMPLETED: PublicStatus("COMPLETEE", 209, "Complétée"),
    State.REFUSED: PublicStatus("REJETEE", 210, "Refusée"),
}

UNPAID_TERMINAL = frozenset({State.TO_RECYCLE, State.REJECTED, State.REFUSED})


class IllegalTransition(Exception):
    """The action is not allowed now; the message names the invoice's state and what would be."""


@dataclass(frozen=True)
class Invoice:
    invoice_id: str
    state: State
    received_on: date
    service_done_on: date | None = None
    interrupted_on: date | None = None
    completed_on: date | None = None
    interruption_reason: str | None = None
    missing_items: tuple[str, ...] = ()
    refusal_reason: str | None = None


def _require(invoice: Invoice, action: str, allowed: set[State]) -> None:
    if invoice.state not in allowed:
        wanted = " or ".join(sorted(s.value for s in allowed))
        raise IllegalTransition(
            f"cannot {action} invoice {invoice.invoice_id}: it is {invoice.state.value!r}, "
            f"and {action} needs {wanted}")


def record_service_done(invoice: Invoice, on: date) -> Invoice:
    """« Service fait »: the buyer certifies the goods or services were delivered."""
    _require(invoice, "record the service done of", {State.VALIDATED, State.COMPLETED})
    return replace(invoice, state=State.SERVICE_DONE, service_done_on=on)


def approve(invoice: Invoice) -> Invoice:
    """The ordonnateur's payment order (« mandat »): only once the service is done."""
    if invoice.state is State.COMPLETED and invoice.service_done_on is not None:
        return replace(invoice, state=State.APPROVED)
    _require(invoice, "approve", {State.SERVICE_DONE})
    return replace(invoice, state=State.APPROVED)


def interrupt(invoice: Invoice, on: date, reason: str, missing_items: list[str]) -> Invoice:
    """R2192-27: once only, before the payment order, with the reasons and the pieces to send."""
    if invoice.interrupted_on is not None:
        raise IllegalTransition(
            f"cannot interrupt invoice {invoice.invoice_id} again: R2192-27 allows one interruption "
            f"and it was interrupted on {invoice.interrupted_on}")
    _require(invoice, "interrupt", {State.VALIDATED, State.SERVICE_DONE})
    if not reason.strip() or not [item for item in missing_items if item.strip()]:
        raise IllegalTransition("R2192-28: an interruption states its reason and the pieces to send")
    return replace(invoice, state=State.INTERRUPTED, interrupted_on=on, interruption_reason=reason,
                   missing_items=tuple(item.strip() for item in missing_items if item.strip()))


def complete(invoice: Invoice, on: date) -> Invoice:
    """R2192-29: every missing piece received; a new delay starts."""
    _require(invoice, "complete", {State.INTERRUPTED})
    if on < invoice.interrupted_on:
        raise IllegalTransition(
            f"invoice {invoice.invoice_id} cannot be completed on {on}, before its interruption "
            f"on {invoice.interrupted_on}")
    return replace(invoice, state=State.COMPLETED, completed_on=on)


def refuse(invoice: Invoice, reason: str) -> Invoice:
    """The buyer's business refusal (life-cycle 210): a reason is mandatory."""
    _require(invoice, "refuse", {State.VALIDATED, State.SERVICE_DONE, State.INTERRUPTED, State.COMPLETED})
    if not reason.strip():
        raise IllegalTransition("a refusal states its reason (life-cycle status 210 requires one)")
    return replace(invoice, state=State.REFUSED, refusal_reason=reason.strip())


def order_payment(invoice: Invoice) -> Invoice:
    """The payment order left for the public accountant (or the bank)."""
    _require(invoice, "order the payment of", {State.APPROVED})
    return replace(invoice, state=State.PAYMENT_ORDERED)


def payment_failed(invoice: Invoice) -> Invoice:
    """The accountant or the bank rejected the order: the invoice waits, approved, for a new one."""
    _require(invoice, "record the failed payment of", {State.PAYMENT_ORDERED})
    return replace(invoice, state=State.APPROVED)


def record_payment(invoice: Invoice) -> Invoice:
    """« Mise en paiement »: the legal delay ends."""
    _require(invoice, "record the payment of", {State.PAYMENT_ORDERED})
    return replace(invoice, state=State.PAID)
