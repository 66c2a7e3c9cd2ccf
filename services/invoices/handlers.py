"""Kafka subscribers of the invoices service: thin, they call intake or the store."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.invoices import payment, store
from services.invoices.intake import Arrival, Intake
from services.invoices.workflow import Workflow
from shared.consumer import BatchConsumer, Batched, IdempotentConsumer, RawRecordConsumer
from shared.events import Decoded
from shared.events.contracts import ContractNotified
from shared.events.invoices import InvoiceCompleted, InvoiceReceived, InvoiceValidated, ServiceDoneRecorded
from shared.events.payments import PaymentExecuted, PaymentFailed, PaymentOrdered

async def on_contract_notified(conn: asyncpg.Connection, decoded: Decoded) -> None:
    await store.upsert_contract_ref(conn, decoded.event, decoded.envelope.event_id)


def consumers(intake: Intake, workflow: Workflow) -> list[BatchConsumer]:
    async def on_invoices_received(conn: asyncpg.Connection, events: list[Decoded]) -> None:
        await intake.decide_all(conn, [(decoded.envelope, None, None) for decoded in events])

    async def on_ready_for_approval(conn: asyncpg.Connection, events: list[Decoded]) -> None:
        await workflow.consider_automatic_approvals(conn, [UUID(decoded.envelope.aggregate_id) for decoded in events])

    async def on_inbound_documents(records: list[ConsumerRecord]) -> None:
        arrivals = []
        for record in records:
            headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
            source = headers.get("source") or f"{record.topic}/{record.partition}/{record.offset}"
            arrivals.append(Arrival(record.value or b"", "kafka", source))
        await intake.receive_all(arrivals)

    ready_for_approval = Batched(on_ready_for_approval)
    payment_events = Batched(payment.on_payment_events)
    return [
        IdempotentConsumer("invoices.contracts", [ContractNotified.topic],
                           {ContractNotified: on_contract_notified}),
        IdempotentConsumer("invoices.intake", [InvoiceReceived.topic],
                           {InvoiceReceived: Batched(on_invoices_received)}),
        # Each event after which an invoice may have become approvable without a person.
        # The invoice's row says all: the events' payloads (a whole invoice for InvoiceValidated)
        # are not decoded.
        IdempotentConsumer("invoices.approval", [InvoiceValidated.topic], {
            InvoiceValidated: ready_for_approval, ServiceDoneRecorded: ready_for_approval,
            InvoiceCompleted: ready_for_approval}, read_payload=False),
        # Documents are independent and each is received idempotently (keyed on its hash): the
        # whole batch is stored in one transaction and decided in a second one.
        RawRecordConsumer("invoices.inbound", ["invoices.inbound"], on_inbound_documents),
        IdempotentConsumer("invoices.payments", [PaymentOrdered.topic], {
            PaymentOrdered: payment_events, PaymentExecuted: payment_events, PaymentFailed: payment_events}),
    ]
