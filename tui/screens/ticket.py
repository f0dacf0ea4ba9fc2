"""The order ticket: buy, sell or modify, with KRX tick steps, risk hints and a confirm step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from core.protocol.events import BUY, HALTED, LIMIT, MARKET, Order
from core.protocol.krx import check_price, is_valid_code, limit_band, next_tick, snap, tick_size

from ..actions import TICKET, bindings
from ..triggers import bracket_fields, bracket_inputs
from ..widgets import fmt

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: A risk limit this close (fraction) is shown as near.
NEAR = 0.8


def _int(text: str) -> int | None:
    try:
        return int(text.replace(",", "").replace("_", "").strip())
    except ValueError:
        return None


class TicketScreen(ModalScreen[dict[str, Any] | None]):
    BINDINGS = bindings(TICKET)
    app: KiwoomConsole

    def __init__(self, side: str, code: str = "", modify: Order | None = None) -> None:
        super().__init__(classes="-buy" if side == BUY else "-sell")
        self.side = side
        self.code = code
        self.modify = modify
        self.kind = modify.kind if modify else LIMIT
        self.reviewing = False

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        store = self.app.store
        code = self.code
        if self.modify is not None:
            qty = self.modify.remaining_qty or self.modify.qty
            price = self.modify.price
        else:
            qty = 1
            last = store.last_price(code) if code else 0
            price = snap(last) if last else 0
        with Vertical(id="ticket"):
            yield Label("", id="ticket-title")
            yield Static("", id="ticket-quote")
            with Horizontal(id="ticket-fields"):
                with Vertical(classes="field"):
                    yield Label("Code", classes="field-label")
                    yield Input(code, id="code", disabled=self.modify is not None, max_length=6)
                with Vertical(classes="field"):
                    yield Label("Quantity", classes="field-label")
                    yield Input(str(qty), id="qty", type="integer")
                with Vertical(classes="field"):
                    yield Label("Price (Up/Down = tick)", classes="field-label", id="price-label")
                    yield Input(f"{price}" if price else "", id="price", type="integer")
            if self.side == BUY and self.modify is None:
                yield from bracket_inputs()  # issue 14: stop-loss / take-profit on the buy
            yield Static("", id="ticket-info")
            yield Static("", id="ticket-error")
            yield Label("", id="ticket-hint")

    def on_mount(self) -> None:
        self.query_one("#qty" if self.code else "#code", Input).focus()
        self.refresh_info()

    # --- values --------------------------------------------------------------------------------

    @property
    def code_value(self) -> str:
        return self.query_one("#code", Input).value.strip().upper()

    @property
    def qty_value(self) -> int | None:
        return _int(self.query_one("#qty", Input).value)

    @property
    def price_value(self) -> int | None:
        return _int(self.query_one("#price", Input).value)

    def set_price(self, price: int) -> None:
        self.query_one("#price", Input).value = str(price)

    # --- actions -------------------------------------------------------------------------------

    def action_tick(self, steps: int) -> None:
        if self.kind == MARKET:
            return
        price = self.price_value or self.app.store.last_price(self.code_value)
        if not price:
            return
        self.set_price(next_tick(snap(price), steps))
        self.reviewing = False
        self.refresh_info()

    def action_toggle_kind(self) -> None:
        if self.modify is not None:
            return
        self.kind = MARKET if self.kind == LIMIT else LIMIT
        self.query_one("#price", Input).disabled = self.kind == MARKET
        label = "Market (no price)" if self.kind == MARKET else "Price (Up/Down = tick)"
        self.query_one("#price-label", Label).update(label)
        self.reviewing = False
        self.refresh_info()

    def action_back(self) -> None:
        if self.reviewing:
            self.reviewing = False
            self.refresh_info()
        else:
            self.dismiss(None)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "code":
            self.code = self.code_value
            if is_valid_code(self.code) and not self.price_value:
                last = self.app.store.last_price(self.code)
                if last:
                    self.set_price(snap(last))
        self.reviewing = False
        self.refresh_info()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        order, error = self.build_order()
        if error:
            self.query_one("#ticket-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        if self.kind == LIMIT:
            price = self.price_value or 0
            snapped = snap(price)
            if snapped != price:
                self.set_price(snapped)
                self.query_one("#ticket-error", Static).update(
                    Text(
                        f"Price snapped to the {tick_size(snapped):,} KRW tick: {snapped:,}. Enter to review.",
                        style="yellow",
                    )
                )
                return
        if not self.reviewing:
            self.reviewing = True
            self.refresh_info()
            return
        self.dismiss(order)

    # --- checks and hints ----------------------------------------------------------------------

    def build_order(self) -> tuple[dict[str, Any] | None, str]:
        code, qty, price = self.code_value, self.qty_value, self.price_value
        if not is_valid_code(code):
            return None, "enter a 6-character KRX code, e.g. 005930"
        if qty is None or qty <= 0:
            return None, "quantity must be a positive whole number"
        if self.kind == LIMIT:
            if price is None or price <= 0:
                return None, "enter a limit price (Up/Down steps one tick from the last price)"
            base = self.app.store.base_price(code)
            if base:
                lower, upper = limit_band(base)
                if not lower <= snap(price) <= upper:
                    return None, f"price outside today's limits {lower:,} - {upper:,}"
        if self.modify is not None:
            return {
                "cmd": "modify",
                "order_id": self.modify.order_id,
                "qty": qty,
                "price": price,
            }, ""
        order: dict[str, Any] = {"cmd": self.side, "code": code, "qty": qty}
        if self.kind == MARKET:
            order["type"] = MARKET
        else:
            order["price"] = price
        if self.side == BUY:
            bracket, why = bracket_fields(self)
            if why:
                return None, why
            order.update(bracket)
        return order, ""

    def refresh_info(self) -> None:
        store = self.app.store
        risk = self.app.cfg.risk
        code, qty, price = self.code_value, self.qty_value or 0, self.price_value or 0
        verb = "MODIFY" if self.modify is not None else self.side.upper()
        side_style = (
            "bold white on rgb(170,40,40)" if self.side == BUY else "bold white on rgb(40,80,170)"
        )
        title = Text()
        title.append(f" {verb} ", style=side_style)
        title.append(f"  {code} {store.name_of(code)}", style="bold")
        title.append(f"   {'Market' if self.kind == MARKET else 'Limit'} order", style="dim")
        if self.modify is not None:
            title.append(f"   order {self.modify.order_id}", style="dim")
        self.query_one("#ticket-title", Label).update(title)

        q = store.quotes.get(code)
        quote = Text()
        if q:
            chg = q.get("change") or 0
            st = fmt.sign_style(chg)
            quote.append("Last ", style="dim")
            quote.append(fmt.krw(q.get("price") or 0), style=st)
            quote.append(f"  {fmt.change(chg)} {fmt.pct(q.get('change_pct') or 0.0)}", style=st)
            quote.append(
                f"  Bid {fmt.krw(q.get('bid') or 0)} Ask {fmt.krw(q.get('ask') or 0)}",
                style="dim",
            )
            base = store.base_price(code)
            if base:
                lo, hi = limit_band(base)
                quote.append(f"  Limits {lo:,}-{hi:,}", style="dim")
        else:
            quote.append("no quote seen for this code yet", style="dim")
        self.query_one("#ticket-quote", Static).update(quote)

        info = Text()
        ref_price = price if self.kind == LIMIT else store.last_price(code)
        value = qty * ref_price
        if self.kind == LIMIT and price:
            info.append(f"Tick {tick_size(price):,} KRW", style="dim")
            base = store.base_price(code)
            problem = check_price(price, base) if base else ""
            if problem:
                info.append(f"  ({problem})", style="yellow")
            info.append("\n")
        info.append("Order value ", style="dim")
        info.append(f"{value:,} KRW", style="bold")
        if self.kind == MARKET:
            info.append(" (at the last price; market orders fill through the touch)", style="dim")
        info.append("\nRisk limits ([risk] in config.toml):\n", style="dim")
        hints = [
            ("order value", value, risk.max_order_value),
            ("order qty", qty, risk.max_order_qty),
            ("open orders", len(store.open_orders()) + 1, risk.max_open_orders),
        ]
        held = store.positions.get(code)
        if self.side == BUY and ref_price:
            pos_value = ((held.qty if held else 0) + qty) * ref_price
            hints.append(("position value", pos_value, risk.max_position_value))
        parts = []
        for label, used, limit in hints:
            frac = used / limit if limit else 0
            style = "bold red" if frac > 1 else "yellow" if frac >= NEAR else "dim"
            parts.append((f"{label:<15} {used:>14,} of {limit:>14,}  ({frac:.0%})", style))
        last = store.last_price(code)
        if self.kind == LIMIT and last and price:
            dev = abs(price - last) / last * 100
            style = (
                "bold red"
                if dev > risk.price_band_pct
                else "yellow"
                if dev >= risk.price_band_pct * NEAR
                else "dim"
            )
            parts.append(
                (f"{'price vs last':<15} {dev:>13.1f}% of band ±{risk.price_band_pct:g}%", style)
            )
        for txt, style in parts:
            info.append("  • ", style="dim")
            info.append(txt + "\n", style=style)
        self.query_one("#ticket-info", Static).update(info)
        st = store.status
        warning = ""
        if not st.redis_up:
            warning = "Redis is unreachable: the order cannot be sent now."
        elif not st.alive:
            warning = "The engine is down (no heartbeat): the order cannot be executed now."
        elif st.state == HALTED:
            warning = "Trading is halted (kill switch): the engine will refuse this order."
        self.query_one("#ticket-error", Static).update(
            Text("⚠ " + warning, style="bold red") if warning else ""
        )

        hint = self.query_one("#ticket-hint", Label)
        if self.reviewing:
            order, _ = self.build_order()
            what = f"{verb} {code} {qty:,} @ {'market' if self.kind == MARKET else f'{price:,}'}"
            hint.update(
                Text.assemble(
                    ("Send ", "bold"),
                    (what, "bold reverse"),
                    (f" = {value:,} KRW ?  ", "bold"),
                    ("Enter: send   Esc: edit", "dim"),
                )
            )
            self.add_class("-reviewing")
        else:
            hint.update(
                Text(
                    "Enter review  ↑↓ ±1 tick  PgUp/PgDn ±10  Ctrl+T limit/market  Esc close",
                    style="dim",
                )
            )
            self.remove_class("-reviewing")
