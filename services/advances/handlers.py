"""Commands of the advances service: load, decide, store with the events, in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

import asyncpg

from services.advances import metrics, store
from services.advances.domain.advance import AdvanceDecision, ContractTerms, InvalidAdvanceInput, advance_for
from services.advances.domain.policy import policy_named
from shared.clock import Clock
from shared.consumer import IdempotentConsumer
from shared.events import Decoded, new_envelope
from shared.events.contracts import AdvanceGranted, ContractNotified
from shared.events.payments import PaymentExecuted
from shared.metrics import counted_on_commit, on_commit
from shared.outbox import append
from shared.settings import Settings

SERVICE = "advances"


@dataclass(frozen=True)
class Outcome:
    created: bool
    contract_id: str


class ContractConflict(Exception):
    """The contract id is taken by a contract with different terms."""


class ContractInvalid(Exception):
    """The contract's terms contradict an advance rule; ``field`` names the term."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def decide_advance(contract: ContractNotified, settings: Settings) -> AdvanceDecision:
    try:
        return advance_for(
            ContractTerms.from_event(contract),
            policy_named(settings.advance_policy, on=contract.notified_on),
            rate_override=contract.advance_rate_pct,
        )
    except InvalidAdvanceInput as exc:
        raise ContractInvalid(_CONTRACT_FIELD.get(exc.field, exc.field), str(exc)) from None


# The advance rules name their inputs; the API's caller knows the contract's field names.
_CONTRACT_FIELD = {"rate_override": "advance_rate_pct"}


@dataclass(frozen=True)
class AdvanceDeadline:
    starts_on: date | None
    legal_due: date | None
    target_due: date | None


def advance_deadline(decision: AdvanceDecision, settings: Settings) -> AdvanceDeadline:
    """R2192-24/-25: the advance is a sum due with its own delay; the Region aims at half of it."""
    start = decision.delay_start.starts_on
    return AdvanceDeadline(
        starts_on=start, legal_due=decision.delay_start.due_on(),
        target_due=start + timedelta(days=settings.target_payment_days) if start else None,
    )


def granted_event(contract: ContractNotified, decision: AdvanceDecision, deadline: AdvanceDeadline) -> AdvanceGranted:
    return AdvanceGranted(
        contract_id=contract.contract_id, supplier_siret=contract.supplier_siret,
        policy_version=decision.policy_version, rate_pct=decision.rate,
        rate_from_contract=decision.rate_from_contract, base=decision.base, amount=decision.amount,
        reason=decision.reason, guarantee_may_be_required=decision.guarantee_may_be_required,
        recovery_start_pct=decision.recovery_start_pct, recovery_end_pct=decision.recovery_end_pct,
        recovery_prorata_pct=decision.recovery_prorata_pct,
        delay_starts_on=deadline.starts_on, delay_start_reason=decision.delay_start.reason,
        legal_due=deadline.legal_due, target_due=deadline.target_due,
    )


async def notify_contract(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, contract: ContractNotified, actor: str
) -> Outcome:
    """Records a notified contract and its advance; emits ``ContractNotified`` and, when an
    advance is due, ``AdvanceGranted``.

    Sending the same contract again is acknowledged without a second event; the same id with
    other terms is a conflict (a contract is amended by an amendment, not by a re-notification).
    """
    decision = decide_advance(contract, settings)
    notified = new_envelope(contract, producer=SERVICE, actor=actor, clock=clock)
    async with counted_on_commit(), pool.acquire() as conn, conn.transaction():
        if await store.insert_contract(conn, contract, notified):
            deadline = advance_deadline(decision, settings)
            await store.insert_advance(conn, contract.contract_id, decision, clock.now(), starts_on=deadline.starts_on,
                                       legal_due=deadline.legal_due, target_due=deadline.target_due)
            await append(conn, settings.topic(ContractNotified.topic), notified)
            if decision.granted:
                granted = granted_event(contract, decision, deadline)
                await append(conn, settings.topic(AdvanceGranted.topic), new_envelope(
                    granted, producer=SERVICE, actor="advances.policy", clock=clock, caused_by=notified))
                on_commit(partial(metrics.count_granted, decision.amount))
            return Outcome(created=True, contract_id=contract.contract_id)
        existing = await store.find_contract(conn, contract.contract_id)
    if json.loads(existing["terms"]) != contract.model_dump(mode="json"):
        raise ContractConflict(
            f"contract {contract.contract_id} was already notified with other terms; "
            "record an amendment instead"
        )
    return Outcome(created=False, contract_id=contract.contract_id)


async def on_payment_executed(conn: asyncpg.Connection, decoded: Decoded) -> None:
    """The advance was paid: the ledger shows it, and from then on only recovery moves it."""
    payment: PaymentExecuted = decoded.event
    if payment.kind != "advance" or payment.contract_id is None:
        return
    await store.advance_paid(conn, payment.contract_id, payment.amount, payment.executed_on)


def payments_consumer() -> IdempotentConsumer:
    return IdempotentConsumer("advances.payments", [PaymentExecuted.topic], {PaymentExecuted: on_payment_executed})
