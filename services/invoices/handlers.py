"""Event handlers of the invoices service."""

from __future__ import annotations

import asyncpg

from services.invoices import store
from shared.consumer import IdempotentConsumer
from shared.events import Decoded
from shared.events.contracts import ContractNotified


async def on_contract_notified(conn: asyncpg.Connection, decoded: Decoded) -> None:
    await store.upsert_contract_ref(conn, decoded.event, decoded.envelope.event_id)


contracts_consumer = IdempotentConsumer(
    "invoices.contracts",
    topics=[ContractNotified.topic],
    handlers={ContractNotified: on_contract_notified},
)
