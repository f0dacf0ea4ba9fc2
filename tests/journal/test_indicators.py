"""Indicators against values computed independently, with plain Python loops."""

from __future__ import annotations

import math
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from core import indicators

prices = st.lists(st.integers(100, 1_000_000), min_size=0, max_size=150)


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=100, deadline=None)
@given(prices, st.sampled_from(indicators.MA_WINDOWS))
def test_sma_against_a_loop(xs: list[int], n: int) -> None:
    got = indicators.sma(xs, n)
    for i in range(len(xs)):
        want = sum(xs[i - n + 1 : i + 1]) / n if i >= n - 1 else math.nan
        assert _close(got[i], want)


@settings(max_examples=100, deadline=None)
@given(prices)
def test_bollinger_against_statistics_pstdev(xs: list[int]) -> None:
    mid, up, lo = indicators.bollinger(xs, 20, 2.0)
    for i in range(len(xs)):
        if i < 19:
            assert math.isnan(mid[i]) and math.isnan(up[i]) and math.isnan(lo[i])
            continue
        w = xs[i - 19 : i + 1]
        m, sd = statistics.fmean(w), statistics.pstdev(w)
        assert _close(mid[i], m) and _close(up[i], m + 2 * sd) and _close(lo[i], m - 2 * sd)


def test_bollinger_known_values() -> None:
    xs = list(range(1, 21))  # mean 10.5, population sd sqrt((20^2-1)/12)
    mid, up, lo = indicators.bollinger(xs, 20, 2.0)
    sd = math.sqrt((20**2 - 1) / 12)
    assert _close(mid[-1], 10.5) and _close(up[-1], 10.5 + 2 * sd) and _close(lo[-1], 10.5 - 2 * sd)


def test_vwap_restarts_each_session_and_skips_zero_volume() -> None:
    h, lo, c = [103, 106, 100, 200], [97, 94, 100, 200], [100, 100, 100, 200]
    v = [0, 10, 30, 5]
    day = ["d1", "d1", "d1", "d2"]
    got = indicators.vwap(h, lo, c, v, day)
    assert math.isnan(got[0])  # nothing traded yet
    assert _close(got[1], 100.0)
    assert _close(got[2], (100 * 10 + 100 * 30) / 40)
    assert _close(got[3], 200.0)  # a new day starts again


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1000, 2000), st.integers(0, 500), st.booleans()), max_size=60)
)
def test_vwap_against_a_loop(rows: list[tuple[int, int, bool]]) -> None:
    h = [p + 10 for p, _, _ in rows]
    lo = [p - 10 for p, _, _ in rows]
    c = [p for p, _, _ in rows]
    v = [vol for _, vol, _ in rows]
    keys, day = [], 0
    for _, _, new_day in rows:
        day += new_day
        keys.append(day)
    got = indicators.vwap(h, lo, c, v, keys)
    pv = cv = 0.0
    for i in range(len(rows)):
        if i == 0 or keys[i] != keys[i - 1]:
            pv = cv = 0.0
        pv += (h[i] + lo[i] + c[i]) / 3 * v[i]
        cv += v[i]
        assert _close(got[i], pv / cv if cv else math.nan)
