"""`invoicing interest` as a finance user runs it: JSON on stdout, or one error line and exit 2."""

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from shared.settings import get_settings

WORKED_EXAMPLE = ["interest", "--amount-ttc", "120000.00", "--due", "2026-04-01", "--paid", "2026-04-21"]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch):
    """Each command reads the environment of its test, not settings cached by another."""
    monkeypatch.delenv("INVOICING_ECB_RATES", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_worked_example_prints_interest_indemnity_and_pay_by():
    done = run(*WORKED_EXAMPLE)

    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == {
        "days_late": 20,
        "rate": "10.15",
        "interest": "667.40",
        "indemnity": "40.00",
        "total": "707.40",
        "pay_by": "2026-06-05",
        "ecb_rate": "2.15",
        "half_year": "2026-H1",
        "first_late_day": "2026-04-02",
    }


def test_halved_contractual_delay_costs_35_days():
    done = run("interest", "--amount-ttc", "120000.00", "--due", "2026-03-17", "--paid", "2026-04-21")

    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["days_late"], document["interest"], document["total"]) == (35, "1167.95", "1207.95")


def test_paid_on_the_due_date_prints_zeros():
    done = run("interest", "--amount-ttc", "120000.00", "--due", "2026-04-01", "--paid", "2026-04-01")

    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["days_late"], document["total"], document["pay_by"]) == (0, "0.00", None)


def test_ecb_rate_option_replaces_the_table():
    done = run(*WORKED_EXAMPLE, "--ecb-rate", "3.15")

    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["ecb_rate"], document["rate"], document["interest"]) == ("3.15", "11.15", "733.15")


def test_the_table_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("INVOICING_ECB_RATES", '{"2026-H2": "2.40"}')

    done = run("interest", "--amount-ttc", "120000.00", "--due", "2026-06-30", "--paid", "2026-07-20")

    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["half_year"], document["rate"]) == ("2026-H2", "10.40")
    # 120 000 × 10.40 % × 20 / 365 = 683.835…
    assert document["interest"] == "683.84"


def test_an_unknown_half_year_says_how_to_give_the_rate():
    done = run("interest", "--amount-ttc", "120000.00", "--due", "2026-06-30", "--paid", "2026-07-20")

    assert done.exit_code == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    assert "2026-H2" in line and "INVOICING_ECB_RATES" in line and "--ecb-rate" in line


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--amount-ttc", "1e5"),
        ("--amount-ttc", "0"),
        ("--amount-ttc", "120000.001"),
        ("--due", "01/04/2026"),
        ("--due", "2026-02-30"),
        ("--paid", "tomorrow"),
        ("--ecb-rate", "2,15"),
    ],
)
def test_bad_input_is_one_error_line_naming_the_option(option, value):
    args = {"--amount-ttc": "120000.00", "--due": "2026-04-01", "--paid": "2026-04-21", option: value}

    done = run("interest", *[item for pair in args.items() for item in pair])

    assert done.exit_code == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {option}: ") and value in line
