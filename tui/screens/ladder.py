"""The order book ladder (호가창): ten asks above ten bids, the trader's orders at their levels,
the tape beside it; trade, cancel and move orders at a level from the keyboard.

Opened with ``o`` (``[tui.keymap] ladder``) on the selected code. It asks the engine for the
code's book (``book_subscribe``; ``book_unsubscribe`` on close if it was this console that
added it), reads ``P:state:book`` once, then follows ``book`` events through the store. The
views repaint at most ``[tui] refresh_hz`` times a second, only the lines that changed.

Rows, top to bottom: the 10th ask ... the best ask, the best bid ... the 10th bid, totals.
Ask quantities and bars are on the left in blue (매도), bid quantities on the right in red
(매수); the price is red above the previous close and blue below; ``*`` marks the last trade;
``B 10`` / ``S 5`` are the trader's open orders at that price (remaining quantity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer

from core.protocol.events import BUY, SELL, Order

from ..actions import LADDER, bindings
from .ticket import TicketScreen

if TYPE_CHECKING:
    from ..app import KiwoomConsole
    from ..hts import HtsStore

LEVELS = 10
#: Width of the tape on the right.
TAPE_WIDTH = 30
#: Trades shown on the tape at most (the ladder's 20 levels).
TAPE_ROWS = 2 * LEVELS

RED = Style(color="red")
BLUE = Style(color="blue")
DIM = Style(dim=True)
BOLD = Style(bold=True)
PLAIN = Style()
CURSOR = Style(bgcolor="grey30")
LAST = Style(reverse=True, bold=True)
BUY_MINE = Style(color="red", bold=True)
SELL_MINE = Style(color="bright_blue", bold=True)
WARN = Style(color="yellow")

Cells = tuple[tuple[str, Style], ...]


class LinesView(Widget):
    """Lines of styled text; :meth:`set_lines` repaints only the lines that changed."""

    DEFAULT_CSS = "LinesView { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cells: list[Cells] = []
        self.repaints = 0

    def set_lines(self, lines: list[Cells]) -> None:
        width = self.size.width
        old = self._cells
        self._cells = lines
        changed = [
            y
            for y in range(max(len(old), len(lines)))
            if y >= len(old) or y >= len(lines) or old[y] != lines[y]
        ]
        if changed and width:
            self.repaints += 1
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    def on_resize(self) -> None:
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._cells):
            return Strip.blank(width)
        strip = Strip([Segment(text, style) for text, style in self._cells[y]])
        return strip.adjust_cell_length(width)

    def text(self) -> str:
        """What the view shows, as plain text (tests)."""
        return "\n".join("".join(t for t, _ in line) for line in self._cells)


def _qty(n: int) -> str:
    return f"{n:,}" if n else ""


def mine_by_price(orders: list[Order]) -> dict[int, dict[str, int]]:
    """price → {side: remaining quantity} of the trader's open limit orders."""
    out: dict[int, dict[str, int]] = {}
    for o in orders:
        if not o.price:
            continue
        left = o.remaining_qty or max(o.qty - o.filled_qty, 0)
        sides = out.setdefault(o.price, {})
        sides[o.side] = sides.get(o.side, 0) + left
    return out


class LadderTicket(TicketScreen):
    """The order ticket, prefilled with the ladder level's price."""

    def __init__(self, side: str, code: str, price: int) -> None:
        super().__init__(side=side, code=code)
        self.level_price = price

    def on_mount(self) -> None:
        super().on_mount()
        self.set_price(self.level_price)
        self.refresh_info()


class LadderScreen(Screen[None]):
    BINDINGS = bindings(LADDER)
    app: KiwoomConsole

    DEFAULT_CSS = (
        """
    LadderScreen #ladder-head { height: 1; padding: 0 1; }
    LadderScreen #ladder-note { height: 1; padding: 0 1; }
    LadderScreen #ladder-body { height: 1fr; }
    LadderScreen #ladder { width: 1fr; border-right: vkey $panel; }
    LadderScreen #tape { width: %d; }
    """
        % TAPE_WIDTH
    )

    def __init__(self, code: str) -> None:
        super().__init__()
        self.code = code
        self.cursor: int | None = None  # the cursor's price
        self.picked: Order | None = None  # an order being moved (m, then m at the new level)
        self.added_book = False
        self._seen: tuple[Any, ...] = ()
        self.prices: list[int] = []  # the 20 rows' prices (0: empty level)

    @property
    def store(self) -> HtsStore:
        return self.app.store  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        # Line-API views all: a Static's update() would lay the screen out again and repaint
        # every line of it at each new price.
        yield LinesView(id="ladder-head")
        with Horizontal(id="ladder-body"):
            yield LinesView(id="ladder")
            yield LinesView(id="tape")
        yield LinesView(id="ladder-note")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#ladder", LinesView).border_title = "호가"
        self.set_interval(1.0 / self.app.cfg.tui.refresh_hz, self.update_view, name="ladder")
        self.run_worker(self._subscribe(), group="ladder")
        self.update_view()

    async def _subscribe(self) -> None:
        bus = self.app.cmd_bus
        if bus is not None:
            try:
                raw = await bus.redis.hget(bus.keys.state_book, self.code)
            except Exception:  # noqa: BLE001 - the events will bring it
                raw = None
            if raw and self.code not in self.store.books:
                import json

                try:
                    self.store.set_book(json.loads(raw), self.app.now_ms())
                except ValueError:
                    pass
        reply = await self.app.send_command("book_subscribe", codes=[self.code])
        if reply and reply.get("ok"):
            self.added_book = self.code in ((reply.get("result") or {}).get("added") or [])

    def on_unmount(self) -> None:
        if self.added_book:
            self.app.send_in_background("book_unsubscribe", codes=[self.code])

    # --- data ------------------------------------------------------------------------------

    def my_orders(self) -> list[Order]:
        return [o for o in self.store.open_orders() if o.code == self.code]

    def orders_at(self, price: int) -> list[Order]:
        return sorted(
            (o for o in self.my_orders() if o.price == price),
            key=lambda o: o.created_ts or o.updated_ts,
        )

    def book(self) -> dict[str, Any] | None:
        return self.store.books.get(self.code)

    # --- painting --------------------------------------------------------------------------

    def update_view(self) -> None:
        store = self.store
        code = self.code
        mine = self.my_orders()
        quote = store.quotes.get(code) or {}
        ladder = self.query_one("#ladder", LinesView)
        tape = self.query_one("#tape", LinesView)
        seen = (
            store.book_version.get(code, 0),
            store.tape_version.get(code, 0),
            quote.get("price"),
            tuple((o.order_id, o.price, o.remaining_qty, o.status) for o in mine),
            self.cursor,
            self.picked.order_id if self.picked else None,
            ladder.size,
            tape.size,
        )
        if seen == self._seen:
            return
        self._seen = seen
        self._paint_head(quote)
        ladder.set_lines(self._ladder_lines(ladder.size.width, quote, mine))
        tape.set_lines(self._tape_lines(tape.size.height))

    def _paint_head(self, quote: dict[str, Any]) -> None:
        name = self.store.name_of(self.code)
        price = int(quote.get("price") or 0)
        change = int(quote.get("change") or 0)
        pct = float(quote.get("change_pct") or 0.0)
        book = self.book()
        when = (book or {}).get("time") or ""
        when = f"{when[:2]}:{when[2:4]}:{when[4:6]}" if len(when) >= 6 else "-"
        head: list[tuple[str, Style]] = [(f"{self.code} {name}  ", BOLD)]
        if price:
            color = RED if change > 0 else BLUE if change < 0 else PLAIN
            head.append((f"{price:,}  {change:+,} ({pct:+.2f}%)", color))
        else:
            head.append(("no trade yet", DIM))
        head.append((f"   book {when}", PLAIN))
        self.query_one("#ladder-head", LinesView).set_lines([tuple(head)])
        if self.picked is not None:
            o = self.picked
            note = (
                f"Moving {o.side} order {o.order_id} ({o.remaining_qty or o.qty:,} @ {o.price:,}): "
                "go to a level and press m; Esc drops it."
            )
        elif book is None:
            note = f"Waiting for the book of {self.code} (book_subscribe sent)..."
        else:
            note = ""
        self.query_one("#ladder-note", LinesView).set_lines([((note, WARN),)] if note else [])

    def _ladder_lines(self, width: int, quote: dict[str, Any], mine: list[Order]) -> list[Cells]:
        book = self.book()
        asks = list((book or {}).get("asks") or [])[:LEVELS]
        bids = list((book or {}).get("bids") or [])[:LEVELS]
        asks += [[0, 0]] * (LEVELS - len(asks))
        bids += [[0, 0]] * (LEVELS - len(bids))
        rows = [(int(p), int(q), SELL) for p, q in reversed(asks)]
        rows += [(int(p), int(q), BUY) for p, q in bids]
        self.prices = [p for p, _, _ in rows]
        self._snap_cursor(int(quote.get("price") or 0))
        last = int(quote.get("price") or 0)
        base = last - int(quote.get("change") or 0) if last else 0
        at = mine_by_price(mine)
        top = max([q for _, q, _ in rows] + [1])
        bar_w = max(0, (width - 40) // 2)
        lines: list[Cells] = []
        for price, qty, side in rows:
            cur = price and price == self.cursor
            bg = CURSOR if cur else PLAIN
            n = round(qty / top * bar_w) if qty and bar_w else 0
            if price == 0:
                lines.append(((" " * width, DIM),))
                continue
            pstyle = RED if base and price > base else BLUE if base and price < base else PLAIN
            if price == last:
                pstyle = pstyle + LAST
            mark = "*" if price == last else " "
            own = at.get(price, {})
            own_text = " ".join(
                f"{'B' if s == BUY else 'S'} {own[s]:,}" for s in (BUY, SELL) if own.get(s)
            )
            own_style = BUY_MINE if own.get(BUY) else SELL_MINE
            if self.picked is not None and self.picked.price == price:
                own_text = "→" + own_text
            if side == SELL:
                left_q, left_bar, right_bar, right_q = _qty(qty), "█" * n, "", ""
            else:
                left_q, left_bar, right_bar, right_q = "", "", "█" * n, _qty(qty)
            cells: list[tuple[str, Style]] = [
                ("▶" if cur else " ", BOLD + bg),
                (f"{left_q:>9} ", BLUE + bg),
                (f"{left_bar:>{bar_w}}", BLUE + bg),
                (f" {price:>9,}{mark}", pstyle + bg),
                (f"{right_bar:<{bar_w}}", RED + bg),
                (f" {right_q:<9}", RED + bg),
                (f" {own_text:<9}", own_style + bg),
            ]
            lines.append(tuple(cells))
        total_a = int((book or {}).get("total_ask") or 0)
        total_b = int((book or {}).get("total_bid") or 0)
        lines.append(
            (
                (" ", PLAIN),
                (f"{_qty(total_a):>9} ", BLUE + BOLD),
                (" " * bar_w, PLAIN),
                ("   총잔량  ", DIM),  # 11 cells, as the price column (Hangul is 2 cells wide)
                (" " * bar_w, PLAIN),
                (f" {_qty(total_b):<9}", RED + BOLD),
            )
        )
        return lines

    def _tape_lines(self, height: int) -> list[Cells]:
        large = self.app.cfg.tui.tape_large_qty
        lines: list[Cells] = [((" 체결  time      price     qty", BOLD),)]
        tape = self.store.tapes.get(self.code) or ()
        # As many trades as the ladder has rows: every new trade shifts the whole tape, so a
        # longer one would cost terminal bytes at each repaint for little use.
        for i, t in enumerate(tape):
            if i >= min(max(0, height - 1), TAPE_ROWS):
                break
            when = t.time
            when = f"{when[:2]}:{when[2:4]}:{when[4:6]}" if len(when) >= 6 else " " * 8
            style = RED if t.qty > 0 else BLUE
            if abs(t.qty) >= large:
                style = style + Style(bold=True, reverse=True)
            arrow = "▲" if t.qty > 0 else "▼"
            lines.append(((f" {when} {t.price:>9,} {arrow}{abs(t.qty):>7,}", style),))
        if height > TAPE_ROWS + 3:  # room below the tape (120x40): the trader's open orders
            lines += [((" ", PLAIN),)] * (TAPE_ROWS + 2 - len(lines))
            mine = sorted(self.my_orders(), key=lambda o: -o.price)
            lines.append(((f" 내 주문 / my orders ({len(mine)})", BOLD),))
            for o in mine[: max(0, height - len(lines))]:
                left = o.remaining_qty or max(o.qty - o.filled_qty, 0)
                text = (
                    f" {'B' if o.side == BUY else 'S'} {left:>6,} @ {o.price:>9,} {o.order_id[-7:]}"
                )
                lines.append(((text, BUY_MINE if o.side == BUY else SELL_MINE),))
        return lines

    # --- the cursor ------------------------------------------------------------------------

    def _levels(self) -> list[int]:
        return [p for p in self.prices if p]

    def _snap_cursor(self, last: int) -> None:
        levels = self._levels()
        if not levels:
            return
        if self.cursor in levels:
            return
        target = self.cursor or last or levels[len(levels) // 2]
        self.cursor = min(levels, key=lambda p: (abs(p - target), -p))

    def action_move(self, step: int) -> None:
        levels = self._levels()
        if not levels:
            return
        if self.cursor not in levels:
            self._snap_cursor(int((self.store.quotes.get(self.code) or {}).get("price") or 0))
        i = levels.index(self.cursor) if self.cursor in levels else 0
        self.cursor = levels[max(0, min(len(levels) - 1, i + step))]
        self.update_view()

    def action_center(self) -> None:
        last = int((self.store.quotes.get(self.code) or {}).get("price") or 0)
        self.cursor = None
        self._snap_cursor(last)
        self.update_view()

    # --- trading ---------------------------------------------------------------------------

    def _price_here(self) -> int | None:
        if not self.cursor:
            self.app.notify(
                "No level under the cursor yet (waiting for the book).", severity="warning"
            )
            return None
        return self.cursor

    def _trade(self, side: str) -> None:
        price = self._price_here()
        if price is None:
            return
        cfg = self.app.cfg.tui
        if not cfg.ladder_direct:
            self.app.push_screen(LadderTicket(side, self.code, price), self.app._ticket_done)
            return
        qty = cfg.ladder_qty
        name = self.store.name_of(self.code)

        def send() -> None:
            self.app.send_in_background(side, code=self.code, qty=qty, price=price, type="limit")

        self.app._confirm(
            f"{side.upper()} {self.code} {name} {qty:,} @ {price:,} KRW?", send, danger=side == SELL
        )

    def action_buy(self) -> None:
        self._trade(BUY)

    def action_sell(self) -> None:
        self._trade(SELL)

    def action_cancel(self) -> None:
        price = self._price_here()
        if price is None:
            return
        orders = self.orders_at(price)
        if not orders:
            self.app.notify(f"No open order of yours at {price:,}.", severity="warning")
            return
        for o in orders:
            self.app.send_in_background("cancel", order_id=o.order_id)

    def action_modify(self) -> None:
        price = self._price_here()
        if price is None:
            return
        if self.picked is None:
            orders = self.orders_at(price)
            if not orders:
                self.app.notify(
                    f"No open order of yours at {price:,} to move: put the cursor on one first.",
                    severity="warning",
                )
                return
            self.picked = orders[0]
            self.update_view()
            return
        order = self.store.orders.get(self.picked.order_id) or self.picked
        self.picked = None
        if price == order.price:
            self.update_view()
            return
        if not order.is_open:
            self.app.notify(f"Order {order.order_id} is {order.status} now.", severity="warning")
            self.update_view()
            return
        self.app.send_in_background("modify", order_id=order.order_id, price=price)
        self.update_view()

    def action_back(self) -> None:
        if self.picked is not None:
            self.picked = None
            self.update_view()
            return
        self.app.pop_screen()
