"""Stops, take-profits and trailing stops in the console (issue 14).

- :class:`TriggerStore`: the triggers the engine reports (``P:state:triggers`` at connect,
  ``trigger`` events after), and the marks shown on a position row.
- :func:`parse_level`: what a trader types for a stop or a take-profit (a price, or a percent
  from the average price) or a trailing stop (a percent, or ``10t`` ticks), snapped to the tick.
- :class:`TriggerActions`: the app's actions (keys on a position row, the triggers list, the
  fire notification), mixed into :class:`tui.app.KiwoomConsole`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.message import Message

from core.protocol import krx
from core.protocol.triggers import FINAL_STATUSES

if TYPE_CHECKING:  # pragma: no cover
    from .app import KiwoomConsole

KIND_WORDS = {"stop": "Stop", "take_profit": "Take-profit", "trailing": "Trailing stop"}


class TriggerStore:
    """trigger_id → the trigger JSON, as the engine last reported it."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}

    def apply(self, data: Any) -> dict[str, Any] | None:
        if not isinstance(data, dict) or not isinstance(data.get("trigger_id"), str):
            return None
        self.by_id[data["trigger_id"]] = data
        return data

    def apply_marks(self, data: Any) -> set[str]:
        """A ``trigger_marks`` event (``[[trigger_id, mark, level], …]``): the codes whose
        trailing stops moved."""
        codes: set[str] = set()
        rows = data.get("marks") if isinstance(data, dict) else None
        for row in rows if isinstance(rows, list) else ():
            if not (isinstance(row, list) and len(row) == 3):
                continue
            t = self.by_id.get(row[0]) if isinstance(row[0], str) else None
            if t is not None and all(type(v) is int for v in row[1:]):  # noqa: E721
                t["mark"], t["level"] = row[1], row[2]
                codes.add(t.get("code", ""))
        return codes

    def load(self, raw: dict[Any, Any]) -> None:
        self.by_id.clear()
        for value in raw.values():
            try:
                self.apply(json.loads(value))
            except (TypeError, ValueError):
                continue

    def live(self, code: str | None = None) -> list[dict[str, Any]]:
        return [
            t
            for t in self.by_id.values()
            if t.get("status") not in FINAL_STATUSES and (code is None or t.get("code") == code)
        ]

    def rows(self) -> list[dict[str, Any]]:
        """Live triggers first, then the final ones, newest first within each."""
        return sorted(
            self.by_id.values(),
            key=lambda t: (t.get("status") in FINAL_STATUSES, -(t.get("created_ts") or 0)),
        )

    def position_trigger(self, code: str, kind: str) -> dict[str, Any] | None:
        """The live sell trigger of ``kind`` on a position (the one a key on its row edits)."""
        for t in self.live(code):
            if t.get("kind") == kind and t.get("side") == "sell":
                return t
        return None

    def marks(self, code: str) -> str:
        """``S68,000 T75,000 ~67,900`` for a position's row ('' when none): compact, so that
        all three fit the Positions panel at 120 columns."""
        parts = []
        for t in self.live(code):
            if t.get("side") != "sell":
                continue
            level = t.get("level") or t.get("trigger_price") or 0
            text = f"{level:,}" if level else "?"
            if t.get("status") == "suspended":
                text += "‖"
            kind = t.get("kind")
            parts.append(("S" if kind == "stop" else "T" if kind == "take_profit" else "~") + text)
        return " ".join(sorted(parts))


def parse_level(text: str, kind: str, avg_price: int, last_price: int) -> tuple[dict, str]:
    """The trigger_add/trigger_modify fields for what was typed, or ('', why not).

    Stop / take-profit: ``68000`` (a price, snapped to the nearest tick), or ``3%`` / ``-3%``
    (percent from the average price: below it for a stop, above for a take-profit).
    Trailing: ``3%`` (percent from the high) or ``10t`` (ticks).
    """
    t = text.strip().replace(",", "").lower()
    if not t:
        return {}, "nothing typed"
    if kind == "trailing":
        try:
            if t.endswith("t"):
                ticks = int(t[:-1])
                if not 1 <= ticks <= 1000:
                    raise ValueError
                return {"trail_ticks": ticks}, ""
            pct = abs(float(t.rstrip("%")))
            if not 0 < pct <= 30:
                raise ValueError
            return {"trail_pct": pct}, ""
        except ValueError:
            return {}, "type a percent from the high (3%) or ticks (10t)"
    try:
        if t.endswith("%"):
            pct = abs(float(t[:-1]))
            if not 0 < pct <= 30:
                raise ValueError
            base = avg_price or last_price
            if not base:
                return {}, "no average or last price to take a percent of"
            raw = base * (100 - pct) / 100 if kind == "stop" else base * (100 + pct) / 100
            price = krx.snap(raw)
        else:
            price = krx.snap(float(t))
    except ValueError:
        return {}, "type a price (68000) or a percent from the average price (3%)"
    if price <= 0:
        return {}, "the price must be positive"
    if last_price:
        if kind == "stop" and price >= last_price:
            return {}, f"a stop at {price:,} is not below the last price {last_price:,}"
        if kind == "take_profit" and price <= last_price:
            return {}, f"a take-profit at {price:,} is not above the last price {last_price:,}"
    return {"trigger_price": price}, ""


def trigger_words(t: dict[str, Any]) -> str:
    kind = KIND_WORDS.get(t.get("kind", ""), t.get("kind", ""))
    return f"{kind} {t.get('side', '').upper()} {t.get('code', '')} {t.get('qty')}"


class TriggerActions:
    """Trigger actions of the console (mixed into the app; ``self`` is the app)."""

    def _trigger_position(self: KiwoomConsole) -> Any:
        code = self.main.selected_code()
        pos = self.store.positions.get(code or "")
        if pos is None or not pos.qty:
            self.notify(
                "Select a position in the Positions panel first (press 3).", severity="warning"
            )
            return None
        return pos

    def _ask_level(self: KiwoomConsole, kind: str) -> None:
        from .screens.confirm import PromptScreen

        pos = self._trigger_position()
        if pos is None:
            return
        code = pos.code
        last = self.store.last_price(code) or pos.last_price
        existing = self.store.triggers.position_trigger(code, kind)
        if kind == "trailing":
            question = f"Trailing stop for {code} (held {pos.qty:,}): percent from the high (3%) or ticks (10t)"
        else:
            question = (
                f"{KIND_WORDS[kind]} for {code} (held {pos.qty:,}, avg {pos.avg_price:,}, "
                f"last {last:,}): price, or % from the average price"
            )
        if existing:
            question += f" - now {existing.get('level') or existing.get('trigger_price'):,}"

        def done(text: str | None) -> None:
            if text is None:
                return
            fields, why = parse_level(text, kind, pos.avg_price, last)
            if why:
                self.notify(f"Not set: {why}.", severity="error", timeout=6)
                return
            if existing:
                self.send_in_background(
                    "trigger_modify", trigger_id=existing["trigger_id"], **fields
                )
            else:
                self.send_in_background(
                    "trigger_add",
                    code=code,
                    side="sell",
                    qty="position",
                    kind=kind,
                    oco=f"pos-{code}",
                    **fields,
                )

        self.push_screen(PromptScreen(question), done)

    def action_set_stop(self: KiwoomConsole) -> None:
        self._ask_level("stop")

    def action_set_take_profit(self: KiwoomConsole) -> None:
        self._ask_level("take_profit")

    def action_set_trailing(self: KiwoomConsole) -> None:
        self._ask_level("trailing")

    def action_triggers(self: KiwoomConsole) -> None:
        from .screens.triggers import TriggersScreen

        if not isinstance(self.screen, TriggersScreen):
            self.push_screen(TriggersScreen())

    async def load_triggers(self: KiwoomConsole) -> None:
        """Read ``P:state:triggers`` (at connect and after a resync)."""
        if self.cmd_bus is None:
            return
        try:
            raw = await self.cmd_bus.redis.hgetall(self.cmd_bus.keys.state_triggers)
        except Exception:  # noqa: BLE001 - the feed reports Redis trouble already
            return
        self.store.triggers.load(raw)
        self.store.dirty.positions_rows = True
        for t in self.store.triggers.by_id.values():
            self.store.dirty.positions.add(t.get("code", ""))
        self.refresh_trigger_views()

    def refresh_trigger_views(self: KiwoomConsole) -> None:
        from .screens.triggers import TriggersScreen

        for screen in self.screen_stack:
            if isinstance(screen, TriggersScreen):
                screen.refresh_rows()

    def on_trigger_marks_event(self: KiwoomConsole, message: Any) -> None:
        self.refresh_trigger_views()

    def on_trigger_event(self: KiwoomConsole, message: Any) -> None:
        """A trigger changed: repaint its position's marks; a fire (and a problem) notifies."""
        t = message.trigger
        self.store.dirty.positions.add(t.get("code", ""))
        self.store.dirty.positions_rows = True
        self.refresh_trigger_views()
        status = t.get("status")
        if status == "fired":
            outcome = t.get("outcome")
            severity = "information" if outcome == "sent" else "error"
            order = t.get("order_id") or t.get("cmd_id")
            self.notify(
                f"{trigger_words(t)} fired at {t.get('fired_price', 0):,}: order {order} "
                f"({outcome}). {t.get('reason', '')}",
                title="Trigger fired",
                severity=severity,
                timeout=10,
            )
            if self.cfg.tui.bell:
                self.bell()
        elif status == "suspended" and "during the halt" in (t.get("reason") or ""):
            self.notify(
                f"{trigger_words(t)}: {t.get('reason')}", title="Trigger waits", severity="warning"
            )


class TriggerChange:
    """What :meth:`tui.state.Store.apply` returns for a ``trigger`` event."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class TriggerMarksMoved:
    """What :meth:`tui.state.Store.apply` returns for a ``trigger_marks`` event."""

    __slots__ = ()


class TriggerMarksEvent(Message):
    """Posted by the feed when trailing marks moved (the positions repaint by themselves)."""


class TriggerEvent(Message):
    """Posted by the feed for every ``trigger`` event."""

    def __init__(self, trigger: dict[str, Any]) -> None:
        super().__init__()
        self.trigger = trigger


# --- the bracket on the buy ticket ------------------------------------------------------------


def bracket_inputs() -> Any:
    """The ticket's bracket row (buy tickets only): stop-loss and take-profit, each a price or
    a percent from the fill price; empty for none."""
    from textual.containers import Horizontal, Vertical
    from textual.widgets import Input, Label

    row = Horizontal(id="ticket-bracket")
    row.styles.height = 4
    with row:
        with Vertical(classes="field"):
            yield Label("Stop-loss (price or %)", classes="field-label")
            yield Input("", id="stop_loss", placeholder="none")
        with Vertical(classes="field"):
            yield Label("Take-profit (price or %)", classes="field-label")
            yield Input("", id="take_profit", placeholder="none")


def bracket_words(fields: dict[str, Any]) -> str:
    """``stop 69,000 / take-profit +5 % of the fill`` for a buy's bracket fields ('' if none)."""
    parts = []
    for name, words, sign in (("stop_loss", "stop", "-"), ("take_profit", "take-profit", "+")):
        if name in fields:
            parts.append(f"{words} {fields[name]:,}")
        elif name + "_pct" in fields:
            parts.append(f"{words} {sign}{fields[name + '_pct']:g}% of the fill")
    return " / ".join(parts)


def bracket_fields(screen: Any) -> tuple[dict[str, Any], str]:
    """The ``buy`` fields for what the ticket's bracket row holds, or ({}, why not)."""
    from textual.css.query import NoMatches
    from textual.widgets import Input

    out: dict[str, Any] = {}
    for name in ("stop_loss", "take_profit"):
        try:
            text = screen.query_one("#" + name, Input).value.strip().replace(",", "")
        except NoMatches:
            return {}, ""
        if not text:
            continue
        try:
            if text.endswith("%"):
                pct = abs(float(text[:-1]))
                if not 0 < pct <= 30:
                    raise ValueError
                out[name + "_pct"] = pct
            else:
                out[name] = krx.snap(float(text))
        except ValueError:
            words = name.replace("_", "-")
            return {}, f"{words}: a price (68000) or a percent from the fill price (3%)"
    if "stop_loss" in out and "take_profit" in out and out["stop_loss"] >= out["take_profit"]:
        return {}, "the stop-loss must be below the take-profit"
    return out, ""
