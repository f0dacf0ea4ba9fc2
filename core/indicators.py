"""Chart indicators with numpy: moving averages, Bollinger bands, VWAP.

Every function takes plain sequences (oldest first) and returns float arrays of the same
length, NaN where the window is not yet full, so the result lines up with the candles.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The moving averages traders expect on a Korean chart (5/20/60/120 candles).
MA_WINDOWS = (5, 20, 60, 120)


def sma(values: Sequence[float], n: int) -> np.ndarray:
    """Simple moving average over ``n`` candles (NaN for the first ``n - 1``)."""
    x = np.asarray(values, dtype=float)
    out = np.full(x.shape, np.nan)
    if n <= 0 or len(x) < n:
        return out
    csum = np.cumsum(np.insert(x, 0, 0.0))
    out[n - 1 :] = (csum[n:] - csum[:-n]) / n
    return out


def bollinger(
    close: Sequence[float], n: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(middle, upper, lower): the ``n``-candle mean ± ``k`` population standard deviations."""
    x = np.asarray(close, dtype=float)
    mid = sma(x, n)
    std = np.full(x.shape, np.nan)
    if n > 0 and len(x) >= n:
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        std[n - 1 :] = windows.std(axis=1)
    return mid, mid + k * std, mid - k * std


def vwap(
    high: Sequence[float],
    low: Sequence[float],
    close: Sequence[float],
    volume: Sequence[float],
    session: Sequence[object],
) -> np.ndarray:
    """Volume-weighted average of the typical price (high + low + close) / 3, restarting at
    each new ``session`` key (the KST date, for intraday charts). NaN until volume trades."""
    tp = (np.asarray(high, float) + np.asarray(low, float) + np.asarray(close, float)) / 3.0
    vol = np.asarray(volume, dtype=float)
    keys = list(session)
    out = np.full(tp.shape, np.nan)
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            pv = np.cumsum(tp[start:i] * vol[start:i])
            cv = np.cumsum(vol[start:i])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:i] = np.where(cv > 0, pv / np.where(cv > 0, cv, 1), np.nan)
            start = i
    return out
