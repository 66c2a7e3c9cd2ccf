"""Kafka subscribers of the invoices service: thin, they call intake or the store."""

from __future__ import annotations

import asyncpg
from aiokafka.structs import ConsumerRecord

from services.invoices import store
from services.invoices.intake import Intake
from shared.consumer import BatchConsumer, IdempotentConsumer, RawRecordConsumer
from shared.events import Decoded
from shared.events.contracts import ContractNotified
from shared.events.invoices import InvoiceReceived


async def on_contract_notified(conn: asyncpg.Connection, decoded: Decoded) -> None:
    await store.upsert_contract_ref(conn, decoded.event, decoded.envelope.event_id)


def consumers(intake: Intake) -> list[BatchConsumer]:
    async def on_invoice_received(conn: asyncpg.Connection, decoded: Decoded) -> None:
        await intake.decide(conn, decoded.envelope)

    async def on_inbound_document(_pool: asyncpg.Pool, record: ConsumerRecord) -> None:
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        source = headers.get("source") or f"{record.topic}/{record.partition}/{record.offset}"
        await intake.receive(record.value or b"", "kafka", source)

    return [
        IdempotentConsumer("invoices.contracts", [ContractNotified.topic],
                           {ContractNotified: on_contract_notified}),
        IdempotentConsumer("invoices.intake", [InvoiceReceived.topic],
                           {InvoiceReceived: on_invoice_received}),
        RawRecordConsumer("invoices.inbound", ["invoices.inbound"], on_inbound_document),
    ]
