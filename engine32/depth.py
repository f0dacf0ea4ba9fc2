"""The HTS staples in the engine: the book set (호가창 streams) and the trader's price alerts.

- ``book_subscribe`` / ``book_unsubscribe`` keep a set of codes apart from the quote watchlist
  (books cost the broker more: OCX screens, REST items). The set is kept in
  ``P:state:book_codes`` and read back at start, so it survives a restart as the watchlist does.
- The broker's books (``on_book``) are coalesced per code until the quote flush: only the last
  book of a code per flush becomes a ``book`` event on ``P:ev:book`` and ``P:state:book``
  (droppable while Redis is away, like quote batches; the writer never stores them).
- ``alert_add`` / ``alert_remove`` manage :class:`~engine32.alerts.PriceAlerts`, kept in
  ``P:state:alerts`` (read back at start too); an alert that fires becomes one ``alert`` event
  on ``P:ev:alert``, which the writer stores.

Everything here runs on the Qt thread, called by :class:`engine32.app.Engine`.
"""

import json
import logging
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Sequence

from core.protocol import Command, ProtocolError
from core.protocol.errors import INVALID_ARGUMENT
from core.protocol.events import ABOVE, BELOW, CHANGE_PCT, Book, Quote

from .alerts import PriceAlerts, TooManyAlerts, describe
from .publisher import Event, Op, Writes, dumps

if TYPE_CHECKING:  # pragma: no cover
    from .app import Engine
    from .dispatcher import Dispatcher

log = logging.getLogger("engine32.depth")

#: Codes on the book set at most (each costs the broker a real-time slot).
MAX_BOOK_CODES = 100


class KeptState(NamedTuple):
    """What a previous run left in Redis for this one: the book set and the alerts."""

    book_codes: List[str]
    alerts: List[Dict[str, Any]]


def read_kept(client: Any, keys: Any) -> KeptState:
    """Read ``P:state:book_codes`` and ``P:state:alerts`` (a synchronous redis-py client, at
    start, before the Qt loop runs); unreadable entries are skipped."""
    codes = [
        c.decode() if isinstance(c, bytes) else str(c)
        for c in client.lrange(keys.state_book_codes, 0, -1)
    ]
    alerts: List[Dict[str, Any]] = []
    for raw in client.hvals(keys.state_alerts):
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if isinstance(data, dict):
            alerts.append(data)
    return KeptState(codes, alerts)


class MarketDepth:
    """The book set, the pending books of this flush, and the alerts (see the module doc)."""

    def __init__(self, engine: "Engine", kept: Optional[KeptState] = None) -> None:
        self.engine = engine
        self.keys = engine.keys
        self.book_codes: List[str] = []
        self.pending: Dict[str, Book] = {}
        self.last: Dict[str, Book] = {}
        self.alerts = PriceAlerts()
        if kept is not None:
            self.book_codes = list(dict.fromkeys(kept.book_codes))[:MAX_BOOK_CODES]
            n = self.alerts.load(kept.alerts)
            if n or self.book_codes:
                log.info(
                    "kept from the last run: %d book code(s), %d alert(s)", len(self.book_codes), n
                )

    def register(self, dispatcher: "Dispatcher") -> None:
        dispatcher.register("book_subscribe", self._book_subscribe)
        dispatcher.register("book_unsubscribe", self._book_unsubscribe)
        dispatcher.register("alert_add", self._alert_add)
        dispatcher.register("alert_remove", self._alert_remove)

    # -- broker events -----------------------------------------------------------------------
    def on_connected(self) -> None:
        """The broker (re)connected: ask again for the books and the alerted codes' quotes."""
        if self.book_codes:
            self.engine.broker.subscribe_book(list(self.book_codes))
        self._watch(self.alerts.active_codes())

    def on_book(self, book: Book) -> None:
        if book.code in self.last or book.code in self.book_codes:
            self.pending[book.code] = book  # the last book per code per flush wins

    def on_quote(self, quote: Quote) -> None:
        for alert in self.alerts.check(quote):
            data = alert.to_dict()
            log.info("price alert %s fired: %s", alert.alert_id, alert.message)
            self.engine.emit(
                "alert", data, [("HSET", self.keys.state_alerts, alert.alert_id, dumps(data))]
            )

    def flush(self) -> None:
        """At the quote flush: one ``book`` event per code that got a book since the last."""
        if not self.pending:
            return
        books, self.pending = self.pending, {}
        engine = self.engine
        for code, book in books.items():
            if code not in self.book_codes:
                continue
            self.last[code] = book
            data = book.to_dict()
            event = Event(
                engine._envelope("book", data),
                [("HSET", self.keys.state_book, code, dumps(data))],
            )
            event.droppable = True  # like quote batches: the first to go while Redis is away
            event.weight = 0
            engine.publisher.put(event)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot_ops(self) -> List[Op]:
        e = self.engine
        ops: List[Op] = []
        ops += e._replace_list(self.keys.state_book_codes, self.book_codes)
        ops += e._replace_hash(
            self.keys.state_book, {c: dumps(b.to_dict()) for c, b in self.last.items()}
        )
        ops += e._replace_hash(
            self.keys.state_alerts,
            {i: dumps(a.to_dict()) for i, a in self.alerts.alerts.items()},
        )
        return ops

    # -- commands (answered at once by the dispatcher) ---------------------------------------
    def _book_subscribe(self, command: Command) -> Dict[str, Any]:
        added = [c for c in command.codes if c not in self.book_codes]
        if len(self.book_codes) + len(added) > MAX_BOOK_CODES:
            raise ProtocolError(
                INVALID_ARGUMENT,
                "the book set holds at most {} codes ({} now, {} more asked); "
                "book_unsubscribe some first".format(
                    MAX_BOOK_CODES, len(self.book_codes), len(added)
                ),
                field="codes",
            )
        if added:
            self.book_codes.extend(added)
            if self.engine.status.connected:
                self.engine.broker.subscribe_book(added)
            self._publish_codes()
        return {"books": list(self.book_codes), "added": added}

    def _book_unsubscribe(self, command: Command) -> Dict[str, Any]:
        gone = [c for c in command.codes if c in self.book_codes]
        if gone:
            self.book_codes = [c for c in self.book_codes if c not in gone]
            if self.engine.status.connected:
                self.engine.broker.unsubscribe_book(gone)
            ops: List[Op] = [("HDEL", self.keys.state_book) + tuple(gone)]
            for code in gone:
                self.last.pop(code, None)
                self.pending.pop(code, None)
            self.engine.publisher.put(Writes(ops))
            self._publish_codes()
        return {"books": list(self.book_codes), "removed": gone}

    def _alert_add(self, command: Command) -> Dict[str, Any]:
        assert command.code is not None
        if command.above is not None:
            condition, threshold = ABOVE, float(command.above)
        elif command.below is not None:
            condition, threshold = BELOW, float(command.below)
        else:
            assert command.change_pct is not None
            condition, threshold = CHANGE_PCT, command.change_pct
        try:
            alert = self.alerts.add(
                command.code, condition, threshold, self.engine._name(command.code)
            )
        except TooManyAlerts as exc:
            raise ProtocolError(INVALID_ARGUMENT, str(exc)) from None
        data = alert.to_dict()
        self.engine.publisher.put(
            Writes([("HSET", self.keys.state_alerts, alert.alert_id, dumps(data))])
        )
        watching = self._watch([command.code])
        log.info("price alert %s set: %s", alert.alert_id, describe(alert))
        return {"alert_id": alert.alert_id, "alert": data, "watchlist_added": watching}

    def _alert_remove(self, command: Command) -> Dict[str, Any]:
        assert command.alert_id is not None
        alert = self.alerts.remove(command.alert_id)
        if alert is None:
            raise ProtocolError(
                INVALID_ARGUMENT,
                "no alert {} (see P:state:alerts for the alerts kept)".format(command.alert_id),
                field="alert_id",
            )
        self.engine.publisher.put(Writes([("HDEL", self.keys.state_alerts, command.alert_id)]))
        return {"alert_id": alert.alert_id, "removed": alert.to_dict()}

    # -- helpers -----------------------------------------------------------------------------
    def _publish_codes(self) -> None:
        self.engine.publisher.put(
            Writes(self.engine._replace_list(self.keys.state_book_codes, self.book_codes))
        )

    def _watch(self, codes: Sequence[str]) -> List[str]:
        """An alert needs the code's quotes: put it on the watchlist (said in the reply)."""
        e = self.engine
        added = e.books.watch(codes)
        if added:
            if e.status.connected:
                e.broker.subscribe(added)
            e.publish_watchlist()
        return added
