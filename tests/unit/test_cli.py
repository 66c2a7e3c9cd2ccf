"""The operator commands as a finance user runs them: exit codes and JSON on stdout."""

import json
import subprocess
import sys

from deploy.simulators.suppliers import REGION_SIRET, cii, ubl


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          timeout=120, env={"INVOICING_BUYER_SIRET": REGION_SIRET, "PATH": "/usr/bin:/bin"})


def test_parse_prints_the_canonical_invoice(tmp_path):
    path = tmp_path / "invoice.xml"
    path.write_bytes(cii(number="F-CLI-1"))
    done = _run("parse", str(path))
    assert done.returncode == 0, done.stderr
    invoice = json.loads(done.stdout)
    assert invoice["format"] == "cii" and invoice["number"] == "F-CLI-1"
    assert invoice["buyer"]["siret"] == REGION_SIRET


def test_validate_exit_codes_say_valid_invalid_unreadable(tmp_path):
    good, bad, junk = tmp_path / "good.xml", tmp_path / "bad.xml", tmp_path / "junk.bin"
    good.write_bytes(ubl(number="F-CLI-2"))
    bad.write_bytes(ubl(number="F-CLI-3", buyer_siret="73282932000074"))
    junk.write_bytes(b"\x00garbage")

    valid = _run("validate", str(good), "--profile", "fr-public")
    assert valid.returncode == 0 and json.loads(valid.stdout)["valid"] is True

    invalid = _run("validate", str(bad), "--profile", "fr-public")
    assert invalid.returncode == 1
    [error] = json.loads(invalid.stdout)["errors"]
    assert (error["rule"], error["term"]) == ("FR-SIRET-RECIPIENT", "BT-47")

    unreadable = _run("validate", str(junk))
    assert unreadable.returncode == 2 and json.loads(unreadable.stdout)["error"] == "not_xml"


def test_deadline_prints_the_due_dates_and_days_left():
    done = _run("deadline", "--received", "2026-03-02", "--today", "2026-03-20")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "dgp_start": "2026-03-02", "legal_due": "2026-04-01", "ordonnateur_due": "2026-03-22",
        "target_due": "2026-03-17", "days_left": 12, "status": "past_target"}

    restarted = json.loads(_run("deadline", "--received", "2026-03-02", "--interrupted", "2026-03-12",
                                "--completed", "2026-03-20", "--today", "2026-04-20").stdout)
    assert (restarted["legal_due"], restarted["days_left"], restarted["status"]) == ("2026-04-19", -1, "overdue")

    refused = _run("deadline", "--received", "2026-03-02", "--interrupted", "2026-04-05", "--completed", "2026-04-06")
    assert refused.returncode == 2 and "R2192-27" in json.loads(refused.stdout)["message"]


def test_advance_and_recovery_commands_reproduce_the_worked_example():
    advance = json.loads(_run("advance", "--amount-ht", "600000.00", "--amount-ttc", "720000.00",
                              "--months", "18", "--sme").stdout)
    assert (advance["mandatory"], advance["rate"], advance["base"], advance["amount"]) == (True, "20", "480000.00", "96000.00")
    assert (advance["recovery_start_pct"], advance["recovery_end_pct"]) == ("65", "80")

    row_13 = json.loads(_run("recovery", "--advance", "96000.00", "--contract-ttc", "720000.00",
                             "--executed-before", "480000.00", "--invoice", "40000.00").stdout)
    assert (row_13["deduction"], row_13["net_payable"], row_13["recovered_after"]) == ("35555.55", "4444.45", "46222.22")

    bad = _run("advance", "--amount-ht", "1e5", "--amount-ttc", "120000", "--months", "6")
    assert bad.returncode == 2 and json.loads(bad.stdout)["argument"] == "--amount-ht"
