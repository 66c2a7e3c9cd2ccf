"""Prometheus for the local stack: ``promtool``/``amtool`` from Debian's packages, and a real
Prometheus server on 127.0.0.1 that scrapes the services with the repository's scrape config
and alert rules, its data under the state folder (``/var/tmp/invoicing/prometheus``).

``ensure_tools`` installs only what is missing and leaves no Debian service running;
``PrometheusServer.start`` is idempotent and ``stop`` stops only what ``start`` started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from deploy.local.stack import _port_open, _read_pid, _stop_pid, _tail
from shared.settings import Settings

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "prometheus"
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = PROMETHEUS_DIR / "alertmanager.yml"
RULE_FILES = tuple(sorted(PROMETHEUS_DIR.glob("*.rules.yml")))
RULE_TESTS = tuple(sorted(PROMETHEUS_DIR.glob("*.rules.test.yml")))

PROMETHEUS_PORT = 19090
# Where ops open Grafana; alert annotations build their dashboard links from it.
GRAFANA_URL = "http://127.0.0.1:3000"

# Debian package -> the programs this project runs from it.
PACKAGES = {
    "prometheus": ("prometheus", "promtool"),
    "prometheus-alertmanager": ("prometheus-alertmanager", "amtool"),
}
# The system services those packages install; the project never uses them.
SYSTEM_SERVICES = ("prometheus", "prometheus-alertmanager")
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


class MonitoringError(Exception):
    """Something the operator must fix (a tool missing, a port taken); the message says what."""


@dataclass(frozen=True)
class Tools:
    prometheus: str
    promtool: str
    alertmanager: str
    amtool: str


def _find_tools() -> Tools | None:
    found = {name: shutil.which(name) for programs in PACKAGES.values() for name in programs}
    if not all(found.values()):
        return None
    return Tools(prometheus=found["prometheus"], promtool=found["promtool"],
                 alertmanager=found["prometheus-alertmanager"], amtool=found["amtool"])


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _stop_system_services() -> None:
    """Debian's postinst scripts enable (and, without a policy-rc.d, start) a Prometheus on
    0.0.0.0:9090 and an Alertmanager on 0.0.0.0:9093/9094; this project wants neither."""
    systemd = Path("/run/systemd/system").is_dir()
    for name in SYSTEM_SERVICES:
        if systemd:
            _run(["systemctl", "disable", "--now", name])
            continue
        script = Path("/etc/init.d") / name
        if script.exists():
            # Called directly: invoke-rc.d obeys policy-rc.d, which may forbid the stop too.
            _run([str(script), "stop"])
        if shutil.which("update-rc.d"):
            _run(["update-rc.d", name, "disable"])


def ensure_tools() -> Tools:
    """Installs Debian's ``prometheus`` and ``prometheus-alertmanager`` when a program is missing;
    returns the paths of the four programs. Idempotent; nothing is left running afterwards."""
    tools = _find_tools()
    if tools:
        return tools
    if os.geteuid() != 0:
        raise MonitoringError(
            "promtool/amtool are missing and installing them needs root: run "
            "`apt-get install --no-install-recommends prometheus prometheus-alertmanager` as root")
    if not shutil.which("apt-get"):
        raise MonitoringError("promtool/amtool are missing and this machine has no apt-get: install "
                              "Prometheus 2.x and Alertmanager so that promtool and amtool are on PATH")
    # A policy-rc.d that answers 101 keeps the packages from starting their services at all.
    own_policy = not POLICY_RC_D.exists()
    if own_policy:
        POLICY_RC_D.write_text("#!/bin/sh\n# Written while invoicing installs Prometheus: start no service.\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
            result = _run(command)
            if result.returncode != 0:
                raise MonitoringError(
                    f"`{' '.join(command)}` failed (exit {result.returncode}); fix apt and run it again:\n"
                    f"{result.stdout[-1500:]}{result.stderr[-1500:]}")
    finally:
        if own_policy:
            POLICY_RC_D.unlink(missing_ok=True)
        _stop_system_services()
    tools = _find_tools()
    if not tools:
        missing = [name for programs in PACKAGES.values() for name in programs if not shutil.which(name)]
        raise MonitoringError(f"apt-get installed {', '.join(PACKAGES)} but {', '.join(missing)} "
                              "is still not on PATH")
    return tools


# ---------------------------------------------------------------- scrape config

def scrape_targets(settings: Settings) -> dict[str, str]:
    """Job name (the service name) -> host:port of its ``/metrics``, from the committed config,
    with the ports of this settings object where it names the service."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    targets = {}
    for job in config["scrape_configs"]:
        default = job["static_configs"][0]["targets"][0]
        port = settings.http_ports.get(job["job_name"])
        targets[job["job_name"]] = f"{settings.http_host}:{port}" if port else default
    return targets


def render_config(targets: dict[str, str], rule_files: tuple[Path, ...] = RULE_FILES,
                  grafana_url: str = GRAFANA_URL) -> str:
    """The committed ``prometheus.yml`` with absolute rule paths, these targets and this Grafana
    URL (an external label: the alert annotations link to its dashboards)."""
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"]["external_labels"]["grafana_url"] = grafana_url.rstrip("/")
    config["rule_files"] = [str(path.resolve()) for path in rule_files]
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return yaml.safe_dump(config, sort_keys=False)


# ---------------------------------------------------------------- the server

class PrometheusServer:
    """A Prometheus bound to 127.0.0.1, started in the background with its pid file and log."""

    def __init__(self, settings: Settings, port: int = PROMETHEUS_PORT, grafana_url: str = GRAFANA_URL,
                 folder: Path | None = None) -> None:
        self.settings = settings
        self.port = port
        self.grafana_url = grafana_url
        self.folder = folder or settings.state_dir / "prometheus"
        self.config = self.folder / "prometheus.yml"
        self.data = self.folder / "data"
        self.log = self.folder / "prometheus.log"
        self.pid_file = self.folder / "prometheus.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return _read_pid(self.pid_file)

    def start(self, timeout: float = 60.0) -> str:
        if self.pid:
            return "already running"
        if _port_open(self.port):
            raise MonitoringError(f"port {self.port} on 127.0.0.1 is taken by a process this runner did not "
                                  "start; stop it or choose another port")
        tools = ensure_tools()
        self.data.mkdir(parents=True, exist_ok=True)
        self.config.write_text(render_config(scrape_targets(self.settings), grafana_url=self.grafana_url))
        check = subprocess.run([tools.promtool, "check", "config", str(self.config)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise MonitoringError(f"promtool rejects the generated {self.config}:\n{check.stdout}{check.stderr}")
        with open(self.log, "ab") as out:
            process = subprocess.Popen(
                [tools.prometheus, f"--config.file={self.config}", f"--storage.tsdb.path={self.data}",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url={self.url}",
                 "--storage.tsdb.retention.time=30d"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise MonitoringError(f"Prometheus exited with code {process.returncode}; last lines of "
                                      f"{self.log}:\n{_tail(self.log)}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                    return "started"
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise MonitoringError(f"Prometheus was not ready within {timeout:.0f} s; see {self.log}")

    def stop(self) -> bool:
        return _stop_pid(self.pid_file, timeout=30.0)

    def api(self, path: str, **params: str) -> dict | list:
        """The ``data`` of a Prometheus HTTP API answer; an error answer raises with its message."""
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0).json()
        if answer.get("status") != "success":
            raise MonitoringError(f"/api/v1/{path} {params}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def rules(self) -> list[dict]:
        """The rule groups the server loaded, as ``/api/v1/rules`` lists them."""
        return self.api("rules")["groups"]

    def query(self, expr: str) -> dict:
        return self.api("query", query=expr)


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m deploy.local.monitoring",
                                     description="Prometheus tools and server for the local stack.")
    parser.add_argument("command", choices=["tools", "up", "down", "status"])
    command = parser.parse_args().command
    server = PrometheusServer(Settings())
    try:
        if command == "tools":
            result: object = ensure_tools().__dict__
        elif command == "up":
            result = {"prometheus": server.start(), "url": server.url, "log": str(server.log)}
        elif command == "down":
            result = {"stopped": server.stop()}
        else:
            result = {"running": server.pid is not None, "pid": server.pid, "url": server.url,
                      "config": str(server.config), "log": str(server.log)}
    except MonitoringError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
