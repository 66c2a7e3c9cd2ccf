"""``invoicing suppliers import`` and ``invoicing engagements import``: reference data loaded
from CSV through the invoices service's API, so the service stays the only writer of its data
and every row becomes an event with its actor (``cli.import``).

A supplier's IBAN is never changed by an import: a row with another IBAN for a known supplier
is refused with the way to change it (a request and a second person's confirmation).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx

from cli.contracts import FALSE, TRUE, CsvError
from shared.auth import bearer_header
from shared.settings import Settings

ACTOR = "cli.import"

SUPPLIER_FIELDS = ("siret", "name", "sme", "iban")
ENGAGEMENT_FIELDS = ("number", "supplier_siret", "amount", "remaining", "service_done_automatic")


def import_suppliers(settings: Settings, path: Path) -> dict:
    """Registers each supplier of the CSV (header: siret,name,sme,iban)."""
    return _import(settings, Path(path), "/suppliers", "siret", SUPPLIER_FIELDS, required=SUPPLIER_FIELDS,
                   booleans={"sme"})


def import_engagements(settings: Settings, path: Path) -> dict:
    """Records each commitment of the CSV (header: number,supplier_siret,amount and optionally
    remaining — the amount when left empty — and service_done_automatic — false when empty)."""
    return _import(settings, Path(path), "/engagements", "number", ENGAGEMENT_FIELDS,
                   required=("number", "supplier_siret", "amount"), booleans={"service_done_automatic"})


def _import(settings: Settings, path: Path, route: str, id_field: str, fields: tuple[str, ...],
            required: tuple[str, ...], booleans: set[str]) -> dict:
    rows = _read(path, fields, required)
    report: dict = {"created": [], "updated": [], "already_known": [], "refused": []}
    url = f"http://{settings.http_host}:{settings.http_ports['invoices']}"
    with httpx.Client(base_url=url, timeout=30, headers=bearer_header(settings, ACTOR, ["admin"])) as client:
        for line, cells in rows:
            body, errors = _body(cells, booleans)
            row_id = cells.get(id_field) or None
            if errors:
                report["refused"].append({"line": line, "id": row_id, "errors": errors})
                continue
            answer = client.post(route, json=body)
            if answer.status_code == 201:
                report["created"].append(row_id)
            elif answer.status_code == 200:
                updated = answer.json().get("result") == "updated"
                report["updated" if updated else "already_known"].append(row_id)
            else:
                report["refused"].append({"line": line, "id": row_id, "errors": _errors_of(answer)})
    return report


def _read(path: Path, fields: tuple[str, ...], required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line number, cells) for each row; the header must name known fields, the required ones included."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CsvError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CsvError(f"{path} is not UTF-8 text; save the CSV as UTF-8") from None
    # A spreadsheet saved as CSV in a French locale separates cells with ';'.
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in reader.fieldnames or []]
    unknown = [name for name in header if name not in fields]
    missing = [name for name in required if name not in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if unknown or missing or repeated:
        problems = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"repeated column(s) {', '.join(repeated)}"] if repeated else [])
        raise CsvError(f"{path}: {'; '.join(problems)}; the columns are {', '.join(fields)}")
    reader.fieldnames = header
    rows = []
    for row in reader:
        line = reader.line_num
        if None in row:
            raise CsvError(f"line {line} has more cells than the header")
        cells = {field: (value or "").strip() for field, value in row.items()}
        if any(cells.values()):
            rows.append((line, cells))
    return rows


def _body(cells: dict[str, str], booleans: set[str]) -> tuple[dict, list[dict]]:
    """The JSON body of a row; empty cells are left out so the API's defaults apply."""
    body: dict = {}
    errors = []
    for field, value in cells.items():
        if not value:
            continue
        if field in booleans:
            if value.lower() not in TRUE | FALSE:
                errors.append({"field": field, "message": f"{value!r} is not true/false (or oui/non, 1/0)"})
                continue
            body[field] = value.lower() in TRUE
        else:
            body[field] = value
    return body, errors


def _errors_of(answer: httpx.Response) -> list[dict]:
    try:
        detail = answer.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):
        return [{"field": ".".join(str(part) for part in error["loc"][1:]) or None, "message": error["msg"]}
                for error in detail]
    return [{"field": None, "message": detail or f"HTTP {answer.status_code}: {answer.text[:500]}"}]
