"""The invoice commands of ``invoicing``: parse a supplier document, validate it, measure the
parser. Plain functions returning (exit code, text) so the command line stays a thin shell.

Exit codes: 0 done (and valid), 1 invalid invoice, 2 unreadable document.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.invoices.domain.validation import Finding, validate
from services.invoices.formats import UnreadableDocument, parse

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_UNREADABLE = 2


def parse_command(path: str | Path) -> tuple[int, str]:
    """The canonical invoice of the file at ``path`` as JSON, or why it cannot be read."""
    try:
        invoice = parse(_read(path))
    except UnreadableDocument as exc:
        return EXIT_UNREADABLE, _unreadable(exc)
    return EXIT_OK, invoice.model_dump_json(indent=2)


def validate_command(
    path: str | Path, profile: str = "en16931", buyer_siret: str | None = None
) -> tuple[int, str]:
    """The validation report of the file at ``path`` under ``profile`` as JSON.

    Raises ValueError for an unknown profile, or for ``fr-public`` without a valid
    ``buyer_siret``: those are mistakes of the operator, not of the document."""
    try:
        invoice = parse(_read(path))
    except UnreadableDocument as exc:
        return EXIT_UNREADABLE, _unreadable(exc)
    report = validate(invoice, profile, buyer_siret=buyer_siret)
    document = {
        "valid": report.valid,
        "outcome": report.outcome,
        "errors": [_finding(finding) for finding in report.errors],
        "warnings": [_finding(finding) for finding in report.warnings],
    }
    return (EXIT_OK if report.valid else EXIT_INVALID), json.dumps(
        document, indent=2, ensure_ascii=False
    )


def bench_parse(seconds: float = 5.0, rounds: int = 5) -> dict[str, Any]:
    """Documents per second, on this one core, for parse + EN 16931 validation of a 20-line
    CII invoice, a 20-line UBL invoice and a 20-line Factur-X PDF, plus, for reference, plain
    lxml parsing of the same CII and its parsing by the hardened parser the service uses
    (``read_xml``): the part of the CII figure that no change to the Python code can shorten.

    Each is measured for ``seconds`` in all, in ``rounds`` rounds that take turns, so that a
    moment when another job took the processor weighs on every figure alike and on one round
    of each, not on a whole figure. ``*_per_s`` is the median round's documents per second of
    wall clock and ``*_per_s_range`` the slowest and fastest rounds; ``*_cpu_us_per_doc`` the
    median round's processor time of this process per document (``time.process_time``), which
    other jobs disturb less: on a shared machine a rate reads low, not the work.
    ``other_load_cores`` is how many of the machine's cores other processes kept busy on
    average meanwhile (/proc/stat): near 0 the figures are those of an idle core.
    ``compiled_reader`` says whether the terms were read by the compiled reader (the package
    built with its extension, as installed) or by the Python one."""
    from lxml import etree

    from cli.machine import busy_seconds
    from deploy.simulators import suppliers
    from services.invoices.formats._xml import compiled_readers, read_xml

    if rounds < 1 or seconds <= 0:
        raise ValueError("the benchmark needs at least one round and some time to measure")
    cii, ubl, pdf = suppliers.cii(), suppliers.ubl(), suppliers.facturx_pdf()
    for document in (cii, ubl, pdf):
        report = validate(parse(document))
        if not report.valid:  # a benchmark of the failure path would flatter the figures
            raise RuntimeError(f"the benchmark document is not valid: {report.errors[0]}")
    works: dict[str, Callable[[], Any]] = {
        "cii": lambda: validate(parse(cii)),
        "ubl": lambda: validate(parse(ubl)),
        "facturx": lambda: validate(parse(pdf)),
        "lxml_parse_only_cii": lambda: etree.fromstring(cii),
        "read_xml_only_cii": lambda: read_xml(cii),
    }
    for work in works.values():
        for _ in range(20):  # warm the caches
            work()
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in works}
    started, started_cpu, started_busy = time.perf_counter(), time.process_time(), busy_seconds()
    for _ in range(rounds):
        for name, work in works.items():
            measured[name].append(_round(work, seconds / rounds))
    elapsed = time.perf_counter() - started
    others = busy_seconds() - started_busy - (time.process_time() - started_cpu)

    figures: dict[str, Any] = {"compiled_reader": compiled_readers(), "rounds": rounds}
    for name, results in measured.items():
        rates = sorted(rate for rate, _ in results)
        figures[f"{name}_per_s"] = round(statistics.median(rates), 1)
        if name in ("cii", "ubl", "facturx"):
            figures[f"{name}_per_s_range"] = [round(rates[0], 1), round(rates[-1], 1)]
            figures[f"{name}_cpu_us_per_doc"] = round(
                statistics.median(cpu for _, cpu in results), 1)
    figures["other_load_cores"] = round(max(others, 0.0) / elapsed, 2)
    return figures


def _round(work: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """(documents per second of wall clock, microseconds of processor time per document)
    of ``work`` repeated for ``seconds``."""
    done = 0
    started, started_cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            work()
        done += 10
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return done / elapsed, cpu / done * 1e6


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableDocument(
            "cannot_open", f"The file {path} cannot be opened ({exc.strerror or exc})."
        ) from None


def _unreadable(exc: UnreadableDocument) -> str:
    return json.dumps({"error": exc.reason, "message": exc.message}, indent=2, ensure_ascii=False)


def _finding(finding: Finding) -> dict[str, str | None]:
    return {
        "rule": finding.rule,
        "term": finding.term,
        "location": finding.location,
        "message": finding.message,
    }
