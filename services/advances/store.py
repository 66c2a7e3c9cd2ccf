"""SQL for the advances schema."""

from __future__ import annotations

import json
from datetime import date, datetime

import asyncpg

from services.advances.domain.advance import AdvanceDecision
from shared.events import Envelope
from shared.events.contracts import ContractNotified


async def find_contract(conn: asyncpg.Connection, contract_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM contracts WHERE contract_id = $1", contract_id)


async def insert_contract(conn: asyncpg.Connection, contract: ContractNotified, envelope: Envelope) -> bool:
    """Inserts the contract; False when a contract with that id already exists."""
    status = await conn.execute(
        """INSERT INTO contracts (contract_id, supplier_siret, supplier_name, sme, contract_type,
               amount_ht, amount_ttc, duration_months, notified_on, terms, notified_by,
               recorded_at, notification_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (contract_id) DO NOTHING""",
        contract.contract_id, contract.supplier_siret, contract.supplier_name, contract.sme,
        contract.contract_type, contract.amount_ht, contract.amount_ttc, contract.duration_months,
        contract.notified_on, json.dumps(contract.model_dump(mode="json")), envelope.actor,
        envelope.occurred_at, envelope.event_id,
    )
    return status.endswith(" 1")


async def insert_advance(conn: asyncpg.Connection, contract_id: str, decision: AdvanceDecision,
                         decided_at: datetime, *, starts_on: date | None, legal_due: date | None,
                         target_due: date | None) -> None:
    await conn.execute(
        """INSERT INTO advances (contract_id, policy_version, mandatory, reason, rate_pct,
               rate_from_contract, base, amount, guarantee_may_be_required, recovery_start_pct,
               recovery_end_pct, recovery_prorata_pct, delay_starts_on, delay_start_reason,
               legal_due, target_due, warnings, decided_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)""",
        contract_id, decision.policy_version, decision.mandatory, decision.reason, decision.rate,
        decision.rate_from_contract, decision.base, decision.amount, decision.guarantee_may_be_required,
        decision.recovery_start_pct, decision.recovery_end_pct, decision.recovery_prorata_pct,
        starts_on, decision.delay_start.reason, legal_due, target_due,
        json.dumps(list(decision.warnings)), decided_at,
    )


async def find_advance(conn: asyncpg.Connection, contract_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM advances WHERE contract_id = $1", contract_id)


async def advance_paid(conn: asyncpg.Connection, contract_id: str, amount, paid_on: date) -> None:
    await conn.execute("UPDATE advances SET paid = $2, paid_on = $3 WHERE contract_id = $1",
                       contract_id, amount, paid_on)


# -- the recovery of a batch of approved invoices ----------------------------------------------

async def contracts_of_invoices(conn: asyncpg.Connection,
                                invoices: list[tuple[str, str | None, str | None]]) -> list[tuple[str | None, bool]]:
    """For each ``(invoice_id, contract_reference, engagement_number)``, in their order: the
    contract the invoice belongs to — its contract reference (BT-12), else the contract funding
    its engagement (BT-13) — and whether its recovery is recorded already. An empty reference
    or engagement number counts as none."""
    rows = await conn.fetch(
        """SELECT coalesce(
                      (SELECT c.contract_id FROM contracts c WHERE c.contract_id = i.reference),
                      (SELECT c.contract_id FROM contracts c WHERE c.terms -> 'engagement_numbers' ? i.engagement
                       ORDER BY c.notified_on LIMIT 1)) AS contract_id,
                  EXISTS (SELECT 1 FROM recoveries r WHERE r.invoice_id = i.invoice_id) AS recorded
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS i(invoice_id, reference, engagement, n)
           ORDER BY i.n""",
        [invoice_id for invoice_id, _, _ in invoices],
        [reference or None for _, reference, _ in invoices],
        [engagement or None for _, _, engagement in invoices])
    return [(row["contract_id"], row["recorded"]) for row in rows]


async def lock_advances(conn: asyncpg.Connection, contract_ids: list[str]) -> dict[str, asyncpg.Record]:
    """The contracts' advance rows, locked in contract order in one statement: a contract's
    invoices are applied one at a time, and two transactions locking overlapping sets wait for
    each other instead of deadlocking."""
    rows = await conn.fetch(
        "SELECT a.*, c.amount_ttc FROM advances a JOIN contracts c USING (contract_id) "
        "WHERE a.contract_id = ANY($1::text[]) ORDER BY a.contract_id FOR UPDATE OF a", contract_ids)
    return {row["contract_id"]: row for row in rows}


async def record_recoveries(conn: asyncpg.Connection, recoveries: list[dict], applied_at: datetime) -> set[str]:
    """Records the recoveries of many invoices in one statement: those not recorded yet are
    inserted and their advances' totals brought forward; returns the invoices recorded.

    Each dict holds ``invoice_id``, ``contract_id``, ``approved_amount``, ``executed_before``,
    ``deduction`` and ``recovered_after``; one contract's invoices come in the order they were
    applied, so their last ``recovered_after`` is the largest (a deduction is never negative)."""
    recorded = await conn.fetchval(
        """WITH recorded AS (
               INSERT INTO recoveries (invoice_id, contract_id, approved_amount, executed_before, deduction,
                                       recovered_after, applied_at)
               SELECT r.*, $7 FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[],
                                          $6::numeric[]) AS r
               ON CONFLICT (invoice_id) DO NOTHING
               RETURNING invoice_id, contract_id, approved_amount, recovered_after
           ), ledger AS (
               UPDATE advances a SET executed = a.executed + t.executed, recovered = t.recovered
               FROM (SELECT contract_id, sum(approved_amount) AS executed, max(recovered_after) AS recovered
                     FROM recorded WHERE contract_id IS NOT NULL GROUP BY contract_id) t
               WHERE a.contract_id = t.contract_id
           )
           SELECT coalesce(array_agg(invoice_id), '{}') FROM recorded""",
        [r["invoice_id"] for r in recoveries], [r["contract_id"] for r in recoveries],
        [r["approved_amount"] for r in recoveries], [r["executed_before"] for r in recoveries],
        [r["deduction"] for r in recoveries], [r["recovered_after"] for r in recoveries], applied_at)
    return set(recorded)
