"""``T``: every stop, take-profit and trailing stop the engine holds; modify or cancel them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ..triggers import KIND_WORDS, parse_level

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: What a trader reads first comes first (status and why before the ids, which are for
#: scripts): a 120-column screen shows through "Why".
COLUMNS = ("Code", "Kind", "Side", "Qty", "Level", "Mark", "Status", "Why", "Order", "OCO", "Id")


class TriggersScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    #triggers { width: 95%; height: 80%; border: thick $primary; background: $surface; padding: 0 1; }
    #triggers-table { height: 1fr; }
    #triggers-empty { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape,q", "dismiss", "Back", id="triggers_back"),
        Binding("m,enter", "modify", "Modify", id="triggers_modify"),
        Binding("c,delete", "cancel_trigger", "Cancel", id="triggers_cancel"),
    ]
    app: KiwoomConsole

    def compose(self) -> ComposeResult:
        with Vertical(id="triggers"):
            yield Label("Triggers - m/Enter modify   c/Del cancel   Esc back", id="triggers-title")
            table: DataTable[str] = DataTable(id="triggers-table", cursor_type="row")
            table.add_columns(*COLUMNS)
            yield table
            yield Label("", id="triggers-empty")

    def on_mount(self) -> None:
        self.refresh_rows()
        self.query_one(DataTable).focus()

    def refresh_rows(self) -> None:
        table = self.query_one("#triggers-table", DataTable)
        keep = self.selected_id()
        table.clear()
        rows = self.app.store.triggers.rows()
        for t in rows:
            level = t.get("level") or t.get("trigger_price") or 0
            table.add_row(
                t.get("code", ""),
                KIND_WORDS.get(t.get("kind", ""), t.get("kind", "")),
                str(t.get("side", "")).upper(),
                f"{t.get('qty')}",
                f"{level:,}" if level else "-",
                f"{t.get('mark') or 0:,}" if t.get("kind") == "trailing" else "",
                t.get("status", ""),
                (t.get("reason") or "")[:60],
                f"{t.get('order_type', '')}",
                t.get("oco") or "",
                t.get("trigger_id", ""),
                key=t.get("trigger_id"),
            )
        self.query_one("#triggers-empty", Label).update(
            ""
            if rows
            else "no triggers - on a position row press l (stop), P (take-profit), t (trailing)"
        )
        if keep:
            for i, t in enumerate(rows):
                if t.get("trigger_id") == keep:
                    table.move_cursor(row=i)
                    break

    def selected_id(self) -> str | None:
        table = self.query_one("#triggers-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None
        return str(key.value) if key.value is not None else None

    def _selected(self) -> dict[str, Any] | None:
        tid = self.selected_id()
        t = self.app.store.triggers.by_id.get(tid or "")
        if t is None or t.get("status") in ("fired", "cancelled", "expired", "firing"):
            self.app.notify("Select an armed or suspended trigger.", severity="warning")
            return None
        return t

    def action_cancel_trigger(self) -> None:
        t = self._selected()
        if t is not None:
            self.app.send_in_background("trigger_cancel", trigger_id=t["trigger_id"])

    def action_modify(self) -> None:
        from .confirm import PromptScreen

        t = self._selected()
        if t is None:
            return
        kind = t.get("kind", "stop")
        code = t.get("code", "")
        pos = self.app.store.positions.get(code)
        last = self.app.store.last_price(code)
        avg = pos.avg_price if pos else 0

        def done(text: str | None) -> None:
            if text is None:
                return
            fields, why = parse_level(text, kind, avg, last)
            if why and text.strip().lower().startswith("q"):
                fields, why = _qty(text)
            if why:
                self.app.notify(f"Not changed: {why}.", severity="error")
                return
            self.app.send_in_background("trigger_modify", trigger_id=t["trigger_id"], **fields)

        what = (
            "percent (3%) or ticks (10t)" if kind == "trailing" else "price or % from the average"
        )
        self.app.push_screen(
            PromptScreen(
                f"{KIND_WORDS.get(kind, kind)} {code}: new {what}, or q<number>/qposition for the quantity"
            ),
            done,
        )


def _qty(text: str) -> tuple[dict[str, Any], str]:
    value = text.strip().lower()[1:].strip().replace(",", "")
    if value == "position":
        return {"qty": "position"}, ""
    if value.isdigit() and int(value) > 0:
        return {"qty": int(value)}, ""
    return {}, "type q and a quantity (q10) or qposition"
