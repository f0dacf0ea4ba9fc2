"""The chart screen: candles of one code through textual-plotext, with the live price.

Candles come from ``core.history`` when a database is configured (``[database] url``) and that
module is there; otherwise from the one-minute bars the console built from the quotes it saw.
When the database has no past for the code, the screen asks the engine once (``history``
command: the broker's daily/minute candles, stored by the writer) and reads it again.

Indicators (``core.indicators``, numpy), each toggled by a key: moving averages 5/20/60/120,
volume bars under the candles, VWAP on intraday charts, Bollinger bands (20, 2σ). They are
computed over every candle loaded, so the first visible candles have their averages too.
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

from core import indicators
from core.protocol.krx import KST, tick_size

from ..actions import CHART, bindings
from ..widgets import fmt

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: (label, minutes per candle); ``1d`` needs the database.
INTERVALS: tuple[tuple[str, int], ...] = (("1m", 1), ("5m", 5), ("15m", 15), ("1d", 1440))
RANGES = (30, 60, 120, 240)
#: Candles loaded before the visible range, so the longest moving average starts full.
LOOKBACK = max(indicators.MA_WINDOWS)
#: What a ``history`` request asks for: (interval, count) per chart interval label.
HISTORY_REQUEST = {"1d": ("1d", 250), "1m": ("1m", 390), "5m": ("1m", 1170), "15m": ("1m", 3900)}
#: Seconds to wait for the writer to store requested history before reading it again.
HISTORY_WAIT_S = 8.0
MA_COLORS = {5: "yellow", 20: "magenta", 60: "green", 120: "cyan"}

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
        self.show_ma = True
        self.show_volume = True
        self.show_vwap = False
        self.show_bollinger = False
        self.history_asked: set[str] = set()  # chart intervals already requested this visit

    def compose(self) -> ComposeResult:
        yield Static("", id="chart-title")
        yield PlotextPlot(id="chart")
        yield PlotextPlot(id="chart-volume")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.set_interval(1.0, self.redraw, name="chart-live")
        self.load_history()

    # --- data ----------------------------------------------------------------------------------

    def bars(self) -> list[Bar]:
        """Every candle loaded (history, then live), oldest first; the screen shows the last
        ``RANGES[self.range]`` of them."""
        label, minutes = INTERVALS[self.interval]
        seen = aggregate(list(self.app.store.candles.get(self.code, ())), minutes)
        if not self.db_bars:
            return seen
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
        return bars

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
        span = minutes * (RANGES[-1] + LOOKBACK)
        if minutes >= 1440:  # calendar days hold about 5/7 trading days
            span = span * 7 // 5 + 14 * 1440
        start = end - datetime.timedelta(minutes=span)

        async def read() -> list[Any]:
            conn = await asyncpg.connect(dsn, timeout=3)
            try:
                return list(await history.candles(conn, self.code, label, start, end))
            finally:
                await conn.close()

        try:
            rows = await read()
            if (
                not any(_is_backfill(r) for r in rows)
                and label not in self.history_asked
                and self.app.store.status.alive  # no engine: nobody to ask
            ):
                self.history_asked.add(label)
                if await self._ask_history(label):
                    rows = await self._reread(read, rows)
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

    async def _ask_history(self, label: str) -> bool:
        """Ask the engine for past candles (the writer stores them); True if it sent some."""
        interval, count = HISTORY_REQUEST.get(label, ("1m", 390))
        self.source = "asking the engine for history…"
        self.redraw()
        reply = await self.app.send_command(
            "history", code=self.code, interval=interval, count=count
        )
        return bool(reply and reply.get("ok") and (reply.get("result") or {}).get("count"))

    async def _reread(self, read: Any, rows: list[Any]) -> list[Any]:
        """Read again until the writer has stored the backfill (or give up after a while)."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + HISTORY_WAIT_S
        while loop.time() < deadline:
            await asyncio.sleep(0.5)
            again = await read()
            if any(_is_backfill(r) for r in again):
                return again
        return rows

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

    def action_toggle(self, what: str) -> None:
        """Show or hide one indicator: ``ma``, ``volume``, ``vwap`` or ``bollinger``."""
        attr = "show_" + what
        setattr(self, attr, not getattr(self, attr))
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
        shown = self._indicator_names(minutes)
        if shown:
            title.append("   " + " ".join(shown), style="dim")
        self.query_one("#chart-title", Static).update(title)
        all_bars = bars
        bars = bars[-RANGES[self.range] :]

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
        # Indicators first, so the candles are drawn over their dots, not hidden under them.
        self._draw_indicators(plt, x, all_bars, len(bars), daily)
        # Rises red, falls blue: the same colours as the panels (B12).
        plt.candlestick(x, data, colors=[UP_RGB, DOWN_RGB])
        last = bars[-1][4]
        plt.hline(last, "white")
        plt.xlim(-0.5, n - 0.5)
        width = max(20, (plot.size.width or self.app.size.width) - 12)
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
        dates = [
            datetime.datetime.fromtimestamp(b[0] / 1000, KST).strftime(
                "%Y-%m-%d" if daily else "%H:%M"
            )
            for b in bars
        ]
        self._draw_volume(dates, bars)

    def _indicator_names(self, minutes: int) -> list[str]:
        names = []
        if self.show_ma:
            names.append("MA " + "/".join(str(n) for n in indicators.MA_WINDOWS))
        if self.show_bollinger:
            names.append("BB 20,2σ")
        if self.show_vwap and minutes < 1440:
            names.append("VWAP")
        if self.show_volume:
            names.append("Vol")
        return names

    def _draw_indicators(
        self, plt: Any, dates: list[Any], all_bars: list[Bar], shown: int, daily: bool
    ) -> None:
        """Overlay the chosen indicators, computed over every loaded candle, on the last
        ``shown`` of them (NaN points, where a window is not full yet, are left out)."""
        close = [b[4] for b in all_bars]
        lines: list[tuple[str, Any, str]] = []
        if self.show_ma:
            for n in indicators.MA_WINDOWS:
                lines.append((f"MA{n}", indicators.sma(close, n), MA_COLORS[n]))
        if self.show_bollinger:
            mid, up, lo = indicators.bollinger(close, 20, 2.0)
            lines += [("BB+", up, "gray"), ("BB-", lo, "gray")]
        if self.show_vwap and not daily:
            days = [datetime.datetime.fromtimestamp(b[0] / 1000, KST).date() for b in all_bars]
            high, low, vol = (
                [b[2] for b in all_bars],
                [b[3] for b in all_bars],
                [b[5] for b in all_bars],
            )
            lines.append(("VWAP", indicators.vwap(high, low, close, vol, days), "orange"))
        for name, values, color in lines:
            tail = values[-shown:]
            xs = [d for d, v in zip(dates, tail) if v == v]  # v == v: not NaN
            ys = [float(v) for v in tail if v == v]
            if ys:
                plt.plot(xs, ys, color=color, label=name, marker="braille")

    def _draw_volume(self, dates: list[str], bars: list[Bar]) -> None:
        """Volume bars under the candles: red when the candle rose, blue when it fell."""
        plot = self.query_one("#chart-volume", PlotextPlot)
        plot.display = self.show_volume
        if not self.show_volume:
            return
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme("dark")
        plt.date_form("Y-m-d" if len(dates[0]) > 5 else "H:M")
        up = [b[5] if b[4] >= b[1] else 0 for b in bars]
        down = [b[5] if b[4] < b[1] else 0 for b in bars]
        plt.bar(dates, up, color=UP_RGB, width=0.6)
        plt.bar(dates, down, color=DOWN_RGB, width=0.6)
        top = max(max(up), max(down), 1)
        plt.yticks([0, top // 2, top], ["0", fmt.compact(top // 2), fmt.compact(top)])
        plt.xticks([], [])
        plt.ylabel("Vol")
        plot.refresh()


def _is_backfill(row: Any) -> bool:
    """A candle from ``candle_history`` (no ticks: it was not built from quotes seen)."""
    get = row.get if hasattr(row, "get") else None
    return get is not None and get("ticks") == 0


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
