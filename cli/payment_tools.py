"""The payment commands of ``invoicing``: what a late payment owes in interest and indemnity.
A plain function returning (exit code, text) so the command line stays a thin shell.

Amounts are read as decimal strings ("120000.00"), dates as YYYY-MM-DD, the ECB rate as a
percentage ("2.15"). Exit codes: 0 answered (a payment on time is an answer: zeros), 2 an
option is unusable or the rate is unknown; the text is then a one-line message naming the
option and what to do.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal

from services.payments.domain.interest import (
    EcbRateTable,
    InvalidInterestInput,
    UnknownEcbRate,
    late_interest,
)
from shared.settings import Settings

EXIT_OK = 0
EXIT_BAD_ARGUMENT = 2

# Plain decimal notation only: "1e5", "inf" or "1,5" are refused rather than guessed at.
_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
_PERCENT = re.compile(r"^\d+(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_FLAGS = {"amount_ttc": "--amount-ttc", "due": "--due", "paid": "--paid", "ecb_rate": "--ecb-rate"}


class _BadArgument(Exception):
    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")


def interest_command(
    settings: Settings, amount_ttc: str, due: str, paid: str, ecb_rate: str | None = None
) -> tuple[int, str]:
    """Late interest and indemnity on ``amount_ttc`` due on ``due`` and paid on ``paid``, with
    the ECB rate ``ecb_rate`` or, without it, the settings' table (``INVOICING_ECB_RATES``)."""
    try:
        amount = _amount("--amount-ttc", amount_ttc)
        due_on = _date("--due", due)
        paid_on = _date("--paid", paid)
        rate = None if ecb_rate is None else _percent("--ecb-rate", ecb_rate)
        table = None if rate is not None else _table(settings)
        result = late_interest(
            amount, due_on, paid_on, table=table, ecb_rate=rate,
            indemnity=settings.late_interest_indemnity,
            pay_within_days=settings.interest_payment_days,
        )
    except _BadArgument as exc:
        return EXIT_BAD_ARGUMENT, str(exc)
    except InvalidInterestInput as exc:
        return EXIT_BAD_ARGUMENT, f"{_FLAGS.get(exc.field, exc.field)}: {exc.message}"
    except UnknownEcbRate as exc:
        return EXIT_BAD_ARGUMENT, f"{exc}, or give the rate with --ecb-rate"
    return EXIT_OK, json.dumps(result.as_dict(), indent=2)


def _amount(argument: str, text: str) -> Decimal:
    if not _AMOUNT.match(text.strip()):
        raise _BadArgument(
            argument,
            f"{text!r} is not an amount: write a decimal number of euros with at most two "
            "decimals, e.g. 120000.00",
        )
    return Decimal(text.strip())


def _percent(argument: str, text: str) -> Decimal:
    if not _PERCENT.match(text.strip()):
        raise _BadArgument(
            argument, f"{text!r} is not a percentage: write a decimal number, e.g. 2.15"
        )
    return Decimal(text.strip())


def _date(argument: str, text: str) -> date:
    try:
        if not _DATE.match(text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise _BadArgument(argument, f"{text!r} is not a valid date: write it YYYY-MM-DD, e.g. 2026-04-01") from None


def _table(settings: Settings) -> EcbRateTable:
    try:
        return EcbRateTable(settings.ecb_rates)
    except InvalidInterestInput as exc:
        raise _BadArgument("INVOICING_ECB_RATES", exc.message) from None
