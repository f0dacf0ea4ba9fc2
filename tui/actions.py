"""The registry of named actions: every binding, the help screen and the command palette come
from here, so they cannot disagree. Each action has a stable id that ``[tui.keymap]`` remaps."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

#: Where a binding lives: ``app`` works on every screen, ``main`` only on the main screen.
APP = "app"
MAIN = "main"


@dataclass(frozen=True)
class ActionSpec:
    id: str
    key: str  # default key(s), comma-separated Textual key names
    action: str  # the Textual action string run on the scope's namespace
    title: str  # short, for the footer and the palette
    help: str  # one sentence for the help screen and the palette
    scope: str = MAIN
    show: bool = True  # in the footer
    group: str = "Trading"


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("buy", "b", "buy", "Buy", "Open the order ticket to buy the selected code."),
    ActionSpec("sell", "s", "sell", "Sell", "Open the order ticket to sell the selected code."),
    ActionSpec("cancel", "c", "cancel_order", "Cancel", "Cancel the selected open order."),
    ActionSpec(
        "modify",
        "m",
        "modify_order",
        "Modify",
        "Change the quantity or price of the selected open order.",
    ),
    ActionSpec(
        "cancel_all",
        "C",
        "cancel_all",
        "Cancel all",
        "Cancel every open order (asks first).",
        show=False,
    ),
    ActionSpec(
        "halt",
        "X",
        "halt",
        "Kill switch",
        "Halt trading and cancel open orders (asks first).",
        show=True,
    ),
    ActionSpec(
        "resume", "R", "resume", "Resume", "Resume trading after a halt (asks first).", show=False
    ),
    ActionSpec(
        "chart",
        "enter",
        "chart",
        "Chart",
        "Open the candle chart of the selected code.",
        group="View",
    ),
    ActionSpec(
        "add_code",
        "a",
        "add_code",
        "Add code",
        "Add a code to the watchlist (subscribe).",
        group="Watchlist",
    ),
    ActionSpec(
        "remove_code",
        "delete,d",
        "remove_code",
        "Remove code",
        "Remove the selected code from the watchlist (unsubscribe).",
        show=False,
        group="Watchlist",
    ),
    ActionSpec(
        "focus_watchlist",
        "1",
        "focus('watchlist')",
        "Watchlist",
        "Focus the Watchlist panel.",
        show=False,
        group="View",
    ),
    ActionSpec(
        "focus_surge",
        "2",
        "focus('surge')",
        "Surge",
        "Focus the Surge panel.",
        show=False,
        group="View",
    ),
    ActionSpec(
        "focus_positions",
        "3",
        "focus('positions')",
        "Positions",
        "Focus the Positions panel.",
        show=False,
        group="View",
    ),
    ActionSpec(
        "focus_orders",
        "4",
        "focus('orders')",
        "Orders",
        "Focus the Orders panel.",
        show=False,
        group="View",
    ),
    ActionSpec(
        "resync",
        "ctrl+l",
        "resync",
        "Resync",
        "Re-read the engine's snapshot (P:state:*).",
        show=False,
        group="View",
    ),
    ActionSpec(
        "help",
        "question_mark,f1",
        "help",
        "Help",
        "Show every key binding.",
        scope=APP,
        group="App",
    ),
    ActionSpec(
        "quit",
        "q,ctrl+q",
        "quit",
        "Quit",
        "Leave the console (the engine keeps running).",
        scope=APP,
        group="App",
    ),
)

BY_ID: dict[str, ActionSpec] = {a.id: a for a in ACTIONS}


def bindings(scope: str) -> list[Binding]:
    """Textual bindings (with ids, so the keymap can remap them) for one scope."""
    return [
        Binding(a.key, "app." + a.action, a.title, show=a.show, id=a.id)
        for a in ACTIONS
        if a.scope == scope
    ]
