"""The local stack without Docker: a real Apache Kafka broker (KRaft, from Maven Central jars)
and a PostgreSQL server, both on 127.0.0.1, with their data and logs under one state folder.

``up`` is idempotent and ``down`` stops only what ``up`` started (it reads the pid files).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from shared.settings import Settings

HERE = Path(__file__).parent
POM = HERE / "kafka-pom.xml"
LOG4J = HERE / "log4j2.properties"


class StackError(Exception):
    """Something the operator must fix (a missing tool, a port taken); the message says what."""


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert match, "kafka-pom.xml names kafka.version"
    return match[1]


@dataclass(frozen=True)
class Paths:
    root: Path
    kafka: Path
    kafka_data: Path
    kafka_logs: Path
    kafka_pid: Path
    kafka_libs: Path
    pg: Path
    pg_data: Path
    pg_log: Path
    pg_run: Path
    pg_pid: Path

    @classmethod
    def of(cls, settings: Settings) -> "Paths":
        root = settings.state_dir
        kafka = root / "kafka"
        pg = root / "postgres"
        return cls(
            root=root, kafka=kafka, kafka_data=kafka / "data", kafka_logs=kafka / "logs",
            kafka_pid=kafka / "kafka.pid",
            kafka_libs=settings.cache_dir / f"kafka-{kafka_version()}" / "libs",
            pg=pg, pg_data=pg / "data", pg_log=pg / "postgres.log", pg_run=pg / "run",
            pg_pid=pg / "postgres.pid",
        )


# ---------------------------------------------------------------- helpers

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _read_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise StackError(f"'{tool}' is not on PATH: {hint}")
    return found


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------- Kafka

def ensure_kafka_libs(paths: Paths) -> bool:
    """Fetches the broker's jars with Maven once; returns True when it downloaded them."""
    marker = paths.kafka_libs / ".complete"
    if marker.exists():
        return False
    mvn = _require("mvn", "install Maven (apt-get install maven) to fetch Kafka from Maven Central")
    _require("java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
    staging = paths.kafka_libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise StackError(f"Maven could not fetch Kafka {kafka_version()}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    shutil.rmtree(paths.kafka_libs, ignore_errors=True)
    staging.rename(paths.kafka_libs)
    (paths.kafka_libs / ".complete").write_text(kafka_version())
    return True


def _java_version() -> int:
    out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    return int(match[1]) if match else 0


def _server_properties(settings: Settings, paths: Paths) -> str:
    host, port, cport = settings.kafka_host, settings.kafka_port, settings.kafka_controller_port
    return f"""# Written by `invoicing stack up`: one combined broker + controller on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers={host}:{cport}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
advertised.listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={paths.kafka_data}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
message.max.bytes=20971520
"""


def _java_command(paths: Paths, settings: Settings, main: str, *args: str) -> list[str]:
    return [
        "java", "-Xms256m", f"-Xmx{settings.kafka_heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}",
        f"-Dkafka.logs.dir={paths.kafka_logs}", "-cp", f"{paths.kafka_libs}/*", main, *args,
    ]


async def _kafka_answers(settings: Settings) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def kafka_up(settings: Settings, paths: Paths, timeout: float = 120.0) -> str:
    if _read_pid(paths.kafka_pid):
        return "already running"
    for port in (settings.kafka_port, settings.kafka_controller_port):
        if _port_open(port):
            raise StackError(
                f"port {port} on 127.0.0.1 is taken by a process this stack did not start; stop it "
                "or set INVOICING_KAFKA_PORT / INVOICING_KAFKA_CONTROLLER_PORT")
    _require("java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
    if _java_version() < 17:
        raise StackError("Kafka 4 needs Java 17 or newer; `java -version` shows an older one")
    ensure_kafka_libs(paths)
    for folder in (paths.kafka_data, paths.kafka_logs):
        folder.mkdir(parents=True, exist_ok=True)
    props = paths.kafka / "server.properties"
    props.write_text(_server_properties(settings, paths))
    if not (paths.kafka_data / "meta.properties").exists():
        cluster_id = subprocess.run(
            _java_command(paths, settings, "kafka.tools.StorageTool", "random-uuid"),
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        result = subprocess.run(
            _java_command(paths, settings, "kafka.tools.StorageTool", "format", "--standalone",
                          "-t", cluster_id, "-c", str(props)),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka's storage failed:\n{result.stdout}{result.stderr}")
    log_file = paths.kafka_logs / "kafka.out"
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            _java_command(paths, settings, "kafka.Kafka", str(props)),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    paths.kafka_pid.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            paths.kafka_pid.unlink(missing_ok=True)
            raise StackError(f"Kafka exited with code {process.returncode}; last lines of {log_file}:\n{_tail(log_file)}")
        if _port_open(settings.kafka_port) and asyncio.run(_kafka_answers(settings)):
            return "started"
        time.sleep(0.3)
    raise StackError(f"Kafka did not answer within {timeout:.0f} s; see {log_file}")


def _stop_pid(pid_file: Path, timeout: float = 60.0) -> bool:
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------- PostgreSQL

def _pg_bindir() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return candidates[-1].parent if candidates else None


def ensure_postgres_installed() -> Path:
    bindir = _pg_bindir()
    if bindir:
        return bindir
    if os.geteuid() != 0:
        raise StackError("PostgreSQL is not installed: run `apt-get install postgresql` as root")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]):
        result = subprocess.run(command, capture_output=True, text=True,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if result.returncode != 0:
            raise StackError(f"`{' '.join(command)}` failed:\n{result.stderr[-2000:]}")
    # The package may start a cluster of its own on 5432; this stack does not use it.
    bindir = _pg_bindir()
    if not bindir:
        raise StackError("apt-get installed postgresql but no initdb was found under /usr/lib/postgresql")
    return bindir


def _as_db_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' system user then."""
    if os.geteuid() != 0:
        return command
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise StackError("running as root needs the 'postgres' system user (created by Debian's package)") from None
    return ["runuser", "-u", "postgres", "--", *command]


def _chown_to_db_owner(*folders: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        for folder in folders:
            os.chown(folder, entry.pw_uid, entry.pw_gid)


def postgres_up(settings: Settings, paths: Paths) -> str:
    if _read_pid(paths.pg_pid):
        return "already running"
    if _port_open(settings.pg_port):
        raise StackError(f"port {settings.pg_port} on 127.0.0.1 is taken by a process this stack did not start; "
                         "stop it or set INVOICING_PG_PORT")
    bindir = ensure_postgres_installed()
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o755)
    paths.pg.mkdir(parents=True, exist_ok=True)
    paths.pg_run.mkdir(parents=True, exist_ok=True)
    _chown_to_db_owner(paths.pg, paths.pg_run)
    if not (paths.pg_data / "PG_VERSION").exists():
        pwfile = paths.pg / "admin.pw"
        pwfile.write_text(settings.pg_admin_password + "\n")
        _chown_to_db_owner(pwfile)
        result = subprocess.run(
            _as_db_owner([str(bindir / "initdb"), "-D", str(paths.pg_data), "-U", settings.pg_admin_user,
                          f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=peer",
                          "-E", "UTF8", "--locale=C.UTF-8"]),
            capture_output=True, text=True,
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    options = (f"-c listen_addresses={settings.pg_host} -p {settings.pg_port} "
               f"-c unix_socket_directories={paths.pg_run} -c max_connections=300")
    result = subprocess.run(
        _as_db_owner([str(bindir / "pg_ctl"), "-D", str(paths.pg_data), "-l", str(paths.pg_log),
                      "-o", options, "-w", "-t", "60", "start"]),
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise StackError(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{_tail(paths.pg_log)}")
    paths.pg_pid.write_text((paths.pg_data / "postmaster.pid").read_text().split()[0])
    return "started"


def postgres_down(paths: Paths) -> bool:
    if _read_pid(paths.pg_pid) is None:
        paths.pg_pid.unlink(missing_ok=True)
        return False
    bindir = _pg_bindir()
    subprocess.run(_as_db_owner([str(bindir / "pg_ctl"), "-D", str(paths.pg_data), "-m", "fast", "-w", "stop"]),
                   capture_output=True, text=True)
    paths.pg_pid.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------- the stack

def up(settings: Settings) -> dict[str, str]:
    paths = Paths.of(settings)
    paths.root.mkdir(parents=True, exist_ok=True)
    started = {}
    t0 = time.monotonic()
    started["postgres"] = postgres_up(settings, paths)
    started["kafka"] = kafka_up(settings, paths)
    started["seconds"] = f"{time.monotonic() - t0:.1f}"
    return started


def down(settings: Settings) -> dict[str, bool]:
    paths = Paths.of(settings)
    return {"kafka": _stop_pid(paths.kafka_pid), "postgres": postgres_down(paths)}


def status(settings: Settings) -> dict[str, dict]:
    paths = Paths.of(settings)
    kafka_pid, pg_pid = _read_pid(paths.kafka_pid), _read_pid(paths.pg_pid)
    return {
        "kafka": {"running": kafka_pid is not None, "pid": kafka_pid, "version": kafka_version(),
                  "bootstrap": settings.kafka_bootstrap, "log": str(paths.kafka_logs / "kafka.out")},
        "postgres": {"running": pg_pid is not None, "pid": pg_pid, "port": settings.pg_port,
                     "log": str(paths.pg_log)},
        "state_dir": str(paths.root),
    }
