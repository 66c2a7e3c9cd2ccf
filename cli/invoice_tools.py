"""The invoice commands of ``invoicing``: parse a supplier document, validate it, measure the
parser. Plain functions returning (exit code, text) so the command line stays a thin shell.

Exit codes: 0 done (and valid), 1 invalid invoice, 2 unreadable document.
"""

from __future__ import annotations

import json
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


def bench_parse(seconds: float = 3.0) -> dict[str, float | bool]:
    """Documents per second, on this one core, for parse + EN 16931 validation of a 20-line
    CII invoice, a 20-line UBL invoice and a 20-line Factur-X PDF (each measured for
    ``seconds``), plus, for reference, plain lxml parsing of the same CII and its parsing by
    the hardened parser the service uses (``read_xml``): the part of the CII figure that no
    change to the Python code can shorten.

    Documents per second are wall clock (``*_per_s``); ``*_cpu_us_per_doc`` is the processor
    time this process spent per document (``time.process_time``), which other jobs on a
    shared machine disturb less: a rate measured while they run reads low, not the work.
    ``compiled_reader`` says whether the terms were read by the compiled reader (the package
    built with its extension, as installed) or by the Python one."""
    from lxml import etree

    from deploy.simulators import suppliers
    from services.invoices.formats._xml import compiled_readers, read_xml

    cii, ubl, pdf = suppliers.cii(), suppliers.ubl(), suppliers.facturx_pdf()
    for document in (cii, ubl, pdf):
        report = validate(parse(document))
        if not report.valid:  # a benchmark of the failure path would flatter the figures
            raise RuntimeError(f"the benchmark document is not valid: {report.errors[0]}")
    figures: dict[str, float | bool] = {"compiled_reader": compiled_readers()}
    for name, work in (("cii", lambda: validate(parse(cii))),
                       ("ubl", lambda: validate(parse(ubl))),
                       ("facturx", lambda: validate(parse(pdf)))):
        figures[f"{name}_per_s"], figures[f"{name}_cpu_us_per_doc"] = _rate(work, seconds)
    figures["lxml_parse_only_cii_per_s"] = _rate(lambda: etree.fromstring(cii), seconds)[0]
    figures["read_xml_only_cii_per_s"] = _rate(lambda: read_xml(cii), seconds)[0]
    return figures


def _rate(work: Callable[[], Any], seconds: float) -> tuple[float, float]:
    """(documents per second of wall clock, microseconds of processor time per document)."""
    for _ in range(20):  # warm the caches
        work()
    done = 0
    started, started_cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            work()
        done += 10
    elapsed, cpu = time.perf_counter() - started, time.process_time() - started_cpu
    return round(done / elapsed, 1), round(cpu / done * 1e6, 1)


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
