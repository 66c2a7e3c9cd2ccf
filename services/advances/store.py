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
