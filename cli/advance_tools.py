"""The advance commands of ``invoicing``: what advance a contract gets, and what an invoice
bears of its recovery. Plain functions returning (exit code, JSON text) so the command line
stays a thin shell.

Amounts are read and written as decimal strings ("48000.00"), rates and bounds as
percentages ("10", "13.5"). Exit codes: 0 answered (an advance that is not due is an answer),
2 an argument is unusable — the JSON error names it.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from services.advances.domain.advance import (
    ContractTerms,
    InvalidAdvanceInput,
    advance_for,
    percent_text,
)
from services.advances.domain.policy import Policy, UnknownPolicy, policy_named
from services.advances.domain.recovery import (
    InvalidRecoveryInput,
    recovery_deduction,
    scheduled_recovered,
)

EXIT_OK = 0
EXIT_BAD_ARGUMENT = 2

# Plain decimal notation only: "1e5", "inf" or "1,5" are refused rather than guessed at.
_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")
_PERCENT = re.compile(r"^\d+(\.\d+)?$")

_ADVANCE_FLAGS = {
    "amount_ht": "--amount-ht",
    "amount_ttc": "--amount-ttc",
    "duration_months": "--months",
    "rate_override": "--rate",
}
_RECOVERY_FLAGS = {
    "advance": "--advance",
    "contract_ttc": "--contract-ttc",
    "executed": "--executed-before",
    "executed_before": "--executed-before",
    "invoice_amount": "--invoice",
    "recovered_before": "--recovered-before",
    "start_pct": "--start-pct",
    "end_pct": "--end-pct",
}


class _BadArgument(Exception):
    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message


def advance_command(
    amount_ht: str,
    amount_ttc: str,
    months: int,
    sme: bool = False,
    policy: str = "doubled",
    rate: str | None = None,
) -> tuple[int, str]:
    """The advance of a contract of ``amount_ht`` / ``amount_ttc`` over ``months`` months."""
    try:
        terms = ContractTerms(
            amount_ht=_amount("--amount-ht", amount_ht),
            amount_ttc=_amount("--amount-ttc", amount_ttc),
            duration_months=_months(months),
            sme=sme,
        )
        rate_override = None if rate is None else _percent("--rate", rate)
        decision = advance_for(terms, _policy(policy), rate_override)
    except _BadArgument as exc:
        return EXIT_BAD_ARGUMENT, _error(exc.argument, exc.message)
    except InvalidAdvanceInput as exc:
        return EXIT_BAD_ARGUMENT, _error(_ADVANCE_FLAGS.get(exc.field, exc.field), exc.message)
    return EXIT_OK, _dump(
        {
            "mandatory": decision.mandatory,
            "reason": decision.reason,
            "rate": percent_text(decision.rate),
            "base": str(decision.base),
            "amount": str(decision.amount),
            "guarantee_may_be_required": decision.guarantee_may_be_required,
            "recovery_start_pct": percent_text(decision.recovery_start_pct),
            "recovery_end_pct": percent_text(decision.recovery_end_pct),
            "policy_version": decision.policy_version,
            "warnings": list(decision.warnings),
        }
    )


def recovery_command(
    advance: str,
    contract_ttc: str,
    executed_before: str,
    invoice: str,
    recovered_before: str | None = None,
    start_pct: str = "65",
    end_pct: str = "80",
) -> tuple[int, str]:
    """What an invoice of ``invoice`` bears of the advance once ``executed_before`` is
    executed. Without ``recovered_before`` the earlier invoices are taken to have recovered
    exactly what the schedule asked of them."""
    try:
        advance_amount = _amount("--advance", advance)
        contract_amount = _amount("--contract-ttc", contract_ttc)
        executed = _amount("--executed-before", executed_before)
        invoice_amount = _amount("--invoice", invoice)
        start = _percent("--start-pct", start_pct)
        end = _percent("--end-pct", end_pct)
        if recovered_before is None:
            recovered = scheduled_recovered(advance_amount, contract_amount, executed, start, end)
        else:
            recovered = _amount("--recovered-before", recovered_before)
        recovery = recovery_deduction(
            advance_amount, contract_amount, executed, invoice_amount, recovered, start, end
        )
    except _BadArgument as exc:
        return EXIT_BAD_ARGUMENT, _error(exc.argument, exc.message)
    except InvalidRecoveryInput as exc:
        return EXIT_BAD_ARGUMENT, _error(_RECOVERY_FLAGS.get(exc.field, exc.field), exc.message)
    return EXIT_OK, _dump(
        {
            "deduction": str(recovery.deduction),
            "net_payable": str(recovery.net_payable),
            "recovered_after": str(recovery.recovered_after),
            "carried_over": str(recovery.carried_over),
        }
    )


def _amount(argument: str, text: str) -> Decimal:
    if not isinstance(text, str) or not _AMOUNT.match(text.strip()):
        raise _BadArgument(
            argument,
            f"{text!r} is not an amount: write a decimal number of euros with at most two "
            "decimals, e.g. 48000.00",
        )
    return Decimal(text.strip()).quantize(Decimal("0.01"))


def _percent(argument: str, text: str) -> Decimal:
    if not isinstance(text, str) or not _PERCENT.match(text.strip()):
        raise _BadArgument(
            argument, f"{text!r} is not a percentage: write a decimal number, e.g. 10 or 13.5"
        )
    value = Decimal(text.strip())
    if value > 100:
        raise _BadArgument(argument, f"{text} is not a percentage between 0 and 100")
    return value


def _months(months: int) -> int:
    if not isinstance(months, int) or isinstance(months, bool) or months <= 0:
        raise _BadArgument("--months", f"{months!r} is not a positive whole number of months")
    return months


def _policy(name: str) -> Policy:
    try:
        return policy_named(name)
    except UnknownPolicy as exc:
        raise _BadArgument("--policy", str(exc)) from None


def _error(argument: str, message: str) -> str:
    return _dump({"error": "invalid_argument", "argument": argument, "message": message})


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)
