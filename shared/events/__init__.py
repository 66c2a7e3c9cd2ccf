"""The event contract: one envelope for every event, one typed payload model per event type.

Wire format: the envelope as UTF-8 JSON (Decimal amounts as strings, ISO 8601 instants and
dates), Kafka key = aggregate id, headers repeat ``event_id``, ``event_type`` and
``schema_version`` so tools can route without parsing the body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, ClassVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.clock import Clock


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    event_type: str = Field(min_length=1)
    schema_version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1)
    aggregate_type: str = Field(min_length=1)
    aggregate_id: str = Field(min_length=1)
    correlation_id: str = Field(min_length=1)
    causation_id: UUID | None = None
    actor: str = Field(min_length=1)
    payload: dict[str, Any]

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # e.g. 0001-01-01T00:00+01:00: a moment before the first one UTC can write.
            raise ValueError("the time is outside the range of dates that can be written in UTC") from None

    def headers(self) -> dict[str, str]:
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "schema_version": str(self.schema_version),
        }


class Event(BaseModel):
    """Base of every payload. Subclasses name their type, version, topic and aggregate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str]
    aggregate_type: ClassVar[str]
    aggregate_field: ClassVar[str]

    @property
    def aggregate_id(self) -> str:
        return str(getattr(self, self.aggregate_field))


# event_type -> current payload model
_MODELS: dict[str, type[Event]] = {}
# (event_type, version) -> function turning that version's payload into the next version's
_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def register(model: type[Event]) -> type[Event]:
    """Class decorator: makes an event type known to the decoder."""
    if model.event_type in _MODELS:
        raise ValueError(f"event type {model.event_type} registered twice")
    _MODELS[model.event_type] = model
    return model


def upcaster(event_type: str, from_version: int):
    """Registers the step that reads an older payload version as the next one."""

    def decorate(function: Callable[[dict[str, Any]], dict[str, Any]]):
        _UPCASTERS[(event_type, from_version)] = function
        return function

    return decorate


def model_for(event_type: str) -> type[Event] | None:
    return _MODELS.get(event_type)


def event_types() -> dict[str, type[Event]]:
    return dict(_MODELS)


def new_envelope(
    event: Event,
    *,
    producer: str,
    actor: str,
    clock: Clock,
    caused_by: Envelope | None = None,
    correlation_id: str | None = None,
    causation_id: UUID | str | None = None,
) -> Envelope:
    """Wraps a payload. The journey's correlation id is inherited from the causing event (or
    given with the causing event's id, when only its ids were kept)."""
    if correlation_id is None:
        correlation_id = caused_by.correlation_id if caused_by else event.aggregate_id
    if not actor or not producer:
        raise ValueError("an event needs its producer and its actor")
    # Built from a validated event and our own values: nothing left to check.
    return Envelope.model_construct(
        event_id=uuid4(),
        event_type=event.event_type,
        schema_version=event.schema_version,
        occurred_at=clock.now().astimezone(UTC),
        producer=producer,
        aggregate_type=event.aggregate_type,
        aggregate_id=event.aggregate_id,
        correlation_id=correlation_id,
        causation_id=caused_by.event_id if caused_by else (UUID(str(causation_id)) if causation_id else None),
        actor=actor,
        payload=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


class PoisonMessage(Exception):
    """A record that can never be processed as it is: it goes to the dead-letter topic."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope
    event: Event | None  # None when only the envelope was read


def decode(raw: bytes | None) -> Decoded:
    """Bytes from Kafka to a typed event, or ``PoisonMessage`` saying exactly why not."""
    if raw is None:
        raise PoisonMessage("undecodable", "the record has no value")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage("undecodable", f"not UTF-8 JSON: {exc}") from None
    return decode_document(document)


def decode_document(document: Any, *, read_payload: bool = True) -> Decoded:
    """A parsed JSON document to a typed event, or ``PoisonMessage``. Without ``read_payload``,
    only the envelope is read and checked (``event`` is None): for a reader that needs no more."""
    if not isinstance(document, dict):
        raise PoisonMessage("undecodable", f"the record is a JSON {type(document).__name__}, not an object")
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        raise PoisonMessage("invalid_envelope", _errors(exc)) from None
    model = _MODELS.get(envelope.event_type)
    if model is None:
        raise PoisonMessage("unknown_event_type", f"no event type {envelope.event_type!r} is known")
    payload = envelope.payload
    version = envelope.schema_version
    if version > model.schema_version:
        raise PoisonMessage(
            "unsupported_schema_version",
            f"{envelope.event_type} v{version} is newer than the v{model.schema_version} this service reads",
        )
    if not read_payload:
        return Decoded(envelope, None)
    while version < model.schema_version:
        step = _UPCASTERS.get((envelope.event_type, version))
        if step is None:
            raise PoisonMessage(
                "unsupported_schema_version",
                f"{envelope.event_type} v{version} cannot be read as v{model.schema_version}",
            )
        payload = step(payload)
        version += 1
    try:
        event = model.model_validate(payload)
    except ValidationError as exc:
        raise PoisonMessage("invalid_payload", f"{envelope.event_type}: {_errors(exc)}") from None
    return Decoded(envelope, event)


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(root)'}: {error['msg']}"
        for error in exc.errors(include_url=False)
    )


# Importing the catalogue registers every event type.
from shared.events import contracts, invoices, payments, reference  # noqa: E402,F401
