"""Records that can never be processed go to the dead-letter topic; the partition keeps flowing."""

import asyncio
import json
import subprocess
import sys

import pytest

from shared.clock import SystemClock
from shared.events import encode, new_envelope
from shared.events.contracts import ContractNotified
from tests.support import admin_connection, contract, env_of, eventually, produce

pytestmark = pytest.mark.integration

KEY = b"same-key-same-partition"


def _event(i: int, **changes) -> dict:
    envelope = new_envelope(ContractNotified.model_validate(contract(i)), producer="advances",
                            actor="test", clock=SystemClock())
    document = json.loads(encode(envelope))
    for field, value in changes.items():
        if field.startswith("payload."):
            document["payload"][field.removeprefix("payload.")] = value
        else:
            document[field] = value
    return document


def _cli(ns, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          env={**__import__("os").environ, **env_of(ns)}, timeout=120)


async def test_poison_records_are_dead_lettered_and_the_valid_ones_behind_them_are_processed(ns, services):
    records = [
        json.dumps(_event(1)).encode(),
        b"\xff\xfe not json, not even UTF-8",
        json.dumps(_event(2, **{"payload.supplier_siret": "12345678901234"})).encode(),
        json.dumps(_event(3, event_type="ContractTeleported")).encode(),
        json.dumps(_event(4, schema_version=9)).encode(),
        json.dumps(_event(5)).encode(),
    ]
    await produce(ns, "advances.events", records, key=KEY)
    await services.start("invoices")

    db = await admin_connection(ns)
    try:
        refs = await eventually(lambda: db.fetch(
            "SELECT contract_id FROM invoices.contract_refs ORDER BY contract_id"))
        assert [r["contract_id"] for r in refs] == ["M-2026-0001", "M-2026-0005"]
    finally:
        await db.close()

    listing = await eventually(lambda: asyncio.to_thread(_dead_letters, ns, 4), timeout=30)
    assert [(d["original_offset"], d["reason"]) for d in listing] == [
        (1, "undecodable"), (2, "invalid_payload"), (3, "unknown_event_type"), (4, "unsupported_schema_version"),
    ]
    assert all(d["consumer"] == "invoices.contracts" for d in listing)
    assert all(d["original_topic"] == ns.topic("advances.events") for d in listing)
    assert "supplier_siret" in listing[1]["detail"] and "not a valid SIRET" in listing[1]["detail"]
    assert "ContractTeleported" in listing[2]["detail"]

    shown = _cli(ns, "dlq", "show", listing[0]["ref"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["value_hex"] == records[1].hex()

    # A replay puts the original bytes back on the topic; still unknown, it comes back.
    replayed = _cli(ns, "dlq", "replay", listing[2]["ref"])
    assert replayed.returncode == 0, replayed.stderr
    again = await eventually(lambda: asyncio.to_thread(_dead_letters, ns, 5), timeout=30)
    assert again[-1]["reason"] == "unknown_event_type"
    assert again[-1]["key"] == KEY.decode()

    missing = _cli(ns, "dlq", "show", f"{ns.topic('advances.events.dlq')}:999")
    assert missing.returncode == 2 and "no dead letter" in missing.stderr


def _dead_letters(ns, expected: int) -> list[dict] | None:
    listed = _cli(ns, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    return letters if len(letters) >= expected else None


async def test_a_replayed_dead_letter_is_applied_once_its_cause_is_gone(ns, services):
    """A handler that failed on an event dead-letters it; replayed later, the event is applied."""
    valid = json.dumps(_event(6)).encode()
    await produce(ns, "advances.events", [valid], key=KEY)
    db = await admin_connection(ns)
    try:
        # The invoices schema refuses the effect: the handler fails, the event is dead-lettered.
        await services.start("invoices")
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM invoices.contract_refs"))
        await db.execute("DELETE FROM invoices.contract_refs")
        await db.execute("DELETE FROM invoices.processed_events")
        await db.execute("ALTER TABLE invoices.contract_refs ADD CONSTRAINT no_six "
                         "CHECK (contract_id <> 'M-2026-0006')")
        replay_source = ns.topic("advances.events")
        await produce(ns, "advances.events", [valid], key=KEY)
        [letter] = await eventually(lambda: asyncio.to_thread(_dead_letters, ns, 1), timeout=30)
        assert letter["reason"] == "handler_failed" and "no_six" in letter["detail"]
        assert letter["original_topic"] == replay_source

        await db.execute("ALTER TABLE invoices.contract_refs DROP CONSTRAINT no_six")
        assert _cli(ns, "dlq", "replay", letter["ref"]).returncode == 0
        await eventually(lambda: db.fetchval("SELECT count(*) = 1 FROM invoices.contract_refs"))
        assert await db.fetchval("SELECT count(*) FROM invoices.processed_events") == 1
    finally:
        await db.close()
