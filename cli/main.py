"""``invoicing``: the operator's command line. Commands print JSON for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Optional

import typer

from shared.settings import get_settings

app = typer.Typer(help="Operate the invoicing system.", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
stack_app = typer.Typer(help="The local Kafka + PostgreSQL stack (no Docker).", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the catalogue.", no_args_is_help=True)
db_app = typer.Typer(help="The database, its roles and schemas.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: records no consumer could process.", no_args_is_help=True)
services_app = typer.Typer(help="The service processes.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(services_app, name="services")
suppliers_app = typer.Typer(help="Suppliers known to the invoices service.", no_args_is_help=True)
engagements_app = typer.Typer(help="Budget commitments (« engagements »).", no_args_is_help=True)
app.add_typer(suppliers_app, name="suppliers")
app.add_typer(engagements_app, name="engagements")
contracts_app = typer.Typer(help="Contracts and their advances (through the advances service).", no_args_is_help=True)
app.add_typer(contracts_app, name="contracts")
payments_app = typer.Typer(help="Payment runs, confirmations and payables (through the payments service).",
                           no_args_is_help=True)
app.add_typer(payments_app, name="payments")


def _print(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _answer(code: int, text: str) -> None:
    """Prints a command's JSON answer and exits with its code."""
    typer.echo(text)
    raise typer.Exit(code)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@stack_app.command("up")
def stack_up(
    init: bool = typer.Option(True, help="also create the namespace's database and topics"),
) -> None:
    """Start PostgreSQL and Kafka (idempotent), then create the database and topics."""
    from deploy.local import stack
    from shared.db import ensure_database
    from shared.topics import create_topics

    settings = get_settings()
    try:
        result = stack.up(settings)
    except stack.StackError as exc:
        _fail(str(exc))
    if init:
        asyncio.run(ensure_database(settings))
        result["topics_created"] = asyncio.run(create_topics(settings))
    _print(result)


@stack_app.command("down")
def stack_down() -> None:
    """Stop what `stack up` started (read from its pid files)."""
    from deploy.local import stack

    _print({"stopped": stack.down(get_settings())})


@stack_app.command("status")
def stack_status() -> None:
    from deploy.local import stack

    _print(stack.status(get_settings()))


@topics_app.command("create")
def topics_create() -> None:
    """Create the catalogue's missing topics (existing ones are left as they are)."""
    from shared.topics import create_topics

    _print({"created": asyncio.run(create_topics(get_settings()))})


@topics_app.command("list")
def topics_list() -> None:
    from shared.topics import all_topics

    settings = get_settings()
    _print([{"name": settings.topic(t.name), "partitions": t.partitions, "purpose": t.purpose,
             "config": t.config} for t in all_topics()])


@db_app.command("init")
def db_init() -> None:
    """Create the roles, the namespace's database and the service schemas (idempotent)."""
    from shared.db import ensure_database

    settings = get_settings()
    asyncio.run(ensure_database(settings))
    _print({"database": settings.database})


@dlq_app.command("list")
def dlq_list(topic: Optional[str] = typer.Option(None, help="only this DLQ topic")) -> None:
    """Every dead letter: where it came from, which consumer gave up, and why."""
    from shared.dlq import read_dead_letters

    letters = asyncio.run(read_dead_letters(get_settings(), [topic] if topic else None))
    _print([letter.summary() for letter in letters])


@dlq_app.command("show")
def dlq_show(ref: str = typer.Argument(..., help="TOPIC:OFFSET, as `dlq list` prints it")) -> None:
    """One dead letter with its original bytes (as text when they are UTF-8)."""
    from shared.dlq import find_dead_letter

    try:
        letter = asyncio.run(find_dead_letter(get_settings(), ref))
    except (LookupError, ValueError) as exc:
        _fail(str(exc), 2)
    data = letter.summary()
    value = letter.value or b""
    try:
        data["value"] = value.decode()
    except UnicodeDecodeError:
        data["value_hex"] = value.hex()
    _print(data)


@dlq_app.command("replay")
def dlq_replay(ref: str = typer.Argument(..., help="TOPIC:OFFSET, as `dlq list` prints it")) -> None:
    """Put a dead letter back on its original topic (after the cause was fixed)."""
    from shared.dlq import find_dead_letter, replay

    settings = get_settings()
    try:
        letter = asyncio.run(find_dead_letter(settings, ref))
        asyncio.run(replay(settings, letter))
    except (LookupError, ValueError) as exc:
        _fail(str(exc), 2)
    _print({"replayed": ref, "to": letter.original_topic})


@services_app.command("up")
def services_up(names: list[str] = typer.Argument(None, help="default: all of them")) -> None:
    """Start the service processes in the background and wait until they are ready."""
    from deploy.local import services

    try:
        _print(services.up(get_settings(), names or None))
    except services.ServiceError as exc:
        _fail(str(exc))


@services_app.command("down")
def services_down(names: list[str] = typer.Argument(None, help="default: all of them")) -> None:
    from deploy.local import services

    _print(services.down(get_settings(), names or None))


@services_app.command("status")
def services_status() -> None:
    from deploy.local import services

    _print(services.status(get_settings()))


bench_app = typer.Typer(help="Benchmarks (numbers, not pass/fail).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
from cli.audit import audit_app, bench_audit_export  # noqa: E402
app.add_typer(audit_app, name="audit")
bench_app.command("audit-export")(bench_audit_export)


@app.command("parse")
def parse(path: str = typer.Argument(..., help="a UBL, CII or Factur-X PDF file")) -> None:
    """Print the canonical invoice as JSON (exit 2 when the file cannot be read)."""
    from cli.invoice_tools import parse_command

    code, text = parse_command(path)
    _answer(code, text)


@app.command("validate")
def validate(
    path: str = typer.Argument(..., help="a UBL, CII or Factur-X PDF file"),
    profile: str = typer.Option("en16931", help="en16931 | fr-public"),
    buyer_siret: Optional[str] = typer.Option(None, help="the buyer's SIRET (fr-public); default: settings"),
) -> None:
    """Validate a document: exit 0 valid, 1 invalid, 2 unreadable."""
    from cli.invoice_tools import validate_command

    code, text = validate_command(path, profile, buyer_siret or get_settings().buyer_siret)
    _answer(code, text)


@bench_app.command("parse")
def bench_parse(
    seconds: float = typer.Option(5.0, min=0.1, help="measuring time per format, all rounds together"),
    rounds: int = typer.Option(5, min=1, help="rounds, taking turns between the formats; the median is reported"),
) -> None:
    """Documents per second, one core: parse + en16931 validation of 20-line invoices."""
    from cli.invoice_tools import bench_parse as run

    _print(run(seconds, rounds))


@bench_app.command("e2e")
def bench_e2e(
    invoices: int = typer.Option(20_000, min=1, help="invoices pushed at full speed (and through the floor)"),
    rate: float = typer.Option(200.0, min=0.1, help="invoices per second offered in the fixed-load phase"),
    seconds: float = typer.Option(30.0, min=1.0, help="length of the fixed-load phase"),
    output: str = typer.Option("bench-results.json", help="where the results are written as JSON"),
    replicas: int = typer.Option(1, min=1, max=8, help="processes of the invoices service (one consumer group)"),
) -> None:
    """Invoices from `invoices.inbound` to `PaymentOrdered` through the services, at full speed and at a
    fixed load, against a floor written on aiokafka + asyncpg; prints a table, writes the JSON."""
    from pathlib import Path

    from cli.bench_e2e import run_bench, table
    from deploy.local.services import ServiceError
    from deploy.local.stack import StackError

    try:
        result = run_bench(get_settings(), invoices, rate, seconds, Path(output), replicas=replicas)
    except (ServiceError, StackError) as exc:
        _fail(str(exc))
    typer.echo(table(result))
    typer.echo(f"results written to {output}")


def _date_option(value: Optional[str], name: str):
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _print({"error": "invalid_date", "message": f"--{name} {value!r} is not a date written YYYY-MM-DD"})
        raise typer.Exit(2) from None


@app.command("deadline")
def deadline(
    received: Optional[str] = typer.Option(None, help="receipt date (Chorus Pro: the « mise à disposition » notification)"),
    invoice_date: Optional[str] = typer.Option(None, help="used when no receipt date is known (+2 days)"),
    service_done: Optional[str] = typer.Option(None, help="the service-done date, when later than receipt"),
    interrupted: Optional[str] = typer.Option(None, help="the day the interruption was notified"),
    completed: Optional[str] = typer.Option(None, help="the day every missing piece was received"),
    buyer_type: str = typer.Option("local_authority", help="local_authority | public_hospital | public_undertaking"),
    today: Optional[str] = typer.Option(None, help="default: today by the configured clock"),
) -> None:
    """The legal payment deadline of an invoice, as JSON."""
    from services.invoices.domain.deadline import DeadlineError, Interruption, deadline_for
    from shared.clock import clock_from_spec

    notified = _date_option(interrupted, "interrupted")
    if completed and not notified:
        _print({"error": "invalid_dates", "message": "--completed needs --interrupted"})
        raise typer.Exit(2)
    try:
        result = deadline_for(
            _date_option(received, "received"), buyer_type=buyer_type,
            service_done_on=_date_option(service_done, "service-done"),
            invoice_date=_date_option(invoice_date, "invoice-date"),
            interruption=Interruption(notified, _date_option(completed, "completed")) if notified else None,
        )
    except DeadlineError as exc:
        _print({"error": "invalid_dates", "message": str(exc)})
        raise typer.Exit(2) from None
    on = _date_option(today, "today") or clock_from_spec(get_settings().clock).today()
    _print(result.as_dict(on))


@app.command("advance")
def advance(
    amount_ht: str = typer.Option(..., help="initial amount excluding VAT, e.g. 600000.00"),
    amount_ttc: str = typer.Option(..., help="initial amount including VAT"),
    months: int = typer.Option(..., help="duration in months"),
    sme: bool = typer.Option(False, help="the holder is an SME"),
    policy: str = typer.Option("doubled", help="doubled | legal-minimum"),
    rate: Optional[str] = typer.Option(None, help="the contract's own rate, in percent"),
) -> None:
    """The advance due on a contract (R2191-3, R2191-7, R2191-8), as JSON."""
    from cli.advance_tools import advance_command

    code, text = advance_command(amount_ht, amount_ttc, months, sme, policy, rate)
    _answer(code, text)


@app.command("recovery")
def recovery(
    advance: str = typer.Option(..., help="the advance amount"),
    contract_ttc: str = typer.Option(..., help="the contract's amount including VAT"),
    executed_before: str = typer.Option(..., help="cumulative amount executed before this invoice"),
    invoice: str = typer.Option(..., help="this invoice's amount including VAT"),
    recovered_before: Optional[str] = typer.Option(None, help="default: what the schedule asked so far"),
    start_pct: str = typer.Option("65", help="recovery starts at this share executed"),
    end_pct: str = typer.Option("80", help="and is complete at this share"),
) -> None:
    """What one invoice bears of the advance (« précompte », R2191-11/-12), as JSON."""
    from cli.advance_tools import recovery_command

    code, text = recovery_command(advance, contract_ttc, executed_before, invoice, recovered_before,
                                  start_pct, end_pct)
    _answer(code, text)


@app.command("interest")
def interest(
    amount_ttc: str = typer.Option(..., help="the principal including VAT, e.g. 120000.00"),
    due: str = typer.Option(..., help="the due date, YYYY-MM-DD (interest runs from the day after)"),
    paid: str = typer.Option(..., help="the principal's « mise en paiement », YYYY-MM-DD"),
    ecb_rate: Optional[str] = typer.Option(None, help="the ECB MRO rate in percent; default: INVOICING_ECB_RATES"),
) -> None:
    """Late-payment interest and the 40 EUR indemnity (R2192-31, D2192-35, R2192-36), as JSON."""
    from cli.payment_tools import interest_command

    code, text = interest_command(get_settings(), amount_ttc, due, paid, ecb_rate)
    if code:
        _fail(text, code)
    _answer(code, text)


@contracts_app.command("import")
def contracts_import(
    path: str = typer.Argument(..., help="CSV whose header names the contract fields"),
    actor: str = typer.Option("procurement", help="who notifies these contracts"),
) -> None:
    """Notify contracts from a CSV file; exit 1 when any row is refused (each refusal says why)."""
    from pathlib import Path

    import httpx

    from cli.contracts import CsvError, import_contracts

    try:
        report = import_contracts(get_settings(), Path(path), actor)
    except CsvError as exc:
        _fail(str(exc), 2)
    except httpx.HTTPError as exc:
        _fail(f"the advances service does not answer ({exc}); start it with `invoicing services up`")
    _print(report)
    raise typer.Exit(1 if report["refused"] else 0)


def _import_reference(kind: str, path: str) -> None:
    from pathlib import Path

    import httpx

    from cli.contracts import CsvError
    from cli.reference import import_engagements, import_suppliers

    run = import_suppliers if kind == "suppliers" else import_engagements
    try:
        report = run(get_settings(), Path(path))
    except CsvError as exc:
        _fail(str(exc), 2)
    except httpx.HTTPError as exc:
        _fail(f"the invoices service does not answer ({exc}); start it with `invoicing services up`")
    _print(report)
    raise typer.Exit(1 if report["refused"] else 0)


@suppliers_app.command("import")
def suppliers_import(path: str = typer.Argument(..., help="CSV: siret,name,sme,iban")) -> None:
    """Register suppliers from a CSV file; an IBAN change is refused here (it needs four eyes)."""
    _import_reference("suppliers", path)


@engagements_app.command("import")
def engagements_import(path: str = typer.Argument(..., help="CSV: number,supplier_siret,amount,…")) -> None:
    """Record budget commitments from a CSV file (suppliers first)."""
    _import_reference("engagements", path)


@contracts_app.command("show")
def contracts_show(contract_id: str = typer.Argument(...)) -> None:
    """A contract's terms and its advance ledger (granted, paid, recovered, outstanding)."""
    from cli.contracts import show_contract

    status, body = show_contract(get_settings(), contract_id)
    _print(body)
    raise typer.Exit(0 if status == 200 else 1)


def _payments_answer(call) -> None:
    from cli.payments import PaymentsUnavailable

    try:
        status, body = call()
    except PaymentsUnavailable as exc:
        _fail(str(exc))
    _print(body)
    raise typer.Exit(0 if status < 300 else 1)


@payments_app.command("run")
def payments_run(
    urgent_only: bool = typer.Option(False, help="only the payables whose target cannot wait for the next run"),
    user: str = typer.Option("cli", help="who triggers the run (the events' actor)"),
) -> None:
    """Order now every scheduled payable, in one batch file (an extra payment run)."""
    from cli import payments

    _payments_answer(lambda: payments.run(get_settings(), user, urgent_only))


@payments_app.command("confirm")
def payments_confirm(
    path: str = typer.Argument(..., help="the accountant's « mises en paiement » file or a bank camt.054"),
    user: str = typer.Option("cli", help="who hands the file in (the events' actor)"),
) -> None:
    """Apply a confirmation file: executed and failed payments, unmatched entries kept for review."""
    from pathlib import Path

    from cli import payments

    file = Path(path)
    if not file.is_file():
        _fail(f"no file {path}")
    _payments_answer(lambda: payments.confirm(get_settings(), user, file))


@payments_app.command("list")
def payments_list(
    status: Optional[str] = typer.Option(None, help="on_hold, scheduled, ordered or paid"),
    kind: Optional[str] = typer.Option(None, help="invoice, advance or interest"),
) -> None:
    """Payables, with their dates, status and hold reasons."""
    from cli import payments

    _payments_answer(lambda: payments.payables(get_settings(), status, kind))


@payments_app.command("show")
def payments_show(payable_id: str = typer.Argument(..., help="e.g. invoice:<id>, advance:<contract>")) -> None:
    """One payable and every order issued for it."""
    from cli import payments

    _payments_answer(lambda: payments.show(get_settings(), payable_id))


@payments_app.command("release")
def payments_release(
    payable_id: str = typer.Argument(...),
    user: str = typer.Option("cli", help="who lifts the hold"),
) -> None:
    """Lift a hold that has been cleared (guarantee received, payee details checked)."""
    from cli import payments

    _payments_answer(lambda: payments.release(get_settings(), user, payable_id))


@payments_app.command("unmatched")
def payments_unmatched() -> None:
    """Confirmation entries matching no order or contradicting one, waiting for an operator."""
    from cli import payments

    _payments_answer(lambda: payments.open_confirmations(get_settings()))


@app.command("demo")
def demo(
    contracts: int = typer.Option(50, help="how many contracts the Region notifies"),
    invoices: int = typer.Option(2000, help="about how many valid invoices suppliers send (5 % more are wrong)"),
    days: int = typer.Option(60, help="simulated days the shared clock moves through"),
    output: str = typer.Option(".", help="folder for demo-report.json and demo-report.html"),
    keep_running: bool = typer.Option(False, help="leave the stack and services running to explore"),
) -> None:
    """Run the system on a demo workload, print a summary and write the reports."""
    from pathlib import Path

    from cli.demo import run_demo
    from deploy.local.services import ServiceError
    from deploy.local.stack import StackError

    settings = get_settings().model_copy(update={"namespace": get_settings().namespace or "demo"})
    try:
        summary = run_demo(settings, contracts=contracts, invoices=invoices, days=days,
                           keep_running=keep_running, output=Path(output))
    except (ServiceError, StackError) as exc:
        _fail(str(exc))
    _print(summary)
    broken = [name for name, rows in summary["invariants"].items() if rows]
    if broken or not summary["audit"]["verified"]:
        _fail(f"the run broke invariants {broken or ''} or its audit chain does not verify")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
