"""The simulator's past: daily and minute candles generated from its seed.

The past ends where today's market begins: the last daily candle closes at the code's
previous close (the base of today's ±30 % band), and the last minute candle is the previous
trading day's 15:29 bar, closing there too. Going backwards, each candle's close is derived
from the next one's by a seeded random return, so the same seed, code and interval always
give the same history (and asking for more candles only extends it further back).

Prices are on the KRX tick grid; days skip weekends (holidays are not modelled here).
Nothing here reads the wall clock: ``today`` comes from the sim's clock.
"""

import datetime
import math
import random
import zlib
from typing import List

from core.protocol import krx

#: Typical absolute daily and one-minute returns of a large-cap (before ``volatility``).
DAILY_SIGMA = 0.02
MINUTE_SIGMA = 0.0012
#: The regular session's minute bars: 09:00 … 15:29 (390 bars).
SESSION_OPEN = datetime.time(9, 0)
MINUTES_PER_DAY = 390

Candle = List[int]  # [start_ms, open, high, low, close, volume]


def _rng(seed: int, code: str, interval: str) -> random.Random:
    return random.Random(zlib.crc32("{}:{}:{}".format(seed, code, interval).encode()))


def _trading_days_before(today: datetime.date, n: int) -> List[datetime.date]:
    """The ``n`` weekdays before ``today``, oldest first."""
    out: List[datetime.date] = []
    day = today
    while len(out) < n:
        day -= datetime.timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    out.reverse()
    return out


def _ms(day: datetime.date, at: datetime.time) -> int:
    return int(datetime.datetime.combine(day, at, tzinfo=krx.KST).timestamp() * 1000)


def _candle(
    rng: random.Random, start_ms: int, prev_close: int, close: int, sigma: float, volume: float
) -> Candle:
    gap = rng.gauss(0.0, sigma / 3)
    open_ = krx.snap(max(1.0, prev_close * (1.0 + gap)))
    top, bottom = max(open_, close), min(open_, close)
    high = krx.snap_up(int(top * (1.0 + abs(rng.gauss(0.0, sigma / 2)))))
    low = krx.snap_down(max(1, int(bottom * (1.0 - abs(rng.gauss(0.0, sigma / 2))))))
    high, low = max(high, top), max(1, min(low, bottom))
    vol = int(volume * math.exp(rng.gauss(0.0, 0.5)))
    return [start_ms, open_, high, low, close, max(vol, 1)]


def past_candles(
    seed: int,
    code: str,
    base: int,
    interval: str,
    count: int,
    today: datetime.date,
    volatility: float = 1.0,
) -> List[Candle]:
    """The last ``count`` complete ``interval`` (``1d``/``1m``) candles before ``today``'s
    session, oldest first, ending at ``base`` (the previous close)."""
    rng = _rng(seed, code, interval)
    daily = interval == "1d"
    sigma = (DAILY_SIGMA if daily else MINUTE_SIGMA) * max(volatility, 0.01)
    # Shares per candle for a code of this price: about 3 bn KRW a day.
    day_volume = max(1000.0, 3e9 / max(base, 1))
    if daily:
        starts = [_ms(d, datetime.time(0, 0)) for d in _trading_days_before(today, count)]
        per_candle = day_volume
    else:
        days = _trading_days_before(today, (count + MINUTES_PER_DAY - 1) // MINUTES_PER_DAY)
        open_ms = [_ms(d, SESSION_OPEN) for d in days]
        minutes = [o + m * 60000 for o in open_ms for m in range(MINUTES_PER_DAY)]
        starts = minutes[-count:]
        per_candle = day_volume / MINUTES_PER_DAY
    # Newest first, so that the same candle gets the same numbers whatever ``count`` is.
    out: List[Candle] = []
    close = base
    for start in reversed(starts):
        prev_close = krx.snap(max(1.0, close / (1.0 + rng.gauss(0.0, sigma))))
        out.append(_candle(rng, start, prev_close, close, sigma, per_candle))
        close = prev_close
    out.reverse()
    return out
