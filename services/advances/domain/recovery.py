"""Recovering the advance by « précompte » on the holder's approved invoices (R2191-11/-12).

The schedule is a function of the cumulative executed amount TTC, x, against the contract's
amount TTC, T:

    recovered(x) = advance × clamp((x − start·T) / ((end − start)·T), 0, 1)

rounded to the cent (half up). Each invoice deducts recovered(after) − recovered(before): the
cumulative figure is rounded, not each deduction, so the deductions add up to the advance
exactly (domain-rules.md §3.6).

A deduction never exceeds the invoice it is taken from (net payable >= 0). When the schedule
asks for more than an invoice can bear — a 20 % SME advance recovered over a 15 % window
does — the excess is carried over: the next invoice aims at the schedule again, measured
against what was actually recovered, and so catches up.

A contract may instead fix its own rhythm (R2191-11: « selon un rythme et des modalités fixées
par les clauses du marché »): with a pro-rata clause every invoice, from the first, bears
``prorata_pct`` of its amount until the advance is recovered — and the invoice that takes the
executed amount past ``end_pct`` bears whatever is left, since R2191-12 wants the recovery
complete by then.

Amounts are ``Decimal`` euros exact to the cent; percentages are ``Decimal`` percents
(``Decimal("65")`` is 65 %).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext

from shared.money import CENT, to_cents

ZERO = Decimal("0.00")
HUNDRED = Decimal("100")

# The divisions below run with this many significant digits, then round once to the cent:
# far more than any contract amount needs, so that a result lying just below a half cent is
# never pushed onto it by the division's own rounding.
_PRECISION = 60


class InvalidRecoveryInput(ValueError):
    """An argument of the recovery computation is unusable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Recovery:
    """What one approved invoice bears of the advance.

    ``carried_over`` is the part of the scheduled deduction this invoice could not bear
    because the deduction may not exceed the invoice; the following invoices recover it.
    """

    deduction: Decimal
    net_payable: Decimal
    recovered_after: Decimal
    carried_over: Decimal


def no_recovery(invoice_amount: Decimal) -> Recovery:
    """An invoice that bears no deduction: its contract has no advance or is not known."""
    amount = _amount("invoice_amount", invoice_amount)
    return Recovery(deduction=ZERO, net_payable=amount, recovered_after=ZERO, carried_over=ZERO)


def scheduled_recovered(
    advance: Decimal,
    contract_ttc: Decimal,
    executed: Decimal,
    start_pct: Decimal,
    end_pct: Decimal,
) -> Decimal:
    """The part of the advance the schedule has recovered once ``executed`` (TTC, cumulative)
    is reached: 0 up to start_pct of the contract, the whole advance from end_pct, linear in
    between, rounded half up to the cent."""
    advance = _amount("advance", advance)
    contract_ttc = _amount("contract_ttc", contract_ttc, positive=True)
    executed = _amount("executed", executed)
    _window(start_pct, end_pct)
    # Scaled by 100 so that the percentages enter as they are: (100·x − start·T) against
    # (end − start)·T. Both sides are exact; only the final division rounds.
    with localcontext() as context:
        context.prec = _PRECISION
        progress = HUNDRED * executed - start_pct * contract_ttc
        window = (end_pct - start_pct) * contract_ttc
        if progress <= 0:
            return ZERO
        if progress >= window:
            return advance
        return to_cents(advance * progress / window)


def recovery_deduction(
    advance: Decimal,
    contract_ttc: Decimal,
    executed_before: Decimal,
    invoice_amount: Decimal,
    recovered_before: Decimal,
    start_pct: Decimal,
    end_pct: Decimal,
    prorata_pct: Decimal | None = None,
) -> Recovery:
    """The deduction an approved invoice of ``invoice_amount`` (TTC) bears.

    ``executed_before`` is the cumulative executed amount TTC before this invoice and
    ``recovered_before`` what the previous invoices actually deducted (which lags the
    schedule after a carry-over). Without ``prorata_pct`` the target is the statutory linear
    schedule between ``start_pct`` and ``end_pct`` of the contract TTC (R2191-11, R2191-12);
    a recovery from the first payment request is the schedule with ``start_pct`` 0.

    With ``prorata_pct`` the contract's own clause applies (R2191-11: the contract fixes the
    rhythm): ``prorata_pct`` of each invoice from the first one. ``end_pct`` still bounds it:
    R2191-12 requires the recovery to be complete once end_pct is executed, so the invoice
    reaching it bears whatever is still outstanding.
    """
    advance = _amount("advance", advance)
    contract_ttc = _amount("contract_ttc", contract_ttc, positive=True)
    executed_before = _amount("executed_before", executed_before)
    invoice_amount = _amount("invoice_amount", invoice_amount)
    recovered_before = _amount("recovered_before", recovered_before)
    _window(start_pct, end_pct)
    if recovered_before > advance:
        raise InvalidRecoveryInput(
            "recovered_before",
            f"{recovered_before} exceeds the advance {advance}: more cannot have been recovered "
            "than was advanced",
        )
    outstanding = advance - recovered_before
    executed_after = executed_before + invoice_amount

    if prorata_pct is not None:
        prorata_pct = _percent("prorata_pct", prorata_pct, allow_zero=False)
        if HUNDRED * executed_after >= end_pct * contract_ttc:
            due = outstanding
        else:
            due = min(to_cents(invoice_amount * prorata_pct / HUNDRED), outstanding)
    else:
        target = scheduled_recovered(advance, contract_ttc, executed_after, start_pct, end_pct)
        # The target is measured against what was actually recovered, so a shortfall carried
        # over from earlier invoices is caught up here; it never exceeds the advance, hence
        # never the outstanding balance.
        due = max(target - recovered_before, ZERO)

    # A precompte is taken from the sum due on this invoice: it cannot make it negative.
    deduction = min(due, invoice_amount)
    return Recovery(
        deduction=deduction,
        net_payable=invoice_amount - deduction,
        recovered_after=recovered_before + deduction,
        carried_over=due - deduction,
    )


@dataclass
class RecoveryLedger:
    """The running recovery of one contract's advance: apply its approved invoices in the
    order they are approved."""

    advance: Decimal
    contract_ttc: Decimal
    start_pct: Decimal
    end_pct: Decimal
    prorata_pct: Decimal | None = None
    executed: Decimal = ZERO
    recovered: Decimal = ZERO

    @property
    def outstanding(self) -> Decimal:
        return self.advance - self.recovered

    def apply(self, invoice_amount: Decimal) -> Recovery:
        recovery = recovery_deduction(
            self.advance,
            self.contract_ttc,
            self.executed,
            invoice_amount,
            self.recovered,
            self.start_pct,
            self.end_pct,
            self.prorata_pct,
        )
        self.executed += invoice_amount
        self.recovered = recovery.recovered_after
        return recovery


def replay_recovery(
    advance: Decimal,
    contract_ttc: Decimal,
    invoice_amounts: Iterable[Decimal],
    start_pct: Decimal,
    end_pct: Decimal,
    prorata_pct: Decimal | None = None,
) -> list[Recovery]:
    """The recovery borne by each invoice of a sequence, from the first."""
    ledger = RecoveryLedger(advance, contract_ttc, start_pct, end_pct, prorata_pct)
    return [ledger.apply(amount) for amount in invoice_amounts]


def _amount(name: str, value: Decimal, *, positive: bool = False) -> Decimal:
    if not isinstance(value, Decimal):
        # A float cannot hold 0.10 exactly; an int is accepted as whole euros.
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        else:
            raise InvalidRecoveryInput(
                name, f"an amount is a Decimal, not a {type(value).__name__}"
            )
    if not value.is_finite():
        raise InvalidRecoveryInput(name, f"{value} is not a finite amount")
    if value != value.quantize(CENT):
        raise InvalidRecoveryInput(name, f"{value} has fractions of a cent")
    if value < 0 or (positive and value == 0):
        raise InvalidRecoveryInput(
            name, f"{value} must be {'above' if positive else 'at least'} 0"
        )
    return value.quantize(CENT)


def _percent(name: str, value: Decimal, *, allow_zero: bool = True) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidRecoveryInput(name, f"a percentage is a finite Decimal, not {value!r}")
    if value > HUNDRED or value < 0 or (value == 0 and not allow_zero):
        bound = "0 <= p <= 100" if allow_zero else "0 < p <= 100"
        raise InvalidRecoveryInput(name, f"{value} is not a percentage ({bound})")
    return value


def _window(start_pct: Decimal, end_pct: Decimal) -> None:
    _percent("start_pct", start_pct)
    _percent("end_pct", end_pct)
    if end_pct <= start_pct:
        raise InvalidRecoveryInput(
            "end_pct", f"the recovery must end ({end_pct} %) after it starts ({start_pct} %)"
        )
