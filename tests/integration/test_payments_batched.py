"""The payments join applies a whole batch of approvals and recoveries at once and reaches
exactly what applying them one at a time reaches: the same joins, payables (each created once,
from the halves in at the moment both were), offset settlements, events and log lines."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from aiokafka.structs import ConsumerRecord

from services.payments import scheduling as scheduling_module
from services.payments.handlers import consumers
from services.payments.scheduling import Scheduling
from shared.clock import FixedClock
from shared.consumer import Batched
from shared.events import decode, encode, new_envelope
from shared.events.contracts import AdvanceRecoveryApplied
from shared.events.invoices import InvoiceApproved, PaymentDeadline
from shared.logging import bound_fields
from tests.support import service_pool

pytestmark = pytest.mark.integration

CLOCK = FixedClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
DEADLINE = PaymentDeadline(buyer_type="local_authority", dgp_start=date(2026, 3, 2), legal_due=date(2026, 4, 1),
                           ordonnateur_due=date(2026, 3, 22), target_due=date(2026, 3, 17))
REGISTERED = "41234567000019"  # a supplier whose account is registered
UNKNOWN = "52345678000011"  # a supplier whose account is not
IBAN = "FR7630004000031234567890143"


def _approval(invoice: str, amount: str = "1000.00", siret: str = REGISTERED) -> InvoiceApproved:
    return InvoiceApproved(invoice_id=invoice, amount=amount, currency="EUR", seller_siret=siret,
                           seller_name=None, invoice_number=f"FA-{invoice}", payee_iban=None,
                           contract_reference="M-1", engagement_number=None, automatic=True, deadline=DEADLINE)


def _recovery(invoice: str, amount: str = "1000.00", deduction: str = "100.00") -> AdvanceRecoveryApplied:
    return AdvanceRecoveryApplied(
        invoice_id=invoice, contract_id="M-1", approved_amount=Decimal(amount), deduction=Decimal(deduction),
        net_payable=Decimal(amount) - Decimal(deduction), recovered_after=Decimal(deduction),
        outstanding_after=Decimal("0"), reason="précompte")


class _Records:
    """Events as read from Kafka, each under its own event id, with increasing offsets."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self, event) -> ConsumerRecord:
        self.offset += 1
        producer = "invoices" if isinstance(event, InvoiceApproved) else "advances"
        value = encode(new_envelope(event, producer=producer, actor="test", clock=CLOCK))
        return ConsumerRecord(topic=event.topic, partition=0, offset=self.offset, timestamp=0, timestamp_type=0,
                              key=event.invoice_id.encode(), value=value, checksum=None,
                              serialized_key_size=0, serialized_value_size=len(value), headers=())


def _batches():
    record = _Records()
    first = (
        record(_approval("inv-2")),  # waits for its recovery
        record(_recovery("inv-3")),  # waits for its approval
        record(_approval("inv-7", siret=UNKNOWN)),  # approved once here...
        record(_approval("inv-5")), record(_recovery("inv-5")),  # both halves: payable created
    )
    # One batch, no failure: both halves of an invoice together, in either order; the second
    # half of a join begun earlier; an approval delivered again under another event id once its
    # payable exists; an invoice fully offset by its recovery; a supplier without a known account;
    # an approval whose recovery comes first and which was approved before (...and again here:
    # the payable takes the approval in when the recovery completed the join).
    second = (
        record(_approval("inv-1")), record(_recovery("inv-1")),
        record(_recovery("inv-2")),
        record(_approval("inv-3")),
        record(_approval("inv-4", "500.00")), record(_recovery("inv-4", "500.00", "500.00")),
        record(_approval("inv-5")),
        record(_recovery("inv-6")), record(_approval("inv-6")),
        record(_recovery("inv-7")), record(_approval("inv-7")),
        record(_approval("inv-8", siret=UNKNOWN)), record(_recovery("inv-8")),
    )
    # A recovery computed on another amount than the one approved fails alone.
    third = (
        record(_approval("inv-9", "700.00")), record(_recovery("inv-9", "800.00")),
        record(_recovery("inv-10")), record(_approval("inv-10")),
    )
    return [first, second, third]


@pytest.fixture
async def pool(ns):
    async with service_pool(ns, "payments") as pool:
        yield pool


async def _seed(pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE payment_orders, late_payments, payables, invoice_approvals, payees, outbox, "
                           "processed_events")
        await conn.execute("ALTER SEQUENCE offset_orders RESTART")
        await conn.execute("INSERT INTO payees VALUES ($1, 'Fournisseur SA', $2, $3, gen_random_uuid())",
                           REGISTERED, IBAN, CLOCK.now())


async def _outcome(pool) -> dict:
    async with pool.acquire() as conn:
        joins = [dict(r) for r in await conn.fetch("SELECT * FROM invoice_approvals ORDER BY invoice_id")]
        payables = [dict(r) for r in await conn.fetch("SELECT * FROM payables ORDER BY payable_id")]
        orders = [dict(r) for r in await conn.fetch("SELECT * FROM payment_orders ORDER BY order_id")]
        bodies = [json.loads(r["body"]) for r in await conn.fetch("SELECT body FROM outbox ORDER BY id")]
    events = [(b["event_type"], b["aggregate_id"], b["correlation_id"], b["causation_id"], b["payload"])
              for b in bodies]
    return {"joins": joins, "payables": payables, "orders": orders, "events": events}


class _Log:
    """Stands for the scheduling's logger: the lines written, with the event each is bound to."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str | None]] = []

    def info(self, message: str, **fields) -> None:
        bound = bound_fields()
        self.lines.append((message, fields.get("payable_id"), bound.get("event_id")))


def _consumer(ns, pool, calls: list[int]):
    [consumer] = consumers(Scheduling(ns, CLOCK))
    consumer.settings, consumer.clock = ns, CLOCK
    consumer._pool = lambda: pool
    joined = consumer.handlers["InvoiceApproved"]
    assert consumer.handlers["AdvanceRecoveryApplied"] is joined

    async def counted(conn, events):
        calls.append(len(events))
        await joined.handler(conn, events)

    consumer.handlers["InvoiceApproved"] = consumer.handlers["AdvanceRecoveryApplied"] = Batched(counted)
    return consumer


async def test_a_batch_of_halves_makes_the_same_payables_as_one_by_one(ns, pool, monkeypatch):
    batches = _batches()

    await _seed(pool)
    monkeypatch.setattr(scheduling_module, "log", single_log := _Log())
    consumer = _consumer(ns, pool, [])
    single_letters = []
    for batch in batches:
        for record in sorted(batch, key=lambda r: r.key):
            single_letters += [(letter.record.offset, letter.reason) for letter in await consumer.apply((record,))]
    one_by_one = await _outcome(pool)

    await _seed(pool)
    monkeypatch.setattr(scheduling_module, "log", log := _Log())
    calls: list[int] = []
    consumer = _consumer(ns, pool, calls)
    letters = [[(letter.record.offset, letter.reason) for letter in await consumer.apply(batch)] for batch in batches]
    batched = await _outcome(pool)

    assert batched == one_by_one
    assert sorted(log.lines) == sorted(single_lines := single_log.lines) and len(single_lines) == 9
    # The first two batches in one call each; the third failed and was applied event by event.
    assert calls == [5, 13, 4, 1, 1, 1, 1]
    mismatch = batches[2][1].offset
    assert letters == [[], [], [(mismatch, "handler_failed")]] and single_letters == [(mismatch, "handler_failed")]

    payables = {p["invoice_id"]: p for p in batched["payables"]}
    assert sorted(payables) == [f"inv-{i}" for i in (1, 10, 2, 3, 4, 5, 6, 7, 8)]
    first = payables["inv-1"]
    assert (first["gross_amount"], first["deduction"], first["amount"], first["status"]) == (
        Decimal("1000.00"), Decimal("100.00"), Decimal("900.00"), "scheduled")
    assert (first["payee_name"], first["payee_iban"]) == ("Fournisseur SA", IBAN)
    # Each payable is caused by the approval stored when its join completed.
    approvals = {d.event.invoice_id: d.envelope for d in (decode(r.value) for b in batches for r in b)
                 if d.envelope.event_type == "InvoiceApproved"}
    earlier = {"inv-5": batches[0][3], "inv-7": batches[0][2]}
    for invoice, payable in payables.items():
        cause = json.loads(payable["cause"])["event_id"]
        assert cause == str(decode(earlier[invoice].value).envelope.event_id if invoice in earlier
                            else approvals[invoice].event_id)
    assert payables["inv-7"]["status"] == payables["inv-8"]["status"] == "on_hold"
    assert "no bank account" in payables["inv-8"]["hold_reason"]
    # Fully offset: settled at once, without a transfer.
    offset = payables["inv-4"]
    assert (offset["amount"], offset["status"], offset["executed_on"]) == (Decimal("0.00"), "paid", date(2026, 3, 2))
    assert [(o["order_id"], o["payable_id"], o["channel"], o["status"]) for o in batched["orders"]] == [
        ("OFS-20260302-1", "invoice:inv-4", "offset", "executed")]
    assert [(e[0], e[1]) for e in batched["events"]] == [("PaymentExecuted", "invoice:inv-4")]
    # The join keeps the latest of each half; the mismatching recovery was rolled back.
    joins = {j["invoice_id"]: j for j in batched["joins"]}
    assert joins["inv-9"]["recovery"] is None and joins["inv-9"]["approved"] is not None
    assert json.loads(joins["inv-7"]["approved_envelope"])["event_id"] == str(approvals["inv-7"].event_id)
    # One line per payable created, bound to the event that completed its join.
    completed = {decode(r.value).event.invoice_id: str(decode(r.value).envelope.event_id)
                 for r in batches[1] + batches[2][2:]}
    completed["inv-7"] = str(decode(batches[1][9].value).envelope.event_id)  # its recovery
    for message, payable_id, event_id in log.lines:
        assert message == "payable created"
        invoice = payable_id.removeprefix("invoice:")
        if invoice != "inv-5":
            assert event_id == completed[invoice]


async def test_a_batch_read_again_changes_nothing(ns, pool, monkeypatch):
    await _seed(pool)
    monkeypatch.setattr(scheduling_module, "log", log := _Log())
    calls: list[int] = []
    consumer = _consumer(ns, pool, calls)
    first, second, _ = _batches()
    await consumer.apply(first)
    await consumer.apply(second)
    before, lines = await _outcome(pool), len(log.lines)

    assert await consumer.apply(second) == []
    assert await _outcome(pool) == before and calls == [5, 13] and len(log.lines) == lines
