"""Runs the service processes in the background: one ``python -m services.<name>`` each, with
its log and pid file under the state folder. Tests use the same class to start, kill -9 and
restart services.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deploy.local.stack import _alive, _port_open, _read_pid, _tail
from shared.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parents[2]


class ServiceError(Exception):
    pass


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that gives a child process these settings."""
    return {
        "INVOICING_NAMESPACE": settings.namespace,
        "INVOICING_STATE_DIR": str(settings.state_dir),
        "INVOICING_CACHE_DIR": str(settings.cache_dir),
        "INVOICING_KAFKA_PORT": str(settings.kafka_port),
        "INVOICING_PG_PORT": str(settings.pg_port),
        "INVOICING_HTTP_PORTS": json.dumps(settings.http_ports),
        "INVOICING_RELAY_POLL_SECONDS": str(settings.relay_poll_seconds),
        "INVOICING_CLOCK": settings.clock,
        "INVOICING_JWT_SECRET": settings.jwt_secret,
        "INVOICING_BUYER_SIRET": settings.buyer_siret,
        "INVOICING_VALIDATION_PROFILE": settings.validation_profile,
        "INVOICING_INBOX_DIR": str(settings.inbox),
        "INVOICING_LOG_LEVEL": settings.log_level,
        "INVOICING_FAILPOINTS": "",
        "INVOICING_AUDIT_CHECKPOINT_SECONDS": str(settings.audit_checkpoint_seconds),
        **extra,
    }


class ServiceProcess:
    def __init__(self, name: str, settings: Settings, env: dict[str, str] | None = None,
                 folder: Path | None = None) -> None:
        if name not in SERVICES:
            raise ServiceError(f"no service {name!r}; the services are {', '.join(SERVICES)}")
        self.name = name
        self.settings = settings
        self.env = env_of(settings, **(env or {}))
        self.folder = folder or settings.state_dir / "services" / (settings.namespace or "default")
        self.log = self.folder / f"{name}.log"
        self.pid_file = self.folder / f"{name}.pid"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.settings.http_ports[self.name]}"

    @property
    def pid(self) -> int | None:
        return _read_pid(self.pid_file)

    def start(self) -> None:
        port = self.settings.http_ports[self.name]
        if _port_open(port, self.settings.http_host):
            raise ServiceError(f"port {port} is taken by another process: stop it or set INVOICING_HTTP_PORTS")
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"], cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(self.process.pid))

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServiceError(f"{self.name} exited with code {self.process.returncode}:\n{_tail(self.log)}")
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if answer.status_code == 200:
                    return
                last = answer.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise ServiceError(f"{self.name} not ready within {timeout:.0f} s ({last}):\n{_tail(self.log)}")

    def exited(self, timeout: float) -> int | None:
        """Waits up to ``timeout`` for the process to end; its exit code, or None if it runs on."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait(10)
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 20.0) -> bool:
        pid = self.pid
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            if self.process is not None:
                self.process.poll()
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True


def up(settings: Settings, names: list[str] | None = None, env: dict[str, str] | None = None) -> dict[str, str]:
    processes = [ServiceProcess(name, settings, env=env) for name in names or SERVICES]
    result = {}
    for process in processes:
        if process.pid:
            result[process.name] = f"already running (pid {process.pid})"
            continue
        process.start()
        result[process.name] = f"started (pid {process.pid})"
    for process in processes:
        if process.process is not None:
            process.wait_ready()
    return result


def down(settings: Settings, names: list[str] | None = None) -> dict[str, bool]:
    return {name: ServiceProcess(name, settings).stop() for name in names or SERVICES}


def status(settings: Settings) -> dict[str, dict]:
    report = {}
    for name in SERVICES:
        process = ServiceProcess(name, settings)
        report[name] = {"pid": process.pid, "url": process.url, "log": str(process.log)}
    return report
