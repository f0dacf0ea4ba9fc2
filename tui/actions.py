"""The registry of named actions: every binding, the help screen and the command palette come
from here, so they cannot disagree. Each action has a stable id that ``[tui.keymap]`` remaps."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

#: Where a binding lives: ``app`` works on every screen, ``main`` only on the main screen; the
#: others on one screen (their actions run on that screen).
APP = "app"
MAIN = "main"
TICKET = "ticket"
CHART = "chart"
JOURNAL = "journal"
DIALOG = "dialog"
LADDER = "ladder"
ALERTS = "alerts"
#: Scopes whose actions the command palette offers (the others only make sense on their screen).
PALETTE_SCOPES = (APP, MAIN)


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
        "journal",
        "J",
        "journal",
        "Journal",
        "Open the trading journal: today's fills with fees, tax and realised P&L, daily P&L bars.",
        show=False,
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
        "watchlist_sort",
        "O",
        "watchlist_sort",
        "Sort",
        "Sort the watchlist: as added, by change %, by volume (cycles).",
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
        "set_stop",
        "l",
        "set_stop",
        "Stop-loss",
        "Set or move the stop-loss of the selected position (price or % from the average).",
        show=False,
        group="Triggers",
    ),
    ActionSpec(
        "set_take_profit",
        "P",
        "set_take_profit",
        "Take-profit",
        "Set or move the take-profit of the selected position (price or % from the average).",
        show=False,
        group="Triggers",
    ),
    ActionSpec(
        "set_trailing",
        "t",
        "set_trailing",
        "Trailing stop",
        "Set a trailing stop on the selected position (% or ticks from the high).",
        show=False,
        group="Triggers",
    ),
    ActionSpec(
        "triggers",
        "T",
        "triggers",
        "Triggers",
        "List stops, take-profits and trailing stops to modify or cancel them.",
        show=False,
        group="Triggers",
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
    ActionSpec(
        "ladder",
        "o",
        "ladder",
        "Ladder",
        "Open the order book (호가창) of the selected code: trade at a level, tape beside it.",
        show=False,
        group="View",
    ),
    ActionSpec(
        "alerts",
        "p",
        "alerts",
        "Alerts",
        "List, add and remove price alerts (kept and fired by the engine).",
        show=False,
        group="View",
    ),
)

#: Bindings of the other screens: in the registry too, so they are listed and remappable.
SCREEN_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "ticket_tick_up",
        "up",
        "tick(1)",
        "+1 tick",
        "Price one tick up (KRX tick table).",
        TICKET,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_tick_down",
        "down",
        "tick(-1)",
        "-1 tick",
        "Price one tick down.",
        TICKET,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_tick_up10",
        "pageup",
        "tick(10)",
        "+10 ticks",
        "Price ten ticks up.",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_tick_down10",
        "pagedown",
        "tick(-10)",
        "-10 ticks",
        "Price ten ticks down.",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_kind",
        "ctrl+t",
        "toggle_kind",
        "Limit/Market",
        "Switch between a limit and a market order.",
        TICKET,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_back",
        "escape",
        "back",
        "Back",
        "Leave the review step, or close the ticket unsent.",
        TICKET,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_venue",
        "ctrl+n",
        "cycle_venue",
        "Venue",
        "Cycle the order's venue: KRX, NXT, SOR (it opens on the venue that is open).",
        TICKET,
        group="Ticket",
    ),
    ActionSpec(
        "chart_back",
        "escape,q",
        "app.pop_screen",
        "Back",
        "Back to the main screen.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_interval",
        "i",
        "interval",
        "Interval",
        "Next candle interval: 1m, 5m, 15m, 1d.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_zoom_in",
        "plus,equals_sign",
        "zoom(-1)",
        "Fewer candles",
        "Show fewer, wider candles.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_zoom_out",
        "minus",
        "zoom(1)",
        "More candles",
        "Show more candles.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_ma",
        "a",
        "toggle('ma')",
        "MA",
        "Moving averages 5/20/60/120 on or off.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_volume",
        "v",
        "toggle('volume')",
        "Volume",
        "Volume bars under the candles on or off (red: rising candle, blue: falling).",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_vwap",
        "w",
        "toggle('vwap')",
        "VWAP",
        "VWAP (volume-weighted average price of each day) on intraday charts, on or off.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "chart_bollinger",
        "B",
        "toggle('bollinger')",
        "Bollinger",
        "Bollinger bands (20 candles, 2 standard deviations) on or off.",
        CHART,
        group="Chart",
    ),
    ActionSpec(
        "journal_back",
        "escape,q",
        "app.pop_screen",
        "Back",
        "Back to the main screen.",
        JOURNAL,
        group="Journal",
    ),
    ActionSpec(
        "journal_reload",
        "r",
        "reload",
        "Reload",
        "Read the journal from the database again.",
        JOURNAL,
        group="Journal",
    ),
    ActionSpec(
        "confirm_yes",
        "y,enter",
        "answer(True)",
        "Yes",
        "Confirm (cancel all, kill switch, resume).",
        DIALOG,
        group="Dialogs",
    ),
    ActionSpec(
        "confirm_no",
        "n,escape",
        "answer(False)",
        "No",
        "Decline; nothing is sent.",
        DIALOG,
        group="Dialogs",
    ),
    ActionSpec(
        "ticket_qty_all",
        "f5",
        "qty_fraction(100)",
        "All",
        "Quantity: all sellable shares (sell) or as many as orderable cash buys (buy).",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_qty_half",
        "f6",
        "qty_fraction(50)",
        "50 %",
        "Quantity: half of the sellable shares, or of what orderable cash buys.",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_qty_quarter",
        "f7",
        "qty_fraction(25)",
        "25 %",
        "Quantity: a quarter of the sellable shares, or of what orderable cash buys.",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_qty_amount",
        "f8",
        "qty_by_amount",
        "KRW to qty",
        "Read the quantity field as a KRW amount and turn it into shares at the price.",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ticket_override",
        "ctrl+o",
        "override",
        "Override",
        "Send an order over a red [risk] line anyway (the engine still checks it).",
        TICKET,
        show=False,
        group="Ticket",
    ),
    ActionSpec(
        "ladder_up", "up,k", "move(-1)", "Up", "Cursor one level up.", LADDER, group="Ladder"
    ),
    ActionSpec(
        "ladder_down", "down,j", "move(1)", "Down", "Cursor one level down.", LADDER, group="Ladder"
    ),
    ActionSpec(
        "ladder_center",
        "home",
        "center",
        "Last",
        "Cursor to the last traded price.",
        LADDER,
        show=False,
        group="Ladder",
    ),
    ActionSpec(
        "ladder_buy",
        "b",
        "buy",
        "Buy here",
        "Buy at the cursor's price (the ticket, or one confirm with ladder_direct).",
        LADDER,
        group="Ladder",
    ),
    ActionSpec(
        "ladder_sell",
        "s",
        "sell",
        "Sell here",
        "Sell at the cursor's price (the ticket, or one confirm with ladder_direct).",
        LADDER,
        group="Ladder",
    ),
    ActionSpec(
        "ladder_cancel",
        "c",
        "cancel",
        "Cancel here",
        "Cancel your open order(s) at the cursor's price.",
        LADDER,
        group="Ladder",
    ),
    ActionSpec(
        "ladder_modify",
        "m",
        "modify",
        "Move order",
        "Pick your order at the cursor's level, then m again at another level to move it there.",
        LADDER,
        group="Ladder",
    ),
    ActionSpec(
        "ladder_back",
        "escape,q",
        "back",
        "Back",
        "Drop a picked order, or back to the main screen.",
        LADDER,
        group="Ladder",
    ),
    ActionSpec(
        "alerts_add",
        "a",
        "add",
        "Add alert",
        "Add a price alert: above 71000, below 69000 or +5% / -3%.",
        ALERTS,
        group="Alerts",
    ),
    ActionSpec(
        "alerts_remove",
        "delete,d",
        "remove",
        "Remove",
        "Remove the selected alert.",
        ALERTS,
        group="Alerts",
    ),
    ActionSpec(
        "alerts_back",
        "escape,q",
        "app.pop_screen",
        "Back",
        "Close the alerts.",
        ALERTS,
        group="Alerts",
    ),
)

ALL_ACTIONS: tuple[ActionSpec, ...] = ACTIONS + SCREEN_ACTIONS
BY_ID: dict[str, ActionSpec] = {a.id: a for a in ALL_ACTIONS}


def bindings(scope: str) -> list[Binding]:
    """Textual bindings (with ids, so the keymap can remap them) for one scope."""
    return [
        Binding(
            a.key,
            ("app." + a.action) if a.scope == MAIN else a.action,
            a.title,
            show=a.show,
            id=a.id,
        )
        for a in ALL_ACTIONS
        if a.scope == scope
    ]
