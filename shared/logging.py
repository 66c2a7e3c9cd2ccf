"""One logger setup: structlog JSON lines on stdout, with the event being handled bound in.

``bind_event`` puts ``event_id``, ``event_type``, ``correlation_id``, ``actor`` and the aggregate
id (as ``invoice_id``, ``contract_id``…) into every line logged while that event is handled.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import orjson
import structlog

from shared.events import Envelope

_IBAN = re.compile(r"\b([A-Z]{2}\d{2})([A-Z0-9]{6,26})([A-Z0-9]{4})\b")


def mask_iban(text: str) -> str:
    """Keeps the country, check digits and last four characters of any IBAN in ``text``."""
    return _IBAN.sub(lambda m: f"{m[1]}{'*' * len(m[2])}{m[3]}", text)


def _mask_ibans(_, __, event_dict):
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = mask_iban(value)
    return event_dict


# The event being handled, bound by ``bind_event``: one context variable set and reset per
# event (cheaper than one per field), read by the ``_add_bound`` processor.
_BOUND: ContextVar[dict[str, str] | None] = ContextVar("invoicing_log_bound", default=None)
_SERVICE: dict[str, str] = {}


def _add_bound(_, __, event_dict):
    bound = _BOUND.get()
    if bound:
        for key, value in bound.items():
            event_dict.setdefault(key, value)
    event_dict.setdefault("service", _SERVICE.get("service"))
    return event_dict


def configure_logging(service: str, level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    _SERVICE["service"] = service
    structlog.configure(
        processors=[
            _add_bound,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_ibans,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library: same stream, same level floor.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING))


@contextmanager
def bind_event(envelope: Envelope) -> Iterator[None]:
    token = _BOUND.set({
        "event_id": str(envelope.event_id),
        "event_type": envelope.event_type,
        "correlation_id": envelope.correlation_id,
        "actor": envelope.actor,
        f"{envelope.aggregate_type}_id": envelope.aggregate_id,
    })
    try:
        yield
    finally:
        _BOUND.reset(token)


def bound_fields() -> dict[str, str]:
    """The fields of the event bound by ``bind_event`` here (empty when none is)."""
    return dict(_BOUND.get() or {})


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
