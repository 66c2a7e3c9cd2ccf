"""The one source of time. Handlers, rules and the demo read it; nothing calls datetime.now().

Legal delays are counted in calendar days as seen in France, so ``today()`` is the date in
Europe/Paris while ``now()`` is an aware UTC instant.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
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


class FileClock(_Base):
    """Stands still at the instant written in a file, which another process moves: the demo
    drives every service's calendar through it. Re-read at most every ``refresh`` seconds."""

    def __init__(self, path: Path, refresh: float = 0.1) -> None:
        self.path = Path(path)
        self.refresh = refresh
        self._read_at = float("-inf")
        self._at: datetime | None = None

    def now(self) -> datetime:
        if self._at is None or time.monotonic() - self._read_at >= self.refresh:
            text = self.path.read_text().strip()
            try:
                at = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"clock file {self.path}: {text!r} is not an ISO 8601 instant") from None
            if at.tzinfo is None:
                raise ValueError(f"clock file {self.path}: {text!r} has no time zone")
            self._at, self._read_at = at.astimezone(UTC), time.monotonic()
        return self._at

    @staticmethod
    def set(path: Path, at: datetime) -> None:
        """Moves the clock (atomically: readers never see half an instant)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(at.astimezone(UTC).isoformat())
        os.replace(partial, path)

    def __repr__(self) -> str:
        return f"FileClock({self.path})"


_OFFSET = re.compile(r"^offset:([+-]?\d+)([dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def clock_from_spec(spec: str) -> Clock:
    """``system``, ``fixed:<ISO 8601 instant>``, ``offset:<N><d|h|m|s>`` (e.g. ``offset:+10d``) or
    ``file:<path>`` (the instant written in that file, moved by another process)."""
    spec = spec.strip()
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("file:"):
        clock = FileClock(Path(spec.removeprefix("file:")))
        clock.now()  # an unreadable clock file fails at start, not at the first event
        return clock
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
        f"clock {spec!r} is not understood: use 'system', 'fixed:2026-03-02T09:00:00+00:00', "
        "'offset:+10d' or 'file:/path/to/clock'"
    )
