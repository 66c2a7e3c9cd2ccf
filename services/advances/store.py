"""SQL for the advances schema."""

from __future__ import annotations

import json

import asyncpg

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
