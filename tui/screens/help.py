"""``?``: every binding, generated from the action registry after remapping."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..actions import ALL_ACTIONS
from ..keymap import display_keys

if TYPE_CHECKING:
    from ..app import KiwoomConsole

#: Bindings of the other screens and widgets, listed for completeness.
OTHER_KEYS = (
    ("Panels", "Up / Down / j / k", "Move the selection"),
    ("Panels", "PgUp / PgDn / Home / End", "Page through a panel"),
    ("Panels", "Tab / Shift+Tab", "Next / previous panel"),
    ("Ticket", "Enter", "Review the order, then Enter again to send it"),
    ("App", "Ctrl+P", "Command palette: every action by name"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help_close")]
    app: KiwoomConsole

    def compose(self) -> ComposeResult:
        # Narrow terminals (80 columns) keep the key and what it does; the id goes in brackets.
        narrow = self.app.size.width < 100
        table = Table(
            title="Kiwoom Console - keys",
            expand=True,
            box=box.SIMPLE_HEAD,
            header_style="bold",
            title_style="bold",
        )
        keys = self.app.keys_by_action
        self.rows = [
            (a.group, display_keys(keys[a.id]), a.title, a.help, a.id) for a in ALL_ACTIONS
        ]
        self.rows += [(group, key, "", what, "") for group, key, what in OTHER_KEYS]
        if narrow:
            table.add_column("Key", style="bold cyan", width=13, no_wrap=True)
            table.add_column("What it does (id)", ratio=1)
            for _group, key, title, what, aid in self.rows:
                text = Text()
                if title:
                    text.append(title + ": ", style="bold")
                text.append(what)
                if aid:
                    text.append(f" ({aid})", style="dim")
                table.add_row(key, text)
        else:
            table.add_column("Group", style="dim", width=12)
            table.add_column("Key", style="bold cyan", width=16)
            table.add_column("Action", width=13)
            table.add_column("What it does")
            table.add_column("Id", style="dim", width=16)
            for row in self.rows:
                table.add_row(*row)
        note = (
            '\nRemap any key in config.toml, e.g. [tui.keymap] buy = "ctrl+b" (by the Id column). '
            "Rises are red, falls blue. Esc closes this screen."
        )
        with VerticalScroll(id="help-body"):
            yield Static(table)
            yield Static(note, id="help-note")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
