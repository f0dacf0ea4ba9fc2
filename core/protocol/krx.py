"""KRX market rules shared by the simulator, the risk checks and the order ticket.

Tick sizes are those in force since 2023-01-25 (KOSPI and KOSDAQ alike). Prices are
integer KRW. Times are Korea Standard Time (UTC+9, no daylight saving).
"""

import datetime
import re
from typing import Tuple

KST = datetime.timezone(datetime.timedelta(hours=9), "KST")

#: (upper bound, exclusive; tick size). The last row has no upper bound.
TICK_TABLE: Tuple[Tuple[int, int], ...] = (
    (2000, 1),
    (5000, 5),
    (20000, 10),
    (50000, 50),
    (200000, 100),
    (500000, 500),
)
TOP_TICK = 1000

#: Daily price limit, percent of the base price (previous close).
LIMIT_PCT = 30

CODE_RE = re.compile(r"^[0-9A-Z]{6}$")


def is_valid_code(code: object) -> bool:
    """A KRX short code: six characters, digits or capital letters (``005930``, ``0001A0``)."""
    return isinstance(code, str) and bool(CODE_RE.fullmatch(code))


def normalize_code(raw: str) -> str:
    """The 6-character code inside a broker code such as ``A005930`` or `` 005930``."""
    return raw.strip()[-6:]


def tick_size(price: int) -> int:
    """The tick size that applies at ``price`` (KRW)."""
    for bound, tick in TICK_TABLE:
        if price < bound:
            return tick
    return TOP_TICK


def is_on_tick(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def snap_down(price: int) -> int:
    """The highest valid price at or below ``price`` (never below one tick)."""
    if price < 1:
        return 1
    return price - price % tick_size(price)


def snap_up(price: int) -> int:
    """The lowest valid price at or above ``price``."""
    if price < 1:
        return 1
    down = snap_down(price)
    return down if down == price else down + tick_size(down)


def snap(price: float) -> int:
    """The valid price nearest to ``price`` (ties go up)."""
    p = int(price)
    down = snap_down(p)
    up = snap_up(p) if p == price else snap_up(p + 1)
    if up == down:
        return down
    return up if (up - price) <= (price - down) else down


def next_tick(price: int, steps: int = 1) -> int:
    """``price`` moved ``steps`` ticks up (negative steps go down), staying on the grid."""
    p = snap_down(price) if steps >= 0 else snap_up(price)
    for _ in range(abs(steps)):
        p = snap_up(p + 1) if steps > 0 else snap_down(p - 1)
    return max(p, 1)


def prev_tick(price: int, steps: int = 1) -> int:
    """``price`` moved ``steps`` ticks down."""
    return next_tick(price, -steps)


def limit_band(base: int) -> Tuple[int, int]:
    """Daily (lower, upper) price limits around ``base``, the previous close: ±30 % on the tick."""
    upper = snap_down(base * (100 + LIMIT_PCT) // 100)
    lower = snap_up(-(-base * (100 - LIMIT_PCT) // 100))
    return lower, upper


def check_price(price: int, base: int) -> str:
    """Why ``price`` is not a valid limit price for a stock whose base is ``base`` ('' if it is)."""
    if price <= 0:
        return "price must be positive"
    if not is_on_tick(price):
        tick = tick_size(price)
        return "price {:,} is not on the {:,} KRW tick (nearest valid: {:,} or {:,})".format(
            price, tick, snap_down(price), snap_up(price)
        )
    lower, upper = limit_band(base)
    if price > upper:
        return "price {:,} is above the daily upper limit {:,}".format(price, upper)
    if price < lower:
        return "price {:,} is below the daily lower limit {:,}".format(price, lower)
    return ""


def commission(value: int, rate_pct: float) -> int:
    """Broker commission on a trade of ``value`` KRW, truncated to 10 KRW as Kiwoom does."""
    fee = int(value * rate_pct / 100.0)
    return fee - fee % 10


def sell_tax(value: int, rate_pct: float) -> int:
    """Transaction tax on a sell of ``value`` KRW (whole KRW, truncated)."""
    return int(value * rate_pct / 100.0)


# --- sessions ---------------------------------------------------------------------------------

CLOSED = "closed"
PRE_OPEN = "pre_open"  # 08:30-09:00, opening auction: orders collected, one match at 09:00
CONTINUOUS = "continuous"  # 09:00-15:20
CLOSING_AUCTION = "closing_auction"  # 15:20-15:30, one match at 15:30

SESSIONS = (CLOSED, PRE_OPEN, CONTINUOUS, CLOSING_AUCTION)


def now_kst() -> datetime.datetime:
    return datetime.datetime.now(KST)


def session_at(when: datetime.datetime) -> str:
    """The KRX *regular-market* phase at ``when`` (weekends and KRX holidays closed).

    The whole day of both venues, after-hours included, is :mod:`core.protocol.sessions`.
    """
    from .sessions import closed_reason  # sessions imports this module

    t = when.astimezone(KST)
    if t.weekday() >= 5 or closed_reason(t.date()):
        return CLOSED
    minutes = t.hour * 60 + t.minute
    if 8 * 60 + 30 <= minutes < 9 * 60:
        return PRE_OPEN
    if 9 * 60 <= minutes < 15 * 60 + 20:
        return CONTINUOUS
    if 15 * 60 + 20 <= minutes < 15 * 60 + 30:
        return CLOSING_AUCTION
    return CLOSED
