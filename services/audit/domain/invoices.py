"""Invoices' current states rebuilt from their recorded events alone, and the differences with
the invoices service's own table (pure: the caller reads both).

The rebuild follows the lifecycle the events describe (received → validated | to_recycle |
rejected → service_done → approved → payment_ordered → paid, with interrupted → completed and
refused) and the columns each event settles. Columns no event carries (the intake decision time,
the approval time, why an automatic approval waits) are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping
from uuid import UUID

from services.audit.domain.record import AuditRecord

COMPARED = (
    "status", "channel", "source", "received_at", "submitted_by", "profile", "number", "seller_siret",
    "buyer_type", "dgp_start", "legal_due", "ordonnateur_due", "target_due", "service_done_on",
    "service_done_by", "approved_by", "interrupted_on", "interruption_reason", "missing_items",
    "completed_on", "refusal_reason", "refused_by",
)
_DEADLINE = ("buyer_type", "dgp_start", "legal_due", "ordonnateur_due", "target_due")


def _deadline(payload: dict) -> dict:
    deadline = payload.get("deadline")
    if not isinstance(deadline, dict):
        return {}
    return {name: deadline.get(name) for name in _DEADLINE}


def _apply(state: dict, record: AuditRecord) -> None:
    payload: dict = record.payload if isinstance(record.payload, dict) else {}
    kind = record.event_type
    if kind == "InvoiceReceived":
        state.update(status="received", channel=payload.get("channel"), source=payload.get("source"),
                     received_at=payload.get("received_at"), submitted_by=record.actor)
    elif kind == "InvoiceValidated":
        invoice = payload.get("invoice") or {}
        state.update(status="validated", profile=payload.get("profile"), number=invoice.get("number"),
                     seller_siret=(invoice.get("seller") or {}).get("siret"), **_deadline(payload))
    elif kind == "InvoiceRejected":
        state.update(status="to_recycle" if payload.get("status") == "A_RECYCLER" else "rejected",
                     profile=payload.get("profile"), number=payload.get("number"),
                     seller_siret=payload.get("seller_siret"))
    elif kind == "ServiceDoneRecorded":
        state.update(status="service_done", service_done_on=payload.get("service_done_on"),
                     service_done_by=record.actor, **_deadline(payload))
    elif kind == "InvoiceApproved":
        state.update(status="approved", approved_by=record.actor)
    elif kind == "InvoiceInterrupted":
        # R2192-27: the delay stops; its start stays, its due dates are gone until completion.
        state.update(status="interrupted", interrupted_on=payload.get("notified_on"),
                     interruption_reason=payload.get("reason"), missing_items=payload.get("missing_items"),
                     legal_due=None, ordonnateur_due=None, target_due=None)
    elif kind == "InvoiceCompleted":
        state.update(status="completed", completed_on=payload.get("completed_on"), **_deadline(payload))
    elif kind == "InvoiceRefused":
        state.update(status="refused", refusal_reason=payload.get("reason"), refused_by=record.actor)
    elif kind == "PaymentOrdered":
        state.update(status="payment_ordered")
    elif kind == "PaymentExecuted":
        state.update(status="paid")


def _invoice_of(record: AuditRecord) -> str | None:
    if record.aggregate_type == "invoice":
        return record.aggregate_id
    payload = record.payload if isinstance(record.payload, dict) else {}
    if record.event_type in ("PaymentOrdered", "PaymentExecuted") and payload.get("kind") == "invoice":
        return payload.get("invoice_id")
    return None


def apply_event(states: dict[str, dict[str, Any]], record: AuditRecord) -> None:
    """Moves the state of the invoice ``record`` is about (if any) by that event."""
    if record.kind != "event":
        return
    invoice_id = _invoice_of(record)
    if invoice_id:
        _apply(states.setdefault(invoice_id, {}), record)


def rebuild(records: Iterable[AuditRecord]) -> dict[str, dict[str, Any]]:
    """Each invoice's columns as its events leave them. ``records``: the recorded events, each
    invoice's in the order they were published (a chain's order; one invoice is one partition)."""
    states: dict[str, dict[str, Any]] = {}
    for record in records:
        apply_event(states, record)
    return states


def normal(value: Any) -> Any:
    """One spelling per value on both sides: ISO dates, UTC instants, strings, lists."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [normal(item) for item in value]
    return value


def _normal_field(name: str, value: Any) -> Any:
    if name == "missing_items":
        return normal(value) or []
    if name == "received_at" and isinstance(value, str):
        try:
            return normal(datetime.fromisoformat(value))
        except ValueError:
            return value
    return normal(value)


@dataclass(frozen=True)
class Difference:
    invoice_id: str
    field: str
    from_events: Any
    in_table: Any

    def as_dict(self) -> dict:
        return {"invoice_id": self.invoice_id, "field": self.field, "from_events": self.from_events,
                "in_table": self.in_table}


def differences(rebuilt: Mapping[str, Mapping[str, Any]],
                live: Mapping[str, Mapping[str, Any]]) -> list[Difference]:
    """Every compared column where the table says other than the events, and the invoices only
    one side knows (field ``(invoice)``)."""
    found: list[Difference] = []
    for invoice_id in sorted(set(rebuilt) | set(live)):
        events, row = rebuilt.get(invoice_id), live.get(invoice_id)
        if row is None:
            found.append(Difference(invoice_id, "(invoice)", events.get("status"), None))
            continue
        if events is None:
            found.append(Difference(invoice_id, "(invoice)", None, row.get("status")))
            continue
        for name in COMPARED:
            expected, actual = _normal_field(name, events.get(name)), _normal_field(name, row.get(name))
            if expected != actual:
                found.append(Difference(invoice_id, name, expected, actual))
    return found
