"""SQL for the payments schema."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from services.payments.domain.payables import Payable, Payee, Placement

PAYABLE_FIELDS = ("payable_id", "kind", "invoice_id", "contract_id", "supplier_siret", "payee_name", "payee_iban",
                  "gross_amount", "deduction", "amount", "remittance", "dgp_start", "legal_due",
                  "ordonnateur_due", "target_due")


# -- payees -------------------------------------------------------------------------------------

async def save_payee(conn: asyncpg.Connection, siret: str, *, name: str | None, iban: str | None,
                     at: datetime, event_id) -> None:
    """Registers a supplier's account, or changes its name or IBAN (an omitted value is kept)."""
    await conn.execute(
        """INSERT INTO payees (siret, name, iban, updated_at, source_event_id)
           VALUES ($1, coalesce($2, $1), coalesce($3, ''), $4, $5)
           ON CONFLICT (siret) DO UPDATE SET name = coalesce($2, payees.name),
               iban = coalesce($3, payees.iban), updated_at = $4, source_event_id = $5""",
        siret, name, iban, at, event_id)


async def find_payee(conn: asyncpg.Connection, siret: str | None) -> Payee | None:
    if not siret:
        return None
    row = await conn.fetchrow("SELECT siret, name, iban FROM payees WHERE siret = $1 AND iban <> ''", siret)
    return Payee(row["siret"], row["name"], row["iban"]) if row else None


async def find_payees(conn: asyncpg.Connection, sirets: list[str]) -> dict[str, Payee]:
    """``find_payee`` for many suppliers in one query: the registered accounts by SIRET."""
    rows = await conn.fetch("SELECT siret, name, iban FROM payees WHERE siret = ANY($1::text[]) AND iban <> ''", sirets)
    return {row["siret"]: Payee(row["siret"], row["name"], row["iban"]) for row in rows}


# -- the approval / recovery join ---------------------------------------------------------------

async def lock_joins(conn: asyncpg.Connection, invoice_ids: list[str], at: datetime) -> dict[str, asyncpg.Record]:
    """The halves of the invoices' joins as they stand, each row locked, in the order given; a
    row is created empty where none exists yet (``join_invoices`` fills it in the same
    transaction). Rows are locked in one pass, in the order every consumer of the join uses,
    so that two transactions sharing invoices wait for each other instead of deadlocking."""
    rows = await conn.fetch(
        """INSERT INTO invoice_approvals (invoice_id, updated_at)
           SELECT invoice_id, $2 FROM unnest($1::text[]) AS invoice_id
           ON CONFLICT (invoice_id) DO UPDATE SET updated_at = invoice_approvals.updated_at
           RETURNING invoice_id, approved, approved_envelope, recovery""",
        invoice_ids, at)
    return {row["invoice_id"]: row for row in rows}


async def join_invoices(conn: asyncpg.Connection, halves: list[tuple[str, dict | None, dict | None, dict | None]],
                        at: datetime) -> dict[str, asyncpg.Record]:
    """Stores the halves of many invoices' joins in one statement: each ``(invoice_id,
    approved, approved_envelope, recovery)`` (one per invoice, in lock order, None for a half it
    does not bring) is kept beside the half already there, and both halves of every invoice are
    returned, the rows locked."""
    rows = await conn.fetch(
        """INSERT INTO invoice_approvals (invoice_id, approved, approved_envelope, recovery, updated_at)
           SELECT h.invoice_id, h.approved::jsonb, h.approved_envelope::jsonb, h.recovery::jsonb, $5
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                AS h(invoice_id, approved, approved_envelope, recovery)
           ON CONFLICT (invoice_id) DO UPDATE SET
               approved = coalesce(EXCLUDED.approved, invoice_approvals.approved),
               approved_envelope = coalesce(EXCLUDED.approved_envelope, invoice_approvals.approved_envelope),
               recovery = coalesce(EXCLUDED.recovery, invoice_approvals.recovery),
               updated_at = EXCLUDED.updated_at
           RETURNING invoice_id, approved, approved_envelope, recovery""",
        [h[0] for h in halves], [_json(h[1]) for h in halves], [_json(h[2]) for h in halves],
        [_json(h[3]) for h in halves], at)
    return {row["invoice_id"]: row for row in rows}


# -- payables -----------------------------------------------------------------------------------

async def insert_payable(conn: asyncpg.Connection, payable: Payable, placement: Placement, *,
                         correlation_id: str, cause: dict, created_at: datetime) -> bool:
    """Creates the payable; False when it exists already (the same sum is never owed twice)."""
    status = await conn.execute(
        """INSERT INTO payables (payable_id, kind, invoice_id, contract_id, supplier_siret, payee_name,
               payee_iban, gross_amount, deduction, amount, remittance, dgp_start, legal_due,
               ordonnateur_due, target_due, order_on, urgent, status, hold_reason, correlation_id,
               cause, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                   $20, $21::jsonb, $22)
           ON CONFLICT (payable_id) DO NOTHING""",
        *(getattr(payable, f) for f in PAYABLE_FIELDS), placement.order_on, placement.urgent,
        placement.status, placement.hold_reason, correlation_id, json.dumps(cause), created_at)
    return status.endswith(" 1")


async def insert_payables(conn: asyncpg.Connection, payables: list[tuple[Payable, Placement, dict]],
                          created_at: datetime) -> set[str]:
    """``insert_payable`` for many ``(payable, placement, cause)`` in one statement; returns the
    payables created (one that exists already is left as it is)."""
    columns = [[getattr(payable, f) for payable, _, _ in payables] for f in PAYABLE_FIELDS]
    created = await conn.fetchval(
        """WITH created AS (
               INSERT INTO payables (payable_id, kind, invoice_id, contract_id, supplier_siret, payee_name,
                   payee_iban, gross_amount, deduction, amount, remittance, dgp_start, legal_due,
                   ordonnateur_due, target_due, order_on, urgent, status, hold_reason, correlation_id,
                   cause, created_at)
               SELECT p.payable_id, p.kind, p.invoice_id, p.contract_id, p.supplier_siret, p.payee_name,
                      p.payee_iban, p.gross_amount, p.deduction, p.amount, p.remittance, p.dgp_start,
                      p.legal_due, p.ordonnateur_due, p.target_due, p.order_on, p.urgent, p.status,
                      p.hold_reason, p.correlation_id, p.cause::jsonb, $22
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                           $8::numeric[], $9::numeric[], $10::numeric[], $11::text[], $12::date[], $13::date[],
                           $14::date[], $15::date[], $16::date[], $17::boolean[], $18::text[], $19::text[],
                           $20::text[], $21::text[])
                    AS p(payable_id, kind, invoice_id, contract_id, supplier_siret, payee_name, payee_iban,
                         gross_amount, deduction, amount, remittance, dgp_start, legal_due, ordonnateur_due,
                         target_due, order_on, urgent, status, hold_reason, correlation_id, cause)
               ON CONFLICT (payable_id) DO NOTHING
               RETURNING payable_id)
           SELECT coalesce(array_agg(payable_id), '{}') FROM created""",
        *columns,
        [placement.order_on for _, placement, _ in payables], [placement.urgent for _, placement, _ in payables],
        [placement.status for _, placement, _ in payables], [placement.hold_reason for _, placement, _ in payables],
        [cause["correlation_id"] for _, _, cause in payables], [json.dumps(cause) for _, _, cause in payables],
        created_at)
    return set(created)


def payable_of(row: asyncpg.Record) -> Payable:
    return Payable(**{f: row[f] for f in PAYABLE_FIELDS}, hold_reason=row["hold_reason"])


async def lock_payable(conn: asyncpg.Connection, payable_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payables WHERE payable_id = $1 FOR UPDATE", payable_id)


async def held_for_payee(conn: asyncpg.Connection, siret: str) -> list[asyncpg.Record]:
    """The payables held because the supplier's account was missing or refused, locked."""
    return await conn.fetch(
        """SELECT * FROM payables WHERE supplier_siret = $1 AND status = 'on_hold'
               AND (payee_iban IS NULL OR hold_reason LIKE 'payment failed%')
           ORDER BY payable_id FOR UPDATE""", siret)


async def place_payable(conn: asyncpg.Connection, payable_id: str, placement: Placement, *,
                        payee_iban: str | None = None, payee_name: str | None = None) -> None:
    await conn.execute(
        """UPDATE payables SET status = $2, order_on = $3, urgent = $4, hold_reason = $5,
               payee_iban = coalesce($6, payee_iban), payee_name = coalesce($7, payee_name)
           WHERE payable_id = $1""",
        payable_id, placement.status, placement.order_on, placement.urgent, placement.hold_reason,
        payee_iban, payee_name)


async def to_order(conn: asyncpg.Connection, today: date, *, urgent_only: bool) -> list[asyncpg.Record]:
    """The payables a run orders, locked, in a stable order: every scheduled one (a run is the
    earliest run for all of them), or only those that cannot wait for the next run."""
    return await conn.fetch(
        """SELECT * FROM payables WHERE status = 'scheduled' AND ($2 = false OR (urgent AND order_on <= $1))
           ORDER BY payable_id FOR UPDATE""", today, urgent_only)


async def list_payables(conn: asyncpg.Connection, *, status: str | None, kind: str | None,
                        limit: int, offset: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT payable_id, kind, invoice_id, contract_id, supplier_siret, gross_amount, deduction, amount,
                  dgp_start, legal_due, target_due, order_on, urgent, status, hold_reason, attempts, executed_on
           FROM payables WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR kind = $2)
           ORDER BY created_at, payable_id LIMIT $3 OFFSET $4""", status, kind, limit, offset)


async def find_payable(conn: asyncpg.Connection, payable_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payables WHERE payable_id = $1", payable_id)


async def orders_of(conn: asyncpg.Connection, payable_id: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM payment_orders WHERE payable_id = $1 ORDER BY attempt", payable_id)


# -- runs, batches, orders ------------------------------------------------------------------------

async def claim_run_day(conn: asyncpg.Connection, run_date: date, at: datetime) -> bool:
    status = await conn.execute(
        "INSERT INTO payment_runs (run_date, started_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", run_date, at)
    return status.endswith(" 1")


async def next_sequence(conn: asyncpg.Connection, run_date: date, channel: str) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(sequence), 0) + 1 FROM payment_batches WHERE run_date = $1 AND channel = $2",
        run_date, channel)


async def insert_batch(conn: asyncpg.Connection, *, batch_id: str, run_date: date, channel: str, sequence: int,
                       created_at: datetime, execution_date: date, file_name: str, content: bytes, sha256: str,
                       order_count: int, total: Decimal, triggered_by: str) -> None:
    await conn.execute(
        """INSERT INTO payment_batches (batch_id, run_date, channel, sequence, created_at, execution_date,
               file_name, content, sha256, order_count, total, triggered_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
        batch_id, run_date, channel, sequence, created_at, execution_date, file_name, content, sha256,
        order_count, total, triggered_by)


async def insert_order(conn: asyncpg.Connection, *, order_id: str, payable_id: str, attempt: int, batch_id: str,
                       channel: str, amount: Decimal, payee_iban: str | None, ordered_on: date,
                       status: str = "ordered", executed_on: date | None = None) -> None:
    await conn.execute(
        """INSERT INTO payment_orders (order_id, payable_id, attempt, batch_id, channel, amount, payee_iban,
               ordered_on, status, executed_on)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        order_id, payable_id, attempt, batch_id, channel, amount, payee_iban, ordered_on, status, executed_on)


async def mark_all_ordered(conn: asyncpg.Connection, payable_ids: list[str]) -> dict[str, int]:
    """``mark_ordered`` for several payables in one statement: the attempt number of each."""
    return dict(await conn.fetch(
        "UPDATE payables SET status = 'ordered', attempts = attempts + 1 WHERE payable_id = ANY($1::text[]) "
        "RETURNING payable_id, attempts", payable_ids))


async def insert_orders(conn: asyncpg.Connection, orders: list[dict]) -> None:
    """``insert_order`` for several orders, pipelined in one round trip."""
    await conn.executemany(
        """INSERT INTO payment_orders (order_id, payable_id, attempt, batch_id, channel, amount, payee_iban,
               ordered_on, status, executed_on)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'ordered', NULL)""",
        [(o["order_id"], o["payable_id"], o["attempt"], o["batch_id"], o["channel"], o["amount"], o["payee_iban"],
          o["ordered_on"]) for o in orders])


async def mark_ordered(conn: asyncpg.Connection, payable_id: str) -> int:
    return await conn.fetchval(
        "UPDATE payables SET status = 'ordered', attempts = attempts + 1 WHERE payable_id = $1 RETURNING attempts",
        payable_id)


async def undispatched_batches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT batch_id, file_name, content FROM payment_batches WHERE dispatched_at IS NULL ORDER BY batch_id")


async def mark_dispatched(conn: asyncpg.Connection, batch_id: str, at: datetime) -> None:
    await conn.execute("UPDATE payment_batches SET dispatched_at = $2 WHERE batch_id = $1", batch_id, at)


async def find_batch(conn: asyncpg.Connection, batch_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payment_batches WHERE batch_id = $1", batch_id)


async def list_batches(conn: asyncpg.Connection, *, since: date | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT batch_id, run_date, channel, sequence, created_at, execution_date, file_name, sha256,
                  order_count, total, triggered_by, dispatched_at
           FROM payment_batches WHERE ($1::date IS NULL OR run_date >= $1)
           ORDER BY run_date, channel, sequence LIMIT $2""", since, limit)


# -- confirmations ------------------------------------------------------------------------------

async def find_confirmation_file(conn: asyncpg.Connection, sha256: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT sha256, error, report FROM confirmation_files WHERE sha256 = $1", sha256)


async def insert_confirmation_file(conn: asyncpg.Connection, *, sha256: str, content: bytes, source: str,
                                   received_at: datetime, received_by: str, error: str | None) -> bool:
    status = await conn.execute(
        """INSERT INTO confirmation_files (sha256, content, source, received_at, received_by, error)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        sha256, content, source, received_at, received_by, error)
    return status.endswith(" 1")


async def save_report(conn: asyncpg.Connection, sha256: str, report: dict) -> None:
    await conn.execute("UPDATE confirmation_files SET report = $2::jsonb WHERE sha256 = $1",
                       sha256, json.dumps(report, default=str))


async def lock_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM payment_orders WHERE order_id = $1 FOR UPDATE", order_id)


async def record_confirmation(conn: asyncpg.Connection, *, file_sha256: str, order_id: str | None, status: str,
                              executed_on: date | None, amount: Decimal | None, reason: str | None,
                              reference: str, outcome: str, detail: str | None) -> None:
    await conn.execute(
        """INSERT INTO confirmations (file_sha256, order_id, status, executed_on, amount, reason, reference,
               outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        file_sha256, order_id, status, executed_on, amount, reason, reference, outcome, detail)


async def open_confirmations(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.id, c.file_sha256, f.source, f.received_at, c.order_id, c.status, c.executed_on, c.amount,
                  c.reason, c.reference, c.outcome, c.detail
           FROM confirmations c JOIN confirmation_files f ON f.sha256 = c.file_sha256
           WHERE c.outcome IN ('unmatched', 'mismatch') AND c.resolved_at IS NULL ORDER BY c.id""")


async def order_executed(conn: asyncpg.Connection, order_id: str, executed_on: date, reference: str) -> None:
    await conn.execute(
        "UPDATE payment_orders SET status = 'executed', executed_on = $2, counterparty_reference = $3 "
        "WHERE order_id = $1", order_id, executed_on, reference)


async def order_failed(conn: asyncpg.Connection, order_id: str, failed_on: date, reason: str, reference: str) -> None:
    await conn.execute(
        "UPDATE payment_orders SET status = 'failed', failed_on = $2, failure_reason = $3, "
        "counterparty_reference = $4 WHERE order_id = $1", order_id, failed_on, reason, reference)


async def payable_paid(conn: asyncpg.Connection, payable_id: str, executed_on: date) -> None:
    await conn.execute("UPDATE payables SET status = 'paid', executed_on = $2 WHERE payable_id = $1",
                       payable_id, executed_on)


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)
