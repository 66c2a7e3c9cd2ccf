"""Commands of the advances service: load, decide, store with the events, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from services.advances import store
from shared.clock import Clock
from shared.events import new_envelope
from shared.events.contracts import ContractNotified
from shared.outbox import append
from shared.settings import Settings

SERVICE = "advances"


@dataclass(frozen=True)
class Outcome:
    created: bool
    contract_id: str


class ContractConflict(Exception):
    """The contract id is taken by a contract with different terms."""


async def notify_contract(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, contract: ContractNotified, actor: str
) -> Outcome:
    """Records a notified contract and emits ``ContractNotified``.

    Sending the same contract again is acknowledged without a second event; the same id with
    other terms is a conflict (a contract is amended by an amendment, not by a re-notification).
    """
    envelope = new_envelope(contract, producer=SERVICE, actor=actor, clock=clock)
    async with pool.acquire() as conn, conn.transaction():
        if await store.insert_contract(conn, contract, envelope):
            await append(conn, settings.topic(ContractNotified.topic), envelope)
            return Outcome(created=True, contract_id=contract.contract_id)
        existing = await store.find_contract(conn, contract.contract_id)
    if json.loads(existing["terms"]) != contract.model_dump(mode="json"):
        raise ContractConflict(
            f"contract {contract.contract_id} was already notified with other terms; "
            "record an amendment instead"
        )
    return Outcome(created=False, contract_id=contract.contract_id)
