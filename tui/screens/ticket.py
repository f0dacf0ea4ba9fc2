"""The order ticket: buy, sell or modify, with KRX tick steps, risk checks and a confirm step.

What a trader needs at hand is on the ticket: the holding and the sellable quantity (sell), the
orderable cash (buy), keys for all / 50 % / 25 % and for a KRW amount turned into shares. A red
risk line blocks sending unless overridden (``ticket_override``, Ctrl+O). The ticket sends the
order itself and stays open, with its values, when the engine refuses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from core.protocol.events import BUY, HALTED, LIMIT, MARKET, SELL, Order
from core.protocol.krx import (
    check_price,
    commission,
    is_valid_code,
    limit_band,
    next_tick,
    snap,
    snap_down,
    snap_up,
    tick_size,
)

from ..actions import TICKET, bindings
from ..keymap import display_keys
from ..triggers import bracket_fields, bracket_inputs, bracket_words
from ..widgets import fmt
from ..widgets import venues as venue_words

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: A risk limit this close (fraction) is shown as near.
NEAR = 0.8
#: Commission (%) assumed when the buy helpers work out how many shares cash buys; the
#: ``[sim] commission_pct`` default and Kiwoom's online rate are both 0.015 %.
COMMISSION_PCT = 0.015


def _int(text: str) -> int | None:
    try:
        return int(text.replace(",", "").replace("_", "").strip())
    except ValueError:
        return None


def with_separators(text: str) -> str:
    """``71000`` → ``71,000`` (what is not a number stays as typed)."""
    n = _int(text)
    return f"{n:,}" if n is not None and n >= 0 else text


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
        self.overridden = False
        self.sending = False
        self.note = ""  # a one-line message under the risk lines (snaps, helpers, refusals)
        self.note_style = "yellow"
        self._set_by_code: dict[str, str] = {}
        #: The reply of the last send (tests and the log read it).
        self.last_reply: dict[str, Any] | None = None
        self.venue = modify.venue if modify else ""  # chosen on mount: the venue that is open

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        store = self.app.store
        code = self.code
        if self.modify is not None:
            qty = self.modify.remaining_qty or self.modify.qty
            price = self.modify.price
        else:
            qty = 1
            if self.side == SELL and code:
                qty = self.sellable(code) or 1  # the whole sellable amount, not 1
            last = store.last_price(code) if code else 0
            price = snap(last) if last else 0
        with Vertical(id="ticket"):
            yield Label("", id="ticket-title")
            yield Static("", id="ticket-quote")
            yield Static("", id="ticket-means")
            with Horizontal(id="ticket-fields"):
                with Vertical(classes="field"):
                    yield Label("Code", classes="field-label")
                    yield Input(code, id="code", disabled=self.modify is not None, max_length=6)
                with Vertical(classes="field"):
                    yield Label("Quantity", classes="field-label")
                    yield Input(str(qty), id="qty", restrict=r"[0-9,]*")
                with Vertical(classes="field"):
                    yield Label("Price (↑↓ tick)", classes="field-label", id="price-label")
                    yield Input(f"{price:,}" if price else "", id="price", restrict=r"[0-9,]*")
            if self.side == BUY and self.modify is None:
                yield from bracket_inputs()  # issue 14: stop-loss / take-profit on the buy
            yield Static("", id="ticket-info")
            yield Static("", id="ticket-error")
            yield Label("", id="ticket-hint")

    def on_mount(self) -> None:
        if not self.venue:
            self.venue = venue_words.default_venue(self._engine_info(), self._now(), self.code)
        self.query_one("#qty" if self.code else "#code", Input).focus()
        self.refresh_info()

    # --- venue (issue 12) ----------------------------------------------------------------------

    def _engine_info(self) -> dict[str, str] | None:
        st = self.app.store.status
        return st.info if st.alive else None

    def _now(self) -> Any:
        return self.app.clock()

    def action_cycle_venue(self) -> None:
        if self.modify is not None:
            return
        order = ("KRX", "NXT", "SOR")
        self.venue = order[(order.index(self.venue) + 1) % 3 if self.venue in order else 0]
        self.reviewing = False
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
        self._set("price", f"{price:,}")

    def set_qty(self, qty: int) -> None:
        self._set("qty", f"{qty:,}")

    def _set(self, field_id: str, value: str) -> None:
        """Set a field from code: its Changed event keeps the note that explains the value."""
        field = self.query_one(f"#{field_id}", Input)
        self._set_by_code[field_id] = value
        field.value = value
        field.cursor_position = len(value)

    def sellable(self, code: str) -> int:
        """Held shares minus those open sell orders already promise (no short selling)."""
        store = self.app.store
        pos = store.positions.get(code)
        held = pos.qty if pos else 0
        selling = sum(
            o.remaining_qty
            for o in store.open_orders()
            if o.code == code
            and o.side == SELL
            and (self.modify is None or o.order_id != self.modify.order_id)
        )
        return max(0, held - selling)

    def ref_price(self) -> int:
        """The limit price, or the last price for a market order."""
        if self.kind == MARKET:
            return self.app.store.last_price(self.code_value)
        return self.price_value or 0

    def affordable(self, price: int) -> int:
        """Shares orderable cash buys at ``price``, commission included."""
        cash = self.app.store.account.orderable
        if price <= 0 or cash <= 0:
            return 0
        qty = int(cash // (price * (1 + COMMISSION_PCT / 100)))
        while qty > 0 and qty * price + commission(qty * price, COMMISSION_PCT) > cash:
            qty -= 1
        return qty

    # --- actions -------------------------------------------------------------------------------

    def _edited(self, note: str = "", style: str = "yellow") -> None:
        self.reviewing = False
        self.overridden = False
        self.note, self.note_style = note, style
        self.refresh_info()

    def action_tick(self, steps: int) -> None:
        if self.kind == MARKET:
            return
        price = self.price_value or self.app.store.last_price(self.code_value)
        if not price:
            return
        self.set_price(next_tick(snap(price), steps))
        self._edited()

    def action_toggle_kind(self) -> None:
        if self.modify is not None:
            return
        self.kind = MARKET if self.kind == LIMIT else LIMIT
        self.query_one("#price", Input).disabled = self.kind == MARKET
        label = "Market (no price)" if self.kind == MARKET else "Price (↑↓ tick)"
        self.query_one("#price-label", Label).update(label)
        self._edited()

    def action_qty_fraction(self, percent: int) -> None:
        code = self.code_value
        if self.side == SELL:
            base = self.sellable(code)
            what = f"{percent} % of {base:,} sellable"
        else:
            price = self.ref_price()
            base = self.affordable(price)
            what = f"{percent} % of the {base:,} shares orderable cash buys at {price:,}"
        qty = base * percent // 100
        if qty <= 0:
            self._edited(f"Nothing to take {percent} % of ({what}).")
            return
        self.set_qty(qty)
        self._edited(f"Quantity {qty:,} = {what}.", "dim")

    def action_qty_by_amount(self) -> None:
        amount = self.qty_value or 0
        price = self.ref_price()
        if amount <= 0 or price <= 0:
            self._edited("Type a KRW amount in Quantity (and a price), then F8.")
            return
        qty = amount // price
        self.set_qty(qty)
        self._edited(
            f"{amount:,} KRW at {price:,} = {qty:,} shares ({qty * price:,} KRW).",
            "dim" if qty else "yellow",
        )

    def action_override(self) -> None:
        if not self.blocking():
            return
        self.overridden = True
        self.note = "Risk override: Enter reviews and sends it; the engine still checks it."
        self.note_style = "bold yellow"
        self.refresh_info()

    def action_back(self) -> None:
        if self.sending:
            return
        if self.reviewing:
            self.reviewing = False
            self.refresh_info()
        else:
            self.dismiss(None)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("price", "qty"):
            shown = with_separators(event.input.value)
            if shown != event.input.value:
                event.input.value = shown
                event.input.cursor_position = len(shown)
                return  # the change of the formatted value comes back here
        if event.input.id == "code":
            self.code = self.code_value
            if is_valid_code(self.code) and not self.price_value:
                last = self.app.store.last_price(self.code)
                if last:
                    self.set_price(snap(last))
        if self.sending:
            return
        if self._set_by_code.get(event.input.id or "") == event.input.value:
            self.reviewing = False
            self.refresh_info()  # a helper or a snap set it: keep the note saying why
            return
        self._set_by_code.pop(event.input.id or "", None)
        self._edited()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def submit(self) -> None:
        if self.sending:
            return
        order, error = self.build_order()
        if error:
            self.query_one("#ticket-error", Static).update(Text("✗ " + error, style="bold red"))
            return
        if self.kind == LIMIT:
            price = self.price_value or 0
            # Off the tick: toward the side that cannot hurt - a buy never pays more, a sell
            # never gets less than typed.
            snapped = snap_down(price) if self.side == BUY else snap_up(price)
            if snapped != price:
                self.set_price(snapped)
                way = "down" if snapped < price else "up"
                self._edited(
                    f"{price:,} is off the {tick_size(snapped):,} KRW tick: snapped {way} to "
                    f"{snapped:,}. Enter to review."
                )
                return
        blocked = self.blocking()
        if blocked and not self.overridden:
            key = display_keys(self.app.keys_by_action.get("ticket_override", "ctrl+o"))
            self.query_one("#ticket-error", Static).update(
                Text(
                    f"✗ Over the limit: {blocked}. Change the order, or {key} to send anyway.",
                    style="bold red",
                )
            )
            return
        if not self.reviewing:
            self.reviewing = True
            self.refresh_info()
            return
        assert order is not None
        self.send(order)

    def send(self, order: dict[str, Any]) -> None:
        """Send it; close on success, stay open with every value on a refusal."""
        self.sending = True
        self.refresh_info()

        async def go() -> None:
            args = dict(order)
            cmd = args.pop("cmd")
            reply = await self.app.send_command(cmd, **args)
            self.last_reply = reply
            self.sending = False
            if reply is not None and not reply.get("ok"):
                err = reply.get("error") or {}
                self.reviewing = False
                self.overridden = False
                self.note = f"Refused: {err.get('message') or err.get('code', '')}"
                self.note_style = "bold red"
                self.refresh_info()
                return
            if reply is not None:
                result = reply.get("result")
                oid = result.get("order_id") if isinstance(result, dict) else None
                if oid:
                    self.app.follow_order(str(oid))
            self.dismiss(None)

        self.run_worker(go(), group="ticket-send", exclusive=True)

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
        if self.venue and self.venue != "KRX":
            order["venue"] = self.venue
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

    def risk_lines(self) -> list[tuple[str, float, str]]:
        """``(label, used fraction, text)`` of each ``[risk]`` limit this order touches."""
        store = self.app.store
        risk = self.app.cfg.risk
        code, qty = self.code_value, self.qty_value or 0
        ref_price = self.ref_price()
        value = qty * ref_price
        hints = [
            ("order value", value, risk.max_order_value),
            ("order qty", qty, risk.max_order_qty),
            # A modify replaces an open order: it does not add one (B10).
            ("open orders", len(store.open_orders()) + (self.modify is None), risk.max_open_orders),
        ]
        held = store.positions.get(code)
        if self.side == BUY and ref_price:
            pos_value = ((held.qty if held else 0) + qty) * ref_price
            hints.append(("position value", pos_value, risk.max_position_value))
        out = []
        for label, used, limit in hints:
            frac = used / limit if limit else 0
            out.append((label, frac, f"{label:<14} {used:>13,} of {limit:>13,} ({frac:.0%})"))
        last = store.last_price(code)
        price = self.price_value or 0
        if self.kind == LIMIT and last and price:
            dev = abs(price - last) / last * 100
            band = risk.price_band_pct
            out.append(
                (
                    "price vs last",
                    dev / band if band else 0,
                    f"{'price vs last':<14} {dev:>12.1f}% of band ±{band:g}%",
                )
            )
        return out

    def blocking(self) -> str:
        """The red risk lines in words ('' when none)."""
        return ", ".join(label for label, frac, _ in self.risk_lines() if frac > 1)

    def refresh_info(self) -> None:
        store = self.app.store
        code, qty, price = self.code_value, self.qty_value or 0, self.price_value or 0
        verb = "MODIFY" if self.modify is not None else self.side.upper()
        side_style = (
            "bold white on rgb(170,40,40)" if self.side == BUY else "bold white on rgb(40,80,170)"
        )
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {verb} ", style=side_style)
        title.append(f"  {code} {store.name_of(code)}", style="bold")
        title.append(f"   {'Market' if self.kind == MARKET else 'Limit'} order", style="dim")
        if self.modify is not None:
            title.append(f"   order {self.modify.order_id}", style="dim")
        venue_text, venue_warning = venue_words.venue_summary(
            self._engine_info(), self.venue or "KRX", self.kind, self._now()
        )
        title.append(f"   {venue_text}", style="yellow" if venue_warning else "cyan")
        self.query_one("#ticket-title", Label).update(title)

        q = store.quotes.get(code)
        quote = Text(no_wrap=True, overflow="ellipsis")
        if q:
            chg = q.get("change") or 0
            st = fmt.sign_style(chg)
            quote.append("Last ", style="dim")
            quote.append(fmt.krw(q.get("price") or 0), style=st)
            quote.append(f" {fmt.change(chg)} {fmt.pct(q.get('change_pct') or 0.0)}", style=st)
            quote.append(
                f"  Bid {fmt.krw(q.get('bid') or 0)} Ask {fmt.krw(q.get('ask') or 0)}",
                style="dim",
            )
            if q.get("venue") == "NXT":
                quote.append("  (NXT quote)", style="dim")
            base = store.base_price(code)
            if base:
                lo, hi = limit_band(base)
                quote.append(f"  Limits {lo:,}-{hi:,}", style="dim")
        else:
            quote.append("no quote seen for this code yet", style="dim")
        self.query_one("#ticket-quote", Static).update(quote)

        means = Text(no_wrap=True, overflow="ellipsis")
        ref_price = self.ref_price()
        if self.side == SELL:
            pos = store.positions.get(code)
            held = pos.qty if pos else 0
            sellable = self.sellable(code)
            means.append("Holding ", style="dim")
            means.append(f"{held:,}", style="bold")
            means.append("  Sellable ", style="dim")
            means.append(f"{sellable:,}", style="bold")
            if held != sellable:
                means.append(f" ({held - sellable:,} in open sells)", style="dim")
        else:
            means.append("Orderable ", style="dim")
            means.append(f"{store.account.orderable:,} KRW", style="bold")
            if ref_price:
                means.append(f"  buys up to {self.affordable(ref_price):,} shares", style="dim")
        self.query_one("#ticket-means", Static).update(means)

        info = Text()
        value = qty * ref_price
        info.append("Value ", style="dim")
        info.append(f"{value:,} KRW", style="bold")
        if self.kind == LIMIT and price:
            info.append(f"  Tick {tick_size(price):,} KRW", style="dim")
            base = store.base_price(code)
            problem = check_price(price, base) if base else ""
            if problem:
                info.append(f"  ({problem})", style="yellow")
        else:
            info.append("  at the last price; a market order fills through the touch", style="dim")
        for _label, frac, txt in self.risk_lines():
            style = "bold red" if frac > 1 else "yellow" if frac >= NEAR else "dim"
            info.append("\n • ", style="dim")
            info.append(txt, style=style)
        if self.note:
            info.append("\n" + self.note, style=self.note_style)
        self.query_one("#ticket-info", Static).update(info)

        st = store.status
        warning = ""
        if not st.redis_up:
            warning = "Redis is unreachable: the order cannot be sent now."
        elif not st.alive:
            warning = "The engine is down (no heartbeat): the order cannot be executed now."
        elif st.state == HALTED:
            warning = "Trading is halted (kill switch): the engine will refuse this order."
        elif venue_warning:
            warning = venue_warning + ": the engine will refuse this order (Ctrl+N: venue)."
        blocked = self.blocking()
        if not warning and blocked:
            key = display_keys(self.app.keys_by_action.get("ticket_override", "ctrl+o"))
            warning = (
                f"Over the limit ({blocked}): risk override with {key}"
                if not self.overridden
                else f"Over the limit ({blocked}): overridden"
            )
        self.query_one("#ticket-error", Static).update(
            Text("⚠ " + warning, style="bold red") if warning else ""
        )

        hint = self.query_one("#ticket-hint", Label)
        if self.sending:
            hint.update(Text("Sending… waiting for the engine's reply", style="bold"))
        elif self.reviewing:
            what = f"{verb} {code} {qty:,} @ {'market' if self.kind == MARKET else f'{price:,}'}"
            what += f" on {self.venue or 'KRX'}"
            bracket = bracket_words(bracket_fields(self)[0]) if self.side == BUY else ""
            hint.update(
                Text.assemble(
                    ("Send ", "bold"),
                    (what, "bold reverse"),
                    (f" = {value:,} KRW", "bold"),
                    (f" + {bracket}" if bracket else "", "bold"),
                    (" ? ", "bold"),
                    ("Enter send  Esc edit", "dim"),
                )
            )
            self.add_class("-reviewing")
        else:
            helpers = "F5 all F6 ½ F7 ¼" + ("" if self.side == SELL else " F8 KRW→qty")
            hint.update(
                Text(
                    f"⏎ review  ↑↓ tick  PgUp/Dn ±10  {helpers}  ^T market  ^N venue  Esc",
                    style="dim",
                    no_wrap=True,
                    overflow="ellipsis",
                )
            )
        if not self.reviewing:
            self.remove_class("-reviewing")
