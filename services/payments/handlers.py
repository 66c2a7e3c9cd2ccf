"""Kafka subscribers of the payments service: thin, they hand each event to the scheduling."""

from __future__ import annotations

from services.payments.scheduling import Scheduling
from shared.consumer import Batched, BatchConsumer, IdempotentConsumer
from shared.events.contracts import AdvanceGranted, AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved
from shared.events.reference import SupplierIbanChangeConfirmed, SupplierRegistered


def consumers(scheduling: Scheduling) -> list[BatchConsumer]:
    # Both halves of the join go to one batched handler: an invoice's approval and recovery
    # read in the same batch are joined in one go.
    halves = Batched(scheduling.on_invoice_halves)
    return [
        # One consumer for both halves of the join and the accounts, so that a payable is
        # created once both halves are in, whichever topic delivered the last one.
        IdempotentConsumer("payments.scheduling", [InvoiceApproved.topic, AdvanceRecoveryApplied.topic], {
            InvoiceApproved: halves,
            AdvanceRecoveryApplied: halves,
            AdvanceGranted: scheduling.on_advance_granted,
            SupplierRegistered: scheduling.on_supplier_registered,
            SupplierIbanChangeConfirmed: scheduling.on_iban_confirmed,
        }),
    ]
