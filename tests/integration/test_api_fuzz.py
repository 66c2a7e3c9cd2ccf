"""Schemathesis against the services' own OpenAPI specs: generated requests, good and bad, never
get a 500 (bad input is a 4xx naming the field)."""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import token

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["invoices", "advances"])
async def test_no_generated_request_gets_a_server_error(ns, services, service):
    await services.start(service)
    schemathesis = Path(sys.executable).parent / "st"
    command = [str(schemathesis), "run", f"{services.url(service)}/openapi.json",
               "-H", f"Authorization: {token(ns, 'fuzz', 'admin')['authorization']}",
               "--checks", "not_a_server_error", "--max-examples", "15", "--generation-deterministic"]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
