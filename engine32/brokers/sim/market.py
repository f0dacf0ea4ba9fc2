"""The simulated price process: one random walk per code on the KRX tick grid.

Time is the simulator's own clock in seconds (``t``), advanced by the caller, never read from
the wall, so a seed and the sequence of calls fix the whole market. Each *event* evolves one
code to ``t``: the price moves whole ticks with a probability that grows with the time since
its last event (variance ``lam * dt`` ticks², so the volatility per second does not depend on
the quote rate), volatility switches between regimes, and now and then a code *bursts*: for
20-60 s it trades several times its volume and drifts 4-10 % one way (the surge detector's
food in a demo). Prices never leave the daily band (±30 % of the previous close).
"""

import math
import random
from typing import Dict, List, Optional

from core.protocol import krx

from .universe import Instrument

tick_size = krx.tick_size

#: Volatility per √second at ``volatility = 1``, as a fraction of the price (≈ 3 % an hour).
SIGMA_PER_SQRT_S = 0.0005
#: Pull towards the previous close (per second; an Ornstein-Uhlenbeck drift): a price away
#: from it drifts back with a time constant of 30 min, so a day wanders a few percent and a
#: burst fades, but it takes big volatility to reach a daily limit.
MEAN_REVERSION = 1.0 / 1800
#: A code left alone longer than this (s) catches up in one exact step.
LONG_GAP_S = 60.0
#: Volatility regimes (multipliers) and how long one lasts on average (s).
REGIMES = (0.5, 1.0, 1.0, 1.5, 2.5)
REGIME_S = 20.0
#: Bursts: duration (s), move (fraction of the price), volume multiplier, direction bias.
BURST_S = (20.0, 60.0)
BURST_MOVE = (0.03, 0.08)
BURST_VOLUME = (4.0, 9.0)
BURST_BIAS = 0.35
#: Bursts go up more often than down, less so the higher the price already is.
BURST_UP_PROBABILITY = 0.65
#: A trade is about this much KRW on average.
TRADE_VALUE = 3000000


class CodeState:
    """The evolving state of one code (mutable, owned by :class:`Market`)."""

    __slots__ = (
        "code",
        "name",
        "market",
        "base",
        "lower",
        "upper",
        "price",
        "tick",
        "open",
        "high",
        "low",
        "volume",
        "bid",
        "ask",
        "depth",
        "trade_qty",
        "lot",
        "last_t",
        "regime",
        "burst_until",
        "burst_bias",
        "burst_lam",
        "burst_volume",
        "close",
    )

    def __init__(self, ins: Instrument, t: float) -> None:
        self.code = ins.code
        self.name = ins.name
        self.market = ins.market
        self.lot = max(1, TRADE_VALUE // ins.base)
        self.last_t = t
        self.regime = 1.0
        self.burst_until = -1.0
        self.burst_bias = 0.0
        self.burst_lam = 0.0
        self.burst_volume = 1.0
        self.close = 0
        self.new_day(ins.base)

    def new_day(self, base: int) -> None:
        """Start a trading day whose previous close is ``base``."""
        self.base = base
        self.close = 0  # today's KRX close, once the closing auction has set it
        self.lower, self.upper = krx.limit_band(base)
        self.price = base
        self.tick = krx.tick_size(base)
        self.open = self.high = self.low = 0
        self.volume = 0
        self.trade_qty = 0
        self.bid = max(self.lower, krx.prev_tick(base))
        self.ask = base
        self.depth = self.lot * 5

    def bursting(self, t: float) -> bool:
        return t < self.burst_until


class Market:
    """All codes' states and the random process that moves them."""

    def __init__(
        self,
        instruments: List[Instrument],
        rng: random.Random,
        volatility: float = 1.0,
        t: float = 0.0,
    ) -> None:
        self.rng = rng
        self.sigma = SIGMA_PER_SQRT_S * volatility
        self.states: Dict[str, CodeState] = {ins.code: CodeState(ins, t) for ins in instruments}

    def get(self, code: str) -> Optional[CodeState]:
        return self.states.get(code)

    def new_day(self) -> None:
        """Roll every code over to a new day: yesterday's close (its last price when no
        closing auction set one) becomes the base; after-hours prices do not."""
        for st in self.states.values():
            st.new_day(st.close or st.price)

    def start_burst(self, st: CodeState, t: float) -> None:
        """Make ``st`` burst from ``t``: more volume and a drift of a few percent one way."""
        rng = self.rng
        duration = rng.uniform(*BURST_S)
        change = (st.price - st.base) / float(st.base)
        up = rng.random() < min(0.9, max(0.1, BURST_UP_PROBABILITY - 2.5 * change))
        move_ticks = st.price * rng.uniform(*BURST_MOVE) / st.tick
        st.burst_until = t + duration
        st.burst_bias = BURST_BIAS if up else -BURST_BIAS
        st.burst_lam = move_ticks / (2.0 * BURST_BIAS * duration)
        st.burst_volume = rng.uniform(*BURST_VOLUME)

    def _long_gap_price(self, st: CodeState, lam: float, dt: float) -> int:
        """Where the price is after ``dt`` seconds alone: the exact Ornstein-Uhlenbeck step
        (a linear drift over hours would overshoot the previous close and hit a limit)."""
        decay = math.exp(-MEAN_REVERSION * dt)
        sd_ticks = math.sqrt(lam * (1.0 - decay * decay) / (2.0 * MEAN_REVERSION))
        target = st.base + (st.price - st.base) * decay + self.rng.gauss(0.0, sd_ticks) * st.tick
        return min(st.upper, max(st.lower, krx.snap(max(target, 1.0))))

    def event(self, st: CodeState, t: float, trading: bool = True) -> None:
        """Evolve ``st`` to time ``t``; with ``trading`` one trade happens (volume, side).

        Without ``trading`` (auctions) the price still moves, as an indicative price, but
        nothing trades: ``trade_qty`` is 0 and the volume stays.
        """
        rng = self.rng
        dt = t - st.last_t
        if dt <= 0.0:
            dt = 0.001
        st.last_t = t
        if rng.random() < dt / REGIME_S:
            st.regime = REGIMES[int(rng.random() * len(REGIMES))]
        price = st.price
        sigma_ticks = price * self.sigma / st.tick
        lam = sigma_ticks * sigma_ticks * st.regime
        # drift (ticks/s) = -MEAN_REVERSION * distance in ticks = 2 * bias * lam
        bias = -MEAN_REVERSION * (price - st.base) / (st.tick * 2.0 * lam)
        volume_mult = 1.0
        if t < st.burst_until:
            bias += st.burst_bias
            if st.burst_lam > lam:
                lam = st.burst_lam
            volume_mult = st.burst_volume
        if bias > 0.45:
            bias = 0.45
        elif bias < -0.45:
            bias = -0.45
        p_move = lam * dt
        old = price
        if dt > LONG_GAP_S:
            price = self._long_gap_price(st, lam, dt)
        elif p_move < 0.5:
            if rng.random() < p_move:
                if rng.random() < 0.5 + bias:
                    price += st.tick  # the next price up (tick boundaries are on both grids)
                else:
                    price -= tick_size(price - 1)
        else:
            steps = int(round(rng.gauss(2.0 * bias * p_move, math.sqrt(p_move))))
            if steps:
                price = krx.next_tick(price, steps)
        if price != old:
            if price > st.upper:
                price = st.upper
            elif price < st.lower:
                price = st.lower
            st.price = price
            st.tick = tick_size(price)
        steps = (price > old) - (price < old)
        if steps > 0:
            buy = True
        elif steps < 0:
            buy = False
        else:
            buy = rng.random() < 0.5 + bias
        if price >= st.upper:
            buy = True
        elif price <= st.lower:
            buy = False
        if buy:
            st.ask = price
            st.bid = price - tick_size(price - 1) if price > st.lower else price
        else:
            st.bid = price
            st.ask = price + st.tick if price < st.upper else price
        st.depth = int(st.lot * (2.0 + 18.0 * rng.random()))
        if not trading:
            st.trade_qty = 0
            return
        qty = int(st.lot * volume_mult * rng.expovariate(1.0)) + 1
        st.trade_qty = qty if buy else -qty
        st.volume += qty
        if not st.open:
            st.open = st.high = st.low = price
        elif price > st.high:
            st.high = price
        elif price < st.low:
            st.low = price
