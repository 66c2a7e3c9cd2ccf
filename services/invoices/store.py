"""SQL for the invoices schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg
import orjson

from shared.events.contracts import ContractNotified
from shared.events.invoices import InvoiceReceived, PaymentDeadline


async def upsert_contract_ref(conn: asyncpg.Connection, contract: ContractNotified, event_id: UUID) -> None:
    await conn.execute(
        """INSERT INTO contract_refs (contract_id, supplier_siret, amount_ttc, notified_on,
               engagement_numbers, source_event_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (contract_id) DO UPDATE SET supplier_siret = EXCLUDED.supplier_siret,
               amount_ttc = EXCLUDED.amount_ttc, notified_on = EXCLUDED.notified_on,
               engagement_numbers = EXCLUDED.engagement_numbers,
               source_event_id = EXCLUDED.source_event_id""",
        contract.contract_id, contract.supplier_siret, contract.amount_ttc, contract.notified_on,
        contract.engagement_numbers, event_id,
    )


async def invoices_by_sha256(conn: asyncpg.Connection, sha256s: list[str]) -> dict[str, asyncpg.Record]:
    if not sha256s:
        return {}
    rows = await conn.fetch(
        "SELECT document_sha256, invoice_id, status FROM invoices WHERE document_sha256 = ANY($1::text[])", sha256s)
    return {row["document_sha256"]: row for row in rows}


async def insert_received_all(conn: asyncpg.Connection,
                              received: list[tuple[InvoiceReceived, bytes, str]]) -> set[str]:
    """Stores ``(event, bytes, submitted by)`` documents with their invoices (one statement,
    the bytes of one document given once); the SHA-256 of those stored now, the others being
    stored already."""
    if not received:
        return set()
    rows = await conn.fetch(
        "WITH arrived AS (SELECT * FROM unnest($1::text[], $2::bytea[], $3::int[], $4::timestamptz[], $5::uuid[], "
        "                 $6::text[], $7::text[], $8::text[]) "
        "                 AS a (sha256, content, size_bytes, received_at, invoice_id, channel, source, submitted_by)), "
        "document AS (INSERT INTO documents (sha256, content, size_bytes, stored_at) "
        "             SELECT sha256, content, size_bytes, received_at FROM arrived "
        "             ON CONFLICT (sha256) DO NOTHING RETURNING sha256) "
        "INSERT INTO invoices (invoice_id, document_sha256, channel, source, received_at, status, submitted_by) "
        "SELECT a.invoice_id, a.sha256, a.channel, a.source, a.received_at, 'received', a.submitted_by "
        "FROM arrived a JOIN document d USING (sha256) RETURNING document_sha256",
        [e.sha256 for e, _, _ in received], [content for _, content, _ in received],
        [e.size_bytes for e, _, _ in received], [e.received_at for e, _, _ in received],
        [UUID(e.invoice_id) for e, _, _ in received], [e.channel for e, _, _ in received],
        [e.source for e, _, _ in received], [actor for _, _, actor in received],
    )
    return {row["document_sha256"] for row in rows}


async def lock_for_decision(conn: asyncpg.Connection, invoice_ids: list[str]) -> dict[str, asyncpg.Record]:
    """Locks the invoices (in id order, as every batch does) for their intake decision."""
    # Without the document: once decided (the usual case when an InvoiceReceived is read back)
    # its bytes are not needed.
    rows = await conn.fetch(
        "SELECT invoice_id, status, received_at FROM invoices WHERE invoice_id = ANY($1::uuid[]) "
        "ORDER BY invoice_id FOR UPDATE",
        [UUID(invoice_id) for invoice_id in invoice_ids],
    )
    return {str(row["invoice_id"]): row for row in rows}


async def lock_keys(conn: asyncpg.Connection, keys: list[int]) -> None:
    """Transaction advisory locks on ``keys``, taken in ascending order (no deadlock)."""
    if keys:
        await conn.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) keys",
            keys)


async def holders_of(conn: asyncpg.Connection, business_keys: list[str]) -> dict[str, dict]:
    if not business_keys:
        return {}
    rows = await conn.fetch(
        "SELECT business_key, invoice_id, received_at FROM invoices WHERE business_key = ANY($1::text[])",
        business_keys)
    return {row["business_key"]: dict(row) for row in rows}


@dataclass(frozen=True)
class Decision:
    invoice_id: str
    status: str
    profile: str
    business_key: str | None
    canonical: dict | None
    reasons: list[dict]
    warnings: list[dict]
    decided_at: datetime
    deadline: PaymentDeadline | None


async def record_decisions(conn: asyncpg.Connection, decisions: list[Decision]) -> None:
    await conn.executemany(
        """UPDATE invoices SET status = $2, profile = $3, business_key = $4, canonical = $5,
               reasons = $6, warnings = $7, decided_at = $8, format = $9, number = $10,
               seller_siret = $11, issue_date = $12, buyer_type = $13, dgp_start = $14,
               legal_due = $15, ordonnateur_due = $16, target_due = $17
           WHERE invoice_id = $1""",
        [_decision_values(d) for d in decisions],
    )


def _decision_values(decision: Decision) -> tuple:
    invoice = decision.canonical or {}
    deadline = decision.deadline
    return (
        UUID(decision.invoice_id), decision.status, decision.profile, decision.business_key,
        orjson.dumps(decision.canonical).decode() if decision.canonical is not None else None,
        json.dumps(decision.reasons), json.dumps(decision.warnings), decision.decided_at,
        invoice.get("format"), invoice.get("number"),
        (invoice.get("seller") or {}).get("siret"),
        date.fromisoformat(invoice["issue_date"]) if invoice.get("issue_date") else None,
        deadline.buyer_type if deadline else None, deadline.dgp_start if deadline else None,
        deadline.legal_due if deadline else None, deadline.ordonnateur_due if deadline else None,
        deadline.target_due if deadline else None,
    )


async def find_invoice(conn: asyncpg.Connection, invoice_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT invoice_id, document_sha256, channel, source, received_at, status, profile, format, "
        "number, seller_siret, issue_date, reasons, warnings, decided_at, buyer_type, dgp_start, "
        "legal_due, ordonnateur_due, target_due, submitted_by, service_done_on, service_done_by, "
        "approved_by, interrupted_on, interruption_reason, missing_items, completed_on, refusal_reason, "
        "approval_waits_for, payment_order_id, payment_ordered_on, paid_on, paid_amount, paid_days_late, "
        "payment_failure "
        "FROM invoices WHERE invoice_id = $1",
        invoice_id,
    )


async def document_of(conn: asyncpg.Connection, invoice_id: UUID) -> bytes | None:
    return await conn.fetchval(
        "SELECT d.content FROM invoices i JOIN documents d ON d.sha256 = i.document_sha256 "
        "WHERE i.invoice_id = $1", invoice_id,
    )


async def documents_of(conn: asyncpg.Connection, invoice_ids: list[UUID]) -> dict[str, bytes]:
    rows = await conn.fetch(
        "SELECT i.invoice_id, d.content FROM invoices i JOIN documents d ON d.sha256 = i.document_sha256 "
        "WHERE i.invoice_id = ANY($1::uuid[])", invoice_ids)
    return {str(row["invoice_id"]): row["content"] for row in rows}


# What the workflow reads of an invoice it acts on: its state, and the canonical invoice without
# its lines and VAT breakdown (the amounts, parties and references an approval needs).
WORKFLOW_COLUMNS = (
    "invoice_id, status, received_at, submitted_by, buyer_type, service_done_on, service_done_by, "
    "interrupted_on, interruption_reason, missing_items, completed_on, refusal_reason, "
    "canonical - 'lines' - 'vat_breakdown' AS canonical")


async def lock_invoice(conn: asyncpg.Connection, invoice_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {WORKFLOW_COLUMNS} FROM invoices WHERE invoice_id = $1 FOR UPDATE",
                               invoice_id)


async def lock_invoices(conn: asyncpg.Connection, invoice_ids: list[UUID]) -> list[asyncpg.Record]:
    """Locks the invoices in id order (every batch takes its locks in this order: two batches
    sharing invoices cannot deadlock)."""
    return await conn.fetch(
        f"SELECT {WORKFLOW_COLUMNS} FROM invoices WHERE invoice_id = ANY($1::uuid[]) ORDER BY invoice_id FOR UPDATE",
        invoice_ids)


async def save_workflow(conn: asyncpg.Connection, invoice_id: UUID, changes: dict) -> None:
    """Writes the given workflow columns (names come from the workflow module, never from input)."""
    await save_workflow_all(conn, [(invoice_id, changes)])


async def save_workflow_all(conn: asyncpg.Connection, changes: list[tuple[UUID, dict]]) -> None:
    """Writes each invoice's workflow columns: one pipelined round trip per set of columns
    (names come from the workflow module, never from input)."""
    shapes: dict[tuple[str, ...], list[tuple]] = {}
    for invoice_id, columns in changes:
        shapes.setdefault(tuple(columns), []).append((invoice_id, *columns.values()))
    for columns, rows in shapes.items():
        assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(columns, start=2))
        await conn.executemany(f"UPDATE invoices SET {assignments} WHERE invoice_id = $1", rows)


async def list_invoices(conn: asyncpg.Connection, *, status: str | None, seller_siret: str | None,
                        due_before: date | None, limit: int, offset: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT invoice_id, status, channel, number, seller_siret, received_at, legal_due, target_due,
                  (canonical -> 'totals' ->> 'payable') AS payable
           FROM invoices
           WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR seller_siret = $2)
             AND ($3::date IS NULL OR legal_due <= $3)
           ORDER BY legal_due NULLS LAST, received_at, invoice_id
           LIMIT $4 OFFSET $5""",
        status, seller_siret, due_before, limit, offset,
    )


async def timeline(conn: asyncpg.Connection, invoice_id: UUID) -> list[asyncpg.Record]:
    """Every event this service emitted about the invoice, in order (the outbox keeps them)."""
    return await conn.fetch(
        "SELECT body FROM outbox WHERE msg_key = $1 ORDER BY id", str(invoice_id))
