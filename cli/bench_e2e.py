"""``invoicing bench e2e``: supplier invoices from the ``invoices.inbound`` topic to their
``PaymentOrdered``, through the real services, measured against a floor pipeline of the same
hops written directly on aiokafka + asyncpg (``deploy/bench/floor.py``).

One run, in a fresh namespace of the local stack (its own database and topics, removed at the
end):

1. N distinct CII invoices are built (``deploy/bench/workload.py``).
2. The floor: the N documents go through its four hops; its throughput is the ceiling the
   services are compared with.
3. The services (invoices, advances, payments, audit) run as processes, with a payment run
   every second ordering every payable; suppliers and engagements are registered so that every
   invoice is approved without a person.
4. Full speed: the N documents are produced at once, as an upstream gateway would.
5. Fixed load: ``rate`` documents per second for ``seconds`` more.

Throughput is invoices completed over the time from the first document produced to the last
completion (the ``PaymentOrdered``, or the floor's last record), so it includes filling and
draining the pipeline. Latency is per invoice, from its record's timestamp on the inbound topic
to its ``PaymentOrdered`` record's timestamp on ``payments.events``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families

from cli.machine import busy_seconds
from deploy.bench import floor, workload
from deploy.local import services as local_services
from deploy.local import stack as local_stack
from shared.auth import bearer_header
from shared.db import drop_database, ensure_database
from shared.outbox import idempotent_producer
from shared.settings import SERVICES, Settings
from shared.topics import create_topics, delete_topics

SUPPLIERS = 100
PAYMENT_RUN_EVERY_SECONDS = 1.0
# A phase ends when every invoice completed, or when none completed for this long.
STALL_SECONDS = 120.0
ROOT = Path(__file__).resolve().parents[1]

# What the bench asks of this machine (2 cores): the figures the table compares with.
TARGET_THROUGHPUT = 1000.0
TARGET_RATIO = 0.5
TARGET_FIXED_P99_MS = 2000.0


# --- the figures ---------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and p99 in the values' unit (linear interpolation between the closest ranks)."""
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    if len(values) == 1:
        return {"p50_ms": values[0], "p95_ms": values[0], "p99_ms": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 1), "p95_ms": round(cuts[94], 1), "p99_ms": round(cuts[98], 1)}


def summarise(sent_ms: dict[str, int], done_ms: dict[str, int]) -> dict:
    """One phase: how many of the sent ids completed, the throughput from the first sent to the
    last completed, and the latency percentiles of the completed ones."""
    completed = [key for key in sent_ms if key in done_ms]
    latencies = [float(done_ms[key] - sent_ms[key]) for key in completed]
    span_s = (max(done_ms[key] for key in completed) - min(sent_ms.values())) / 1000 if completed else 0.0
    return {
        "invoices": len(sent_ms),
        "completed": len(completed),
        "seconds": round(span_s, 2),
        "throughput_per_s": round(len(completed) / span_s, 1) if span_s > 0 else None,
        **percentiles(latencies),
    }


def results(system: dict, fixed: dict, floor_leg: dict, *, offered_per_s: float, environment: dict) -> dict:
    """The content of ``bench-results.json``."""
    throughput, floor_throughput = system["throughput_per_s"], floor_leg["throughput_per_s"]
    return {
        "invoices": system["invoices"],
        "throughput_per_s": throughput,
        "p50_ms": system["p50_ms"],
        "p95_ms": system["p95_ms"],
        "p99_ms": system["p99_ms"],
        "floor_throughput_per_s": floor_throughput,
        "ratio_to_floor": round(throughput / floor_throughput, 3) if throughput and floor_throughput else None,
        "cpu_count": os.cpu_count(),
        "kafka_version": environment["kafka_version"],
        "postgres_version": environment["postgres_version"],
        "fixed_load": {
            "offered_per_s": offered_per_s,
            "p50_ms": fixed["p50_ms"],
            "p95_ms": fixed["p95_ms"],
            "p99_ms": fixed["p99_ms"],
            "invoices": fixed["invoices"],
            "completed": fixed["completed"],
            "throughput_per_s": fixed["throughput_per_s"],
        },
        "full_speed": system,
        "floor": floor_leg,
        "setup": environment["setup"],
    }


def table(result: dict) -> str:
    """The result as a few aligned lines, with the targets met or not."""
    def number(value, digits=0):
        return "-" if value is None else f"{value:,.{digits}f}"

    fixed = result["fixed_load"]
    rows = [
        ("services, full speed", result["full_speed"]),
        ("floor: aiokafka + asyncpg", result["floor"]),
        (f"services, {number(fixed['offered_per_s'])}/s offered", fixed),
    ]
    lines = [
        f"{result['invoices']:,} invoices, {result['cpu_count']} CPUs, Kafka {result['kafka_version']}, "
        f"PostgreSQL {result['postgres_version']}",
        f"{'':32}{'done':>8}{'invoices/s':>12}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}",
    ]
    for name, row in rows:
        lines.append(f"{name:32}{number(row['completed']):>8}{number(row['throughput_per_s'], 1):>12}"
                     f"{number(row['p50_ms']):>10}{number(row['p95_ms']):>10}{number(row['p99_ms']):>10}")
    ratio = result["ratio_to_floor"]
    lines.append(f"ratio to the floor: {number(ratio, 3)}")
    cpu = result["full_speed"].get("cpu_seconds") or {}
    if cpu:
        lines.append("CPU seconds at full speed: " + ", ".join(f"{name} {seconds:g}" for name, seconds in cpu.items())
                     + f" ({1000 * cpu.get('machine', 0) / result['invoices']:.1f} ms of machine CPU per invoice)")
    stages = result["full_speed"].get("stages") or {}
    if stages:
        lines.append(f"{'where the time goes (full speed)':40}{'batches':>8}{'records':>9}{'seconds':>9}")
        for name, stage in stages.items():
            lines.append(f"  {name:38}{stage['batches']:>8,}{stage['records']:>9,}{stage['seconds']:>9.2f}")
    checks = [
        (f"throughput >= {TARGET_THROUGHPUT:,.0f}/s", result["throughput_per_s"], TARGET_THROUGHPUT, True),
        (f"ratio to the floor >= {TARGET_RATIO}", ratio, TARGET_RATIO, True),
        (f"p99 <= {TARGET_FIXED_P99_MS:,.0f} ms at {number(fixed['offered_per_s'])}/s", fixed["p99_ms"],
         TARGET_FIXED_P99_MS, False),
    ]
    for label, value, target, at_least in checks:
        met = value is not None and (value >= target if at_least else value <= target)
        lines.append(f"  {'met' if met else 'NOT met'}: {label}")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------

def _say(message: str) -> None:
    typer.echo(message, err=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _batch_times(urls: dict[str, str]) -> dict[str, dict]:
    """Per consumer (and per outbox relay) of each service, from its own metrics: batches
    applied, records, and the seconds spent applying them since the service started (the
    replicas of a service added up)."""
    stages: dict[str, dict] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for process, url in urls.items():
            service = process.split("-")[0]
            text = (await client.get(f"{url}/metrics")).text
            for family in text_string_to_metric_families(text):
                if family.name not in ("consumer_batch_seconds", "consumer_batch_records",
                                       "outbox_relay_batch_seconds"):
                    continue
                for sample in family.samples:
                    name = sample.labels.get("consumer") or f"{service}.outbox"
                    stage = stages.setdefault(name, {"batches": 0, "records": 0, "seconds": 0.0})
                    if family.name == "consumer_batch_records" and sample.name.endswith("_sum"):
                        stage["records"] += int(sample.value)
                    elif family.name != "consumer_batch_records" and sample.name.endswith("_sum"):
                        stage["seconds"] = round(stage["seconds"] + sample.value, 2)
                    elif family.name != "consumer_batch_records" and sample.name.endswith("_count"):
                        stage["batches"] += int(sample.value)
    return dict(sorted(stages.items(), key=lambda item: -item[1]["seconds"]))


def _stack_cpu_seconds() -> dict[str, float]:
    """CPU time so far of PostgreSQL (every server process: backends, WAL writer, checkpointer…)
    and of the Kafka broker."""
    totals = {"postgresql": 0.0, "kafka": 0.0}
    for folder in Path("/proc").iterdir():
        if not folder.name.isdigit():
            continue
        try:
            command = (folder / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres") or b"/postgres\0" in command or b"postgres:" in command:
            name = "postgresql"
        elif command.startswith(b"java") and b"kafka.Kafka" in command:
            name = "kafka"
        else:
            continue
        totals[name] += _cpu_seconds(int(folder.name), children=name == "postgresql") or 0.0
    return totals


def _cpu_seconds(pid: int | None, children: bool = False) -> float | None:
    """User + system CPU time of a process so far (Linux /proc); ``children``: with that of its
    children that ended (PostgreSQL's backends, once their connection closed)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


async def _postgres_version(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.admin_dsn())
    try:
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


async def _prepare(settings: Settings) -> None:
    await ensure_database(settings)
    await create_topics(settings)
    await floor.prepare(settings)


async def _clean(settings: Settings) -> None:
    await drop_database(settings)
    await delete_topics(settings)
    await floor.remove_topics(settings)


async def _measure_floor(settings: Settings, items: list[tuple[str, bytes]], folder: Path) -> dict:
    """Runs the floor's hops as processes on the items; its phase summary."""
    env = {**os.environ, **local_services.env_of(settings), "PYTHONUNBUFFERED": "1"}
    hops = []
    try:
        for hop in floor.HOPS:
            with open(folder / f"floor-{hop}.log", "ab") as log:
                hops.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "deploy.bench.floor", hop, cwd=ROOT, env=env,
                    stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.DEVNULL))
        for hop, process in zip(floor.HOPS, hops):
            try:
                line = await asyncio.wait_for(process.stdout.readline(), 60)
            except asyncio.TimeoutError:
                line = b""
            if line.strip() != b"ready":
                raise local_services.ServiceError(
                    f"the floor's {hop} hop did not start; see {folder / f'floor-{hop}.log'}")
        arrivals = workload.Arrivals(settings, settings.topic(floor.ORDERED), lambda key, _value: key.decode())
        reader = asyncio.create_task(arrivals.run())
        sent = workload.Sent()
        producer = idempotent_producer(settings, "bench-gateway")
        await producer.start()
        try:
            await workload.produce(producer, settings.topic(floor.INBOUND), items, None, sent)
        finally:
            await producer.stop()
        await arrivals.wait_until(len(items), STALL_SECONDS, _progress("floor"))
        reader.cancel()
        return summarise(sent.at_ms, arrivals.at_ms)
    finally:
        for process in hops:
            if process.returncode is None:
                process.terminate()
        for process in hops:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except asyncio.TimeoutError:
                process.kill()


def _progress(phase: str):
    began = time.monotonic()

    def report(count: int, total: int) -> None:
        _say(f"  {phase}: {count:,}/{total:,} done after {time.monotonic() - began:.0f} s")
    return report


def _payment_ordered(_key: bytes | None, value: bytes | None) -> str | None:
    """The invoice of a ``PaymentOrdered`` of an invoice payable, None for any other record."""
    if value is None or b'"PaymentOrdered"' not in value:
        return None
    envelope = json.loads(value)
    payload = envelope.get("payload") or {}
    if envelope.get("event_type") != "PaymentOrdered" or payload.get("kind") != "invoice":
        return None
    return payload.get("invoice_id")


async def _register(settings: Settings) -> None:
    """Suppliers and their engagements through the invoices API; then waits until the payments
    service knows every supplier's account (else the payables would wait for one)."""
    url = f"http://{settings.http_host}:{settings.http_ports['invoices']}"
    headers = bearer_header(settings, "bench.referent", ["admin"])
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        for k in range(SUPPLIERS):
            for route, body in (("/suppliers", workload.supplier(k)), ("/engagements", workload.engagement(k))):
                answer = await client.post(route, json=body)
                if answer.status_code != 201:
                    raise local_services.ServiceError(f"POST {route} answered {answer.status_code}: {answer.text}")
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM payments.payees") < SUPPLIERS:
            if time.monotonic() > deadline:
                raise local_services.ServiceError("the payments service did not learn every supplier within 60 s")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def _measure_services(settings: Settings, full: list[tuple[str, bytes]], fixed: list[tuple[str, bytes]],
                            rate: float, processes: dict[str, local_services.ServiceProcess]) -> dict:
    await _register(settings)
    arrivals = workload.Arrivals(settings, settings.topic("payments.events"), _payment_ordered)
    reader = asyncio.create_task(arrivals.run())
    full_sent, fixed_sent = workload.Sent(), workload.Sent()
    producer = idempotent_producer(settings, "bench-gateway")
    await producer.start()
    try:
        inbound = settings.topic("invoices.inbound")
        cpu_before = {name: _cpu_seconds(p.pid) for name, p in processes.items()}
        machine_before = busy_seconds()
        stack_before = _stack_cpu_seconds()
        _say(f"services, full speed: {len(full):,} invoices")
        await workload.produce(producer, inbound, full, None, full_sent)
        await arrivals.wait_until(len(full), STALL_SECONDS, _progress("services, full speed"))
        cpu: dict[str, float] = {}
        for name, process in processes.items():
            now = _cpu_seconds(process.pid)
            if cpu_before[name] is not None and now is not None:
                service = name.split("-")[0]
                cpu[service] = round(cpu.get(service, 0.0) + now - cpu_before[name], 1)
        # Everything the machine did meanwhile: the services, PostgreSQL, Kafka, this process.
        cpu.update({name: round(seconds - stack_before.get(name, 0.0), 1)
                    for name, seconds in _stack_cpu_seconds().items()})
        cpu["machine"] = round(busy_seconds() - machine_before, 1)
        stages = await _batch_times({name: p.url for name, p in processes.items()})
        _say(f"services, fixed load: {len(fixed):,} invoices at {rate:g}/s")
        await workload.produce(producer, inbound, fixed, rate, fixed_sent)
        await arrivals.wait_until(len(full) + len(fixed), STALL_SECONDS, _progress("services, fixed load"))
    finally:
        await producer.stop()
        reader.cancel()
    conn = await asyncpg.connect(settings.admin_dsn(settings.database))
    try:
        numbers = dict(await conn.fetch("SELECT number, invoice_id::text FROM invoices.invoices"))
        statuses = dict(await conn.fetch("SELECT status, count(*) FROM invoices.invoices GROUP BY status"))
    finally:
        await conn.close()

    def done(sent: workload.Sent) -> dict[str, int]:
        return {number: arrivals.at_ms[numbers[number]] for number in sent.at_ms
                if number in numbers and numbers[number] in arrivals.at_ms}

    return {"full": {**summarise(full_sent.at_ms, done(full_sent)), "cpu_seconds": cpu, "stages": stages},
            "fixed": summarise(fixed_sent.at_ms, done(fixed_sent)),
            "invoice_statuses": statuses}


def run_bench(base: Settings, invoices: int, rate: float, seconds: float, output: Path, replicas: int = 1) -> dict:
    """The whole benchmark; writes ``output`` and returns its content. Starts the stack if it is
    not running (and stops it afterwards), always stops the services and removes the namespace."""
    settings = base.model_copy(update={
        "namespace": f"bench{uuid.uuid4().hex[:8]}",
        "http_ports": {name: _free_port() for name in SERVICES},
    })
    before = local_stack.status(settings)
    stack_was_running = before["kafka"]["running"] and before["postgres"]["running"]
    local_stack.up(settings)
    folder = settings.state_dir / "services" / settings.namespace
    folder.mkdir(parents=True, exist_ok=True)
    processes: dict[str, local_services.ServiceProcess] = {}
    succeeded = False
    try:
        asyncio.run(_prepare(settings))
        fixed_count = max(1, round(rate * seconds))
        _say(f"building {invoices + fixed_count:,} invoices (namespace {settings.namespace})")
        documents = workload.documents(0, invoices + fixed_count, SUPPLIERS, os.cpu_count() or 1)
        items = [(workload.invoice_number(i), doc) for i, doc in enumerate(documents)]
        del documents

        _say(f"floor: {invoices:,} invoices through {len(floor.HOPS)} hops")
        floor_leg = asyncio.run(_measure_floor(settings, items[:invoices], folder))

        env = {"INVOICING_PAYMENT_RUN_EVERY_SECONDS": str(PAYMENT_RUN_EVERY_SECONDS)}
        for name in SERVICES:
            processes[name] = local_services.ServiceProcess(name, settings, env=env, folder=folder)
            processes[name].start()
        # More processes of the invoices service share its consumer groups' partitions (each on
        # its own HTTP port and log); one of them relays its outbox at a time.
        for replica in range(2, replicas + 1):
            replica_settings = settings.model_copy(
                update={"http_ports": {**settings.http_ports, "invoices": _free_port()}})
            processes[f"invoices-{replica}"] = local_services.ServiceProcess(
                "invoices", replica_settings, env=env, folder=folder / f"replica-{replica}")
            processes[f"invoices-{replica}"].start()
        for process in processes.values():
            process.wait_ready()
        measured = asyncio.run(_measure_services(settings, items[:invoices], items[invoices:], rate, processes))
        environment = {
            "kafka_version": local_stack.kafka_version(),
            "postgres_version": asyncio.run(_postgres_version(settings)),
            "setup": {"namespace": settings.namespace, "suppliers": SUPPLIERS,
                      "services": list(processes), "invoices_replicas": replicas,
                      "consumer_batch_size": settings.consumer_batch_size,
                      "payment_run_every_seconds": PAYMENT_RUN_EVERY_SECONDS,
                      "fixed_load_seconds": seconds, "invoice_statuses": measured["invoice_statuses"]},
        }
        result = results(measured["full"], measured["fixed"], floor_leg, offered_per_s=rate,
                         environment=environment)
        succeeded = True
    finally:
        for process in processes.values():
            process.stop()
        asyncio.run(_clean(settings))
        shutil.rmtree(settings.inbox, ignore_errors=True)
        shutil.rmtree(settings.payments_outgoing.parent, ignore_errors=True)
        if succeeded:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            _say(f"the services' and the floor's logs are kept in {folder}")
        if not stack_was_running:
            local_stack.down(settings)
    output.write_text(json.dumps(result, indent=2) + "\n")
    return result
