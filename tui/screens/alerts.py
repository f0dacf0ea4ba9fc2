"""``p``: the price alerts the engine keeps (``P:state:alerts``): list, add, remove.

Alerts live in the engine, so they fire with no console attached; this screen only sends
``alert_add`` / ``alert_remove`` and re-reads ``P:state:alerts``. A fired alert is notified
(and rings the bell) wherever the console is, by :class:`tui.hts.HtsActions`.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from core.protocol.events import PriceAlert
from core.protocol.krx import is_valid_code

from ..actions import ALERTS, bindings

if TYPE_CHECKING:
    from ..app import KiwoomConsole

HELP = "above 71000 | below 69000 | +5% | -3%  (optionally a code first: 000660 above 190000)"
_PCT = re.compile(r"^([+-]?\d+(?:\.\d+)?)%$")


def parse_alert(text: str, default_code: str) -> tuple[dict[str, Any] | None, str]:
    """``"above 71000"`` → ``({"code", "above": 71000}, "")``, or ``(None, why)``."""
    words = text.replace(",", "").split()
    code = default_code
    if words and is_valid_code(words[0].upper()):
        code = words.pop(0).upper()
    if not code:
        return None, "Which code? Start with one, e.g. 005930 above 71000."
    if len(words) == 1 and _PCT.match(words[0]):
        return {"code": code, "change_pct": float(_PCT.match(words[0]).group(1))}, ""  # type: ignore[union-attr]
    if len(words) == 2 and words[0].lower() in ("above", "below", ">", "<", ">=", "<="):
        kind = "above" if words[0].lower() in ("above", ">", ">=") else "below"
        try:
            price = int(words[1])
        except ValueError:
            return None, f"{words[1]!r} is not a price in whole KRW."
        return {"code": code, kind: price}, ""
    return None, f"Not understood: {text!r}. Try {HELP}."


class AlertsScreen(ModalScreen[None]):
    BINDINGS = bindings(ALERTS)
    app: KiwoomConsole

    DEFAULT_CSS = """
    AlertsScreen { align: center middle; }
    AlertsScreen #alerts-box { width: 100; max-width: 95%; height: 80%; border: round $accent;
        background: $surface; padding: 0 1; }
    AlertsScreen DataTable { height: 1fr; }
    """

    def __init__(self, code: str = "") -> None:
        super().__init__()
        self.code = code
        self.alerts: dict[str, PriceAlert] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="alerts-box"):
            yield Label(
                "Price alerts (kept by the engine; each fires once)  a: add  d: remove  Esc: back"
            )
            table: DataTable[str] = DataTable(id="alerts-table", cursor_type="row")
            table.add_columns("id", "code", "name", "condition", "status", "fired at")
            yield table
        yield Footer()

    async def on_mount(self) -> None:
        await self.reload()
        self.query_one(DataTable).focus()

    async def reload(self) -> None:
        bus = self.app.cmd_bus
        alerts: dict[str, PriceAlert] = {}
        if bus is not None:
            try:
                raw = await bus.redis.hgetall(bus.keys.state_alerts)
            except Exception as exc:  # noqa: BLE001 - said in words
                self.app.notify(f"Alerts not read: {exc}", severity="error")
                raw = {}
            for value in raw.values():
                try:
                    alert = PriceAlert.from_dict(json.loads(value))
                except (ValueError, TypeError):
                    continue
                alerts[alert.alert_id] = alert
        self.alerts = dict(sorted(alerts.items(), key=lambda kv: -kv[1].created_ts))
        table = self.query_one(DataTable)
        table.clear()
        for a in self.alerts.values():
            cond = (
                f"{a.condition} {int(a.threshold):,}"
                if a.condition != "change_pct"
                else f"{a.threshold:+g}% on the day"
            )
            fired = f"{a.price:,} ({a.change_pct:+.2f}%)" if a.status == "fired" else ""
            table.add_row(
                a.alert_id,
                a.code,
                a.name or self.app.store.name_of(a.code),
                cond,
                a.status,
                fired,
                key=a.alert_id,
            )

    def action_add(self) -> None:
        from .confirm import PromptScreen

        def done(text: str | None) -> None:
            if not text:
                return
            args, why = parse_alert(text, self.code)
            if args is None:
                self.app.notify(why, severity="error")
                return
            self.run_worker(self._send("alert_add", **args), group="alerts")

        what = f"Alert on {self.code}: " if self.code else "Alert: "
        self.app.push_screen(PromptScreen(what + HELP), done)

    def action_remove(self) -> None:
        table = self.query_one(DataTable)
        if not self.alerts or table.cursor_row < 0:
            return
        alert_id = list(self.alerts)[min(table.cursor_row, len(self.alerts) - 1)]
        self.run_worker(self._send("alert_remove", alert_id=alert_id), group="alerts")

    async def _send(self, name: str, **args: Any) -> None:
        reply = await self.app.send_command(name, **args)
        if reply and reply.get("ok"):
            result = reply.get("result") or {}
            if name == "alert_add":
                alert = result.get("alert") or {}
                self.app.notify(alert.get("message") or "alert set", title="Price alert set")
            else:
                self.app.notify(f"Alert {args.get('alert_id')} removed.", title="Price alert")
        await self.reload()
