"""Business metrics of the advances service (names ops dashboards and alert rules rely on).

Counters move after the transaction that granted or recovered an advance commits; the
outstanding amount is read from the database every ~15 s by ``Outstanding``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

import asyncpg
from prometheus_client import Counter, Gauge

from shared.metrics import REFRESH_SECONDS
from shared.periodic import every


advances_granted = Counter("advances_granted_total", "Advances granted on notified contracts")
advances_granted_eur = Counter("advances_granted_eur_total", "Amount of the advances granted, EUR")
advance_recovered_eur = Counter(
    "advance_recovered_eur_total", "Advance recovered by deduction from approved invoices (R2191-11/-12), EUR")
advances_outstanding_eur = Gauge(
    "advances_outstanding_eur", "Advances paid to suppliers and not yet recovered on their invoices, EUR")


def count_granted(amount: Decimal) -> None:
    advances_granted.inc()
    advances_granted_eur.inc(float(amount))


def count_recovered(deduction: Decimal) -> None:
    advance_recovered_eur.inc(float(deduction))


async def outstanding_eur(conn: asyncpg.Connection) -> Decimal:
    """What suppliers hold of the advances paid to them: paid less recovered, per contract (a
    recovery made before the advance was paid leaves nothing outstanding)."""
    return await conn.fetchval("SELECT coalesce(sum(greatest(paid - recovered, 0)), 0) FROM advances")


class Outstanding:
    """The background task that keeps ``advances_outstanding_eur`` current."""

    def __init__(self, pool_of: Callable[[], asyncpg.Pool]) -> None:
        self.pool_of = pool_of

    async def refresh(self) -> Decimal:
        async with self.pool_of().acquire() as conn:
            amount = await outstanding_eur(conn)
        advances_outstanding_eur.set(float(amount))
        return amount

    async def run(self, seconds: float = REFRESH_SECONDS) -> None:
        await every(seconds, self.refresh, what="outstanding advances refresh")
