"""The legal payment delay (« délai global de paiement », DGP) of one invoice: when it starts,
when it ends, how an interruption moves it, and how far today is from it.

Pure functions of dates; "today" is passed in (from the injectable clock), never read here.
Days are calendar days: a delay of 30 days started on 2 March ends on 1 April, and late
interest runs from the day after (CCP L2192-13, domain-rules.md §1.3 and §2.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

BuyerType = Literal["local_authority", "public_hospital", "public_undertaking"]


@dataclass(frozen=True)
class DelayPolicy:
    """The delays that apply to one kind of buyer, in calendar days."""

    legal_days: int  # R2192-10 / R2192-11
    accountant_days: int  # décret 2013-269 art. 12: the public accountant's share
    target_days: int  # the buyer's own commitment (the Region: half the legal delay)
    restart_days: int = 30  # R2192-29: the new delay opened when an interruption ends

    @property
    def ordonnateur_days(self) -> int:
        return self.legal_days - self.accountant_days


# R2192-10: 30 days for the State and local authorities (the Region); R2192-11: 50 days for
# public hospitals, 60 for public undertakings. Décret 2013-269 art. 12: the public accountant
# has 10 days (15 for hospitals) when it is a different legal person from the ordonnateur; a
# public undertaking pays from its own account, without a public accountant. The target halves
# the legal delay: the Region's policy (domain-rules.md §6).
POLICIES: dict[str, DelayPolicy] = {
    "local_authority": DelayPolicy(legal_days=30, accountant_days=10, target_days=15),
    "public_hospital": DelayPolicy(legal_days=50, accountant_days=15, target_days=25),
    "public_undertaking": DelayPolicy(legal_days=60, accountant_days=0, target_days=30),
}

# R2192-14: without a recorded receipt date, the invoice date plus two days.
UNRECORDED_RECEIPT_DAYS = 2


class DeadlineError(ValueError):
    """Dates that the law does not allow together; the message says which rule and what to fix."""


@dataclass(frozen=True)
class Interruption:
    """R2192-27/-28: notified once, before the payment order, with reasons; ``completed_on`` is
    the day every missing piece was received (None while still waiting)."""

    notified_on: date
    completed_on: date | None = None


@dataclass(frozen=True)
class Deadline:
    dgp_start: date
    legal_due: date | None  # None while the delay is interrupted
    ordonnateur_due: date | None
    target_due: date | None
    interrupted: bool

    def days_left(self, today: date) -> int | None:
        """Calendar days from ``today`` to the legal due date; negative once overdue."""
        return None if self.legal_due is None else (self.legal_due - today).days

    def status(self, today: date) -> str:
        if self.legal_due is None:
            return "interrupted"
        if today > self.legal_due:
            return "overdue"
        if self.target_due is not None and today > self.target_due:
            return "past_target"
        return "on_target"

    def as_dict(self, today: date) -> dict:
        iso = lambda d: d.isoformat() if d else None  # noqa: E731
        return {
            "dgp_start": iso(self.dgp_start), "legal_due": iso(self.legal_due),
            "ordonnateur_due": iso(self.ordonnateur_due), "target_due": iso(self.target_due),
            "days_left": self.days_left(today), "status": self.status(today),
        }


def policy_for(buyer_type: str) -> DelayPolicy:
    try:
        return POLICIES[buyer_type]
    except KeyError:
        raise DeadlineError(
            f"buyer type {buyer_type!r} is unknown; use one of {', '.join(POLICIES)}"
        ) from None


def dgp_start(received_on: date | None, service_done_on: date | None = None,
              invoice_date: date | None = None) -> date:
    """R2192-12: the delay runs from the receipt of the payment request; R2192-13: from the
    service-done date when the service was done after the receipt; R2192-14: from the invoice
    date + 2 days when no receipt date was recorded."""
    if received_on is None:
        if invoice_date is None:
            raise DeadlineError("R2192-14: without a receipt date the invoice date is needed "
                                "(the delay then starts two days after it)")
        received_on = invoice_date + timedelta(days=UNRECORDED_RECEIPT_DAYS)
    if service_done_on is not None and service_done_on > received_on:
        return service_done_on
    return received_on


def deadline_for(
    received_on: date | None,
    *,
    buyer_type: str = "local_authority",
    service_done_on: date | None = None,
    invoice_date: date | None = None,
    interruption: Interruption | None = None,
    policy: DelayPolicy | None = None,
) -> Deadline:
    policy = policy or policy_for(buyer_type)
    start = dgp_start(received_on, service_done_on, invoice_date)
    legal_due = start + timedelta(days=policy.legal_days)
    if interruption is None:
        return Deadline(
            dgp_start=start, legal_due=legal_due,
            ordonnateur_due=start + timedelta(days=policy.ordonnateur_days),
            target_due=start + timedelta(days=policy.target_days), interrupted=False,
        )
    if interruption.notified_on < start:
        raise DeadlineError(
            f"R2192-27: the interruption ({interruption.notified_on}) cannot precede the start of "
            f"the delay ({start})")
    if interruption.notified_on > legal_due:
        raise DeadlineError(
            f"R2192-27: the delay already ended on {legal_due}; it can no longer be interrupted "
            f"on {interruption.notified_on}")
    if interruption.completed_on is None:
        return Deadline(dgp_start=start, legal_due=None, ordonnateur_due=None, target_due=None,
                        interrupted=True)
    if interruption.completed_on < interruption.notified_on:
        raise DeadlineError(
            f"the pieces cannot be complete ({interruption.completed_on}) before the interruption "
            f"was notified ({interruption.notified_on})")
    # R2192-29: a new delay of thirty days opens on completion, or the balance that was left
    # when the interruption was notified, if that balance was longer.
    remaining = (legal_due - interruption.notified_on).days
    new_delay = max(policy.restart_days, remaining)
    restart = interruption.completed_on
    new_due = restart + timedelta(days=new_delay)
    return Deadline(
        dgp_start=restart, legal_due=new_due,
        ordonnateur_due=new_due - timedelta(days=policy.accountant_days),
        target_due=restart + timedelta(days=policy.target_days), interrupted=False,
    )
