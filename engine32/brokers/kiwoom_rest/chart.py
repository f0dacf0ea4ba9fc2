"""Past candles over REST: ``ka10081`` (daily) and ``ka10080`` (minute) at ``/api/dostk/chart``.

The REST chart TRs are the OCX's ``opt10081``/``opt10080`` under English keys, so their rows
are read by the OCX adapter's chart reader (``engine32.brokers.kiwoom.history``) through
:class:`~.trs.RestPage`, and finished the same way (today's forming candle dropped, oldest
first). Facts (docs/kiwoom-rest.md "History"; the shared design note §1.2):

- ``ka10081`` 주식일봉차트조회요청: body ``stk_cd``, ``base_dt`` (YYYYMMDD, the newest day
  wanted; required), ``upd_stkpc_tp`` ("1" adjusted prices). Rows ``stk_dt_pole_chart_qry[]``:
  ``dt`` (YYYYMMDD), ``cur_prc`` (the close), ``open_pric``, ``high_pric``, ``low_pric``,
  ``trde_qty``; prices unsigned; 600 rows a page, newest first.
- ``ka10080`` 주식분봉차트조회요청: body ``stk_cd``, ``tic_scope`` ("1": one-minute candles),
  ``upd_stkpc_tp``. Rows ``stk_min_pole_chart_qry[]``: ``cntr_tm`` (YYYYMMDDHHmmss, KST) and
  the same price keys, **signed** (up/down against the previous close: only the magnitude is
  a price); 900 rows a page, newest first.
- The next page is announced in the ``cont-yn``/``next-key`` response headers and asked for
  with the same body and those request headers.

Sources: kiwoom_rest_trade's generated ``Ka10080*``/``Ka10081*`` models and hoga-ops'
``kiwoom_minute_candles.py``/``kiwoom_daily_candles.py`` (via the design note); kiwoom_client
0.4.0 ``domestic/chart.py`` (``stock_minute_chart`` ka10080 / ``stock_daily_chart`` ka10081 at
``/api/dostk/chart``); public client code read with the search tool (a minute backfill
reading ``stk_min_pole_chart_qry`` / ``cntr_tm`` and taking ``abs()`` of signed prices, index
id 59888662145; a ka10081 sample with ``dt``/``cur_prc``/``open_pric``/``high_pric``/
``low_pric``/``trde_qty``, als1eh2-source/kiwooming ``src/Data/ChartData.ts``).
"""

import datetime
from typing import Any, Dict, List

from ..kiwoom import history as ocx_chart
from .rest import CHART_PATH
from .trs import RestPage

__all__ = ["CHART_PATH", "DAILY", "MINUTE", "body", "finish", "max_pages", "read_rows"]

DAILY = "ka10081"
MINUTE = "ka10080"
DAILY_ROWS = "stk_dt_pole_chart_qry"
MINUTE_ROWS = "stk_min_pole_chart_qry"
#: Rows a page as Kiwoom serves them (used only to bound the number of pages asked for).
DAILY_PAGE = 600
MINUTE_PAGE = 900
#: "1": adjusted prices (수정주가), as the OCX path asks.
ADJUSTED = "1"

#: OCX item name (what ``kiwoom.history.read_page`` reads) → REST key.
KEYS = {
    "일자": "dt",
    "체결시간": "cntr_tm",
    "현재가": "cur_prc",
    "시가": "open_pric",
    "고가": "high_pric",
    "저가": "low_pric",
    "거래량": "trde_qty",
}

Candle = List[int]  # [start_ms, open, high, low, close, volume]


def api_id_of(interval: str) -> str:
    return DAILY if interval == "1d" else MINUTE


def rows_key_of(interval: str) -> str:
    return DAILY_ROWS if interval == "1d" else MINUTE_ROWS


def body(code: str, interval: str, today: datetime.date) -> Dict[str, str]:
    """The request body (the same on every page; the headers carry the continuation)."""
    if interval == "1d":
        return {"stk_cd": code, "base_dt": today.strftime("%Y%m%d"), "upd_stkpc_tp": ADJUSTED}
    return {"stk_cd": code, "tic_scope": "1", "upd_stkpc_tp": ADJUSTED}


def max_pages(interval: str, count: int) -> int:
    """Pages enough for ``count`` candles plus today's, with room for a short page or two."""
    size = DAILY_PAGE if interval == "1d" else MINUTE_PAGE
    return (count + 1 + size - 1) // size + 2


def read_rows(rows: List[Any], interval: str) -> List[Candle]:
    """One page's rows as candles, newest first. A row that is not a candle (not an object,
    a date that is not exactly ``YYYYMMDD``/``YYYYMMDDHHmmss``, a price that is not a number)
    is skipped, never the whole answer."""
    out: List[Candle] = []
    when_key, width = ("dt", 8) if interval == "1d" else ("cntr_tm", 14)
    for row in rows:
        if not isinstance(row, dict):
            continue
        when = str(row.get(when_key, "")).strip()
        if len(when) != width or not when.isdigit():
            continue  # strptime would read "2026112415" as some other moment
        try:
            out.extend(ocx_chart.read_page(RestPage(api_id_of(interval), {}, KEYS, rows=[row]),
                                           interval))  # fmt: skip
        except (ValueError, OverflowError):
            continue
    return out


def finish(
    newest_first: List[Candle], interval: str, count: int, now: datetime.datetime
) -> List[Candle]:
    """Oldest first, without today's forming candle, at most ``count`` (the OCX's rule)."""
    return ocx_chart.finish(newest_first, interval, count, now)
