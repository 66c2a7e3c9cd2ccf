"""The one wiring point of a service process: settings, logging, database pool and migrations,
the FastStream Kafka broker with its subscribers, the outbox relay, and the HTTP app (the
service's API plus /metrics, /healthz, /readyz), all started and stopped by the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Awaitable, Callable

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware

from shared.auth import decode_token
from shared.clock import Clock, clock_from_spec
from shared.consumer import BatchConsumer
from shared.db import PLUMBING, connect, create_pool, migrate
from shared.logging import configure_logging, get_logger
from shared.metrics import KafkaBacklog, Subscription, registry, watch_pool
from shared.outbox import OutboxRelay, idempotent_producer
from shared.settings import Settings, get_settings
from shared.http import ops_router


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        migrations: Path,
        settings: Settings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or get_settings()
        self.clock = clock or clock_from_spec(self.settings.clock)
        self.migrations = migrations
        self.log = get_logger(name)
        self.broker = KafkaBroker(
            self.settings.kafka_bootstrap,
            client_id=name,
            logger=None,
            middlewares=(KafkaPrometheusMiddleware(registry=registry, app_name=name),),
            enable_idempotence=True,
            acks="all",
            graceful_timeout=10.0,
        )
        self._producer: AIOKafkaProducer | None = None
        self._pool: asyncpg.Pool | None = None
        self._consumers: list[BatchConsumer] = []
        self._background: list[Callable[[], Awaitable[None]]] = []

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"the {self.name} service is not started")
        return self._pool

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError(f"the {self.name} service is not started")
        return self._producer

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def background(self, task: Callable[[], Awaitable[None]]) -> None:
        """A coroutine run for the life of the service (started after the broker, cancelled at stop)."""
        self._background.append(task)

    def consume(self, consumer: BatchConsumer) -> None:
        consumer.subscribe(
            self.broker, settings=self.settings, pool=lambda: self.pool,
            producer=lambda: self.producer, clock=self.clock,
        )
        self._consumers.append(consumer)

    async def _check_database(self) -> None:
        async with self.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")

    async def _check_broker(self) -> None:
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError(f"Kafka at {self.settings.kafka_bootstrap} does not answer")

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI):
        conn = await connect(self.settings, self.name)
        try:
            applied = await migrate(conn, self.name, [PLUMBING, self.migrations])
        finally:
            await conn.close()
        self._pool = await create_pool(self.settings, self.name)
        watch_pool(self._pool)
        # aiokafka binds its clients to the running loop: they are created here, not in __init__.
        self._producer = idempotent_producer(self.settings, f"{self.name}-outbox")
        await self._producer.start()
        await self.broker.start()
        self.relay = OutboxRelay(self.settings, self.name, self._producer)
        tasks = [asyncio.create_task(self.relay.run(), name=f"{self.name}-outbox-relay")]
        tasks += [asyncio.create_task(task(), name=f"{self.name}-{task.__name__}") for task in self._background]
        tasks.append(asyncio.create_task(self._kafka_backlog().run(), name=f"{self.name}-kafka-backlog"))
        self.log.info("service started", migrations_applied=applied, clock=repr(self.clock),
                      kafka=self.settings.kafka_bootstrap, database=self.settings.database)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.broker.stop()
            await self.producer.stop()
            await self._pool.close()
            self.log.info("service stopped")

    def _kafka_backlog(self) -> KafkaBacklog:
        """Lag of this service's consumer groups, and the dead-letter topics they write to."""
        subscriptions = [
            Subscription(consumer.name, self.settings.topic(consumer.name),
                         tuple(self.settings.topic(t) for t in consumer.topics))
            for consumer in self._consumers
        ]
        dead_letters = sorted({f"{topic}.dlq" for subscription in subscriptions for topic in subscription.topics})
        return KafkaBacklog(self.settings.kafka_bootstrap, subscriptions, dead_letters)

    def http_app(self, *routers: APIRouter, title: str) -> FastAPI:
        app = FastAPI(title=title, lifespan=self.lifespan)
        app.add_middleware(ApiActionLog, settings=self.settings)
        app.add_exception_handler(RequestValidationError, _validation_error)
        for router in routers:
            app.include_router(router)
        app.include_router(ops_router({"database": self._check_database, "kafka": self._check_broker}))
        return app

    def serve(self, app: FastAPI) -> None:
        configure_logging(self.name, self.settings.log_level)
        uvicorn.run(
            app, host=self.settings.http_host, port=self.settings.http_ports[self.name],
            log_level="warning", access_log=False,
        )


async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
    """422 naming each field and rule. Written as ASCII JSON: the input echoed back may hold
    characters UTF-8 cannot encode (lone surrogates), which must not turn bad input into a 500."""
    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True, default=str)
    return Response(body, status_code=422, media_type="application/json")


class ApiActionLog:
    """One log line per API call: who (the bearer token's user), what (method, route and the ids
    in the path), the outcome (HTTP status) and how long it took. The operations endpoints are
    left out: Prometheus and the probes call them every few seconds."""

    QUIET = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.log = get_logger("api")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in self.QUIET:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def answer(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            # The router filled in the matched route and its path parameters (invoice_id…).
            route = scope.get("route")
            ids = {name: str(value) for name, value in (scope.get("path_params") or {}).items()}
            outcome = "ok" if status < 400 else "refused" if status < 500 else "failed"
            emit = self.log.error if status >= 500 else self.log.info
            emit("api action", method=scope["method"], route=getattr(route, "path", scope["path"]),
                 status=status, outcome=outcome, actor=self._actor(scope),
                 duration_ms=round((time.perf_counter() - started) * 1000, 1), **ids)

    def _actor(self, scope) -> str:
        for name, value in scope.get("headers") or ():
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token:
                    return "unauthenticated"
                try:
                    return decode_token(self.settings, token.strip()).name
                except HTTPException:
                    return "invalid token"
        return "unauthenticated"
