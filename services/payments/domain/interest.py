"""What a late payment costs: late-payment interest (« intérêts moratoires ») and the fixed
recovery indemnity, and by when they are to be paid.

- L2192-13: interest runs « de plein droit » from the day after the due date up to and
  including the day of the principal's « mise en paiement »; a 40 EUR indemnity is owed too
  (D2192-35). L2192-14: a waiver is void, so nothing here can switch them off.
- R2192-31: the rate is the ECB main refinancing (MRO) rate in force on the first day of the
  half-year in which interest started, plus 8 points: one rate for the whole late period,
  even when it spans several half-years.
- Amount: principal TTC × rate × days late / 365 (domain-rules.md §2.3), 365 in leap years
  too, rounded half up to the cent.
- R2192-36: interest and indemnity are paid within 45 days of the principal's mise en paiement.

The ECB rates come from a table by half-year kept in the settings (``INVOICING_ECB_RATES``),
updated each 1 January and 1 July. A half-year missing from the table is an error, never a
guess: an invented rate would be a wrong debt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from shared.money import to_cents

ZERO = Decimal("0.00")
# R2192-31: « majoré de huit points de pourcentage ».
RATE_MARGIN_POINTS = Decimal("8")
# Domain-rules.md §2.3: the formula divides by 365 whatever the year.
DAYS_IN_YEAR = 365
# D2192-35: the fixed indemnity for recovery costs, per late payment.
DEFAULT_INDEMNITY = Decimal("40.00")
# R2192-36: interest and indemnity are paid within 45 days of the principal's mise en paiement.
DEFAULT_PAY_WITHIN_DAYS = 45

_HALF_YEAR = re.compile(r"^(\d{4})-H([12])$")


class InvalidInterestInput(ValueError):
    """An amount, a date or a rate is unusable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownEcbRate(LookupError):
    """The ECB rate of the half-year in which interest started is not in the table."""

    def __init__(self, half_year: str, first_late_day: date) -> None:
        super().__init__(
            f"no ECB main refinancing rate is known for {half_year}, the half-year in which "
            f"late interest started (first late day {first_late_day.isoformat()}, R2192-31): "
            f"add the MRO rate in force on {_first_day(half_year).isoformat()} to "
            f"INVOICING_ECB_RATES, e.g. INVOICING_ECB_RATES='{{\"{half_year}\": \"<percent>\"}}'"
        )
        self.half_year = half_year
        self.first_late_day = first_late_day


def half_year_of(day: date) -> str:
    """The half-year label of a date: ``2026-H1`` (January to June) or ``2026-H2``."""
    return f"{day.year}-H{1 if day.month <= 6 else 2}"


def _first_day(half_year: str) -> date:
    match = _HALF_YEAR.match(half_year)
    assert match is not None
    return date(int(match[1]), 1 if match[2] == "1" else 7, 1)


class EcbRateTable:
    """ECB MRO rates in percent, by half-year label (``{"2026-H1": Decimal("2.15")}``), each
    the rate in force on the first day of that half-year."""

    def __init__(self, rates: Mapping[str, Decimal]) -> None:
        checked: dict[str, Decimal] = {}
        for label, rate in rates.items():
            if not isinstance(label, str) or not _HALF_YEAR.match(label):
                raise InvalidInterestInput(
                    "ecb_rates", f"{label!r} is not a half-year: write it like 2026-H1 or 2026-H2"
                )
            checked[label] = _rate("ecb_rates", rate, f"the rate of {label}")
        self._rates = MappingProxyType(checked)

    @property
    def rates(self) -> Mapping[str, Decimal]:
        return self._rates

    def rate_on(self, day: date) -> Decimal:
        """The MRO rate of the half-year containing ``day``, taken as the first late day.

        Raises ``UnknownEcbRate`` when that half-year is not in the table."""
        half_year = half_year_of(day)
        try:
            return self._rates[half_year]
        except KeyError:
            raise UnknownEcbRate(half_year, day) from None

    def __repr__(self) -> str:
        return f"EcbRateTable({dict(self._rates)!r})"


@dataclass(frozen=True)
class LateInterest:
    """What a payment owes for being late. On time: zeros, and no rate or date at all."""

    days_late: int
    first_late_day: date | None
    half_year: str | None
    ecb_rate: Decimal | None  # percent, the MRO rate of ``half_year``
    rate: Decimal | None  # percent, ``ecb_rate`` + 8 points
    interest: Decimal
    indemnity: Decimal
    total: Decimal
    pay_by: date | None  # R2192-36
    late: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: amounts and rates as decimal strings, dates ISO, null when on time."""
        return {
            "days_late": self.days_late,
            "rate": _text(self.rate),
            "interest": str(self.interest),
            "indemnity": str(self.indemnity),
            "total": str(self.total),
            "pay_by": _iso(self.pay_by),
            "ecb_rate": _text(self.ecb_rate),
            "half_year": self.half_year,
            "first_late_day": _iso(self.first_late_day),
        }


def late_interest(
    amount_ttc: Decimal,
    due: date,
    paid: date,
    *,
    table: EcbRateTable | None = None,
    ecb_rate: Decimal | None = None,
    indemnity: Decimal = DEFAULT_INDEMNITY,
    pay_within_days: int = DEFAULT_PAY_WITHIN_DAYS,
) -> LateInterest:
    """Interest and indemnity owed on ``amount_ttc`` (the principal TTC, net of the retention
    and after revision and penalties) due on ``due`` and put in payment on ``paid``.

    ``ecb_rate`` (percent) replaces the table's rate when given; without either, a late
    payment raises ``UnknownEcbRate``. A payment on or before its due date owes nothing and
    looks no rate up."""
    amount = _amount("amount_ttc", amount_ttc)
    _date("due", due)
    _date("paid", paid)
    fixed_indemnity = _amount("indemnity", indemnity, allow_zero=True)
    if (
        not isinstance(pay_within_days, int)
        or isinstance(pay_within_days, bool)
        or pay_within_days < 0
    ):
        raise InvalidInterestInput(
            "pay_within_days", f"{pay_within_days!r} is not a whole number of days"
        )
    explicit_rate = None if ecb_rate is None else _rate("ecb_rate", ecb_rate, "the ECB rate")

    days_late = (paid - due).days
    if days_late <= 0:
        return LateInterest(
            days_late=0, first_late_day=None, half_year=None, ecb_rate=None, rate=None,
            interest=ZERO, indemnity=ZERO, total=ZERO, pay_by=None, late=False,
        )

    # L2192-13: interest starts the day after the due date; R2192-31 fixes the rate by the
    # half-year of that first day, for the whole late period.
    first_late_day = due + timedelta(days=1)
    if explicit_rate is not None:
        mro = explicit_rate
    else:
        mro = (table or EcbRateTable({})).rate_on(first_late_day)
    rate = mro + RATE_MARGIN_POINTS
    # One division at the end keeps the computation exact until the rounding to the cent.
    interest = to_cents(amount * rate * days_late / (100 * DAYS_IN_YEAR))
    return LateInterest(
        days_late=days_late,
        first_late_day=first_late_day,
        half_year=half_year_of(first_late_day),
        ecb_rate=mro,
        rate=rate,
        interest=interest,
        indemnity=fixed_indemnity,
        total=interest + fixed_indemnity,
        pay_by=paid + timedelta(days=pay_within_days),
        late=True,
    )


def _amount(field: str, value: Any, *, allow_zero: bool = False) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInterestInput(
            field, f"{value!r} is not an amount: pass a Decimal such as Decimal(\"120000.00\")"
        )
    if value < 0 or (value == 0 and not allow_zero):
        least = "zero or more" if allow_zero else "more than zero"
        raise InvalidInterestInput(field, f"{value} is not an amount owed: it must be {least}")
    return value


def _rate(field: str, value: Any, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInterestInput(
            field, f"{what} ({value!r}) is not a percentage: pass a Decimal such as Decimal(\"2.15\")"
        )
    return value


def _date(field: str, value: Any) -> None:
    # A datetime is a date too, but subtracting one from a date fails or counts hours.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise InvalidInterestInput(field, f"{value!r} is not a calendar date")


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
