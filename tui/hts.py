"""The HTS staples in the console: order books, the trade tape and price alerts (issue 13).

- :class:`HtsStore` extends the console's :class:`~tui.state.Store` with the last ``book`` of
  each code, a short tape of trades (from the quotes' ``trade_qty``) of the codes that have a
  book (so the 10,000 quotes/s of other codes cost one dict lookup each) and the fired
  ``alert`` events; the ladder screen reads them at the refresh rate.
- :class:`HtsActions` is mixed into the app: ``o`` opens the ladder (호가창) on the selected
  code, ``p`` the price alerts; a fired alert is notified and rings the bell.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from core.protocol import Envelope
from core.protocol.events import PriceAlert

from .state import Store

if TYPE_CHECKING:
    from .app import KiwoomConsole

#: Trades kept per code for the tape (newest first).
TAPE_KEEP = 60
#: Fired alerts kept in memory.
ALERTS_KEEP = 200


class Trade(NamedTuple):
    """One trade of the tape (``qty`` negative when sell-initiated)."""

    ts: int  # envelope ms
    time: str  # exchange time HHMMSS
    price: int
    qty: int


class HtsStore(Store):
    """The console's store plus books, tapes and fired alerts (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.books: dict[str, dict[str, Any]] = {}
        #: code → envelope ts (ms) of its last book, for the ladder's age and the benchmark.
        self.book_ts: dict[str, int] = {}
        #: Bumped on every change, so a screen repaints only what changed since it last looked.
        self.book_version: dict[str, int] = {}
        self.tape_version: dict[str, int] = {}
        self.tapes: dict[str, deque[Trade]] = {}
        self.alerts_fired: deque[PriceAlert] = deque(maxlen=ALERTS_KEEP)
        self.on_alert: Callable[[PriceAlert], None] | None = None

    def apply(self, env: Envelope) -> list[Any]:
        out = super().apply(env)
        t = env.type
        if t == "quotes":
            books = self.books  # the tape is kept for the codes with a book (a ladder's code)
            if books:
                for item in env.data.get("items") or ():
                    if type(item) is dict and item.get("code") in books and item.get("trade_qty"):
                        self._trade(item, env.ts)
        elif t == "quote":
            if env.data.get("code") in self.books and env.data.get("trade_qty"):
                self._trade(env.data, env.ts)
        elif t == "book":
            self.set_book(env.data, env.ts)
        elif t == "alert":
            try:
                alert = PriceAlert.from_dict(env.data)
            except TypeError:
                return out
            self.alerts_fired.appendleft(alert)
            self._learn_name(alert.code, alert.name)
            if self.on_alert is not None:
                self.on_alert(alert)
        return out

    def set_book(self, data: dict[str, Any], ts_ms: int) -> None:
        code = data.get("code")
        if not isinstance(code, str) or not isinstance(data.get("asks"), list):
            return
        self.books[code] = data
        self.book_ts[code] = ts_ms
        self.book_version[code] = self.book_version.get(code, 0) + 1

    def _trade(self, q: dict[str, Any], ts_ms: int) -> None:
        code = q.get("code")
        price = q.get("price")
        qty = q.get("trade_qty")
        if not isinstance(code, str) or not isinstance(price, int) or not isinstance(qty, int):
            return
        tape = self.tapes.get(code)
        if tape is None:
            tape = self.tapes[code] = deque(maxlen=TAPE_KEEP)
        tape.appendleft(Trade(ts_ms, str(q.get("time") or ""), price, qty))
        self.tape_version[code] = self.tape_version.get(code, 0) + 1


class HtsActions:
    """App actions for the ladder and the alerts (mixed into :class:`tui.app.KiwoomConsole`)."""

    def install_hts(self: KiwoomConsole) -> None:
        store = self.store
        if isinstance(store, HtsStore):
            store.on_alert = self.alert_fired

    def alert_fired(self: KiwoomConsole, alert: PriceAlert) -> None:
        if self.cfg.tui.bell:
            self.bell()
        name = alert.name or self.store.name_of(alert.code)
        self.notify(
            f"{alert.code} {name}: {alert.message}",
            title="Price alert",
            severity="warning",
            timeout=10,
        )
        from .screens.alerts import AlertsScreen

        if isinstance(self.screen, AlertsScreen):  # the list on screen shows it fired
            self.screen.run_worker(self.screen.reload(), group="alerts")

    def action_ladder(self: KiwoomConsole) -> None:
        from .screens.ladder import LadderScreen

        code = self.main.selected_code()
        if not code:
            self.notify("Select a code first.", severity="warning")
            return
        self.push_screen(LadderScreen(code))

    def action_alerts(self: KiwoomConsole) -> None:
        from .screens.alerts import AlertsScreen

        code = self.main.selected_code() or ""
        self.push_screen(AlertsScreen(code))
