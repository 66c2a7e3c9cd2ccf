"""The one source of time. Handlers, rules and the demo read it; nothing calls datetime.now().

Legal delays are counted in calendar days as seen in France, so ``today()`` is the date in
Europe/Paris while ``now()`` is an aware UTC instant.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def today(self) -> date: ...


class _Base:
    """Derives the French calendar date from the subclass's ``now()``."""

    def today(self) -> date:
        return self.now().astimezone(PARIS).date()


class SystemClock(_Base):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock(_Base):
    """Stands still at one instant until moved; tests and the demo move it by days."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a fixed clock needs an aware datetime (e.g. 2026-03-02T09:00:00+00:00)")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def __repr__(self) -> str:
        return f"FixedClock({self._at.isoformat()})"


class OffsetClock(_Base):
    """Real time shifted by a fixed amount: a whole deployment can live N days ahead."""

    def __init__(self, offset: timedelta, base: Clock | None = None) -> None:
        self.offset = offset
        self._base = base or SystemClock()

    def now(self) -> datetime:
        return self._base.now() + self.offset

    def __repr__(self) -> str:
        return f"OffsetClock({self.offset})"


_OFFSET = re.compile(r"^offset:([+-]?\d+)([dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def clock_from_spec(spec: str) -> Clock:
    """``system``, ``fixed:<ISO 8601 instant>`` or ``offset:<N><d|h|m|s>`` (e.g. ``offset:+10d``)."""
    spec = spec.strip()
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("fixed:"):
        try:
            at = datetime.fromisoformat(spec.removeprefix("fixed:"))
        except ValueError as exc:
            raise ValueError(f"clock {spec!r}: the instant is not ISO 8601 ({exc})") from None
        return FixedClock(at)
    match = _OFFSET.match(spec)
    if match:
        return OffsetClock(timedelta(**{_UNITS[match[2]]: int(match[1])}))
    raise ValueError(
        f"clock {spec!r} is not understood: use 'system', 'fixed:2026-03-02T09:00:00+00:00' "
        "or 'offset:+10d'"
    )
