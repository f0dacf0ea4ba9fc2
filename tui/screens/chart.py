"""The chart screen: candles of one code through textual-plotext, with the live price.

Candles come from ``core.history`` when a database is configured (``[database] url``) and that
module is there; otherwise from the one-minute bars the console built from the quotes it saw.
"""

from __future__ import annotations

import datetime
import importlib
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from core.protocol.krx import KST, tick_size

from ..actions import CHART, bindings
from ..widgets import fmt

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: (label, minutes per candle); ``1d`` needs the database.
INTERVALS: tuple[tuple[str, int], ...] = (("1m", 1), ("5m", 5), ("15m", 15), ("1d", 1440))
RANGES = (30, 60, 120, 240)

Bar = tuple[int, int, int, int, int, int]  # start ms, open, high, low, close, volume


def aggregate(bars: list[list[int]], minutes: int) -> list[Bar]:
    """One-minute store bars → candles of ``minutes`` (KST-aligned for days)."""
    out: list[Bar] = []
    cur: list[int] | None = None
    offset = 9 * 60 if minutes >= 1440 else 0  # days start at 00:00 KST
    for m, o, h, lo, c, v0, v1 in bars:
        bucket = (m + offset) // minutes
        vol = max(0, v1 - v0)
        if cur is None or cur[0] != bucket:
            if cur is not None:
                out.append(_bar(cur, minutes, offset))
            cur = [bucket, o, h, lo, c, vol]
        else:
            cur[2] = max(cur[2], h)
            cur[3] = min(cur[3], lo)
            cur[4] = c
            cur[5] += vol
    if cur is not None:
        out.append(_bar(cur, minutes, offset))
    return out


def _bar(cur: list[int], minutes: int, offset: int) -> Bar:
    start_ms = (cur[0] * minutes - offset) * 60000
    return (start_ms, cur[1], cur[2], cur[3], cur[4], cur[5])


class ChartScreen(Screen[None]):
    BINDINGS = bindings(CHART)
    app: KiwoomConsole

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code
        self.interval = 0
        self.range = 1
        self.db_bars: list[Bar] | None = None
        self.source = "quotes seen"

    def compose(self) -> ComposeResult:
        yield Static("", id="chart-title")
        yield PlotextPlot(id="chart")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(1.0, self.redraw, name="chart-live")
        self.load_history()

    # --- data ----------------------------------------------------------------------------------

    def bars(self) -> list[Bar]:
        label, minutes = INTERVALS[self.interval]
        seen = aggregate(list(self.app.store.candles.get(self.code, ())), minutes)
        if not self.db_bars:
            return seen[-RANGES[self.range] :]
        # History from the database, with the live bars since its last one on top.
        bars = list(self.db_bars)
        last = bars[-1]
        for b in seen:
            if b[0] == last[0]:
                bars[-1] = (
                    last[0],
                    last[1],
                    max(last[2], b[2]),
                    min(last[3], b[3]),
                    b[4],
                    max(last[5], b[5]),
                )
            elif b[0] > last[0]:
                bars.append(b)
        return bars[-RANGES[self.range] :]

    def load_history(self) -> None:
        """Ask the database for candles, in a worker (the screen stays live meanwhile)."""
        dsn = self.app.cfg.database_url_with_auth()
        if not dsn:
            return
        try:
            history = importlib.import_module("core.history")
        except ImportError:
            return
        self.run_worker(self._load(history, dsn), exclusive=True, group="chart-history")

    async def _load(self, history: Any, dsn: str) -> None:
        import asyncpg

        label, minutes = INTERVALS[self.interval]
        end = self.app.clock().astimezone(datetime.timezone.utc) + datetime.timedelta(minutes=1)
        start = end - datetime.timedelta(minutes=minutes * RANGES[-1])
        try:
            conn = await asyncpg.connect(dsn, timeout=3)
            try:
                rows = await history.candles(conn, self.code, label, start, end)
            finally:
                await conn.close()
        except Exception as exc:  # noqa: BLE001 - any database trouble falls back to live bars
            self.source = f"quotes seen (database: {type(exc).__name__})"
            self.db_bars = None
            return
        bars = [_row_to_bar(r) for r in rows]
        bars = [b for b in bars if b is not None]
        if bars:
            self.db_bars = bars  # type: ignore[assignment]
            self.source = "database"
        self.redraw()

    # --- actions -------------------------------------------------------------------------------

    def action_interval(self) -> None:
        self.interval = (self.interval + 1) % len(INTERVALS)
        self.db_bars = None
        self.source = "quotes seen"
        self.load_history()
        self.redraw()

    def action_zoom(self, step: int) -> None:
        self.range = max(0, min(len(RANGES) - 1, self.range + step))
        self.redraw()

    # --- drawing -------------------------------------------------------------------------------

    def redraw(self) -> None:
        store = self.app.store
        code = self.code
        label, minutes = INTERVALS[self.interval]
        bars = self.bars()
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {code} {store.name_of(code)} ", style="bold reverse")
        q = store.quotes.get(code)
        if q:
            chg = q.get("change") or 0
            st = fmt.sign_style(chg)
            title.append(f"  {fmt.krw(q.get('price') or 0)}", style=st + Style(bold=True))
            title.append(f"  {fmt.change(chg)}  {fmt.pct(q.get('change_pct') or 0.0)}", style=st)
            title.append(
                f"   O {fmt.krw(q.get('open') or 0)}  H {fmt.krw(q.get('high') or 0)}", style="dim"
            )
            title.append(
                f"  L {fmt.krw(q.get('low') or 0)}  Vol {fmt.compact(q.get('volume') or 0)}",
                style="dim",
            )
        title.append(f"   [{label} × {RANGES[self.range]}]  source: {self.source}", style="dim")
        self.query_one("#chart-title", Static).update(title)

        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme("dark")
        daily = minutes >= 1440
        if not bars:
            plt.title(f"{code}: no {label} candles yet (they build up from live quotes)")
            plot.refresh()
            return
        n = len(bars)
        # Candles sit at x = 0..n-1 and the axes are drawn by hand (B5): plotext's own date
        # axis spans decades around one candle and reads epoch times in the host's zone.
        x = list(range(n))
        data = {
            "Open": [b[1] for b in bars],
            "High": [b[2] for b in bars],
            "Low": [b[3] for b in bars],
            "Close": [b[4] for b in bars],
        }
        # Rises red, falls blue: the same colours as the panels (B12).
        plt.candlestick(x, data, colors=[UP_RGB, DOWN_RGB])
        last = bars[-1][4]
        plt.hline(last, "white")
        plt.xlim(-0.5, n - 0.5)
        width = max(20, plot.size.width - 12)
        xs = time_ticks(n, width // 12)
        plt.xticks(xs, [time_label(bars[i][0], daily) for i in xs])
        lo = min(b[3] for b in bars)
        hi = max(b[2] for b in bars)
        ys = price_ticks(lo, hi, max(2, plot.size.height // 5))
        plt.ylim(min(ys[0], lo), max(ys[-1], hi))
        plt.yticks(ys, [f"{y:,}" for y in ys])
        plt.title(f"{code} {label} candles  (last {last:,} KRW, times KST)")
        plt.ylabel("KRW")
        plot.refresh()


UP_RGB = (255, 82, 82)
DOWN_RGB = (84, 148, 255)


def time_ticks(n: int, most: int) -> list[int]:
    """Candle indices to label: the first, the last, and evenly spaced ones between."""
    if n <= 0:
        return []
    most = max(2, most)
    if n <= most:
        return list(range(n))
    step = -(-(n - 1) // (most - 1))
    ticks = list(range(0, n, step))
    if n - 1 - ticks[-1] < step / 2 and len(ticks) > 1:
        ticks[-1] = n - 1
    elif ticks[-1] != n - 1:
        ticks.append(n - 1)
    return ticks


def time_label(start_ms: int, daily: bool) -> str:
    """A candle's start in KST: ``11-23`` for days, ``10:15`` for minutes."""
    t = datetime.datetime.fromtimestamp(start_ms / 1000, KST)
    return t.strftime("%m-%d" if daily else "%H:%M")


def price_ticks(lo: int, hi: int, most: int = 5) -> list[int]:
    """At most about ``most`` y-axis prices spanning ``lo``..``hi``, each on the KRX tick grid.

    The step is a round number (1, 2, 2.5 or 5 × 10^k) and a multiple of the tick size at the
    top price; KRX tick sizes divide one another (1, 5, 10, 50, 100, 500, 1,000 KRW), so every
    multiple of the step is a price the exchange accepts.
    """
    tick = tick_size(max(hi, 1))
    if hi <= lo:
        return [lo - tick, lo, lo + tick] if lo > tick else [lo, lo + tick]
    raw = (hi - lo) / max(1, most - 1)
    step = tick
    mag = 1
    while mag * 10 <= raw:
        mag *= 10
    for m in (1, 2, 2.5, 5, 10):
        cand = int(m * mag)
        if cand >= raw:
            step = cand
            break
    step = max(tick, -(-step // tick) * tick)
    first = (lo // step) * step
    ticks = []
    y = first
    while y < hi + step:
        ticks.append(y)
        y += step
    return ticks


def _row_to_bar(row: Any) -> Bar | None:
    """A history row (asyncpg Record, dict or tuple) → a bar; None if it cannot be read."""
    try:
        get = row.get if hasattr(row, "get") else None
        if get is not None:
            ts = get("bucket") or get("ts") or get("time") or get("day")
            o, h, lo, c = get("open"), get("high"), get("low"), get("close")
            v = get("volume") or 0
        else:
            ts, o, h, lo, c, v = row[:6]
        if isinstance(ts, datetime.datetime):
            start = int(ts.timestamp() * 1000)
        elif isinstance(ts, datetime.date):
            start = int(datetime.datetime(ts.year, ts.month, ts.day, tzinfo=KST).timestamp() * 1000)
        else:
            start = int(ts)
        return (start, int(o), int(h), int(lo), int(c), int(v or 0))
    except (TypeError, ValueError, KeyError, IndexError):
        return None
