"""KRX tick table, price helpers, limits, costs and sessions."""

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import krx


@pytest.mark.parametrize(
    "price, tick",
    [
        (1, 1),
        (1999, 1),
        (2000, 5),
        (4995, 5),
        (5000, 10),
        (19990, 10),
        (20000, 50),
        (49950, 50),
        (50000, 100),
        (199900, 100),
        (200000, 500),
        (499500, 500),
        (500000, 1000),
        (2_000_000, 1000),
    ],
)
def test_tick_table_since_2023(price, tick):
    assert krx.tick_size(price) == tick


def test_steps_cross_tick_boundaries():
    assert krx.next_tick(1999) == 2000 and krx.next_tick(2000) == 2005
    assert krx.prev_tick(2000) == 1999 and krx.prev_tick(5000) == 4995
    assert krx.next_tick(49950) == 50000 and krx.prev_tick(50000) == 49950
    assert krx.next_tick(70000, 3) == 70300 and krx.prev_tick(70000, 3) == 69700
    assert krx.prev_tick(1) == 1


def test_limit_band_is_thirty_percent_on_the_tick():
    assert krx.limit_band(70000) == (49000, 91000)
    lower, upper = krx.limit_band(12345)
    assert krx.is_on_tick(lower) and krx.is_on_tick(upper)
    assert upper <= 12345 * 1.3 and lower >= 12345 * 0.7


def test_check_price_explains():
    assert krx.check_price(70000, 70000) == ""
    assert "tick" in krx.check_price(70010, 70000)
    assert "upper limit 91,000" in krx.check_price(91100, 70000)
    assert "lower limit 49,000" in krx.check_price(48900, 70000)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=5_000_000))
def test_snapping_lands_on_the_grid_and_brackets_the_price(p):
    down, up, near = krx.snap_down(p), krx.snap_up(p), krx.snap(p)
    assert krx.is_on_tick(down) and krx.is_on_tick(up) and krx.is_on_tick(near)
    assert down <= p <= up and near in (down, up)
    assert krx.prev_tick(krx.next_tick(down)) == down


def test_costs():
    assert krx.commission(10_000_000, 0.015) == 1500
    assert krx.commission(1_234_567, 0.015) == 180  # 185.18 truncated to 10 KRW
    assert krx.sell_tax(10_000_000, 0.20) == 20000


def test_sessions_in_kst():
    kst = krx.KST
    monday = datetime.datetime(2026, 11, 23, tzinfo=kst)
    at = lambda h, m: monday.replace(hour=h, minute=m)  # noqa: E731
    assert krx.session_at(at(8, 29)) == krx.CLOSED
    assert krx.session_at(at(8, 30)) == krx.PRE_OPEN
    assert krx.session_at(at(9, 0)) == krx.CONTINUOUS
    assert krx.session_at(at(15, 20)) == krx.CLOSING_AUCTION
    assert krx.session_at(at(15, 30)) == krx.CLOSED
    assert krx.session_at(monday.replace(day=22, hour=10)) == krx.CLOSED  # Sunday
    utc_ten = datetime.datetime(2026, 11, 23, 1, 0, tzinfo=datetime.timezone.utc)  # 10:00 KST
    assert krx.session_at(utc_ten) == krx.CONTINUOUS


def test_codes():
    assert krx.is_valid_code("005930") and krx.is_valid_code("0001A0")
    assert (
        not krx.is_valid_code("5930")
        and not krx.is_valid_code(5930)
        and not krx.is_valid_code("005930 ")
    )
    assert krx.normalize_code("A005930") == "005930"
