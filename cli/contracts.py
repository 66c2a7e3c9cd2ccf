"""``invoicing contracts import | show``: the procurement side notifies contracts through the
advances service's API, so the service stays the only writer of its data."""

from __future__ import annotations

import csv
from pathlib import Path

import httpx

from shared.auth import bearer_header
from shared.settings import Settings

LIST_FIELDS = {"engagement_numbers"}
BOOLEAN_FIELDS = {"sme", "advance_refused", "guarantee_required"}
TRUE, FALSE = {"true", "yes", "oui", "1", "y"}, {"false", "no", "non", "0", "n"}


class CsvError(ValueError):
    pass


def read_contracts(path: Path) -> list[dict]:
    """Rows of a CSV whose header names ContractNotified's fields (engagement numbers separated
    by ';'); empty cells are left out so the field's default applies."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CsvError(f"cannot read {path}: {exc.strerror}") from None
    rows = []
    for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        contract: dict = {}
        for field, value in row.items():
            if field is None:
                raise CsvError(f"line {number} has more cells than the header")
            value = (value or "").strip()
            if not value:
                continue
            if field in LIST_FIELDS:
                contract[field] = [part.strip() for part in value.split(";") if part.strip()]
            elif field in BOOLEAN_FIELDS:
                if value.lower() not in TRUE | FALSE:
                    raise CsvError(f"line {number}, column {field}: {value!r} is not true/false")
                contract[field] = value.lower() in TRUE
            else:
                contract[field] = value
        rows.append({"line": number, "contract": contract})
    return rows


def import_contracts(settings: Settings, path: Path, actor: str) -> dict:
    url = f"http://{settings.http_host}:{settings.http_ports['advances']}"
    report: dict = {"created": [], "already_known": [], "refused": []}
    with httpx.Client(base_url=url, timeout=30, headers=bearer_header(settings, actor, ["admin"])) as client:
        for row in read_contracts(path):
            answer = client.post("/contracts", json=row["contract"])
            contract_id = row["contract"].get("contract_id")
            if answer.status_code == 201:
                report["created"].append(contract_id)
            elif answer.status_code == 200:
                report["already_known"].append(contract_id)
            else:
                detail = answer.json().get("detail")
                errors = ([{"field": ".".join(str(p) for p in e["loc"][1:]), "message": e["msg"]} for e in detail]
                          if isinstance(detail, list) else [{"field": None, "message": detail}])
                report["refused"].append({"line": row["line"], "contract_id": contract_id, "errors": errors})
    return report


def show_contract(settings: Settings, contract_id: str) -> tuple[int, dict]:
    url = f"http://{settings.http_host}:{settings.http_ports['advances']}"
    answer = httpx.get(f"{url}/contracts/{contract_id}", timeout=30, headers=bearer_header(settings, "cli", ["auditor"]))
    return answer.status_code, answer.json()
