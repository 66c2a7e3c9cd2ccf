"""``invoicing payments …``: operate the payments service through its HTTP API (the service stays
the only writer of its data): trigger a run, hand it a confirmation file, look at payables."""

from __future__ import annotations

from pathlib import Path

import httpx

from shared.auth import bearer_header
from shared.settings import Settings


class PaymentsUnavailable(Exception):
    pass


def _client(settings: Settings, user: str, roles: list[str]) -> httpx.Client:
    url = f"http://{settings.http_host}:{settings.http_ports['payments']}"
    return httpx.Client(base_url=url, timeout=60, headers=bearer_header(settings, user, roles))


def _call(settings: Settings, user: str, roles: list[str], method: str, path: str, **kwargs) -> tuple[int, object]:
    try:
        with _client(settings, user, roles) as client:
            answer = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise PaymentsUnavailable(
            f"the payments service does not answer ({exc}); start it with `invoicing services up`") from None
    try:
        body = answer.json()
    except ValueError:
        body = {"detail": answer.text}
    return answer.status_code, body


def run(settings: Settings, user: str, urgent_only: bool) -> tuple[int, object]:
    return _call(settings, user, ["accountant"], "POST", "/payment-runs", json={"urgent_only": urgent_only})


def confirm(settings: Settings, user: str, path: Path) -> tuple[int, object]:
    content = path.read_bytes()
    return _call(settings, user, ["accountant"], "POST", "/confirmations", content=content,
                 headers={"x-file-name": path.name, "content-type": "application/xml"})


def payables(settings: Settings, status: str | None, kind: str | None) -> tuple[int, object]:
    params = {key: value for key, value in (("status", status), ("kind", kind)) if value}
    return _call(settings, "cli", ["auditor"], "GET", "/payables", params=params)


def show(settings: Settings, payable_id: str) -> tuple[int, object]:
    return _call(settings, "cli", ["auditor"], "GET", f"/payables/{payable_id}")


def open_confirmations(settings: Settings) -> tuple[int, object]:
    return _call(settings, "cli", ["auditor"], "GET", "/confirmations/open")


def release(settings: Settings, user: str, payable_id: str) -> tuple[int, object]:
    return _call(settings, user, ["accountant"], "POST", f"/payables/{payable_id}/release")
