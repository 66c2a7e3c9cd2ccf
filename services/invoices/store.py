"""SQL for the invoices schema."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.events.contracts import ContractNotified


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
