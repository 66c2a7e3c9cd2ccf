"""The advance recovery applies a whole batch of approvals in a few statements and reaches
exactly what applying them one at a time reaches: the same deductions (a contract's invoices
in one batch bearing theirs one after the other), ledgers, events and counts."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from aiokafka.structs import ConsumerRecord

from services.advances import metrics
from services.advances.domain.recovery import replay_recovery
from services.advances.recovery import recovery_consumer
from shared.clock import FixedClock
from shared.consumer import Batched
from shared.events import encode, new_envelope
from shared.events.invoices import InvoiceApproved, PaymentDeadline
from tests.support import make_siret, service_pool

pytestmark = pytest.mark.integration

CLOCK = FixedClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
DEADLINE = PaymentDeadline(buyer_type="local_authority", dgp_start=date(2026, 3, 2), legal_due=date(2026, 4, 1),
                           ordonnateur_due=date(2026, 3, 22), target_due=date(2026, 3, 17))

# (contract, amount TTC, engagement numbers, advance or None, recovery start %, end %, pro-rata %)
CONTRACTS = [
    ("M-WORKS", "720000.00", ["EJ-WORKS"], "96000.00", "65", "80", None),  # domain-rules.md §3.6
    ("M-PRORATA", "120000.00", ["EJ-PRORATA"], "24000.00", "0", "80", "20"),
    ("M-ZERO", "50000.00", [], "0.00", "65", "80", None),
    ("M-NOADV", "40000.00", ["EJ-NOADV"], None, None, None, None),
    ("M-BROKEN", "90000.00", [], "9000.00", "80", "65", None),  # a window no computation accepts
]


def _approval(invoice_id: str, amount: str, *, reference: str | None = None,
              engagement: str | None = None) -> InvoiceApproved:
    return InvoiceApproved(invoice_id=invoice_id, amount=amount, currency="EUR", seller_siret=None,
                           payee_iban=None, contract_reference=reference, engagement_number=engagement,
                           automatic=True, deadline=DEADLINE)


def _record(offset: int, approval: InvoiceApproved) -> ConsumerRecord:
    """The approval as read from Kafka, under a new event id each time (a second record of one
    invoice is the approval delivered again under another id)."""
    value = encode(new_envelope(approval, producer="invoices", actor="carol", clock=CLOCK))
    return ConsumerRecord(topic="invoices.events", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=approval.invoice_id.encode(), value=value, checksum=None,
                          serialized_key_size=0, serialized_value_size=len(value), headers=())


def _batches() -> list[tuple[ConsumerRecord, ...]]:
    works = [_approval(f"inv-w-{i:02d}", "40000.00", reference=None if i % 2 else "M-WORKS", engagement="EJ-WORKS")
             for i in range(18)]
    prorata = [_approval(f"inv-p-{i}", "30000.00", engagement="EJ-PRORATA") for i in range(4)]
    zero = [_approval(f"inv-z-{i}", "1000.00", reference="M-ZERO") for i in range(3)]
    first = [*works[:10], prorata[0]]
    # One batch: several invoices of each contract, the first contract's ledger taken from
    # where the first batch left it; an invoice recovered in the first batch and one delivered
    # twice in this batch, under two event ids; invoices of no known contract, of a contract
    # without advance, of an advance of 0.
    second = [*works[10:], works[3], works[12], *prorata[1:3], *zero[:2],
              _approval("inv-n-1", "5000.00", engagement="EJ-NOADV"),
              _approval("inv-stray", "1200.00", reference="NO-SUCH")]
    # A batch with an invoice whose deduction cannot be computed: the others are applied all the same.
    third = [prorata[3], _approval("inv-b-1", "3000.00", reference="M-BROKEN"), zero[2]]
    offsets = iter(range(1000))
    return [tuple(_record(next(offsets), approval) for approval in batch) for batch in (first, second, third)]


@pytest.fixture
async def pool(ns):
    async with service_pool(ns, "advances") as pool:
        yield pool


async def _seed(pool) -> None:
    """The contracts and their advances, nothing recovered or consumed yet."""
    async with pool.acquire() as conn:
        await conn.execute("TRUNCATE recoveries, advances, contracts, outbox, processed_events")
        for i, (contract_id, ttc, engagements, advance, start, end, prorata) in enumerate(CONTRACTS):
            await conn.execute(
                """INSERT INTO contracts (contract_id, supplier_siret, supplier_name, sme, contract_type, amount_ht,
                       amount_ttc, duration_months, notified_on, terms, notified_by, recorded_at, notification_event_id)
                   VALUES ($1, $2, 'Entreprise', true, 'works', $3, $3, 12, '2026-01-05', $4, 'test', $5, $6)""",
                contract_id, make_siret(20000000 + i), Decimal(ttc),
                json.dumps({"engagement_numbers": engagements}), CLOCK.now(), uuid4())
            if advance is not None:
                await conn.execute(
                    """INSERT INTO advances (contract_id, policy_version, mandatory, reason, rate_pct,
                           rate_from_contract, base, amount, guarantee_may_be_required, recovery_start_pct,
                           recovery_end_pct, recovery_prorata_pct, delay_start_reason, decided_at)
                       VALUES ($1, 'test', true, 'test', 20, false, $2, $3, false, $4, $5, $6, 'test', $7)""",
                    contract_id, Decimal(ttc), Decimal(advance), Decimal(start), Decimal(end),
                    Decimal(prorata) if prorata else None, CLOCK.now())


async def _outcome(pool) -> dict:
    """Everything the consumer leaves behind, without the event ids it draws."""
    async with pool.acquire() as conn:
        recoveries = [dict(r) for r in await conn.fetch("SELECT * FROM recoveries ORDER BY invoice_id")]
        ledgers = [tuple(r) for r in await conn.fetch(
            "SELECT contract_id, executed, recovered FROM advances ORDER BY contract_id")]
        bodies = [json.loads(r["body"]) for r in await conn.fetch("SELECT body FROM outbox ORDER BY id")]
        applied = await conn.fetchval("SELECT count(*) FROM processed_events")
    events = [(b["event_type"], b["aggregate_id"], b["correlation_id"], b["payload"]) for b in bodies]
    return {"recoveries": recoveries, "ledgers": ledgers, "events": events, "applied": applied}


def _consumer(ns, pool, calls: list[int]):
    consumer = recovery_consumer(ns, CLOCK)
    consumer.settings, consumer.clock = ns, CLOCK
    consumer._pool = lambda: pool
    batched = consumer.handlers["InvoiceApproved"].handler

    async def counted(conn, events):
        calls.append(len(events))
        await batched(conn, events)

    consumer.handlers["InvoiceApproved"] = Batched(counted)
    return consumer


def _recovered_eur() -> float:
    return metrics.advance_recovered_eur._value.get()


async def test_a_batch_of_approvals_bears_the_same_recoveries_as_one_by_one(ns, pool):
    batches = _batches()

    # One at a time, in the order the consumer applies a batch (by invoice).
    await _seed(pool)
    singles_calls: list[int] = []
    consumer = _consumer(ns, pool, singles_calls)
    counted_before = _recovered_eur()
    single_letters = []
    for batch in batches:
        for record in sorted(batch, key=lambda r: r.key):
            single_letters += [(letter.record.offset, letter.reason) for letter in await consumer.apply((record,))]
    one_by_one = await _outcome(pool)
    counted_one_by_one = _recovered_eur() - counted_before

    await _seed(pool)
    calls: list[int] = []
    consumer = _consumer(ns, pool, calls)
    counted_before = _recovered_eur()
    letters = [[(letter.record.offset, letter.reason) for letter in await consumer.apply(batch)] for batch in batches]
    batched = await _outcome(pool)

    assert batched == one_by_one
    # The counter is a float: the sums agree to far better than a cent.
    assert _recovered_eur() - counted_before == pytest.approx(counted_one_by_one)
    assert counted_one_by_one == pytest.approx(96000 + 4 * 6000)
    # The first two batches in one call each; the third failed and was applied event by event.
    assert calls[:2] == [11, 16] and calls[2:] == [3, 1, 1, 1]
    broken = batches[2][1].offset
    assert letters == [[], [], [(broken, "handler_failed")]] and single_letters == [(broken, "handler_failed")]

    # The worked example: the same deductions as the contract's invoices replayed from the first.
    recoveries = {r["invoice_id"]: r for r in batched["recoveries"]}
    expected = replay_recovery(Decimal("96000.00"), Decimal("720000.00"), [Decimal("40000.00")] * 18,
                               Decimal("65"), Decimal("80"))
    for i, recovery in enumerate(expected):
        row = recoveries[f"inv-w-{i:02d}"]
        assert (row["contract_id"], row["deduction"], row["recovered_after"]) == (
            "M-WORKS", recovery.deduction, recovery.recovered_after)
        assert row["executed_before"] == Decimal("40000.00") * i
    prorata = [recoveries[f"inv-p-{i}"]["deduction"] for i in range(4)]
    assert prorata == [Decimal("6000.00")] * 4
    assert [recoveries[f"inv-z-{i}"]["executed_before"] for i in range(3)] == [0, 1000, 2000]
    assert recoveries["inv-n-1"]["contract_id"] == "M-NOADV" and recoveries["inv-n-1"]["deduction"] == 0
    assert recoveries["inv-stray"]["contract_id"] is None
    assert "inv-b-1" not in recoveries
    assert batched["ledgers"] == [
        ("M-BROKEN", Decimal("0.00"), Decimal("0.00")),
        ("M-PRORATA", Decimal("120000.00"), Decimal("24000.00")),
        ("M-WORKS", Decimal("720000.00"), Decimal("96000.00")),
        ("M-ZERO", Decimal("3000.00"), Decimal("0.00")),
    ]
    # One event per invoice recovered, none for the approvals delivered again; the dead-lettered
    # event is forgotten so that its replay is applied.
    announced = [invoice for _, invoice, _, _ in batched["events"]]
    assert sorted(announced) == sorted(recoveries) and len(announced) == len(set(announced)) == 27
    assert batched["applied"] == sum(len(b) for b in batches) - 1
    by_invoice = {invoice: payload for _, invoice, _, payload in batched["events"]}
    assert by_invoice["inv-w-12"]["reason"] == "précompte on contract M-WORKS (R2191-11/-12): 480000.00 executed before this invoice"
    assert by_invoice["inv-w-17"]["outstanding_after"] == "0.00"
    assert by_invoice["inv-z-1"]["reason"] == "contract M-ZERO has no advance to recover"
    assert by_invoice["inv-stray"]["reason"] == "the invoice names no known contract"


async def test_a_batch_read_again_changes_nothing(ns, pool):
    await _seed(pool)
    calls: list[int] = []
    consumer = _consumer(ns, pool, calls)
    first, second, _ = _batches()
    await consumer.apply(first)
    await consumer.apply(second)
    before = await _outcome(pool)

    # Read again after a crash before the offsets were committed: every event is known.
    assert await consumer.apply(second) == []
    assert await _outcome(pool) == before and calls == [11, 16]

    # The same approvals under new event ids: applied, and none recovered a second time.
    again = tuple(_record(2000 + i, _approval(f"inv-w-{i:02d}", "40000.00", reference="M-WORKS")) for i in range(18))
    assert await consumer.apply(again) == []
    after = await _outcome(pool)
    assert calls == [11, 16, 18]
    assert (after["recoveries"], after["ledgers"], after["events"]) == (
        before["recoveries"], before["ledgers"], before["events"])


async def test_a_recovery_recorded_by_another_transaction_meanwhile_is_not_applied_twice(ns, pool, monkeypatch):
    """Another consumer instance (during a rebalance) may record an invoice's recovery between
    this batch's read and its insert: the batch is then applied again one invoice at a time,
    and that invoice is skipped as one by one."""
    from services.advances import store

    await _seed(pool)
    calls: list[int] = []
    consumer = _consumer(ns, pool, calls)
    works = [_approval(f"inv-w-{i:02d}", "40000.00", reference="M-WORKS") for i in range(14)]
    await consumer.apply(tuple(_record(i, approval) for i, approval in enumerate(works[:12])))
    before = await _outcome(pool)

    found = store.contracts_of_invoices

    async def unaware_of_w11(conn, invoices):
        return [(contract_id, recorded and invoice_id != "inv-w-11")
                for (invoice_id, _, _), (contract_id, recorded) in zip(invoices, await found(conn, invoices))]

    monkeypatch.setattr(store, "contracts_of_invoices", unaware_of_w11)
    batch = (_record(100, works[11]), _record(101, works[12]), _record(102, works[13]))
    assert await consumer.apply(batch) == []
    after = await _outcome(pool)

    assert calls == [12, 3, 1, 1, 1]
    assert [r["invoice_id"] for r in after["recoveries"]] == [f"inv-w-{i:02d}" for i in range(14)]
    assert after["recoveries"][:12] == before["recoveries"]
    expected = replay_recovery(Decimal("96000.00"), Decimal("720000.00"), [Decimal("40000.00")] * 14,
                               Decimal("65"), Decimal("80"))
    assert [r["deduction"] for r in after["recoveries"]] == [r.deduction for r in expected]
    assert [invoice for _, invoice, _, _ in after["events"]] == [f"inv-w-{i:02d}" for i in range(14)]
    assert after["ledgers"][2] == ("M-WORKS", Decimal("560000.00"), expected[-1].recovered_after)
