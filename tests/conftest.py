from __future__ import annotations

import shutil

import pytest

from deploy.local import monitoring
from deploy.local import stack as local_stack
from shared.db import drop_database, ensure_database
from shared.settings import Settings
from shared.topics import create_topics, delete_topics
from tests.support import Services, isolated_settings


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def monitoring_tools() -> monitoring.Tools:
    """promtool, amtool and prometheus, installed from Debian's packages when missing; a failure
    to install them fails the tests that need them, it never skips them."""
    return monitoring.ensure_tools()


@pytest.fixture(scope="session")
def stack(base_settings: Settings) -> Settings:
    """The real Kafka + PostgreSQL stack. Started if needed; a failure to start fails the tests."""
    local_stack.up(base_settings)
    return base_settings


@pytest.fixture
async def ns(stack: Settings):
    """A fresh namespace on the stack: its own database, schemas and topics."""
    settings = isolated_settings(stack)
    await ensure_database(settings)
    await create_topics(settings)
    yield settings
    await drop_database(settings)
    await delete_topics(settings)
    shutil.rmtree(settings.inbox, ignore_errors=True)
    for folder in ("audit", "payments", "demo"):
        shutil.rmtree(settings.state_dir / folder / settings.namespace, ignore_errors=True)


@pytest.fixture
def services(ns: Settings, tmp_path):
    running = Services(ns, tmp_path / "services")
    yield running
    running.stop_all()
