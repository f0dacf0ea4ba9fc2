"""The account line, the status bar and the banner that shouts when something is wrong."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from rich.text import Text
from textual.widgets import Static

from core.protocol.events import HALTED, READY, STARTING, STOPPING
from core.protocol.krx import KST

from ..state import Store
from . import fmt
from .venues import venues_text

SESSION_WORDS = {
    "closed": ("장마감", "closed"),
    "pre_open": ("동시호가", "pre-open auction"),
    "continuous": ("장중", "continuous"),
    "closing_auction": ("종가 동시호가", "closing auction"),
}
#: A heartbeat older than this is shown as late (the key itself expires after 3 s).
HEARTBEAT_LATE_MS = 1800


#: A ``P:writer`` hash not updated for this long means the writer has stopped.
WRITER_STALE_MS = 15000


def writer_lag(writer: dict[str, str], now_ms: int) -> str:
    """The writer's lag from ``P:writer`` (``lag_ms``, ``lag_entries``, ``updated_ms``)."""
    updated = writer.get("updated_ms", "")
    if updated.isdigit() and now_ms - int(updated) > WRITER_STALE_MS:
        return "stopped " + fmt.age(now_ms - int(updated)) + " ago"
    parts = []
    lag_ms = writer.get("lag_ms", "")
    if lag_ms:
        try:
            parts.append(f"lag {float(lag_ms):.0f} ms")
        except ValueError:
            pass
    entries = writer.get("lag_entries", "")
    if entries.isdigit() and int(entries):
        parts.append(f"{int(entries):,} behind")
    state = writer.get("state", "")
    if state and state not in ("running", "idle"):
        parts.append(state)
    return ", ".join(parts) or state or "-"


class AccountLine(Static):
    def __init__(self, store: Store, **kw: str) -> None:
        super().__init__("", **kw)
        self.store = store

    def update_from_store(self) -> None:
        a = self.store.account
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" Account ", style="bold")
        t.append(a.account or "-", style="bold")
        t.append("  Cash ", style="dim")
        t.append(fmt.krw(a.cash))
        t.append("  Orderable ", style="dim")
        t.append(fmt.krw(a.orderable))
        t.append("  Equity ", style="dim")
        t.append(fmt.krw(a.equity), style="bold")
        pnl = a.realized_pnl_today + a.unrealized_pnl
        t.append("  P&L today ", style="dim")
        t.append(fmt.signed(pnl), style=fmt.sign_style(pnl))
        t.append(" (real ", style="dim")
        t.append(fmt.signed(a.realized_pnl_today), style=fmt.sign_style(a.realized_pnl_today))
        t.append(", unreal ", style="dim")
        t.append(fmt.signed(a.unrealized_pnl), style=fmt.sign_style(a.unrealized_pnl))
        t.append(")", style="dim")
        self.update(t)


class StatusBar(Static):
    def __init__(self, store: Store, clock: Callable[[], datetime.datetime], **kw: str) -> None:
        super().__init__("", **kw)
        self.store = store
        self.clock = clock

    def update_from_store(self) -> None:
        st = self.store.status
        now = self.clock().astimezone(KST)
        t = Text(no_wrap=True, overflow="ellipsis")
        if not st.redis_up:
            t.append(" ● REDIS DOWN ", style="bold white on rgb(160,30,30)")
        elif not st.alive:
            t.append(" ● ENGINE DOWN ", style="bold white on rgb(160,30,30)")
        else:
            state = st.state or "?"
            style = {
                READY: "bold black on rgb(80,200,120)",
                HALTED: "bold white on rgb(200,120,0)",
                STARTING: "bold black on rgb(220,200,80)",
                STOPPING: "bold black on rgb(220,200,80)",
            }.get(state, "bold")
            t.append(f" ● {state.upper()} ", style=style)
        if st.alive and st.heartbeat_age_ms is not None:
            late = st.heartbeat_age_ms > HEARTBEAT_LATE_MS
            t.append(f" ♥ {st.heartbeat_age_ms / 1000:.1f}s", style="bold red" if late else "dim")
        broker = st.broker or "-"
        mode = (st.mode or "").lower()
        t.append(" │ ", style="dim")
        t.append(broker, style="bold")
        if mode in ("real", "live"):
            t.append(" REAL MONEY", style="bold white on red")
        elif mode == "sim" or broker == "sim":
            t.append(" paper", style="cyan")
        elif mode:
            t.append(" mock", style="cyan")
        t.append(" │ Redis ", style="dim")
        t.append(f"{st.rtt_ms:.1f} ms" if st.rtt_ms is not None else "-")
        t.append(" │ writer ", style="dim")
        t.append(writer_lag(st.writer, int(now.timestamp() * 1000)) if st.writer else "-")
        # Both venues' phases (issue 12), as the engine's market has them (the simulator
        # may be always open or run its own clock); without an engine, the real day.
        t.append(" │ ", style="dim")
        t.append(venues_text(st.info if st.alive else None, now))
        t.append(" │ ", style="dim")
        t.append(now.strftime("%m-%d %H:%M:%S KST"), style="bold")
        self.update(t)


class Banner(Static):
    """Hidden while all is well; one loud line when Redis or the engine is down, or halted."""

    def __init__(self, store: Store, **kw: str) -> None:
        super().__init__("", **kw)
        self.store = store

    def message(self) -> str:
        st = self.store.status
        if not st.redis_up:
            why = f" ({st.redis_error})" if st.redis_error else ""
            return f"REDIS UNREACHABLE - reconnecting{why}. Prices and orders are not live."
        if not st.alive:
            return (
                "ENGINE DOWN - no heartbeat. Orders cannot be sent; the view shows the last state."
            )
        if st.state == HALTED:
            return "TRADING HALTED (kill switch) - new orders are refused. Press R to resume."
        if st.state == STARTING:
            return "ENGINE STARTING - reconciling with the broker; orders wait until it is ready."
        return ""

    def update_from_store(self) -> None:
        text = self.message()
        self.display = bool(text)
        self.set_class(bool(text) and self.store.status.state == HALTED, "-halted")
        if text:
            self.update(" ⚠ " + text)
