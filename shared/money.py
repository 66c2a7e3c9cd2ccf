"""The one money type: ``Decimal`` euros, exact to the cent.

Amounts in events must already be exact to the cent; computations round with ``to_cents``
(ROUND_HALF_UP unless a rule says otherwise). A float is refused everywhere: it cannot hold
0.10 exactly.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

CENT = Decimal("0.01")
LIMIT = Decimal("1e15")


def to_cents(value: Decimal | int | str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round an amount to the cent (half up by default)."""
    return _decimal(value).quantize(CENT, rounding=rounding)


def _decimal(value: Any) -> Decimal:
    # ValueError (not TypeError) so that pydantic reports it as a validation error of the field.
    if isinstance(value, (bool, float)):
        raise ValueError(
            f"amounts are written as decimal strings (e.g. \"1234.50\"), not as a {type(value).__name__}"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
    else:
        raise ValueError(f"an amount must be a decimal string, not a {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{value!r} is not a finite amount")
    return result


def _exact_cents(value: Any) -> Decimal:
    amount = _decimal(value)
    # Beyond this, cent arithmetic leaves Decimal's 28-digit context (and no public contract
    # comes near it). A parsed document's amounts are not Money: validation reports those.
    if abs(amount) >= LIMIT:
        raise ValueError(f"{value} is beyond the largest amount handled ({LIMIT - CENT})")
    if amount != amount.quantize(CENT):
        raise ValueError(f"{value} has fractions of a cent; round it with to_cents() first")
    return amount.quantize(CENT)


def _exact_decimal(value: Any) -> Decimal:
    return _decimal(value)


# An amount in EUR, exact to the cent, written in JSON as a string ("1234.50").
Money = Annotated[
    Decimal,
    BeforeValidator(_exact_cents),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+\.\d{2}$"}),
]

# A rate or ratio kept exact (e.g. "10.15" percent), written in JSON as a string.
ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}),
]
