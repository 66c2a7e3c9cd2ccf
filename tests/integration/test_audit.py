"""The audit log on the real stack: every record of every domain topic kept once, in hash
chains nobody can change unseen, across kill -9; histories, exports, checkpoints, rebuilds."""

import asyncio
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from deploy.simulators.suppliers import CONTRACT, SELLER_SIRET, cii
from services.audit import store
from services.audit.checkpoints import checkpoint_file
from services.audit.domain.chain import GENESIS, ChainVerifier, chain_hash, head_of, link_all
from services.audit.domain.record import AuditRecord, canonical_json, parse_json, subjects_of
from services.audit.recorder import AuditRecorder
from services.audit.store import record_of
from shared.clock import FixedClock
from shared.topics import partitions_of
from tests.support import admin_connection, contract, env_of, eventually, post_contracts, service_pool, token

pytestmark = pytest.mark.integration

FIXED = "fixed:2026-03-02T09:00:00+00:00"


def envelope(i: int, event_type: str = "SomethingRecorded", key: str | None = None, **payload) -> dict:
    aggregate = key or f"agg-{i}"
    return {
        "event_id": str(uuid.uuid4()), "event_type": event_type, "schema_version": 1,
        "occurred_at": "2026-03-02T09:00:00+00:00", "producer": "test", "aggregate_type": "invoice",
        "aggregate_id": aggregate, "correlation_id": aggregate, "causation_id": None, "actor": f"user-{i % 7}",
        "payload": {"invoice_id": aggregate, "n": i, **payload},
    }


async def produce_many(ns, topic: str, items: list[tuple[bytes, bytes | None]]) -> None:
    """Sends (key, value) records without waiting for each acknowledgement, then flushes."""
    producer = AIOKafkaProducer(bootstrap_servers=ns.kafka_bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(ns.topic(topic), key=key, value=value) for key, value in items]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def cli(ns, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", "audit", *args], capture_output=True, text=True,
                          env={**os.environ, **env_of(ns)}, timeout=240)


async def run_cli(ns, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(cli, ns, *args)


async def count(db, sql: str = "SELECT count(*) FROM audit.audit_log") -> int:
    return await db.fetchval(sql)


@pytest.fixture
async def db(ns):
    conn = await admin_connection(ns)
    yield conn
    await conn.close()
    shutil.rmtree(checkpoint_file(ns).parent, ignore_errors=True)


async def _end_offsets(ns, topics):
    from aiokafka import AIOKafkaConsumer

    partitions = await partitions_of(ns, [ns.topic(t) for t in topics])
    consumer = AIOKafkaConsumer(bootstrap_servers=ns.kafka_bootstrap)
    await consumer.start()
    try:
        return {(tp.topic, tp.partition): end for tp, end in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def test_every_record_is_recorded_exactly_once_across_kill_9_and_the_chains_verify(ns, services, db):
    events = [envelope(i) for i in range(2500)]
    first_wave = [(e["aggregate_id"].encode(), json.dumps(e).encode()) for e in events[:1500]]
    # An outbox relay re-sending after a crash: the same events again, and one with other bytes.
    resent = first_wave[:40] + [(events[40]["aggregate_id"].encode(),
                                 json.dumps({**events[40], "actor": "someone-else"}).encode())]
    raw = [(b"gateway", b"<Invoice>not an event</Invoice>"), (b"gateway", None), (b"gateway", b"[1, 2, 3]")]
    contracts = [envelope(i, "ContractSomething", key=f"M-{i}") for i in range(2500, 2700)]

    # Killed right after committing its second batch to PostgreSQL, before Kafka hears of it.
    audit = await services.start("audit", INVOICING_FAILPOINTS="consumer.after_db_commit@2")
    await produce_many(ns, "invoices.events", first_wave + resent + raw)
    await produce_many(ns, "advances.events", [(e["aggregate_id"].encode(), json.dumps(e).encode()) for e in contracts])
    assert await asyncio.to_thread(audit.exited, 60) == -signal.SIGKILL
    assert 0 < await count(db) < len(first_wave) + len(resent) + len(raw) + len(contracts)

    audit = await services.start("audit")
    second_wave = [(e["aggregate_id"].encode(), json.dumps(e).encode()) for e in events[1500:]]
    producing = asyncio.create_task(produce_many(ns, "payments.events", second_wave))
    before = await count(db)
    await eventually(lambda: _grew(db, before + 300), timeout=60)
    audit.kill()  # kill -9 mid-stream, while records keep arriving
    await producing
    await services.start("audit")

    total = len(first_wave) + len(resent) + len(raw) + len(contracts) + len(second_wave)
    await eventually(lambda: _grew(db, total), timeout=120)
    assert await count(db) == total
    kinds = dict(await db.fetch("SELECT kind, count(*) FROM audit.audit_log GROUP BY kind"))
    assert kinds == {"event": len(events) + len(contracts), "duplicate": len(resent), "raw": len(raw)}
    assert await count(db, "SELECT count(DISTINCT event_id) FROM audit.audit_log WHERE kind = 'event'") == \
        len(events) + len(contracts)
    different = await db.fetchval("SELECT note FROM audit.audit_log WHERE kind = 'duplicate' AND note LIKE '%DIFFERENT%'")
    assert events[40]["event_id"] in different
    # Every offset of every partition, once: the chain of a partition is the partition.
    ends = await _end_offsets(ns, ["invoices.events", "advances.events", "payments.events"])
    for (topic, partition), end in ends.items():
        offsets = [r["kafka_offset"] for r in await db.fetch(
            "SELECT kafka_offset FROM audit.audit_log WHERE topic = $1 AND partition = $2 ORDER BY seq",
            topic, partition)]
        assert offsets == list(range(end)), (topic, partition)

    verified = await run_cli(ns, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["intact"] and report["records"] == total and report["kafka"]["checked"]
    gaps = await run_cli(ns, "gaps")
    assert gaps.returncode == 0 and json.loads(gaps.stdout)["complete"]
    assert all(c["behind"] == 0 for c in json.loads(gaps.stdout)["chains"])


async def _grew(db, at_least: int) -> bool:
    return await count(db) >= at_least


async def _recorded_log(ns, services, db, n: int = 30) -> None:
    await produce_many(ns, "invoices.events", [(f"inv-{i % 4}".encode(), json.dumps(envelope(i, key=f"inv-{i % 4}")).encode())
                                               for i in range(n)])
    await services.start("audit", INVOICING_CLOCK=FIXED)
    await eventually(lambda: _grew(db, n))


async def test_the_recorders_role_cannot_change_the_log_and_the_trigger_stops_everyone(ns, services, db):
    await _recorded_log(ns, services, db, 8)
    recorder = await asyncpg.connect(ns.service_dsn("audit"), server_settings={"search_path": "audit"})
    try:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
                await recorder.execute(statement)
        # The owner may grant itself the right back: the trigger still refuses.
        await recorder.execute("GRANT UPDATE, DELETE ON audit_log TO CURRENT_USER")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: UPDATE"):
            await recorder.execute("UPDATE audit_log SET actor = 'x'")
        await recorder.execute("REVOKE UPDATE, DELETE ON audit_log FROM CURRENT_USER")
    finally:
        await recorder.close()
    for statement in ("UPDATE audit.audit_log SET actor = 'x'", "DELETE FROM audit.audit_log WHERE id = 1",
                      "TRUNCATE audit.audit_log"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await db.execute(statement)
    # Replication mode does not switch it off either.
    async with db.transaction():
        await db.execute("SET LOCAL session_replication_role = replica")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only: DELETE"):
            await db.execute("DELETE FROM audit.audit_log")
    assert await count(db) == 8


class Tampering:
    """Changes rows as a superuser with the trigger disabled, as an intruder would."""

    def __init__(self, db):
        self.db = db

    async def __call__(self, *statements: str) -> None:
        async with self.db.transaction():
            await self.db.execute("ALTER TABLE audit.audit_log DISABLE TRIGGER USER")
            for statement in statements:
                await self.db.execute(statement)
            await self.db.execute("ALTER TABLE audit.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only")
            await self.db.execute("ALTER TABLE audit.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate")


async def _broken(ns) -> dict:
    result = await run_cli(ns, "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert not report["intact"] and result.stderr.startswith("broken: ")
    return report


async def test_verify_names_each_tampered_record_and_the_checkpoints_reveal_a_cut_or_rewritten_tail(ns, services, db):
    await _recorded_log(ns, services, db, 30)
    published = await run_cli(ns, "checkpoint")
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["records"] == 30
    intact = await run_cli(ns, "verify", "--from", "2026-03-02", "--to", "2026-03-02")
    assert intact.returncode == 0 and json.loads(intact.stdout)["records"] == 30
    chains = await count(db, "SELECT count(DISTINCT (topic, partition)) FROM audit.audit_log")
    assert json.loads(intact.stdout)["checkpoints"]["checked"] == chains  # the file and the topic agree
    tamper = Tampering(db)
    row = await db.fetchrow("SELECT id, topic, partition, kafka_offset, event_id, payload::text AS payload "
                            "FROM audit.audit_log ORDER BY seq, partition OFFSET 5 LIMIT 1")

    # An amount changed.
    await tamper(f"UPDATE audit.audit_log SET payload = payload || '{{\"n\": 999}}' WHERE id = {row['id']}")
    report = await _broken(ns)
    first = report["problems"][0]
    assert (first["kind"], first["record_id"], first["event_id"]) == ("tampered", row["id"], str(row["event_id"]))
    assert (first["topic"], first["partition"], first["kafka_offset"]) == (row["topic"], row["partition"], row["kafka_offset"])
    assert f"offset {row['kafka_offset']}" in report["first_problem"]
    await tamper(f"UPDATE audit.audit_log SET payload = '{row['payload']}'::jsonb WHERE id = {row['id']}")
    assert (await run_cli(ns, "verify")).returncode == 0

    # A record removed.
    await db.execute(f"CREATE TEMP TABLE saved AS SELECT * FROM audit.audit_log WHERE id = {row['id']}")
    await tamper(f"DELETE FROM audit.audit_log WHERE id = {row['id']}")
    first = (await _broken(ns))["problems"][0]
    assert first["kind"] == "missing" and (first["partition"], first["kafka_offset"]) == (row["partition"], row["kafka_offset"])
    await tamper("INSERT INTO audit.audit_log OVERRIDING SYSTEM VALUE SELECT * FROM saved")

    # Two payloads swapped.
    a, b = await db.fetch("SELECT id FROM audit.audit_log ORDER BY id OFFSET 10 LIMIT 2")
    swap = ("UPDATE audit.audit_log l SET payload = o.payload FROM audit.audit_log o "
            f"WHERE (l.id, o.id) IN (({a['id']}, {b['id']}), ({b['id']}, {a['id']}))")
    await tamper(swap)
    report = await _broken(ns)
    assert sorted(p["record_id"] for p in report["problems"]) == [a["id"], b["id"]]
    await tamper(swap)
    assert (await run_cli(ns, "verify")).returncode == 0

    # The last records of a chain cut off: the chain itself still links, the outside does not.
    chain = await db.fetch(f"SELECT id FROM audit.audit_log WHERE topic = '{row['topic']}' "
                           f"AND partition = {row['partition']} ORDER BY seq DESC LIMIT 2")
    await db.execute(f"DROP TABLE saved; CREATE TEMP TABLE saved AS SELECT * FROM audit.audit_log "
                     f"WHERE id IN ({chain[0]['id']}, {chain[1]['id']})")
    await tamper(f"DELETE FROM audit.audit_log WHERE id IN ({chain[0]['id']}, {chain[1]['id']})")
    report = await _broken(ns)
    assert {p["kind"] for p in report["problems"]} == {"truncated"}
    assert any("checkpoint" in p["message"] for p in report["problems"])  # from the file and the topic
    assert any("confirmed to Kafka" in p["message"] for p in report["problems"])
    await tamper("INSERT INTO audit.audit_log OVERRIDING SYSTEM VALUE SELECT * FROM saved")

    # One record rewritten and every later hash of its chain recomputed: only the checkpoint knows.
    rows = await db.fetch(f"SELECT * FROM audit.audit_log WHERE topic = '{row['topic']}' "
                          f"AND partition = {row['partition']} ORDER BY seq")
    records = [record_of(r) for r in rows]
    forged = [AuditRecord(**{**records[0].__dict__, "actor": "mallory"})] + records[1:]
    relinked = link_all({}, forged)
    assert relinked[0].hash != records[0].hash and chain_hash(GENESIS, relinked[0]) == relinked[0].hash
    await tamper(*(f"UPDATE audit.audit_log SET actor = '{r.actor}', hash = '\\x{r.hash.hex()}'::bytea "
                   f"WHERE id = {old.id}" for r, old in zip(relinked, records)))
    report = await _broken(ns)
    assert [p["kind"] for p in report["problems"]] == ["checkpoint"]
    assert "the log was rewritten" in report["first_problem"]
    assert head_of(relinked[-1]).seq == len(records)


async def test_an_invoice_sent_through_the_real_flow_has_its_whole_history_with_each_actor(ns, services, db):
    await services.start("advances", INVOICING_CLOCK=FIXED)
    await services.start("invoices", INVOICING_CLOCK=FIXED, INVOICING_APPROVAL_THRESHOLD="1000.00")
    await services.start("audit", INVOICING_CLOCK=FIXED)
    notified = contract(1, contract_id=CONTRACT, supplier_siret=SELLER_SIRET, amount_ht="600000.00",
                        amount_ttc="720000.00", duration_months=18)
    assert await post_contracts(services.url("advances"), [notified]) == [201]

    async with httpx.AsyncClient(base_url=services.url("invoices"), timeout=30) as client:
        sent = await client.post("/invoices", content=cii(number="F-AUDIT-1"), headers=token(ns, "alice", "intake"))
        assert sent.status_code == 202, sent.text
        invoice = sent.json()["invoice_id"]
        assert (await client.post(f"/invoices/{invoice}/service-done", json={},
                                  headers=token(ns, "bob", "approver"))).status_code == 200
        assert (await client.post(f"/invoices/{invoice}/approve",
                                  headers=token(ns, "carol", "approver"))).status_code == 200

    async def timeline():
        result = await run_cli(ns, "history", "--invoice", invoice, "--json")
        answer = json.loads(result.stdout) if result.returncode == 0 else {"events": []}
        return answer if len(answer["events"]) >= 5 else None

    answer = await eventually(timeline, timeout=60)
    steps = answer["events"]
    assert answer["truncated"] is False
    assert [(s["event_type"], s["actor"]) for s in steps] == [
        ("InvoiceReceived", "alice"), ("InvoiceValidated", "intake"), ("ServiceDoneRecorded", "bob"),
        ("InvoiceApproved", "carol"), ("AdvanceRecoveryApplied", "advances.recovery")]
    assert steps[1]["causation_id"] == steps[0]["event_id"]
    assert steps[4]["causation_id"] == steps[3]["event_id"]

    table = await run_cli(ns, "history", "--invoice", invoice)
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert [line.split()[2:4] for line in lines[2:7]] == [
        ["InvoiceReceived", "alice"], ["InvoiceValidated", "intake"], ["ServiceDoneRecorded", "bob"],
        ["InvoiceApproved", "carol"], ["AdvanceRecoveryApplied", "advances.recovery"]]
    assert lines[-1] == f"5 event(s) for invoice {invoice}"

    by_contract = json.loads((await run_cli(ns, "history", "--contract", CONTRACT, "--json")).stdout)["events"]
    # The contract's own events, and those of the invoice naming it (BT-12).
    assert [s["event_type"] for s in by_contract] == [
        "ContractNotified", "AdvanceGranted", "InvoiceValidated", "InvoiceApproved", "AdvanceRecoveryApplied"]
    by_supplier = json.loads((await run_cli(ns, "history", "--supplier", SELLER_SIRET, "--json")).stdout)["events"]
    assert {"ContractNotified", "ServiceDoneRecorded", "InvoiceApproved"} <= {s["event_type"] for s in by_supplier}
    by_carol = json.loads((await run_cli(ns, "history", "--actor", "carol", "--json")).stdout)["events"]
    assert [s["event_type"] for s in by_carol] == ["InvoiceApproved"]
    assert (await run_cli(ns, "history", "--invoice", invoice, "--actor", "carol")).returncode == 2

    async with httpx.AsyncClient(base_url=services.url("audit"), timeout=30) as client:
        answer = await client.get("/audit/history", params={"invoice": invoice}, headers=token(ns, "audrey", "auditor"))
        assert answer.status_code == 200
        assert [s["event_id"] for s in answer.json()["events"]] == [s["event_id"] for s in steps]
        assert (await client.get("/audit/history", params={"invoice": invoice},
                                 headers=token(ns, "carol", "approver"))).status_code == 403
        assert (await client.get("/audit/history", headers=token(ns, "audrey", "auditor"))).status_code == 422

    rebuilt = await run_cli(ns, "rebuild", "invoices")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert json.loads(rebuilt.stdout)["invoices_from_events"] == 1
    await db.execute("UPDATE invoices.invoices SET approved_by = 'mallory' WHERE invoice_id = $1", uuid.UUID(invoice))
    differs = await run_cli(ns, "rebuild", "invoices")
    assert differs.returncode == 1
    assert json.loads(differs.stdout)["differences"] == [
        {"invoice_id": invoice, "field": "approved_by", "from_events": "carol", "in_table": "mallory"}]


def _chains_recomputed(lines: list[dict]) -> bool:
    """The export alone suffices to recompute every chain."""
    previous: dict[tuple[str, int], bytes] = {}
    for line in sorted(lines, key=lambda r: (r["topic"], r["partition"], r["seq"])):
        record = AuditRecord(
            **{name: line[name] for name in ("topic", "partition", "seq", "kafka_offset", "kind", "value_sha256",
                                             "event_type", "schema_version", "producer", "aggregate_type",
                                             "aggregate_id", "correlation_id", "actor", "note")},
            kafka_key=_bytes(line["kafka_key"]), raw=_bytes(line["raw"]),
            kafka_timestamp=_instant(line["kafka_timestamp"]), received_at=_instant(line["received_at"]),
            occurred_at=_instant(line["occurred_at"]), payload=line["payload"],
            event_id=uuid.UUID(line["event_id"]) if line["event_id"] else None,
            causation_id=uuid.UUID(line["causation_id"]) if line["causation_id"] else None,
            subjects=tuple(line["subjects"]))
        key = (record.topic, record.partition)
        if chain_hash(previous.get(key, GENESIS), record).hex() != line["hash"]:
            return False
        previous[key] = bytes.fromhex(line["hash"])
    return True


def _bytes(text):
    import base64

    return base64.b64decode(text) if text else None


def _instant(text):
    from datetime import datetime

    return datetime.fromisoformat(text) if text else None


async def test_export_round_trip_in_csv_and_json_lines(ns, services, db, tmp_path):
    produced = [envelope(i, "AmountsNoted", amount="<number>", label="Façade № 3 — ü") for i in range(40)]
    # Numbers spelled as JSON numbers PostgreSQL rewrites (1.50 → 1.50, 1e2 → 100): still verifiable.
    values = [(e["aggregate_id"].encode(), json.dumps(e, ensure_ascii=False).replace(
        '"<number>"', "1.50" if i % 2 else "1e2").encode()) for i, e in enumerate(produced)]
    values[7] = (b"inv", b'{"event_id": "' + produced[7]["event_id"].encode() + b'", "payload": 1e2, "amount": 1.50}')
    await produce_many(ns, "payments.events", values)
    await services.start("audit", INVOICING_CLOCK=FIXED)
    await eventually(lambda: _grew(db, 40))

    jsonl, as_csv = tmp_path / "audit.jsonl", tmp_path / "audit.csv"
    for fmt, path in (("jsonl", jsonl), ("csv", as_csv)):
        done = await run_cli(ns, "export", "--from", "2026-03-02", "--to", "2026-03-02", "--format", fmt,
                             "--output", str(path))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stderr)["exported"] == 40
    lines = [parse_json(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    rows = list(csv.DictReader(io.StringIO(as_csv.read_text(encoding="utf-8"))))

    stored = {r["id"]: r for r in await db.fetch("SELECT id, event_id, hash, payload::text AS payload, raw "
                                                  "FROM audit.audit_log")}
    assert [line["id"] for line in lines] == [int(row["id"]) for row in rows] == sorted(stored)
    assert {line["hash"] for line in lines} == {row["hash"] for row in rows} == {r["hash"].hex() for r in stored.values()}
    events = {line["event_id"]: line for line in lines if line["kind"] == "event"}
    assert set(events) == {e["event_id"] for i, e in enumerate(produced) if i != 7}
    assert events[produced[1]["event_id"]]["payload"]["amount"] == Decimal("1.5")
    assert events[produced[2]["event_id"]]["payload"]["amount"] == 100
    assert events[produced[3]["event_id"]]["payload"]["label"] == "Façade № 3 — ü"
    for row in rows:
        if row["kind"] == "event":
            assert parse_json(row["payload"]) == events[row["event_id"]]["payload"]
    raw = [line for line in lines if line["kind"] == "raw"]
    assert len(raw) == 1 and _bytes(raw[0]["raw"]) == values[7][1] and "event envelope" in raw[0]["note"]
    assert _chains_recomputed(lines)

    nothing = await run_cli(ns, "export", "--from", "2026-03-03", "--to", "2026-03-04", "--format", "csv")
    assert nothing.returncode == 0 and nothing.stdout.count("\n") == 1  # the header only
    assert (await run_cli(ns, "export", "--from", "2026-03-05", "--to", "2026-03-04")).returncode == 2

    async with httpx.AsyncClient(base_url=services.url("audit"), timeout=30) as client:
        auditor = token(ns, "audrey", "auditor")
        streamed = await client.get("/audit/export", params={"from": "2026-03-02", "to": "2026-03-02",
                                                               "format": "jsonl"}, headers=auditor)
        assert streamed.status_code == 200 and streamed.text == jsonl.read_text(encoding="utf-8")
        verdict = (await client.get("/audit/verify", headers=auditor)).json()
        assert verdict["intact"] and verdict["records"] == 40
        assert (await client.post("/audit/checkpoints", headers=auditor)).json()["records"] == 40
        assert (await client.get("/audit/completeness", headers=auditor)).json()["complete"]


# -- the recorder in process: batches applied straight to the namespace's database -------------



@pytest.fixture
async def audit_pool(ns):
    async with service_pool(ns, "audit") as pool:
        yield pool


def _recorder(pool) -> AuditRecorder:
    recorder = AuditRecorder([])
    recorder._pool = lambda: pool
    recorder.clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    return recorder


def _read(topic: str, partition: int, offset: int, value: bytes | None, key: bytes = b"inv") -> ConsumerRecord:
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=1772442000000 + offset,
                          timestamp_type=0, key=key, value=value, checksum=None, serialized_key_size=len(key),
                          serialized_value_size=len(value or b""), headers=())


def _event(i: int, **payload) -> bytes:
    return json.dumps(envelope(i, **payload)).encode()


async def _chains(pool) -> tuple[dict[tuple[str, int], list[AuditRecord]], ChainVerifier]:
    """The log read back, chain by chain, and the verdict of the verification on it."""
    verifier = ChainVerifier()
    chains: dict[tuple[str, int], list[AuditRecord]] = {}
    async with pool.acquire() as conn, conn.transaction():
        async for record in store.chain_records(conn):
            verifier.feed(record)
            chains.setdefault((record.topic, record.partition), []).append(record)
    return chains, verifier


async def test_a_batch_over_many_chains_is_recorded_as_record_after_record(audit_pool):
    recorder = _recorder(audit_pool)
    events = [_event(i, amount="<n>", contract_reference=f"M-{i % 3}") for i in range(20)]
    # Numbers a float cannot hold, spelled as PostgreSQL will not return them.
    events = [e.replace(b'"<n>"', b"12345678901234567890.000010" if i % 2 else b"1e2") for i, e in enumerate(events)]
    first = [_read("invoices.events", p, o, events[p * 5 + o]) for p in (0, 1) for o in range(5)]
    assert await recorder.apply(tuple(first)) == []

    # Read again from offset 3 of partition 0 after a crash, with new records on four chains
    # (two of them new), the same event again (identical bytes from an earlier batch, other
    # bytes within this one), a record that is not an event and a tombstone; partitions mixed.
    resent = json.loads(events[12])
    again = [
        _read("invoices.events", 0, 3, events[3]), _read("invoices.events", 2, 0, events[12]),
        _read("invoices.events", 0, 4, events[4]), _read("invoices.events", 1, 5, events[1]),
        _read("payments.events", 0, 0, b"<Invoice/>"), _read("invoices.events", 0, 5, events[15]),
        _read("invoices.events", 2, 1, json.dumps({**resent, "actor": "someone-else"}).encode()),
        _read("payments.events", 0, 1, None), _read("invoices.events", 1, 6, events[16]),
        _read("invoices.events", 2, 2, events[17]),
    ]
    assert await recorder.apply(tuple(again)) == []

    chains, verifier = await _chains(audit_pool)
    assert verifier.problems == [] and verifier.records == 10 + 8
    assert {chain: [(r.seq, r.kafka_offset, r.kind) for r in records] for chain, records in chains.items()} == {
        ("invoices.events", 0): [(s + 1, s, "event") for s in range(6)],
        ("invoices.events", 1): [(1, 0, "event"), (2, 1, "event"), (3, 2, "event"), (4, 3, "event"),
                                 (5, 4, "event"), (6, 5, "duplicate"), (7, 6, "event")],
        ("invoices.events", 2): [(1, 0, "event"), (2, 1, "duplicate"), (3, 2, "event")],
        ("payments.events", 0): [(1, 0, "raw"), (2, 1, "raw")],
    }
    duplicate = chains[("invoices.events", 1)][5]
    assert "invoices.events partition 0 offset 1" in duplicate.note and "identical bytes" in duplicate.note
    assert "invoices.events partition 2 offset 0" in chains[("invoices.events", 2)][1].note
    assert "DIFFERENT bytes" in chains[("invoices.events", 2)][1].note
    # Each event as the reference reads it: exact numbers, the subjects its payload names.
    for record in [r for records in chains.values() for r in records if r.kind == "event"]:
        document = parse_json(events[int(record.payload["n"])])
        assert canonical_json(record.payload) == canonical_json(document["payload"])
        assert tuple(record.subjects) == subjects_of(record.aggregate_type, record.aggregate_id, document["payload"])
        assert str(record.event_id) == document["event_id"]


async def test_a_row_postgresql_refuses_is_kept_raw_alone_and_its_chain_still_links(audit_pool, monkeypatch):
    refused = envelope(3)
    values = [_event(i) for i in range(6)]
    values[3] = json.dumps(refused).encode()
    insert = store.insert

    async def refusing(conn, records, payloads=None):
        if any(r.kind == "event" and str(r.event_id) == refused["event_id"] for r in records):
            raise asyncpg.DataError("value refused")
        await insert(conn, records, payloads)

    monkeypatch.setattr(store, "insert", refusing)
    recorder = _recorder(audit_pool)
    assert await recorder.apply(tuple(_read("advances.events", o % 2, o // 2, v) for o, v in enumerate(values))) == []

    chains, verifier = await _chains(audit_pool)
    assert verifier.problems == []
    kinds = {p: [(r.kafka_offset, r.kind) for r in chains[("advances.events", p)]] for p in (0, 1)}
    assert kinds == {0: [(0, "event"), (1, "event"), (2, "event")], 1: [(0, "event"), (1, "raw"), (2, "event")]}
    kept = chains[("advances.events", 1)][1]
    assert kept.raw == values[3] and kept.note == "PostgreSQL refused it as an event: value refused"


async def test_two_recorders_appending_to_the_same_chains_at_once_record_each_offset_once(audit_pool):
    chains = [("invoices.events", 0), ("invoices.events", 1), ("payments.events", 2)]
    values = {chain: [_event(100 * n + o) for o in range(60)] for n, chain in enumerate(chains)}

    def batch(order, last: int) -> tuple[ConsumerRecord, ...]:
        return tuple(_read(topic, partition, o, values[(topic, partition)][o])
                     for topic, partition in order for o in range(last))

    # Two replicas during a rebalance both read from the committed offset (0 here): overlapping
    # batches, their chains listed in different orders, applied at once. Each waits for the
    # others on the chains they share, reads the heads they left and appends only what follows.
    one, other = _recorder(audit_pool), _recorder(audit_pool)
    await asyncio.gather(
        one.apply(batch(chains, 30)), other.apply(batch(chains[::-1], 40)), one.apply(batch(chains[1:], 50)),
        other.apply(batch(chains[::-1], 60)), one.apply(batch(chains, 45)))

    recorded, verifier = await _chains(audit_pool)
    assert verifier.problems == [] and verifier.records == 180
    for chain in chains:
        assert [(r.seq, r.kafka_offset, r.kind) for r in recorded[chain]] == [(o + 1, o, "event") for o in range(60)]
