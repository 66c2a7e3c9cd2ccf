"""One logger setup: structlog JSON lines on stdout, with the event being handled bound in.

``bind_event`` puts ``event_id``, ``event_type``, ``correlation_id``, ``actor`` and the aggregate
id (as ``invoice_id``, ``contract_id``…) into every line logged while that event is handled.
"""

from __future__ import annotations

import logging
import re
import sys
from contextlib import contextmanager
from typing import Iterator

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


def configure_logging(service: str, level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_ibans,
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries log through the standard library: same stream, same level floor.
    logging.basicConfig(stream=sys.stderr, level=max(numeric, logging.WARNING))


@contextmanager
def bind_event(envelope: Envelope) -> Iterator[None]:
    fields = {
        "event_id": str(envelope.event_id),
        "event_type": envelope.event_type,
        "correlation_id": envelope.correlation_id,
        "actor": envelope.actor,
        f"{envelope.aggregate_type}_id": envelope.aggregate_id,
    }
    with structlog.contextvars.bound_contextvars(**fields):
        yield


def get_logger(name: str | None = None):
    return structlog.get_logger(name)
