"""Date ranges of audit queries: whole days of the French calendar (Europe/Paris)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from shared.clock import PARIS


def period(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """``[start 00:00, the day after end 00:00)`` in Paris time, as aware instants; either end
    may be open. Refuses an end before the start."""
    if start and end and end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start}): swap --from and --to")
    lower = datetime.combine(start, time(0), PARIS) if start else None
    upper = datetime.combine(end + timedelta(days=1), time(0), PARIS) if end else None
    return lower, upper
