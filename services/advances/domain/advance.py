"""Whether a contract's holder gets an advance, how much, and from when its payment is due.

- R2191-3: the advance is mandatory when the initial amount exceeds 50 000 EUR HT *and* the
  execution period exceeds 2 months; R2191-5: the holder may refuse it.
- The Region's policy grants advances where they are mandatory. Below the thresholds an
  advance is optional and none is granted by default: the decision says so, with amount 0.
- R2191-7: the advance is a rate of the initial amount TTC (execution within 12 months) or of
  12 × TTC / months (longer execution). The rate comes from a versioned policy
  (``policy.py``) or from the contract itself, never below the legal minimum.
- R2191-8: above 30 % of that base the buyer may require a first-demand guarantee;
  R2192-25: a required guarantee holds back the start of the advance's payment delay.
- R2191-11/-12: the recovery window the decision hands to ``recovery.py``.

The base is rounded to the cent like any amount and the advance is computed from the rounded
base, so anyone can check ``amount = base × rate`` from the figures shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext

from services.advances.domain.policy import Policy, policy_named
from shared.events.contracts import ContractNotified
from shared.money import CENT, to_cents

ZERO = Decimal("0.00")
HUNDRED = Decimal("100")

# R2191-3: both thresholds must be exceeded (strictly).
MANDATORY_ABOVE_HT = Decimal("50000.00")
MANDATORY_ABOVE_MONTHS = 2
# R2191-7: up to 12 months the base is the whole amount TTC.
FULL_BASE_UP_TO_MONTHS = 12
# R2191-8: above 30 % of the R2191-7 base a first-demand guarantee may be required.
GUARANTEE_ABOVE_RATE_PCT = Decimal("30")
# R2191-11: the 30 % that moves the recovery start is a share of the contract's amount TTC,
# not of the R2191-7 base; the two differ for contracts longer than 12 months.
EARLY_RECOVERY_ABOVE_SHARE_PCT = Decimal("30")
# R2191-11 1°, R2191-12 (contracts consulted before 2025; a contract clause replaces them).
DEFAULT_RECOVERY_START_PCT = Decimal("65")
DEFAULT_RECOVERY_END_PCT = Decimal("80")
# R2191-11 2°: « à la première demande de paiement ». A linear schedule starting at 0 %
# executed makes the very first invoice bear its share of the recovery.
FIRST_PAYMENT_REQUEST_START_PCT = Decimal("0")
# R2192-10: the payment delay of a local authority, the advance included (L2192-13).
LEGAL_PAYMENT_DELAY_DAYS = 30


class InvalidAdvanceInput(ValueError):
    """A contract term or a rate is unusable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ContractTerms:
    """The terms of a contract that decide its advance and its recovery.

    ``notified_on`` is None only for a simulation (no contract notified yet); the payment
    delay start is then unknown. A ``start_order_on`` means the contract runs the advance's
    payment delay from the order starting execution (R2192-24 2°). Recovery percentages left
    None take the statutory defaults; ``recovery_prorata_pct`` is a contract's own clause
    deducting that share of every invoice from the first one.
    """

    amount_ht: Decimal
    amount_ttc: Decimal
    duration_months: int
    sme: bool
    advance_refused: bool = False
    notified_on: date | None = None
    start_order_on: date | None = None
    guarantee_required: bool = False
    guarantee_received_on: date | None = None
    recovery_start_pct: Decimal | None = None
    recovery_end_pct: Decimal | None = None
    recovery_prorata_pct: Decimal | None = None

    def __post_init__(self) -> None:
        _positive_cents("amount_ht", self.amount_ht)
        _positive_cents("amount_ttc", self.amount_ttc)
        if self.amount_ttc < self.amount_ht:
            raise InvalidAdvanceInput(
                "amount_ttc", f"{self.amount_ttc} is below the amount HT {self.amount_ht}"
            )
        if (
            not isinstance(self.duration_months, int)
            or isinstance(self.duration_months, bool)
            or self.duration_months <= 0
        ):
            raise InvalidAdvanceInput(
                "duration_months", f"{self.duration_months!r} is not a positive number of months"
            )
        for name in ("recovery_start_pct", "recovery_end_pct"):
            _optional_percent(name, getattr(self, name), allow_zero=True)
        _optional_percent("recovery_prorata_pct", self.recovery_prorata_pct, allow_zero=False)
        if (
            self.recovery_start_pct is not None
            and self.recovery_end_pct is not None
            and self.recovery_end_pct <= self.recovery_start_pct
        ):
            raise InvalidAdvanceInput(
                "recovery_end_pct",
                f"the recovery must end ({self.recovery_end_pct} %) after it starts "
                f"({self.recovery_start_pct} %)",
            )
        if (
            self.notified_on is not None
            and self.start_order_on is not None
            and self.start_order_on < self.notified_on
        ):
            raise InvalidAdvanceInput(
                "start_order_on", "the start order cannot precede the notification"
            )

    @classmethod
    def from_event(cls, event: ContractNotified) -> ContractTerms:
        return cls(
            amount_ht=event.amount_ht,
            amount_ttc=event.amount_ttc,
            duration_months=event.duration_months,
            sme=event.sme,
            advance_refused=event.advance_refused,
            notified_on=event.notified_on,
            start_order_on=event.start_order_on,
            guarantee_required=event.guarantee_required,
            guarantee_received_on=event.guarantee_received_on,
            recovery_start_pct=event.recovery_start_pct,
            recovery_end_pct=event.recovery_end_pct,
            recovery_prorata_pct=event.recovery_prorata_pct,
        )


@dataclass(frozen=True)
class AdvanceDelayStart:
    """When the advance's payment delay starts; ``starts_on`` is None while it cannot start
    yet, and ``reason`` says why."""

    starts_on: date | None
    reason: str

    def due_on(self, delay_days: int = LEGAL_PAYMENT_DELAY_DAYS) -> date | None:
        """The payment deadline: the start plus the delay in calendar days, as for any sum
        due (R2192-10, L2192-13)."""
        return None if self.starts_on is None else self.starts_on + timedelta(days=delay_days)


@dataclass(frozen=True)
class AdvanceDecision:
    """The advance of one contract.

    ``rate``, ``recovery_*_pct`` are percentages (``Decimal("10")`` is 10 %); ``base`` and
    ``amount`` are EUR TTC to the cent. When no advance is due, ``amount`` and ``rate`` are 0
    and ``reason`` says why. ``recovery_start_pct`` 0 means the recovery starts at the first
    payment request (R2191-11 2°). ``warnings`` lists consistency concerns that do not stop
    the decision.
    """

    mandatory: bool
    reason: str
    policy_version: str
    rate: Decimal
    rate_from_contract: bool
    base: Decimal
    amount: Decimal
    guarantee_may_be_required: bool
    recovery_start_pct: Decimal
    recovery_end_pct: Decimal
    recovery_prorata_pct: Decimal | None
    delay_start: AdvanceDelayStart
    warnings: tuple[str, ...] = ()

    @property
    def granted(self) -> bool:
        return self.amount > 0


def advance_for(
    terms: ContractTerms, policy: Policy, rate_override: Decimal | None = None
) -> AdvanceDecision:
    """The advance the Region owes on a contract under ``policy``, or why there is none.

    ``rate_override`` is a rate the contract fixes itself; it replaces the policy's rate for
    a mandatory advance but does not create an optional one.
    """
    if rate_override is not None:
        _check_rate_override(rate_override, terms.sme)
    base = advance_base(terms)
    not_mandatory = _why_not_mandatory(terms)
    if not_mandatory is not None:
        start, end = _recovery_window(terms, share=ZERO)
        return AdvanceDecision(
            mandatory=False,
            reason=not_mandatory,
            policy_version=policy.version,
            rate=Decimal("0"),
            rate_from_contract=False,
            base=base,
            amount=ZERO,
            guarantee_may_be_required=False,
            recovery_start_pct=start,
            recovery_end_pct=end,
            recovery_prorata_pct=terms.recovery_prorata_pct,
            delay_start=AdvanceDelayStart(None, "no advance is paid, so no payment delay runs"),
        )

    rate = rate_override if rate_override is not None else policy.rate_pct(terms.sme)
    amount = to_cents(base * rate / HUNDRED)
    share = _share_of_contract_pct(terms, rate)
    start, end = _recovery_window(terms, share)
    guarantee_may_be_required = rate > GUARANTEE_ABOVE_RATE_PCT

    warnings: list[str] = []
    if terms.recovery_prorata_pct is None and share + start > HUNDRED:
        # Good practice (domain-rules.md §3.4): before the recovery starts the holder has
        # received the advance plus start % of the contract; above 100 % it is overpaid.
        warnings.append(
            f"the advance ({percent_text(share.quantize(CENT))} % of the contract TTC) plus the "
            f"recovery start ({percent_text(start)} % executed) exceeds 100 %: the holder "
            "would be paid more than the contract before the recovery starts"
        )
    if terms.guarantee_required and not guarantee_may_be_required:
        warnings.append(
            f"the contract requires a guarantee although the rate ({percent_text(rate)} %) "
            "does not exceed 30 %, the only case R2191-8 provides for; the payment delay "
            "still waits for its receipt (R2192-25)"
        )

    return AdvanceDecision(
        mandatory=True,
        reason=_granted_reason(terms, policy, rate, rate_override is not None, base),
        policy_version=policy.version,
        rate=rate,
        rate_from_contract=rate_override is not None,
        base=base,
        amount=amount,
        guarantee_may_be_required=guarantee_may_be_required,
        recovery_start_pct=start,
        recovery_end_pct=end,
        recovery_prorata_pct=terms.recovery_prorata_pct,
        delay_start=payment_delay_start(terms),
        warnings=tuple(warnings),
    )


def advance_base(terms: ContractTerms) -> Decimal:
    """R2191-7: the amount TTC, or 12 months' worth of it for a longer execution."""
    if terms.duration_months <= FULL_BASE_UP_TO_MONTHS:
        return terms.amount_ttc
    with localcontext() as context:
        context.prec = 60
        return to_cents(terms.amount_ttc * FULL_BASE_UP_TO_MONTHS / terms.duration_months)


def payment_delay_start(terms: ContractTerms) -> AdvanceDelayStart:
    """The day the advance's payment delay starts (R2192-24, R2192-25)."""
    if terms.notified_on is None:
        return AdvanceDelayStart(
            None, "the contract is not notified: the delay runs from notification (R2192-24)"
        )
    if terms.start_order_on is not None:
        starts_on = terms.start_order_on
        reason = "the order to start execution, as the contract provides (R2192-24 2°)"
    else:
        starts_on = terms.notified_on
        reason = "the notification of the contract (R2192-24 1°)"
    if terms.guarantee_required:
        if terms.guarantee_received_on is None:
            return AdvanceDelayStart(
                None,
                "unknown until the first-demand guarantee the contract requires is received: "
                "the delay cannot start before its receipt (R2192-25)",
            )
        if terms.guarantee_received_on > starts_on:
            return AdvanceDelayStart(
                terms.guarantee_received_on,
                "the receipt of the required guarantee, after " + reason + " (R2192-25)",
            )
    return AdvanceDelayStart(starts_on, reason)


def percent_text(value: Decimal) -> str:
    """A percentage as people write it: ``10``, ``13.5``, never ``1E+1`` or ``10.00``."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _why_not_mandatory(terms: ContractTerms) -> str | None:
    amount_ok = terms.amount_ht > MANDATORY_ABOVE_HT
    duration_ok = terms.duration_months > MANDATORY_ABOVE_MONTHS
    amount_text = f"the initial amount of {terms.amount_ht} EUR HT does not exceed 50000 EUR HT"
    duration_text = (
        f"the execution period of {terms.duration_months} months does not exceed 2 months"
    )
    if not amount_ok and not duration_ok:
        why = f"{amount_text} and {duration_text}"
    elif not amount_ok:
        why = amount_text
    elif not duration_ok:
        why = duration_text
    elif terms.advance_refused:
        return (
            "No advance: the holder refused it (R2191-5), although it is mandatory for "
            f"{terms.amount_ht} EUR HT over {terms.duration_months} months (R2191-3)."
        )
    else:
        return None
    return (
        f"No advance: {why} (R2191-3), so it is optional and the Region grants optional "
        "advances only on a decision of its own, not by default."
    )


def _granted_reason(
    terms: ContractTerms, policy: Policy, rate: Decimal, from_contract: bool, base: Decimal
) -> str:
    if terms.duration_months <= FULL_BASE_UP_TO_MONTHS:
        base_text = "the amount TTC, execution within 12 months"
    else:
        base_text = f"12 × {terms.amount_ttc} / {terms.duration_months} months"
    source = "set by the contract" if from_contract else f"under policy {policy.version}"
    holder = "an SME holder" if terms.sme else "a non-SME holder"
    reason = (
        f"Advance mandatory: {terms.amount_ht} EUR HT exceeds 50000 EUR HT and "
        f"{terms.duration_months} months exceed 2 months (R2191-3). Rate {percent_text(rate)} % "
        f"for {holder}, {source}; base {base} EUR TTC = {base_text} (R2191-7)."
    )
    if rate > GUARANTEE_ABOVE_RATE_PCT:
        reason += " Above 30 %, payment may be conditioned on a first-demand guarantee (R2191-8)."
    return reason


def _recovery_window(terms: ContractTerms, share: Decimal) -> tuple[Decimal, Decimal]:
    """Start and end of the recovery in % executed of the contract TTC (R2191-11/-12);
    the contract's own figures win over the statutory ones."""
    if share > EARLY_RECOVERY_ABOVE_SHARE_PCT:
        default_start = FIRST_PAYMENT_REQUEST_START_PCT
    else:
        default_start = DEFAULT_RECOVERY_START_PCT
    if share < DEFAULT_RECOVERY_END_PCT:
        default_end = DEFAULT_RECOVERY_END_PCT
    else:
        # R2191-12: an advance of 80 % or more is recovered in full once the executed amount
        # reaches the advance itself. Rounded down so that the bound is never later than that.
        default_end = share.quantize(Decimal("0.0001"), rounding=ROUND_FLOOR)
    start = _pick(terms.recovery_start_pct, default_start)
    end = _pick(terms.recovery_end_pct, default_end)
    if end <= start:
        raise InvalidAdvanceInput(
            "recovery_end_pct",
            f"the recovery must end ({percent_text(end)} %) after it starts "
            f"({percent_text(start)} %); state both bounds in the contract",
        )
    return start, end


def _share_of_contract_pct(terms: ContractTerms, rate: Decimal) -> Decimal:
    """The advance as a percentage of the contract's amount TTC, from the R2191-7 formula
    rather than from the amount rounded to the cent: a 30 % advance must not read as
    30.00001 % because its last cent was rounded up."""
    if terms.duration_months <= FULL_BASE_UP_TO_MONTHS:
        return rate
    with localcontext() as context:
        context.prec = 60
        return rate * FULL_BASE_UP_TO_MONTHS / terms.duration_months


def _check_rate_override(rate: Decimal, sme: bool) -> None:
    if not isinstance(rate, Decimal) or not rate.is_finite():
        raise InvalidAdvanceInput("rate_override", f"a rate is a finite Decimal, not {rate!r}")
    # R2191-7: a contract may set a higher rate, never one below the legal minimum.
    minimum = policy_named("legal-minimum").rate_pct(sme)
    if rate < minimum:
        holder = "an SME holder" if sme else "a holder"
        raise InvalidAdvanceInput(
            "rate_override",
            f"{percent_text(rate)} % is below the legal minimum of {percent_text(minimum)} % "
            f"for {holder} (R2191-7)",
        )
    if rate > HUNDRED:
        raise InvalidAdvanceInput(
            "rate_override", f"{percent_text(rate)} % exceeds the whole base (100 %)"
        )


def _pick(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value


def _positive_cents(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidAdvanceInput(name, f"an amount is a finite Decimal, not {value!r}")
    if value != value.quantize(CENT):
        raise InvalidAdvanceInput(name, f"{value} has fractions of a cent")
    if value <= 0:
        raise InvalidAdvanceInput(name, f"{value} must be above 0")


def _optional_percent(name: str, value: Decimal | None, *, allow_zero: bool) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidAdvanceInput(name, f"a percentage is a finite Decimal, not {value!r}")
    if value < 0 or value > HUNDRED or (value == 0 and not allow_zero):
        raise InvalidAdvanceInput(name, f"{value} is not a percentage between 0 and 100")
