"""Past candles from the OCX: ``opt10081`` (daily) and ``opt10080`` (minute) chart TRs.

Inputs and outputs as KOA Studio lists them (koapy's ``trinfo_by_code.json``, dumped from the
real control):

- ``opt10081`` 주식일봉차트조회요청: 종목코드, 기준일자 (YYYYMMDD, the newest day wanted),
  수정주가구분 (1: adjusted prices); rows 현재가 (the close), 거래량, 일자, 시가, 고가, 저가 —
  at most 600 rows a page.
- ``opt10080`` 주식분봉차트조회요청: 종목코드, 틱범위 (1: one-minute candles), 수정주가구분;
  rows 현재가, 거래량, 체결시간 (YYYYMMDDHHMMSS), 시가, 고가, 저가 — at most 900 rows a page.
  Its prices carry a sign (up/down from the previous close): only the magnitude is a price.

Rows come newest first, continued with ``next=2`` (the broker's TR queue keeps the 5/s and
longer-window rate limits). The newest row is today's candle, still forming: it is left out,
today comes from the live quotes.
"""

import datetime
from typing import List, Optional

from core.protocol import krx

from .tr import Inputs, Page
from .values import to_int, to_price

DAILY = "opt10081"
MINUTE = "opt10080"

Candle = List[int]  # [start_ms, open, high, low, close, volume]


def trcode_of(interval: str) -> str:
    return DAILY if interval == "1d" else MINUTE


def inputs(code: str, interval: str, today: datetime.date) -> Inputs:
    if interval == "1d":
        return [("종목코드", code), ("기준일자", today.strftime("%Y%m%d")), ("수정주가구분", "1")]
    return [("종목코드", code), ("틱범위", "1"), ("수정주가구분", "1")]


def _start_ms(page: Page, i: int, interval: str) -> Optional[int]:
    if interval == "1d":
        text, fmt = page.get("일자", i), "%Y%m%d"
    else:
        text, fmt = page.get("체결시간", i), "%Y%m%d%H%M%S"
    try:
        when = datetime.datetime.strptime(text, fmt).replace(tzinfo=krx.KST)
    except ValueError:
        return None
    if interval == "1m":
        # 체결시간 stamps the minute's end on some servers; the bucket is the minute it is in
        when = when.replace(second=0)
    return int(when.timestamp() * 1000)


def read_page(page: Page, interval: str) -> List[Candle]:
    """The candles of one page, newest first, as the OCX gives them (unreadable rows skipped)."""
    out: List[Candle] = []
    for i in range(page.count()):
        start = _start_ms(page, i, interval)
        close = to_price(page.get("현재가", i))
        if start is None or close <= 0:
            continue
        open_ = to_price(page.get("시가", i)) or close
        high = max(to_price(page.get("고가", i)), open_, close)
        low = min(to_price(page.get("저가", i)) or close, open_, close)
        out.append([start, open_, high, low, close, abs(to_int(page.get("거래량", i)))])
    return out


def finish(
    newest_first: List[Candle], interval: str, count: int, now: datetime.datetime
) -> List[Candle]:
    """Oldest first, without the candle still forming, at most ``count``."""
    if interval == "1d":
        today_ms = int(
            datetime.datetime.combine(now.date(), datetime.time(0), tzinfo=krx.KST).timestamp()
            * 1000
        )
        done = [c for c in newest_first if c[0] < today_ms]
    else:
        minute_ms = int(now.replace(second=0, microsecond=0).timestamp() * 1000)
        done = [c for c in newest_first if c[0] < minute_ms]
    seen = set()
    unique = []
    for c in done:
        if c[0] not in seen:
            seen.add(c[0])
            unique.append(c)
    return list(reversed(unique[:count]))
