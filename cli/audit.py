"""``invoicing audit …``: verify the audit log, read a history, export a period, publish a
checkpoint, report gaps, rebuild invoices from their events.

The commands read the audit schema directly (the audit service's role), so an auditor can check
the log while the service is down. Exit codes: 0 intact / complete / identical, 1 a problem was
found (the output names it), 2 the command could not run (bad option, database unreachable).
"""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Optional

import asyncpg
import structlog
import typer

from shared.settings import Settings, get_settings

audit_app = typer.Typer(help="The audit log: verify, history, export, checkpoints, gaps, rebuild.",
                        no_args_is_help=True)

UNREACHABLE = (OSError, asyncpg.PostgresError, asyncio.TimeoutError)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _print(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _day(value: Optional[str], option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} {value!r} is not a date written YYYY-MM-DD")


def _period(start: Optional[str], end: Optional[str]):
    from services.audit.domain.period import period

    try:
        return period(_day(start, "--from"), _day(end, "--to"))
    except ValueError as exc:
        _fail(str(exc))


@asynccontextmanager
async def _audit_connection(settings: Settings):
    from shared.db import connect

    try:
        conn = await connect(settings, "audit")
    except UNREACHABLE as exc:
        raise ConnectionError(
            f"the audit log in database {settings.database!r} cannot be read ({exc}); "
            "is the stack up (`invoicing stack up`) and the audit service started once?") from exc
    try:
        yield conn
    finally:
        await conn.close()


def _run(coroutine):
    try:
        return asyncio.run(coroutine)
    except ConnectionError as exc:
        _fail(str(exc))
    except asyncpg.UndefinedTableError:
        _fail(f"database {get_settings().database!r} has no audit log yet: start the audit service once "
              "(`invoicing services up audit`)")


@audit_app.command("verify")
def verify(
    start: Optional[str] = typer.Option(None, "--from", help="first day (YYYY-MM-DD, Paris) of the records checked"),
    end: Optional[str] = typer.Option(None, "--to", help="last day, included"),
) -> None:
    """Recompute every hash chain and compare with the checkpoints and Kafka: exit 0 with the
    count when intact, 1 naming the first broken record."""
    from services.audit.verification import verify_log

    lower, upper = _period(start, end)
    settings = get_settings()

    async def check():
        async with _audit_connection(settings) as conn:
            return await verify_log(conn, settings, lower, upper)

    report = _run(check())
    _print(report)
    if not report["intact"]:
        typer.echo(f"broken: {report['first_problem']}", err=True)
        raise typer.Exit(1)


@audit_app.command("history")
def history(
    invoice: Optional[str] = typer.Option(None, "--invoice", help="an invoice id"),
    contract: Optional[str] = typer.Option(None, "--contract", help="a contract id"),
    supplier: Optional[str] = typer.Option(None, "--supplier", help="a supplier's SIRET"),
    actor: Optional[str] = typer.Option(None, "--actor", help="a user or service name"),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table"),
) -> None:
    """The ordered timeline of one invoice, contract, supplier, or of one actor's actions."""
    from services.audit import history as queries

    try:
        name, value = queries.criterion(invoice=invoice, contract=contract, supplier=supplier, actor=actor)
    except queries.HistoryQueryError as exc:
        _fail(f"{exc}, e.g. --invoice <id>")
    settings = get_settings()

    async def find():
        async with _audit_connection(settings) as conn:
            return await queries.find_history(conn, name, value)

    records, truncated = _run(find())
    entries = [queries.timeline_entry(r) for r in records]
    if as_json:
        from services.audit.domain.record import canonical_json

        # Exact: payload numbers are written by value, never through a float.
        typer.echo(canonical_json({name: value, "events": entries, "truncated": truncated}))
    else:
        typer.echo(timeline_table(entries, f"{name} {value}"))
        if truncated:
            typer.echo(f"only the first {queries.LIMIT} events are listed: `invoicing audit export` gives them all")


def timeline_table(entries: list[dict], title: str) -> str:
    """The timeline as a plain text table, one line per event."""
    if not entries:
        return f"no recorded event for {title}"
    header = ("occurred at (UTC)", "event", "actor", "about", "event id")
    rows = [(e["occurred_at"][:19].replace("T", " "), e["event_type"], e["actor"], e["aggregate"],
             e["event_id"][:8]) for e in entries]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"{len(entries)} event(s) for {title}")
    return "\n".join(lines)


@audit_app.command("export")
def export(
    start: str = typer.Option(..., "--from", help="first day (YYYY-MM-DD, Paris)"),
    end: str = typer.Option(..., "--to", help="last day, included"),
    fmt: str = typer.Option("jsonl", "--format", help="csv | jsonl"),
    output: Optional[Path] = typer.Option(None, "--output", help="file to write (default: standard output)"),
) -> None:
    """Every record received in the period with its hash, streamed (constant memory)."""
    from services.audit import export as exporting

    if fmt not in exporting.FORMATS:
        _fail(f"--format {fmt!r} is not one of {', '.join(exporting.FORMATS)}")
    lower, upper = _period(start, end)
    settings = get_settings()

    async def write(out) -> int:
        lines = 0
        async with _audit_connection(settings) as conn:
            async for chunk in exporting.stream(conn, lower, upper, fmt):
                out.write(chunk.encode("utf-8"))
                lines += chunk.count("\n")
        return lines

    if output is None:
        lines = _run(write(sys.stdout.buffer))  # UTF-8 whatever the terminal's locale
        sys.stdout.buffer.flush()
    else:
        with open(output, "wb") as out:
            lines = _run(write(out))
    records = lines - 1 if fmt == "csv" else lines
    typer.echo(json.dumps({"exported": records, "format": fmt, "output": str(output) if output else "-"}),
               err=True)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Publish the head of every chain now (checkpoint topic and file)."""
    from services.audit.checkpoints import take_checkpoint
    from shared.clock import clock_from_spec
    from shared.outbox import idempotent_producer

    settings = get_settings()

    # The service's log line about the checkpoint goes to stderr: stdout is the JSON answer.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    async def publish():
        producer = idempotent_producer(settings, "audit-cli")
        await producer.start()
        try:
            async with _audit_connection(settings) as conn:
                return await take_checkpoint(conn, settings, producer, clock_from_spec(settings.clock))
        finally:
            await producer.stop()

    _print(_run(publish()))


@audit_app.command("gaps")
def gaps() -> None:
    """Completeness per audited partition: offsets never recorded (exit 1 if any), and lag."""
    from services.audit.verification import completeness_report

    settings = get_settings()

    async def report():
        async with _audit_connection(settings) as conn:
            return await completeness_report(conn, settings)

    result = _run(report())
    _print(result)
    raise typer.Exit(0 if result["complete"] else 1)


@audit_app.command("rebuild")
def rebuild(what: str = typer.Argument(..., help="invoices")) -> None:
    """Rebuild current states from the recorded events alone and compare them with the live
    table (exit 1 on any difference)."""
    from services.audit.rebuild import rebuild_invoices

    if what != "invoices":
        _fail(f"cannot rebuild {what!r}: only 'invoices' is rebuilt from the log")
    settings = get_settings()

    async def compare():
        async with _audit_connection(settings) as audit:
            try:
                admin = await asyncpg.connect(settings.admin_dsn(settings.database))
            except UNREACHABLE as exc:
                raise ConnectionError(f"the invoices table cannot be read as administrator ({exc})") from exc
            try:
                return await rebuild_invoices(audit, admin)
            finally:
                await admin.close()

    result = _run(compare())
    _print(result)
    raise typer.Exit(0 if result["identical"] else 1)


def bench_audit_export(
    events: int = typer.Option(1_000_000, help="synthetic chained records to insert, then export"),
    fmt: str = typer.Option("jsonl", "--format", help="csv | jsonl"),
    keep: bool = typer.Option(False, help="keep the scratch namespace's database"),
) -> None:
    """Rows per second and peak memory of `audit export` on N records (a scratch namespace)."""
    from cli.audit_bench import run

    try:
        result = asyncio.run(run(get_settings(), events, fmt, keep))
    except UNREACHABLE as exc:
        _fail(f"the stack does not answer ({exc}); start it with `invoicing stack up`")
    _print(result)
