from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from shared.clock import FileClock, FixedClock, OffsetClock, SystemClock, clock_from_spec
from shared.money import Money, to_cents


class Priced(BaseModel):
    amount: Money


def test_to_cents_rounds_half_up():
    assert to_cents(Decimal("667.395")) == Decimal("667.40")
    assert to_cents(Decimal("0.005")) == Decimal("0.01")
    assert to_cents(Decimal("-0.005")) == Decimal("-0.01")
    assert to_cents("10666.666666") == Decimal("10666.67")


def test_decimal_sums_stay_exact():
    total = sum((Priced(amount="0.10").amount for _ in range(10)), Decimal("0"))
    assert total == Decimal("1.00")


@pytest.mark.parametrize("bad", [0.1, True, "abc", "NaN", "Infinity", "1.005", [1],
                                 "-598719079633403169471344245970.04", "1000000000000000.00"])
def test_money_refuses_floats_non_numbers_and_fractions_of_a_cent(bad):
    with pytest.raises(ValidationError):
        Priced(amount=bad)


def test_money_is_written_as_a_string_with_cents():
    assert Priced(amount=12).model_dump_json() == '{"amount":"12.00"}'
    assert Priced(amount="12.5").model_dump(mode="json") == {"amount": "12.50"}


def test_fixed_clock_moves_by_days_and_counts_french_dates():
    clock = FixedClock(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    # 23:30 UTC on 1 March is already 2 March in Paris (UTC+1).
    assert clock.today() == date(2026, 3, 2)
    clock.advance(timedelta(days=30))
    assert clock.now() == datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    # After the switch to summer time Paris is UTC+2.
    assert clock.today() == date(2026, 4, 1)


def test_clock_specs():
    assert isinstance(clock_from_spec("system"), SystemClock)
    fixed = clock_from_spec("fixed:2026-03-02T09:00:00+00:00")
    assert fixed.now() == datetime(2026, 3, 2, 9, tzinfo=UTC)
    ahead = clock_from_spec("offset:+10d")
    assert isinstance(ahead, OffsetClock) and ahead.offset == timedelta(days=10)
    assert abs((ahead.now() - SystemClock().now()) - timedelta(days=10)) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="not understood"):
        clock_from_spec("tomorrow")
    with pytest.raises(ValueError, match="aware"):
        clock_from_spec("fixed:2026-03-02T09:00:00")


def test_a_file_clock_follows_the_instant_another_process_writes(tmp_path):
    path = tmp_path / "clock"
    FileClock.set(path, datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    clock = clock_from_spec(f"file:{path}")
    assert clock.today().isoformat() == "2026-03-03"  # 00:30 in Paris
    clock.refresh = 0
    FileClock.set(path, datetime(2026, 4, 21, 9, 0, tzinfo=UTC))
    assert clock.now() == datetime(2026, 4, 21, 9, 0, tzinfo=UTC)
    path.write_text("next tuesday")
    with pytest.raises(ValueError, match="not an ISO 8601 instant"):
        clock.now()
