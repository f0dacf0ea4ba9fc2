"""Conditional orders (stop, take-profit, trailing, OCO) as data, and the per-code index that
finds the ones a quote crosses in O(1) (issue 14; the firing itself is in
:mod:`engine32.trigger_engine`).

Every armed trigger fires in one of two directions:

- *down*: when the price falls to its level (a sell stop, a sell trailing stop, a buy
  take-profit), compared with the sell-side price (the bid, or the last trade);
- *up*: when the price rises to its level (a sell take-profit, a buy stop, a buy trailing
  stop), compared with the buy-side price (the ask, or the last trade).

For each code :class:`TriggerBook` keeps four numbers: the highest *down* level and the
lowest *up* level per side, and for trailing stops the lowest high-water mark (sell) and the
highest low-water mark (buy). A quote is compared with those numbers only; the triggers of
the code are visited only when the quote crosses one of them or moves a trailing mark.
Codes without triggers cost one dict lookup.
"""

import itertools
import math
import os
import time
from typing import Any, Dict, Iterable, List, Optional, Tuple

from core.protocol import krx
from core.protocol.triggers import (
    ARMED,
    FINAL_STATUSES,
    POSITION,
    STOP,
    TAKE_PROFIT,
    TRAILING,
)

INF = float("inf")

#: Fields of the trigger JSON in ``P:state:triggers`` (and of the ``trigger`` event), in order.
FIELDS = (
    "trigger_id",
    "code",
    "side",
    "qty",
    "kind",
    "trigger_price",
    "trail_pct",
    "trail_ticks",
    "order_type",
    "limit_offset_ticks",
    "oco",
    "expires",
    "status",
    "reason",
    "mark",
    "level",
    "attempt",
    "cmd_id",
    "cmd_text",
    "order_id",
    "outcome",
    "fired_price",
    "parent",
    "pct",
    "client",
    "created_ts",
    "updated_ts",
    "halt_crossed",
)

_counter = itertools.count(1)


def new_trigger_id(now_ms: int) -> str:
    """A short id unique across runs: time in base 36, pid and a counter (``t…``)."""
    return "t{}{:x}{}".format(_b36(now_ms), os.getpid() & 0xFFF, next(_counter))


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class Trigger:
    """One conditional order. Mutable; only the engine's Qt thread touches it."""

    __slots__ = FIELDS + ("down",)

    def __init__(self, **values: Any) -> None:
        self.trigger_id = ""
        self.code = ""
        self.side = "sell"
        self.qty: Any = 0  # int, or "position"
        self.kind = STOP
        self.trigger_price = 0
        self.trail_pct: Optional[float] = None
        self.trail_ticks: Optional[int] = None
        self.order_type = "market"
        self.limit_offset_ticks = 0
        self.oco = ""
        self.expires = 0
        self.status = ARMED
        self.reason = ""
        self.mark = 0  # trailing: the high (sell) or low (buy) since armed
        self.level: float = 0  # the price that fires it now (derived)
        self.attempt = 0  # orders sent so far: the n of trg-<id>-<n>
        self.cmd_id = ""
        self.cmd_text = ""  # the exact command pushed onto P:cmd (for recovery)
        self.order_id = ""
        self.outcome = ""  # sent | unknown | error, once fired
        self.fired_price = 0
        self.parent = ""  # the buy command id of a bracket
        self.pct: Optional[float] = None  # bracket *_pct waiting for the first fill
        self.client = ""
        self.created_ts = 0
        self.updated_ts = 0
        self.halt_crossed = False  # suspended by a halt, and a quote crossed it meanwhile
        for key, value in values.items():
            if key in FIELDS:
                setattr(self, key, value)
        #: Fires when the price falls to its level (else when it rises); side and kind never
        #: change, so this is worked out once.
        self.down = (
            self.kind in (STOP, TRAILING) if self.side == "sell" else self.kind == TAKE_PROFIT
        )
        self.update_level()

    # -- wire form ---------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        out = {name: getattr(self, name) for name in FIELDS}
        out["level"] = self.wire_level()
        return out

    def wire_level(self) -> int:
        """The level as it is sent: the price on the KRX tick grid at which it fires (a sell
        trailing stop 2 % under 73,600 is at 72,128, and fires at 72,100 or lower: 72,100 is
        sent), 0 while not known yet."""
        level = self.level
        if not -INF < level < INF:
            return 0
        if self.down:
            return krx.snap_down(math.floor(level))
        return krx.snap_up(math.ceil(level))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Trigger":
        return cls(**{k: v for k, v in data.items() if k in FIELDS})

    # -- meaning -------------------------------------------------------------------------------
    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def follows_position(self) -> bool:
        return self.qty == POSITION

    def update_level(self) -> None:
        """The level from the trigger price, or from the trailing mark."""
        if self.kind != TRAILING:
            self.level = self.trigger_price or (-INF if self.down else INF)
            return
        if self.mark <= 0:
            self.level = -INF if self.down else INF
        elif self.trail_ticks:
            self.level = (
                krx.prev_tick(self.mark, self.trail_ticks)
                if self.down
                else krx.next_tick(self.mark, self.trail_ticks)
            )
        else:
            pct = self.trail_pct or 0.0
            self.level = (
                self.mark * (100.0 - pct) / 100.0
                if self.down
                else self.mark * (100.0 + pct) / 100.0
            )

    def crossed(self, price: int) -> bool:
        if price <= 0:
            return False
        return price <= self.level if self.down else price >= self.level

    def move_mark(self, price: int) -> bool:
        """A trailing stop's mark follows the price (up for sells, down for buys)."""
        if price <= 0:
            return False
        if self.mark <= 0 or (price > self.mark if self.down else price < self.mark):
            self.mark = price
            self.update_level()
            return True
        return False


#: Stand-ins for ±infinity in the integer thresholds (far beyond any KRW price).
BIG = 10**15


class _CodeIndex:
    """The armed triggers of one code and the four thresholds a quote is compared with.

    The thresholds of fixed-price triggers change only when a trigger is armed, disarmed or
    modified (:meth:`recompute`); a new high or low moves only the trailing marks
    (:meth:`move_marks`, which visits the trailing triggers alone)."""

    __slots__ = (
        "triggers",
        "trailing",
        "fixed",
        "lo",
        "hi",
        "sell_down",
        "sell_up",
        "buy_down",
        "buy_up",
        "trail_hi",
        "trail_lo",
    )

    def __init__(self) -> None:
        self.triggers: List[Trigger] = []  # in arming order
        self.recompute()

    def recompute(self) -> None:
        """Everything from scratch (a trigger came, went or changed its prices)."""
        sell_down = buy_down = -INF  # fire when price <= this
        sell_up = buy_up = INF  # fire when price >= this
        trailing = []
        for t in self.triggers:
            if t.kind == TRAILING:
                trailing.append(t)
            elif t.side == "sell":
                if t.down:
                    sell_down = max(sell_down, t.level)
                else:
                    sell_up = min(sell_up, t.level)
            elif t.down:
                buy_down = max(buy_down, t.level)
            else:
                buy_up = min(buy_up, t.level)
        self.trailing: List[Trigger] = trailing
        #: the thresholds of the fixed-price triggers alone
        self.fixed = (sell_down, sell_up, buy_down, buy_up)
        self._combine()

    def move_marks(self, sell_px: int, buy_px: int, moved: List[Trigger]) -> None:
        """A new high (sell side) or low (buy side): the trailing marks it passes follow it."""
        for t in self.trailing:
            if t.down:  # a sell trailing stop: its mark is the high since armed
                if sell_px > t.mark and sell_px > 0:
                    t.mark = sell_px
                    if t.trail_ticks:
                        t.update_level()
                    else:  # as update_level() does it, without the call
                        t.level = sell_px * (100.0 - (t.trail_pct or 0.0)) / 100.0
                    moved.append(t)
            elif buy_px > 0 and (t.mark <= 0 or buy_px < t.mark):
                t.mark = buy_px
                t.update_level()
                moved.append(t)
        self._combine()

    def _combine(self) -> None:
        """The thresholds from the fixed ones and the trailing marks (runs on every new high
        or low of a code with trailing stops: written for speed, no calls)."""
        sell_down, sell_up, buy_down, buy_up = self.fixed
        trail_hi = INF  # a sell trailing mark moves when price > this
        trail_lo = -INF  # a buy trailing mark moves when price < this
        for t in self.trailing:
            # A sell trailing stop fires down on the sell side, a buy one up on the buy side.
            if t.down:
                mark = t.mark if t.mark > 0 else -INF
                if mark < trail_hi:
                    trail_hi = mark
                if t.level > sell_down:
                    sell_down = t.level
            else:
                mark = t.mark if t.mark > 0 else INF
                if mark > trail_lo:
                    trail_lo = mark
                if t.level < buy_up:
                    buy_up = t.level
        self.sell_down = sell_down
        self.sell_up = sell_up
        self.buy_down = buy_down
        self.buy_up = buy_up
        self.trail_hi = trail_hi
        self.trail_lo = trail_lo
        # The engine's one test per quote (on the last price): anything at or below ``lo``
        # or at or above ``hi`` may fire a trigger or move a trailing mark.
        # (A mark moves only on a strictly new high or low: prices are whole KRW, hence ±1.)
        # Whole numbers, so the test compares ints (faster than int against float).
        lo = sell_down if sell_down > buy_down else buy_down
        if trail_lo - 1 > lo:
            lo = trail_lo - 1
        hi = sell_up if sell_up < buy_up else buy_up
        if trail_hi + 1 < hi:
            hi = trail_hi + 1
        self.lo = -BIG if lo == -INF else (BIG if lo == INF else math.floor(lo))
        self.hi = BIG if hi == INF else (-BIG if hi == -INF else math.ceil(hi))


class _Always:
    """A filter that sends every quote of its code to the trigger engine (while halted)."""

    __slots__ = ("lo", "hi")

    def __init__(self) -> None:
        self.lo = BIG
        self.hi = -BIG


ALWAYS = _Always()


class TriggerBook:
    """Every trigger by id, the armed ones indexed by code, and OCO groups."""

    def __init__(self) -> None:
        self.all: Dict[str, Trigger] = {}
        self._armed: Dict[str, _CodeIndex] = {}
        #: trailing stops whose mark moved since the last flush (repeats allowed: a list
        #: append is the cheapest record on the quote path; the flush dedupes)
        self.marks_moved: List[Trigger] = []
        self.parents: Dict[str, List[Trigger]] = {}  # bracket buy command id → its legs

    def __len__(self) -> int:
        return len(self.all)

    def get(self, trigger_id: str) -> Optional[Trigger]:
        return self.all.get(trigger_id)

    def add(self, trigger: Trigger) -> None:
        self.all[trigger.trigger_id] = trigger
        if trigger.parent:
            self.parents.setdefault(trigger.parent, []).append(trigger)
        if trigger.status == ARMED:
            self.arm(trigger)

    def arm(self, trigger: Trigger) -> None:
        """Put a trigger in the index (its status is set by the caller)."""
        index = self._armed.get(trigger.code)
        if index is None:
            index = self._armed[trigger.code] = _CodeIndex()
        if trigger not in index.triggers:
            index.triggers.append(trigger)
        index.recompute()

    def disarm(self, trigger: Trigger) -> None:
        index = self._armed.get(trigger.code)
        if index is None:
            return
        if trigger in index.triggers:
            index.triggers.remove(trigger)
        if index.triggers:
            index.recompute()
        else:
            del self._armed[trigger.code]

    def changed(self, trigger: Trigger) -> None:
        """A trigger's prices changed: recompute its level and its code's thresholds."""
        trigger.update_level()
        index = self._armed.get(trigger.code)
        if index is not None:
            index.recompute()

    def armed(self, code: Optional[str] = None) -> List[Trigger]:
        if code is not None:
            index = self._armed.get(code)
            return list(index.triggers) if index is not None else []
        return [t for index in self._armed.values() for t in index.triggers]

    def codes(self) -> Iterable[str]:
        return self._armed.keys()

    def on_price(
        self, code: str, sell_px: int, buy_px: int, index: "Optional[_CodeIndex]" = None
    ) -> List[Trigger]:
        """The armed triggers of ``code`` crossed at these prices, in arming order; trailing
        marks move first. O(1) unless something crosses or a mark moves. ``index``: the
        code's index when the caller has it already (the engine's filter band)."""
        if index is None:
            index = self._armed.get(code)
            if index is None:
                return []
        if sell_px > index.trail_hi or buy_px < index.trail_lo:
            index.move_marks(sell_px, buy_px, self.marks_moved)
        if (sell_px > 0 and (sell_px <= index.sell_down or sell_px >= index.sell_up)) or (
            buy_px > 0 and (buy_px <= index.buy_down or buy_px >= index.buy_up)
        ):
            return [t for t in index.triggers if t.crossed(sell_px if t.side == "sell" else buy_px)]
        return []

    def partners(self, trigger: Trigger) -> List[Trigger]:
        """The other live (not final) triggers of its OCO group."""
        if not trigger.oco:
            return []
        return [
            t
            for t in self.all.values()
            if t.oco == trigger.oco and t is not trigger and not t.is_final
        ]

    def of_code(self, code: str) -> List[Trigger]:
        return [t for t in self.all.values() if t.code == code]

    def by_parent(self, parent: str) -> List[Trigger]:
        return list(self.parents.get(parent, ()))

    def prune(self, keep_final_ms: int, now_ms: Optional[int] = None) -> List[str]:
        """Forget final triggers older than ``keep_final_ms``; returns their ids."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        gone = [
            tid
            for tid, t in self.all.items()
            if t.is_final and now - (t.updated_ts or 0) > keep_final_ms
        ]
        for tid in gone:
            t = self.all.pop(tid)
            legs = self.parents.get(t.parent)
            if legs is not None:
                legs.remove(t)
                if not legs:
                    del self.parents[t.parent]
        return gone


def prices_of(quote: Any, source: str) -> Tuple[int, int]:
    """(sell-side price, buy-side price) of a quote: the last trade for both, or with
    ``source`` "quote_side" the bid for sells and the ask for buys (falling back to the
    last trade when the book side is empty)."""
    price = quote.price
    if source == "quote_side":
        return (quote.bid or price, quote.ask or price)
    return price, price
