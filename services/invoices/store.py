"""SQL for the invoices schema."""

from __future__ import annotations

import json
from datetime import date
from uuid import UUID

import asyncpg

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


async def invoice_by_sha256(conn: asyncpg.Connection, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT invoice_id, status FROM invoices WHERE document_sha256 = $1", sha256)


async def insert_received(conn: asyncpg.Connection, event: InvoiceReceived, content: bytes, *,
                          submitted_by: str) -> bool:
    """Stores the document and its invoice (one statement); False when the same document is
    already stored."""
    stored = await conn.execute(
        "WITH document AS (INSERT INTO documents (sha256, content, size_bytes, stored_at) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING RETURNING sha256) "
        "INSERT INTO invoices (invoice_id, document_sha256, channel, source, received_at, status, submitted_by) "
        "SELECT $5, sha256, $6, $7, $4, 'received', $8 FROM document",
        event.sha256, content, event.size_bytes, event.received_at,
        UUID(event.invoice_id), event.channel, event.source, submitted_by,
    )
    return stored.endswith(" 1")


async def lock_for_decision(conn: asyncpg.Connection, invoice_id: str) -> asyncpg.Record | None:
    # Without the document: once decided (the usual case when an InvoiceReceived is read back)
    # its bytes are not needed.
    return await conn.fetchrow(
        "SELECT invoice_id, status, received_at FROM invoices WHERE invoice_id = $1 FOR UPDATE",
        UUID(invoice_id),
    )


async def holder_of(conn: asyncpg.Connection, business_key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT invoice_id, received_at FROM invoices WHERE business_key = $1", business_key
    )


async def record_decision(
    conn: asyncpg.Connection, invoice_id: str, *, status: str, profile: str, business_key: str | None,
    canonical: dict | None, reasons: list[dict], warnings: list[dict], decided_at,
    deadline: PaymentDeadline | None = None,
) -> None:
    invoice = canonical or {}
    await conn.execute(
        """UPDATE invoices SET status = $2, profile = $3, business_key = $4, canonical = $5,
               reasons = $6, warnings = $7, decided_at = $8, format = $9, number = $10,
               seller_siret = $11, issue_date = $12, buyer_type = $13, dgp_start = $14,
               legal_due = $15, ordonnateur_due = $16, target_due = $17
           WHERE invoice_id = $1""",
        UUID(invoice_id), status, profile, business_key,
        json.dumps(canonical) if canonical is not None else None,
        json.dumps(reasons), json.dumps(warnings), decided_at,
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


async def lock_invoice(conn: asyncpg.Connection, invoice_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM invoices WHERE invoice_id = $1 FOR UPDATE", invoice_id)


async def save_workflow(conn: asyncpg.Connection, invoice_id: UUID, changes: dict) -> None:
    """Writes the given workflow columns (names come from the workflow module, never from input)."""
    columns = list(changes)
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(columns, start=2))
    await conn.execute(f"UPDATE invoices SET {assignments} WHERE invoice_id = $1",
                       invoice_id, *(changes[c] for c in columns))


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
