"""The Korean trading day on both venues: KRX and Nextrade (NXT), phase by phase.

One table per venue (:data:`KRX_DAY`, :data:`NXT_DAY`) says, for every phase of a trading
day, when it runs (KST, to the second), which order kinds it accepts, how it matches and
which prices it allows. Everything else here reads those tables, so a rule change is a
change of one row. Sources for every row are in ``docs/market-hours.md``.

Weekends and KRX holidays (:mod:`core.protocol.krx_holidays`, a generated table) close both
venues: NXT follows the KRX calendar.

Phase names (``P:engine`` ``session`` / ``session_nxt``) are stable protocol words:

- KRX: ``closed``, ``pre_open`` (opening auction), ``continuous``, ``closing_auction``,
  ``post_close_wait`` (orders for the after-hours close session, not matched yet),
  ``post_close_price`` (장후 시간외 종가), ``after_hours_single`` (시간외 단일가).
- NXT: ``closed``, ``pre_market``, ``paused``, ``main``, ``after_auction`` (the
  after-market's opening single-price intake), ``after_market``.

Standard library only (the engine runs it on 32-bit Python 3.8).
"""

import datetime
from typing import Dict, NamedTuple, Optional, Tuple

from . import krx
from .krx_holidays import HOLIDAYS

KST = krx.KST

# Venues (``venue`` of buy/sell, orders and fills).
KRX = "KRX"
NXT = "NXT"
SOR = "SOR"  # Kiwoom's smart order routing: the broker picks KRX or NXT
VENUES = (KRX, NXT, SOR)
DEFAULT_VENUE = KRX

# Order kinds (same words as core.protocol.events).
LIMIT = "limit"
MARKET = "market"

# How a phase matches orders.
NO_MATCH = "none"  # orders wait (accepted or not), nothing trades
CONTINUOUS_MATCH = "continuous"  # price-time priority, trade by trade
AUCTION = "auction"  # orders collected, one price for all at the phase's end (or every N s)
AT_CLOSE = "at_close"  # trades only at the day's KRX closing price, in time priority

# Price rules (what a limit price may be in the phase).
DAILY_BAND = "daily_band"  # ±30 % of the KRX previous close, on the tick grid
CLOSE_ONLY = "close_only"  # exactly today's KRX close
CLOSE_10PCT = "close_10pct"  # ±10 % of today's close, within the daily band


class Phase(NamedTuple):
    """One phase of one venue's day. ``start``/``end`` are seconds after 00:00 KST."""

    venue: str
    name: str
    start: int
    end: int
    ko: str  # what the status bar shows
    en: str
    kinds: Tuple[str, ...]  # order kinds accepted; () = no new orders
    matching: str
    price_rule: str = DAILY_BAND
    auction_every_s: int = 0  # AUCTION phases that match more than once (시간외 단일가: 600)

    @property
    def is_open(self) -> bool:
        """Orders are accepted now."""
        return bool(self.kinds)

    @property
    def trades(self) -> bool:
        """Something can trade during this phase (continuous or at the close)."""
        return self.matching in (CONTINUOUS_MATCH, AT_CLOSE)

    @property
    def label(self) -> str:
        """``KRX 시간외단일가``."""
        return "{} {}".format(self.venue, self.ko)

    def accepts_text(self) -> str:
        """What the phase accepts, in words: ``limit orders only``."""
        if not self.kinds:
            return "no orders"
        if self.kinds == (LIMIT,):
            if self.price_rule == CLOSE_ONLY:
                return "limit orders at today's close only"
            if self.price_rule == CLOSE_10PCT:
                return "limit orders only, within ±10% of today's close"
            return "limit orders only"
        return "limit and market orders"


def _s(hhmm: str) -> int:
    """``"15:40"`` or ``"09:00:30"`` → seconds after midnight."""
    parts = [int(p) for p in hhmm.split(":")]
    while len(parts) < 3:
        parts.append(0)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


DAY_END = 24 * 3600

#: KRX (KOSPI and KOSDAQ) on a trading day. 장전 시간외 종가 (08:30-08:40, at the previous
#: close) runs alongside the opening auction; this console sends no order of that type.
KRX_DAY: Tuple[Phase, ...] = (
    Phase(KRX, "pre_open", _s("08:30"), _s("09:00"), "장전동시호가", "opening auction",
          (LIMIT, MARKET), AUCTION),
    Phase(KRX, "continuous", _s("09:00"), _s("15:20"), "장중", "continuous",
          (LIMIT, MARKET), CONTINUOUS_MATCH),
    Phase(KRX, "closing_auction", _s("15:20"), _s("15:30"), "장마감동시호가", "closing auction",
          (LIMIT, MARKET), AUCTION),
    Phase(KRX, "post_close_wait", _s("15:30"), _s("15:40"), "시간외종가접수",
          "after-hours close intake (matched from 15:40)", (LIMIT,), NO_MATCH, CLOSE_ONLY),
    Phase(KRX, "post_close_price", _s("15:40"), _s("16:00"), "장후시간외종가",
          "after-hours at the close", (LIMIT,), AT_CLOSE, CLOSE_ONLY),
    Phase(KRX, "after_hours_single", _s("16:00"), _s("18:00"), "시간외단일가",
          "after-hours single price", (LIMIT,), AUCTION, CLOSE_10PCT, 600),
)  # fmt: skip

#: Nextrade on a trading day (the daily band is ±30 % of the KRX previous close).
NXT_DAY: Tuple[Phase, ...] = (
    Phase(NXT, "pre_market", _s("08:00"), _s("08:50"), "프리마켓", "pre-market",
          (LIMIT,), CONTINUOUS_MATCH),
    Phase(NXT, "paused", _s("08:50"), _s("09:00:30"), "거래중단", "paused before the main market",
          (), NO_MATCH),
    Phase(NXT, "main", _s("09:00:30"), _s("15:20"), "메인마켓", "main market",
          (LIMIT, MARKET), CONTINUOUS_MATCH),
    Phase(NXT, "paused", _s("15:20"), _s("15:30"), "거래중단", "paused for the KRX close",
          (), NO_MATCH),
    Phase(NXT, "after_auction", _s("15:30"), _s("15:40"), "애프터마켓접수",
          "after-market opening auction", (LIMIT,), AUCTION),
    Phase(NXT, "after_market", _s("15:40"), _s("20:00"), "애프터마켓", "after-market",
          (LIMIT,), CONTINUOUS_MATCH),
)  # fmt: skip

DAYS: Dict[str, Tuple[Phase, ...]] = {KRX: KRX_DAY, NXT: NXT_DAY}

KRX_PHASES = ("closed",) + tuple(dict.fromkeys(p.name for p in KRX_DAY))
NXT_PHASES = ("closed",) + tuple(dict.fromkeys(p.name for p in NXT_DAY))

#: Words for every phase name of both venues (status bar, ticket): name → (ko, en).
PHASE_WORDS: Dict[str, Tuple[str, str]] = {"closed": ("장마감", "closed")}
for _p in KRX_DAY + NXT_DAY:
    PHASE_WORDS.setdefault(_p.name, (_p.ko, _p.en))


def closed_phase(venue: str, start: int = 0, end: int = DAY_END, why: str = "") -> Phase:
    """The ``closed`` phase of ``venue``; ``why`` (e.g. ``휴장: 성탄절``) replaces the words."""
    return Phase(venue, "closed", start, end, why or "장마감", why or "closed", (), NO_MATCH)


# --- the calendar ------------------------------------------------------------------------------


def holiday_name(day: datetime.date) -> str:
    """The KRX holiday on ``day`` (``성탄절``), or '' on a weekday when KRX opens.

    Weekends are not listed: see :func:`closed_reason`.
    """
    return HOLIDAYS.get(day.isoformat(), "")


def closed_reason(day: datetime.date) -> str:
    """Why both venues are closed all ``day`` (``휴장: 성탄절``, ``휴장: 주말``), '' if they open."""
    name = holiday_name(day)
    if name:
        return "휴장: " + name
    if day.weekday() >= 5:
        return "휴장: 주말"
    return ""


def is_trading_day(day: datetime.date) -> bool:
    return not closed_reason(day)


def next_trading_day(day: datetime.date) -> datetime.date:
    """The first trading day after ``day``."""
    d = day + datetime.timedelta(days=1)
    for _ in range(30):
        if is_trading_day(d):
            return d
        d += datetime.timedelta(days=1)
    return d


# --- phases ------------------------------------------------------------------------------------


def _kst(when: datetime.datetime) -> datetime.datetime:
    if when.tzinfo is None:
        raise ValueError("a timezone-aware time is needed (use core.protocol.krx.KST)")
    return when.astimezone(KST)


def phase_at(venue: str, when: datetime.datetime) -> Phase:
    """The phase of ``venue`` (``KRX`` or ``NXT``) at ``when`` (any timezone-aware time).

    Outside every phase the answer is a ``closed`` phase spanning the gap, so ``start`` and
    ``end`` always say when it began and when it changes next (within the day).
    """
    if venue not in DAYS:
        raise ValueError("venue must be KRX or NXT for a phase, got {!r}".format(venue))
    t = _kst(when)
    why = closed_reason(t.date())
    if why:
        return closed_phase(venue, why=why)
    sec = t.hour * 3600 + t.minute * 60 + t.second
    prev_end = 0
    for phase in DAYS[venue]:
        if sec < phase.start:
            return closed_phase(venue, prev_end, phase.start)
        if sec < phase.end:
            return phase
        prev_end = phase.end
    return closed_phase(venue, prev_end, DAY_END)


def phases_at(when: datetime.datetime) -> Tuple[Phase, Phase]:
    """(KRX phase, NXT phase) at ``when``."""
    return phase_at(KRX, when), phase_at(NXT, when)


def status_text(when: datetime.datetime) -> str:
    """``KRX 시간외단일가 │ NXT 애프터마켓``, or ``휴장: 성탄절`` on a holiday."""
    why = closed_reason(_kst(when).date())
    if why:
        return why
    krx_p, nxt_p = phases_at(when)
    return "{} │ {}".format(krx_p.label, nxt_p.label)


def _hhmm(sec: int) -> str:
    if sec % 60:
        return "{:02d}:{:02d}:{:02d}".format(sec // 3600, sec // 60 % 60, sec % 60)
    return "{:02d}:{:02d}".format(sec // 3600, sec // 60 % 60)


def next_open(venue: str, when: datetime.datetime) -> Optional[datetime.datetime]:
    """When ``venue`` next accepts orders after ``when`` (None if not within 30 days)."""
    t = _kst(when)
    day = t.date()
    sec = t.hour * 3600 + t.minute * 60 + t.second
    for _ in range(31):
        if is_trading_day(day):
            for phase in DAYS[venue]:
                if phase.kinds and phase.start > sec:
                    base = datetime.datetime(day.year, day.month, day.day, tzinfo=KST)
                    return base + datetime.timedelta(seconds=phase.start)
        day = day + datetime.timedelta(days=1)
        sec = -1
    return None


def closed_text(phase: Phase, when: datetime.datetime) -> str:
    """Why ``phase`` (not open) takes no orders, with when it opens again."""
    t = _kst(when)
    why = closed_reason(t.date())
    head = "{} is closed".format(phase.venue)
    if why:
        head += " ({})".format(why)
    elif phase.name != "closed":
        head = "{} is {} ({}-{})".format(
            phase.venue, phase.en, _hhmm(phase.start), _hhmm(phase.end)
        )
    else:
        head += " at {} KST".format(t.strftime("%H:%M"))
    nxt_open = next_open(phase.venue, when)
    if nxt_open is not None:
        same_day = nxt_open.date() == t.date()
        head += "; it takes orders again at {}{} KST".format(
            "" if same_day else nxt_open.strftime("%Y-%m-%d "), nxt_open.strftime("%H:%M")
        )
    return head


def check_phase(phase: Phase, kind: str, when: datetime.datetime) -> str:
    """Why ``phase`` refuses an order of ``kind`` ('' when it accepts it), in words."""
    if not phase.kinds:
        return closed_text(phase, when)
    if kind not in phase.kinds:
        return "{} {} accepts {}".format(phase.venue, phase.en, phase.accepts_text())
    return ""


def check_order(venue: str, kind: str, when: datetime.datetime, nxt_eligible: bool = True) -> str:
    """Why an order of ``kind`` for ``venue`` must be refused at ``when`` ('' if it may go).

    SOR goes through when either venue accepts it (NXT only for NXT-eligible codes).
    """
    if venue not in VENUES:
        return "venue must be KRX, NXT or SOR, got {!r}".format(venue)
    if venue == NXT and not nxt_eligible:
        return "this code does not trade on NXT (not in Nextrade's list); send it to KRX"
    if venue in (KRX, NXT):
        return check_phase(phase_at(venue, when), kind, when)
    krx_reason = check_phase(phase_at(KRX, when), kind, when)
    if not krx_reason:
        return ""
    if not nxt_eligible:
        return krx_reason
    nxt_reason = check_phase(phase_at(NXT, when), kind, when)
    if not nxt_reason:
        return ""
    return "SOR has no venue for it: {}; {}".format(krx_reason, nxt_reason)


def route(venue: str, kind: str, when: datetime.datetime, nxt_eligible: bool = True) -> str:
    """The venue (KRX or NXT) an accepted order goes to; SOR prefers KRX when both accept."""
    if venue != SOR:
        return venue
    if not check_phase(phase_at(KRX, when), kind, when):
        return KRX
    if nxt_eligible and not check_phase(phase_at(NXT, when), kind, when):
        return NXT
    return KRX


def default_venue(when: datetime.datetime, nxt_eligible: bool = True) -> str:
    """The venue a ticket opens on: KRX when it takes orders, else NXT when it does."""
    if phase_at(KRX, when).is_open or not nxt_eligible:
        return KRX
    if phase_at(NXT, when).is_open:
        return NXT
    return KRX


def price_band(phase: Phase, prev_close: int, close: int = 0) -> Tuple[int, int]:
    """(lowest, highest) limit price the phase allows.

    ``prev_close`` is the KRX previous close (the base of the daily limits, on both venues);
    ``close`` is today's KRX close, needed by the after-hours phases (0: not known yet, then
    the daily band applies).
    """
    lower, upper = krx.limit_band(prev_close)
    if close > 0 and phase.price_rule == CLOSE_ONLY:
        return close, close
    if close > 0 and phase.price_rule == CLOSE_10PCT:
        low10 = krx.snap_up(-(-close * 90 // 100))
        high10 = krx.snap_down(close * 110 // 100)
        return max(lower, low10), min(upper, high10)
    return lower, upper


def auction_due(phase: Phase, before: datetime.datetime, after: datetime.datetime) -> bool:
    """Whether a single-price match of ``phase`` falls in (``before``, ``after``].

    Every ``auction_every_s`` from the phase's start (시간외 단일가: 16:10, 16:20 … 18:00), or
    once at its end for the opening and closing auctions.
    """
    if phase.matching != AUCTION:
        return False
    b, a = _kst(before), _kst(after)
    bs = b.hour * 3600 + b.minute * 60 + b.second
    as_ = a.hour * 3600 + a.minute * 60 + a.second
    if b.date() != a.date():
        as_ = DAY_END  # the day rolled over: what was left of ``before``'s day has passed
    every = phase.auction_every_s or (phase.end - phase.start)
    t = phase.start + every
    while t <= phase.end:
        if bs < t <= as_:
            return True
        t += every
    return False


def parse_venue(raw: object) -> str:
    """``"NXT"`` → ``NXT`` (exact spelling); raises ValueError with the reason for anything else."""
    if isinstance(raw, str) and raw in VENUES:
        return raw
    raise ValueError("venue must be KRX, NXT or SOR, got {!r}".format(raw))


_TIME_FORMATS = ("%H:%M", "%H:%M:%S")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")


def parse_start_at(text: str, now: datetime.datetime) -> datetime.datetime:
    """``[sim] start_at`` / ``kc demo --at``: a KST time (``17:30``: that time today, or on the
    next trading day when today is not one) or a KST date-time (``2026-12-24 17:30``)."""
    raw = text.strip() if isinstance(text, str) else ""
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(raw, fmt).replace(tzinfo=KST)
        except ValueError:
            pass
    for fmt in _TIME_FORMATS:
        try:
            t = datetime.datetime.strptime(raw, fmt)
        except ValueError:
            continue
        day = _kst(now).date()
        if not is_trading_day(day):
            day = next_trading_day(day)
        return datetime.datetime(day.year, day.month, day.day, t.hour, t.minute, t.second,
                                 tzinfo=KST)  # fmt: skip
    raise ValueError(
        "start_at must be a KST time such as 17:30 or a date-time such as 2026-12-24 17:30, "
        "got {!r}".format(text)
    )
