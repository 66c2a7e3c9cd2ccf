"""Kafka subscribers of the invoices service: thin, they call intake or the store."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.invoices import payment, store
from services.invoices.intake import Intake
from services.invoices.workflow import Workflow
from shared.consumer import BatchConsumer, IdempotentConsumer, RawRecordConsumer
from shared.events import Decoded
from shared.events.contracts import ContractNotified
from shared.events.invoices import InvoiceCompleted, InvoiceReceived, InvoiceValidated, ServiceDoneRecorded
from shared.events.payments import PaymentExecuted, PaymentFailed, PaymentOrdered

INTAKE_CONCURRENCY = 4


async def on_contract_notified(conn: asyncpg.Connection, decoded: Decoded) -> None:
    await store.upsert_contract_ref(conn, decoded.event, decoded.envelope.event_id)


def consumers(intake: Intake, workflow: Workflow) -> list[BatchConsumer]:
    async def on_invoice_received(conn: asyncpg.Connection, decoded: Decoded) -> None:
        await intake.decide(conn, decoded.envelope)

    async def on_ready_for_approval(conn: asyncpg.Connection, decoded: Decoded) -> None:
        await workflow.consider_automatic_approval(conn, UUID(decoded.envelope.aggregate_id))

    async def on_inbound_document(_pool: asyncpg.Pool, record: ConsumerRecord) -> None:
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        source = headers.get("source") or f"{record.topic}/{record.partition}/{record.offset}"
        await intake.receive(record.value or b"", "kafka", source)

    return [
        IdempotentConsumer("invoices.contracts", [ContractNotified.topic],
                           {ContractNotified: on_contract_notified}),
        IdempotentConsumer("invoices.intake", [InvoiceReceived.topic],
                           {InvoiceReceived: on_invoice_received}),
        # Each event after which an invoice may have become approvable without a person.
        IdempotentConsumer("invoices.approval", [InvoiceValidated.topic], {
            InvoiceValidated: on_ready_for_approval, ServiceDoneRecorded: on_ready_for_approval,
            InvoiceCompleted: on_ready_for_approval}),
        # Documents are independent and each is received idempotently (keyed on its hash): a
        # few at once, leaving pool connections to the other consumers of the service.
        RawRecordConsumer("invoices.inbound", ["invoices.inbound"], on_inbound_document,
                          concurrency=INTAKE_CONCURRENCY),
        IdempotentConsumer("invoices.payments", [PaymentOrdered.topic], {
            PaymentOrdered: payment.on_payment_ordered, PaymentExecuted: payment.on_payment_executed,
            PaymentFailed: payment.on_payment_failed}),
    ]
