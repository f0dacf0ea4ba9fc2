"""The journal screen (``J``): today's fills with fees, tax and realised P&L, and the daily
realised P&L of the last 30 trading days as bars (red gains, blue losses).

The figures come from :mod:`core.report` (the same code as ``kc report``), so the totals match
``kc report --from today`` to the won. Without a database it says so.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from core.protocol.krx import KST

from ..actions import JOURNAL, bindings
from ..widgets import fmt

if TYPE_CHECKING:
    from core.report import Report

    from ..app import KiwoomConsole

#: Trading days of daily P&L bars.
BAR_DAYS = 30
#: Calendar days read back for them (30 trading days fit in about 45).
READ_DAYS = 45


class JournalScreen(Screen[None]):
    BINDINGS = bindings(JOURNAL)
    app: KiwoomConsole

    def __init__(self) -> None:
        super().__init__()
        self.report: Report | None = None
        self.message = "reading the journal…"

    def compose(self) -> ComposeResult:
        yield Static("", id="journal-title")
        with VerticalScroll(id="journal-body"):
            yield Static("", id="journal-fills")
        yield Static("", id="journal-totals")
        yield PlotextPlot(id="journal-bars")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.action_reload()

    @property
    def today(self) -> datetime.date:
        return self.app.clock().astimezone(KST).date()

    def action_reload(self) -> None:
        dsn = self.app.cfg.database_url_with_auth()
        if not dsn:
            self.message = (
                "No database configured ([database] url): the journal is read from the fills "
                "the writer stores. Start the writer with a database to keep one."
            )
            self.redraw()
            return
        self.message = "reading the journal…"
        self.redraw()
        self.run_worker(self._load(dsn), exclusive=True, group="journal")

    async def _load(self, dsn: str) -> None:
        from core import journal, report

        today = self.today
        first = today - datetime.timedelta(days=READ_DAYS)
        try:
            self.report = await report.load(
                dsn, first, today, costs=journal.Costs.from_config(self.app.cfg)
            )
            self.message = ""
        except report.ReportError as exc:
            self.report = None
            self.message = f"The journal cannot be read: {exc}"
        self.redraw()

    # --- drawing -------------------------------------------------------------------------------

    def redraw(self) -> None:
        today = self.today
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" Journal {today:%Y-%m-%d} ", style="bold reverse")
        title.append("  moving-average cost · fees and tax at the configured rates", style="dim")
        self.query_one("#journal-title", Static).update(title)
        fills = self.query_one("#journal-fills", Static)
        totals = self.query_one("#journal-totals", Static)
        rep = self.report
        if rep is None or self.message:
            fills.update(Text(self.message, style="italic"))
            totals.update("")
            self._draw_bars(None)
            return
        rows = rep.journal[rep.journal["date"] == today] if not rep.empty else rep.journal
        fills.update(self._fills_table(rows) if len(rows) else Text("No fills today.", style="dim"))
        totals.update(self._totals(rep, today))
        self._draw_bars(rep)

    def _fills_table(self, rows: Any) -> Table:
        t = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        for col in (
            "Time",
            "Code",
            "Name",
            "Side",
            "Qty",
            "Price",
            "Fee",
            "Tax",
            "Avg",
            "Realised",
        ):
            t.add_column(
                col,
                justify="left" if col in ("Time", "Code", "Name", "Side") else "right",
                no_wrap=True,
            )
        for r in rows.to_dict("records"):
            pnl = r["realized_pnl"]
            realised = Text("")
            if r["side"] == "sell":
                realised = (
                    Text("?", style="dim")
                    if pnl != pnl  # NaN: bought before the records
                    else Text(f"{int(pnl):+,}", style=fmt.sign_style(int(pnl)))
                )
            t.add_row(
                r["ts"].strftime("%H:%M:%S"),
                r["code"],
                r["name"],
                Text("매수", style="red") if r["side"] == "buy" else Text("매도", style="blue"),
                f"{r['qty']:,}",
                fmt.krw(r["price"]),
                fmt.krw(r["fee"]),
                fmt.krw(r["tax"]),
                fmt.krw(r["avg_cost"]) if r["position_qty"] else "–",
                realised,
            )
        return t

    def _totals(self, rep: Report, today: datetime.date) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        if today not in rep.days.index:
            out.append(" Today: no trades.", style="dim")
            return out
        d = rep.days.loc[today]
        pnl = int(d["realized_pnl"])
        out.append(" Today  realised ")
        out.append(f"{pnl:+,}", style=fmt.sign_style(pnl))
        out.append(f"   fees {fmt.krw(int(d['fees']))}   tax {fmt.krw(int(d['tax']))}")
        out.append(f"   turnover {fmt.krw(int(d['turnover']))}   {int(d['trades'])} fills")
        if d["sells"]:
            out.append(f"   win rate {d['win_rate'] * 100:.0f}%")
        return out

    def _draw_bars(self, rep: Report | None) -> None:
        plot = self.query_one("#journal-bars", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        plt.theme("dark")
        if rep is None or rep.days.empty:
            plt.title("Daily realised P&L: no trading days yet")
            plot.refresh()
            return
        days = rep.days.tail(BAR_DAYS)
        labels = [f"{d:%m-%d}" for d in days.index]
        pnl = [int(v) for v in days["realized_pnl"]]
        gains = [v if v > 0 else 0 for v in pnl]
        losses = [v if v < 0 else 0 for v in pnl]
        plt.bar(labels, gains, color="red", width=0.6)  # rises red
        plt.bar(labels, losses, color="blue", width=0.6)  # falls blue
        marks = sorted({min(pnl + [0]), 0, max(pnl + [0])})
        plt.yticks(marks, [f"{m:+,}" if m else "0" for m in marks])
        plt.title(f"Daily realised P&L, last {len(days)} trading day(s) (KRW)")
        plot.refresh()
