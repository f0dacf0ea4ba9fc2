"""The account line, the status bar and the banner that shouts when something is wrong."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from rich.style import Style
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
    """Cash, orderable, equity and today's P&L on one line.

    Parts are dropped least important first when the line is too narrow (B7): today's P&L and
    orderable cash survive longest, then the realised/unrealised split, equity, cash, and the
    account number.
    """

    #: (rank, key): lower ranks are kept longer; the display order is this tuple's order.
    PARTS = (
        (5, "account"),
        (4, "cash"),
        (1, "orderable"),
        (3, "equity"),
        (0, "pnl"),
        (2, "split"),
    )

    def __init__(self, store: Store, **kw: str) -> None:
        super().__init__("", **kw)
        self.store = store

    def update_from_store(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def _part(self, key: str) -> Text:
        a = self.store.account
        t = Text()
        if key == "account":
            t.append(" Account ", style="bold")
            t.append(a.account or "-", style="bold")
        elif key == "cash":
            t.append(" Cash ", style="dim")
            t.append(fmt.krw(a.cash))
        elif key == "orderable":
            t.append(" Orderable ", style="dim")
            t.append(fmt.krw(a.orderable), style="bold")
        elif key == "equity":
            t.append(" Equity ", style="dim")
            t.append(fmt.krw(a.equity), style="bold")
        elif key == "pnl":
            pnl = a.realized_pnl_today + a.unrealized_pnl
            t.append(" P&L today ", style="dim")
            t.append(fmt.signed(pnl), style=fmt.sign_style(pnl) + Style(bold=True))
        elif key == "split":
            t.append("(real ", style="dim")
            t.append(fmt.signed(a.realized_pnl_today), style=fmt.sign_style(a.realized_pnl_today))
            t.append(", unreal ", style="dim")
            t.append(fmt.signed(a.unrealized_pnl), style=fmt.sign_style(a.unrealized_pnl))
            t.append(")", style="dim")
        return t

    def line(self, width: int) -> Text:
        """The line for ``width`` cells: whole parts only, the least important dropped first."""
        parts = {key: self._part(key) for _, key in self.PARTS}
        keep = [key for _, key in self.PARTS]

        def total() -> int:
            return sum(parts[k].cell_len for k in keep) + len(keep) - 1

        for _, key in sorted(self.PARTS, reverse=True):
            if total() <= width or len(keep) == 1:
                break
            keep.remove(key)
        out = Text(no_wrap=True, overflow="ellipsis")
        for key in keep:
            if out:
                out.append(" ")
            out.append_text(parts[key])
        return out

    def render(self) -> Text:
        return self.line(self.size.width or 120)


class StatusBar(Static):
    """Engine state, heartbeat, broker and mode, Redis, writer, session and the KST clock.

    When the line is too narrow the least important parts go first (writer, Redis round trip,
    the session's English words, the date); the state, a real-money warning and the clock stay.
    """

    def __init__(self, store: Store, clock: Callable[[], datetime.datetime], **kw: str) -> None:
        super().__init__("", **kw)
        self.store = store
        self.clock = clock

    def update_from_store(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.refresh()

    def render(self) -> Text:
        return self.line(self.size.width or 120)

    def parts(self) -> list[tuple[int, Text]]:
        """``(rank, text)`` in display order; higher ranks are dropped first."""
        st = self.store.status
        now = self.clock().astimezone(KST)
        out: list[tuple[int, Text]] = []
        state = Text()
        if not st.redis_up:
            state.append(" ● REDIS DOWN ", style="bold white on rgb(160,30,30)")
        elif not st.alive:
            state.append(" ● ENGINE DOWN ", style="bold white on rgb(160,30,30)")
        else:
            name = st.state or "?"
            style = {
                READY: "bold black on rgb(80,200,120)",
                HALTED: "bold white on rgb(200,120,0)",
                STARTING: "bold black on rgb(220,200,80)",
                STOPPING: "bold black on rgb(220,200,80)",
            }.get(name, "bold")
            state.append(f" ● {name.upper()} ", style=style)
        out.append((0, state))
        hb_age = st.heartbeat_age_now(int(now.timestamp() * 1000)) if st.alive else None
        if hb_age is not None:
            late = hb_age > HEARTBEAT_LATE_MS
            out.append((3, Text(f"♥ {fmt.seconds(hb_age)}", style="bold red" if late else "dim")))
        broker = Text()
        mode = (st.mode or "").lower()
        broker.append(st.broker or "-", style="bold")
        if mode in ("real", "live"):
            broker.append(" REAL MONEY", style="bold white on red")
        elif mode == "sim" or st.broker == "sim":
            broker.append(" paper", style="cyan")
        elif mode:
            broker.append(" mock", style="cyan")
        out.append((1 if mode in ("real", "live") else 4, broker))
        rtt = f"{st.rtt_ms:.1f} ms" if st.rtt_ms is not None else "-"
        out.append((6, Text.assemble(("Redis ", "dim"), rtt)))
        now_ms = int(now.timestamp() * 1000)
        writer = writer_lag(st.writer, now_ms) if st.writer else "-"
        out.append((7, Text.assemble(("writer ", "dim"), writer)))
        # Only the engine knows which phase its market is in (the simulator may be always open,
        # a holiday is closed all day): without a live engine the session is unknown (B9).
        # Both venues' phases (issue 12): ``KRX 시간외단일가 │ NXT 애프터마켓`` or ``휴장: 성탄절``.
        info = st.info if st.alive and st.redis_up else None
        if info and info.get("session"):
            out.append((2, Text(venues_text(info, now))))
        else:
            out.append((2, Text("session unknown", style="dim")))
        out.append((0, Text(now.strftime("%m-%d %H:%M:%S KST"), style="bold")))
        return out

    def line(self, width: int) -> Text:
        parts = self.parts()
        sep = " │ "

        def total(items: list[tuple[int, Text]]) -> int:
            return sum(t.cell_len for _, t in items) + len(sep) * (len(items) - 1)

        # First shorten: the session in Korean only, the clock without the date.
        if total(parts) > width:
            parts = [(r, shorten(t)) for r, t in parts]
        while total(parts) > width and any(r > 0 for r, _ in parts):
            worst = max(r for r, _ in parts)
            i = max(i for i, (r, _) in enumerate(parts) if r == worst)
            del parts[i]
        out = Text(no_wrap=True, overflow="ellipsis")
        for i, (_, t) in enumerate(parts):
            if i:
                out.append(sep, style="dim")
            out.append_text(t)
        return out


def shorten(t: Text) -> Text:
    """The short form of a status part: ``10:15:30 KST`` for the clock, Korean-only sessions."""
    plain = t.plain
    if plain.endswith(" KST") and len(plain) > 12:
        return Text(plain[6:], style=t.style)
    for ko, en in SESSION_WORDS.values():
        if plain == f"{ko} {en}":
            return Text(ko, style=t.style)
    return t


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
