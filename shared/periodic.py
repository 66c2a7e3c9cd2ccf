"""One way to run a step forever in the background of a service (gauges refreshed from the
database, the payment scheduler): a step that fails is logged and tried again the next round,
so a database or broker away for a while stops nothing for good."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from shared.logging import get_logger

log = get_logger("periodic")


async def every(seconds: float, step: Callable[[], Awaitable[object]], *, what: str,
                on_error: Callable[[Exception], None] | None = None) -> None:
    """Runs ``step`` every ``seconds`` until cancelled. ``what`` names it in the error log;
    ``on_error`` is told of each failure (to drop values that would otherwise go stale)."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            log.error(f"{what} failed, tried again next round", error=repr(exc))
        await asyncio.sleep(seconds)
