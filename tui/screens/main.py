"""The main screen: Watchlist and Surge on top, Positions and Orders below, the account line
above them, the banner and status bar at the bottom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from ..actions import MAIN, bindings
from ..state import Dirty
from ..widgets.panels import (
    FLASH_MS,
    OrdersTable,
    PositionsTable,
    StoreTable,
    SurgeTable,
    WatchlistTable,
)
from ..widgets.status import AccountLine, Banner, StatusBar
from ..widgets.table import KeyedTable


def group_title(groups: list[str], group: str) -> str:
    """The watchlist panel's title with the group shown: ``Watchlist · 관심종목 2 (2/3)``."""
    if len(groups) > 1 and group in groups:
        return f"Watchlist · {group} ({groups.index(group) + 1}/{len(groups)})"
    return f"Watchlist · {group}"


TITLES = {"watchlist": "Watchlist", "surge": "Surge", "positions": "Positions", "orders": "Orders"}
#: Below this many terminal rows the panels drop their side and bottom borders.
COMPACT_BELOW_ROWS = 32


def more(table: KeyedTable) -> str:
    """``▲3 ▼12 more │ `` when rows are above or below the visible ones, else ''."""
    rows = table.visible_rows
    if not rows:
        return ""
    above = table.top
    below = max(0, len(table.keys) - table.top - rows)
    parts = ([f"▲{above}"] if above else []) + ([f"▼{below}"] if below else [])
    return " ".join(parts) + " more │ " if parts else ""


if TYPE_CHECKING:
    from ..app import KiwoomConsole


class MainScreen(Screen[None]):
    BINDINGS = bindings(MAIN)
    app: KiwoomConsole
    #: True between mount and unmount: the panels exist and can be repainted.
    ready = False
    #: Codes last painted as stale (dimmed).
    _stale: set[str] = set()

    def compose(self) -> ComposeResult:
        store = self.app.store
        now_ms = self.app.now_ms
        yield AccountLine(store, id="account")
        with Horizontal(id="top"):
            yield WatchlistTable(store, now_ms, id="watchlist", classes="panel")
            yield SurgeTable(store, now_ms, id="surge", classes="panel")
        with Vertical(id="bottom"):
            yield PositionsTable(store, now_ms, id="positions", classes="panel")
            yield OrdersTable(store, now_ms, id="orders", classes="panel")
        yield Banner(store, id="banner")
        yield StatusBar(store, self.app.clock, id="status")
        yield Footer()

    def on_mount(self) -> None:
        for wid, title in TITLES.items():
            self.query_one(f"#{wid}").border_title = title
        self.set_class(self.app.size.height < COMPACT_BELOW_ROWS, "-compact")
        self.query_one(WatchlistTable).focus()
        dirty = Dirty()
        dirty.everything()
        self.apply_dirty(dirty)
        self.ready = True

    def on_unmount(self) -> None:
        self.ready = False

    # --- panels --------------------------------------------------------------------------------

    @property
    def watchlist(self) -> WatchlistTable:
        return self.query_one(WatchlistTable)

    @property
    def orders(self) -> OrdersTable:
        return self.query_one(OrdersTable)

    @property
    def positions(self) -> PositionsTable:
        return self.query_one(PositionsTable)

    @property
    def surge(self) -> SurgeTable:
        return self.query_one(SurgeTable)

    def selected_code(self) -> str | None:
        """The code of the focused panel's row, else the watchlist's."""
        focused = self.focused
        if isinstance(focused, StoreTable):
            code = focused.code_at_cursor()
            if code:
                if focused is self.orders:
                    order = self.app.store.orders.get(code)
                    return order.code if order else None
                return code
        return self.watchlist.cursor_key

    def apply_dirty(self, dirty: Dirty) -> None:
        """Push what changed into the widgets (the caller wraps this in ``batch_update``)."""
        store = self.app.store
        wl = self.watchlist
        if dirty.watchlist:
            wl.set_keys(store.watch_rows())
            self.update_subtitles()
        wl.refresh_keys(dirty.quotes)
        pos = self.positions
        if dirty.positions_rows:
            rows = store.position_rows()
            pos.set_keys(rows)
            self.update_subtitles()
        pos.refresh_keys(dirty.positions)
        orders = self.orders
        if dirty.orders_rows:
            orders.set_keys(store.order_rows())
            if store.follow and orders.select_key(store.follow):
                store.follow = ""  # the cursor is on the order just placed from here
        orders.refresh_keys(dirty.orders)
        if dirty.orders_rows or dirty.orders:
            self.update_subtitles()
        if dirty.surge:
            self.surge.rebuild()
            self.update_subtitles()
        if dirty.account:
            self.query_one(AccountLine).update_from_store()
        if dirty.status:
            self.query_one(StatusBar).update_from_store()
            self.query_one(Banner).update_from_store()

    def update_subtitles(self) -> None:
        """Each panel's bottom line: its count, how many rows do not fit, and for Orders the
        selected order's whole reason (also its tooltip)."""
        store = self.app.store
        orders = self.orders
        detail = orders.detail()
        counts = f"{len(store.open_orders())} open / {len(store.orders)} today"
        subtitles = {
            self.watchlist: more(self.watchlist)
            + f"{len(store.watchlist)} codes"
            + (f" {dict(store.SORTS)[store.watch_sort]}" if store.watch_sort else ""),
            self.surge: more(self.surge) + f"{len(store.surge)} alerts",
            self.positions: more(self.positions) + f"{len(self.positions.keys)} held",
            orders: (f"{detail} │ " if detail else "") + more(orders) + counts,
        }
        compact = self.has_class("-compact")
        for table, subtitle in subtitles.items():
            title = TITLES[table.id or ""]
            if table is self.watchlist and store.group:
                title = group_title(store.groups, store.group)
            # Compact panels have no bottom border: the subtitle joins the title.
            new_title = f"{title} · {subtitle}" if compact else title
            new_subtitle = "" if compact else subtitle
            # Setting a border text repaints the whole panel: only when it changed.
            if table.border_title != new_title:
                table.border_title = new_title
            if table.border_subtitle != new_subtitle:
                table.border_subtitle = new_subtitle
        if orders.tooltip != (detail or None):
            orders.tooltip = detail or None

    def on_keyed_table_highlighted(self, message: KeyedTable.Highlighted) -> None:
        self.update_subtitles()

    def on_resize(self) -> None:
        self.set_class(self.size.height < COMPACT_BELOW_ROWS, "-compact")
        footer = self.query(Footer)
        if footer:
            footer.first().compact = self.size.width < 100
        if self.ready:
            self.call_after_refresh(self.update_subtitles)

    def tick(self) -> None:
        """Once a second: the clock, ages, surge flashes and prices turning stale or live."""
        self.query_one(StatusBar).update_from_store()
        self.query_one(Banner).update_from_store()
        store = self.app.store
        now = self.app.now_ms()
        shown = set(self.watchlist.keys) | set(self.positions.keys)
        if store.watch_sort:  # sorted by moving figures: re-sort once a second
            self.watchlist.set_keys(store.watch_rows())
        stale = {code for code in shown if not store.is_live(code, now)}
        changed = stale ^ self._stale
        self._stale = stale
        if changed:
            self.watchlist.refresh_keys(changed)
            self.positions.refresh_keys(changed)
        if store.surge and self.app.now_ms() - store.surge[0][0] < FLASH_MS + 1500:
            self.surge.refresh()  # a flash is ending
        if store.orders:
            self.orders.refresh_column("age")
