"""The engine: wires the broker, the books, the dispatcher, the command thread and the
publisher together on the Qt main thread.

Everything here runs on the Qt thread. The command thread and the publisher thread talk to
it only through queued Qt signals (:class:`Bridge`); it talks to them only through the
publisher's buffer and the consumer's stop flag. Each event gets the next ``seq`` here.
"""

import collections
import json
import logging
import os
import socket
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set

from PyQt5.QtCore import QObject, Qt, QTimer, pyqtSignal

from core.config import redact
from core.protocol import Envelope, Keys, new_run_id, now_ms
from core.protocol.events import Account, Book, Fill, LogRecord, Order, Position, Quote, Surge

from . import __version__
from .books import Books
from .brokers import create_broker
from .brokers.base import Broker, BrokerListener, Result
from .consumer import CommandConsumer, Taken
from .depth import KeptState, MarketDepth
from .dispatcher import Dispatcher, EngineStatus, Hooks
from .logsetup import attach_event_handler
from .publisher import Event, Op, Publisher, QuotesEvent, ReplyEvent, Writes, dumps
from .risk import RiskLimits
from .trigger_engine import TriggerEngine
from .watchgroups import WatchGroups
from .watching import Watching

log = logging.getLogger("engine32.app")

SURGE_KEEP = 200
HEARTBEAT_PX = 3000
#: How often the stop sequence checks whether everything is answered (ms), and its limit (s).
STOP_POLL_MS = 20
STOP_LIMIT_S = 15.0


class Bridge(QObject):
    """Queued signals from the worker threads to the Qt thread."""

    taken = pyqtSignal(object)
    reconnected = pyqtSignal()
    log_record = pyqtSignal(object)


def _surge_detector(config: Any) -> Any:
    try:
        from .surge import SurgeDetector
    except ImportError:
        log.warning("engine32.surge is not available: no surge alerts")
        return None
    s = config.surge
    return SurgeDetector(
        s.window_s, s.baseline_s, s.min_change_pct, s.min_volume_ratio, s.cooldown_s
    )


class Engine(BrokerListener):
    """One engine run. :meth:`start` after the Qt application exists; :meth:`request_stop`
    (from a signal handler's flag, on the Qt thread) ends it and calls ``on_stopped(code)``."""

    def __init__(
        self,
        config: Any,
        redis_url: str,
        watchlist: Optional[Sequence[str]] = None,
        broker_factory: Callable[[Any, BrokerListener], Broker] = create_broker,
        on_stopped: Optional[Callable[[int], None]] = None,
        kept: Optional[KeptState] = None,
        groups: Optional[WatchGroups] = None,
    ) -> None:
        self.config = config
        self.keys = Keys(config.redis.prefix)
        self.redis_url = redis_url
        self.run_id = new_run_id()
        self.started_at = now_ms()
        self.seq = 0
        self.on_stopped = on_stopped
        self.status = EngineStatus()
        self.books = Books(
            config.engine.watchlist if watchlist is None else watchlist, groups=groups
        )
        #: The broker's master list (code → name), written to P:state:names; and when.
        self.master_names: Dict[str, str] = {}
        self.master_at = 0
        self._master_asked = False
        self.surge_list: Deque[str] = collections.deque(maxlen=SURGE_KEEP)
        #: Codes streamed for positions and open orders, beyond the watchlist.
        self._streamed: Set[str] = set()
        self._pending_quotes: List[Quote] = []
        self._received = 0
        self._last_error = ""
        self._stop_deadline = 0.0
        self.exit_code = 0  # exitcodes.RESTART when the broker asked for a new process
        engine_cfg = config.engine

        self.bridge = Bridge()
        self.bridge.taken.connect(self._on_taken, Qt.QueuedConnection)
        self.bridge.reconnected.connect(self.republish, Qt.QueuedConnection)
        self.bridge.log_record.connect(self._on_log_record, Qt.QueuedConnection)

        self.publisher = Publisher(
            redis_url,
            self.keys,
            capacity=engine_cfg.publish_buffer,
            stream_maxlen=engine_cfg.stream_maxlen,
            stream_budget_bytes=engine_cfg.stream_budget_mb * 1024 * 1024,
            on_reconnect=self.bridge.reconnected.emit,
        )
        self.consumer = CommandConsumer(
            redis_url,
            self.keys,
            deliver=self._deliver,
            cmd_ttl_ms=engine_cfg.cmd_ttl_ms,
            dedupe_ttl_s=engine_cfg.dedupe_ttl_s,
            max_clock_ahead_ms=engine_cfg.max_clock_ahead_ms,
        )
        self._delivered = 0
        self.publisher.on_removed = self.consumer.removed
        self.broker = broker_factory(config, self)
        self.surge = _surge_detector(config)
        self.dispatcher = Dispatcher(
            self.broker,
            self.books,
            RiskLimits.from_config(config),
            self.status,
            Hooks(
                respond=self.respond,
                engine_fields=self.engine_fields,
                state_changed=self.publish_status,
                watchlist_changed=self.publish_watchlist,
                snapshot=self.snapshot,
                emit=self.emit,
            ),
        )
        self.depth = MarketDepth(self, kept)
        self.depth.register(self.dispatcher)
        self.watching = Watching(self)
        self.watching.register(self.dispatcher)
        self.triggers = TriggerEngine(self, redis_url)
        self._trigger_filters = self.triggers.filters  # the quote path's one test
        for name, run in (
            ("trigger_add", self.triggers.cmd_add),
            ("trigger_cancel", self.triggers.cmd_cancel),
            ("trigger_modify", self.triggers.cmd_modify),
            ("sim_price", self.triggers.cmd_sim_price),
        ):
            self.dispatcher.register(name, run)
        bridge = self.bridge  # the handler keeps the bridge (a QObject) alive as long as itself

        def to_qt_thread(record: logging.LogRecord) -> None:
            bridge.log_record.emit(record)

        self._log_handler = attach_event_handler(to_qt_thread)

        self._timers: List[QTimer] = []
        self._autostart: List[QTimer] = []
        self._flush_timer = self._timer(engine_cfg.quote_flush_ms, self.flush_quotes)
        self._heartbeat_timer = self._timer(engine_cfg.heartbeat_ms, self.heartbeat)
        self._watchdog_timer = self._timer(500, self.dispatcher.expire)
        self._stop_timer = self._timer(STOP_POLL_MS, self._stop_step, start=False)
        self._trigger_timer = self._timer(self.triggers.settings.flush_ms, self.triggers.tick)

    def _timer(self, ms: int, slot: Callable[[], Any], start: bool = True) -> QTimer:
        timer = QTimer()
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        self._timers.append(timer)
        if start:
            self._autostart.append(timer)
        return timer

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        info = self.broker.info()
        log.info(
            "engine %s starting: run %s, broker %s (%s), Redis %s, prefix %s",
            __version__,
            self.run_id,
            info.broker,
            info.mode,
            redact(self.config.redis.url),
            self.keys.prefix,
        )
        self._restore_broker()
        self.publisher.start()
        self.triggers.load()  # before the snapshot below rewrites P:state:triggers
        # A fresh run starts from empty state: the broker's reconciliation fills it again.
        self.publisher.put(Writes(self._snapshot_ops(include_surge=False)))
        self.publish_status()
        self.heartbeat()
        for timer in self._autostart:
            timer.start()
        self.broker.connect()
        self.consumer.start()

    def _restore_broker(self) -> None:
        """A broker that keeps no account of its own (the simulator) takes back what the
        previous run left in ``P:state:*``: a restart must not wipe a paper-trading day."""
        restore = getattr(self.broker, "restore", None)
        if restore is None:
            return
        import redis

        try:
            client = redis.Redis.from_url(
                self.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
            )
            try:
                with client.pipeline(transaction=True) as pipe:
                    pipe.hgetall(self.keys.state_account)
                    pipe.hvals(self.keys.state_positions)
                    pipe.hvals(self.keys.state_orders)
                    account_raw, positions_raw, orders_raw = pipe.execute()
            finally:
                client.close()
        except redis.RedisError as exc:
            log.warning("previous paper account not read (%s): starting afresh", exc)
            return
        account: Dict[str, Any] = {}
        for key, value in account_raw.items():
            try:
                account[key.decode()] = json.loads(value)
            except ValueError:
                account[key.decode()] = value.decode("utf-8", "replace")

        def objects(raw: List[bytes]) -> List[Dict[str, Any]]:
            out = []
            for item in raw:
                try:
                    obj = json.loads(item)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    out.append(obj)
            return out

        if not account and not positions_raw and not orders_raw:
            return
        n = restore(account, objects(positions_raw), objects(orders_raw))
        log.info(
            "paper account taken back from the previous run: cash %s, %d position(s), %d order(s)",
            account.get("cash"),
            len(positions_raw),
            n,
        )

    def request_stop(self) -> None:
        """Stop taking commands, answer those taken, flush, then ``on_stopped(0)``."""
        if self.status.stopping:
            return
        log.info("stopping: no more commands; answering those taken")
        self.status.stopping = True
        self.consumer.stop()
        self.publish_status()
        self._stop_deadline = time.monotonic() + STOP_LIMIT_S
        self._stop_timer.start()

    def _stop_step(self) -> None:
        consumer_done = not self.consumer.is_alive() and self._received == self._delivered
        if (
            consumer_done and self.dispatcher.in_flight == 0
        ) or time.monotonic() > self._stop_deadline:
            if self.dispatcher.in_flight:
                self.dispatcher.expire(float("inf"))
            self._stop_timer.stop()
            self._finish_stop()

    def _finish_stop(self) -> None:
        for timer in self._timers:
            timer.stop()
        self.flush_quotes()
        try:
            self.broker.disconnect()
        except Exception:  # noqa: BLE001 - stopping goes on
            log.exception("broker disconnect failed")
        self.publisher.put(Writes([("DEL", self.keys.engine_alive)]))
        drained = self.publisher.stop(timeout=5.0)
        self.close()
        log.info(
            "stopped (run %s, last seq %d%s)",
            self.run_id,
            self.seq,
            "" if drained else ", unflushed events lost",
        )
        if self.on_stopped is not None:
            self.on_stopped(self.exit_code)

    def close(self) -> None:
        """Stop publishing log records as events (the engine is done)."""
        logging.getLogger("engine32").removeHandler(self._log_handler)

    # -- events ------------------------------------------------------------------------------
    def _envelope(self, etype: str, data: Dict[str, Any]) -> Envelope:
        self.seq += 1
        return Envelope(etype, self.run_id, self.seq, now_ms(), data)

    def emit(self, etype: str, data: Dict[str, Any], state: Sequence[Op] = ()) -> None:
        self.publisher.put(Event(self._envelope(etype, data), state))

    def respond(self, taken: Taken, reply: Dict[str, Any]) -> None:
        remember = self.config.engine.dedupe_ttl_s if taken.remember and reply.get("id") else 0
        self.triggers.reply_coming(reply)
        self.publisher.put(ReplyEvent(self._envelope("reply", reply), taken.raw, remember))
        self.triggers.on_reply(reply)

    def flush_quotes(self) -> None:
        if self._pending_quotes:
            quotes, self._pending_quotes = self._pending_quotes, []
            self.seq += 1
            self.publisher.put(QuotesEvent(self.run_id, self.seq, now_ms(), quotes))
        self.depth.flush()

    def heartbeat(self) -> None:
        fields = self.engine_fields()
        fields.pop("seq", None)  # the publisher writes seq as it writes events
        flat: List[Any] = ["HSET", self.keys.engine]
        for key, value in fields.items():
            flat.extend((key, value))
        item = Writes([("SET", self.keys.engine_alive, now_ms(), "PX", HEARTBEAT_PX), tuple(flat)])
        item.droppable = True
        item.weight = 0
        self.publisher.put(item)

    def engine_fields(self) -> Dict[str, Any]:
        info = self.broker.info()
        last_error = self.publisher.last_error or self.consumer.last_error or self._last_error
        return {
            "run_id": self.run_id,
            "broker": info.broker,
            "mode": info.mode,
            "account": info.account,
            "state": self.status.state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "version": __version__,
            "started_at": self.started_at,
            "prefix": self.keys.prefix,
            "seq": self.seq,
            "commands": self.dispatcher.handled,
            "in_flight": self.dispatcher.in_flight,
            "dropped": self.publisher.dropped_quotes,
            "dropped_events": self.publisher.dropped_events,
            "redis_reconnects": self.publisher.reconnects + self.consumer.reconnects,
            "redis_connected": int(self.publisher.connected),
            "broker_message": self.status.broker_message,
            "last_error": last_error,
            "heartbeat_ms": self.config.engine.heartbeat_ms,
            "session": self.broker.market_session(),
            "session_nxt": self.broker.market_session_nxt(),
            "session_note": self.broker.market_note(),
            "nxt_codes": ",".join(c for c in self.books.watchlist if self.broker.nxt_eligible(c)),
            "watchgroup": self.books.groups.active,
            "names": len(self.master_names),
            "names_at": self.master_at,
        }

    def publish_status(self) -> None:
        self.triggers.on_status()
        fields = self.engine_fields()
        flat: List[Any] = ["HSET", self.keys.engine]
        for key, value in fields.items():
            flat.extend((key, value))
        self.emit("status", fields, [tuple(flat)])

    def publish_watchlist(self) -> None:
        """``P:state:watchlist`` (the active group's codes) and ``P:state:watchgroups``."""
        self.publisher.put(Writes(self._watch_ops()))

    def _watch_ops(self) -> List[Op]:
        ops = self._replace_list(self.keys.state_watchlist, self.books.watchlist)
        ops += self._replace_hash(self.keys.state_watchgroups, self.books.groups.encode())
        return ops

    def snapshot(self) -> Dict[str, Any]:
        """Rewrite every ``P:state:*`` key and ``P:engine`` from the books; say what was written."""
        self.flush_quotes()
        self.publisher.put(Writes(self._snapshot_ops(include_surge=True)))
        return {
            "seq": self.seq,
            "quotes": len(self.books.quotes),
            "positions": len(self.books.positions),
            "orders": len(self.books.orders),
            "surge": len(self.surge_list),
            "watchlist": list(self.books.watchlist),
        }

    def republish(self) -> None:
        """After Redis came back: everything it may have lost."""
        log.warning("republishing snapshots after a Redis reconnect")
        self.snapshot()
        self.publish_status()

    # -- snapshot helpers -------------------------------------------------------------------
    def _replace_hash(self, key: str, mapping: Dict[str, Any]) -> List[Op]:
        """Replace a hash atomically for readers: fill a temporary key, then RENAME."""
        if not mapping:
            return [("DEL", key)]
        tmp = key + ":tmp"
        flat: List[Any] = ["HSET", tmp]
        for field, value in mapping.items():
            flat.extend((field, value))
        return [("DEL", tmp), tuple(flat), ("RENAME", tmp, key)]

    def _replace_list(self, key: str, items: Sequence[str]) -> List[Op]:
        if not items:
            return [("DEL", key)]
        tmp = key + ":tmp"
        return [("DEL", tmp), ("RPUSH", tmp) + tuple(items), ("RENAME", tmp, key)]

    def _snapshot_ops(self, include_surge: bool) -> List[Op]:
        fields = self.engine_fields()
        ops: List[Op] = []
        ops += self._replace_hash(self.keys.engine, fields)
        ops += self._replace_hash(
            self.keys.state_quotes, {c: dumps(q.__dict__) for c, q in self.books.quotes.items()}
        )
        ops += self._replace_hash(
            self.keys.state_positions,
            {c: dumps(p.to_dict()) for c, p in self.books.positions.items()},
        )
        ops += self._replace_hash(
            self.keys.state_orders,
            {i: dumps(o.to_dict()) for i, o in self.books.orders.items() if not i.startswith("~")},
        )
        account = self.books.account.to_dict() if self.books.account is not None else {}
        ops += self._replace_hash(self.keys.state_account, account)
        ops += self._watch_ops()
        if self.master_names:  # kept from the last run until the broker's list replaces it
            ops += self._replace_hash(self.keys.state_names, self.master_names)
        ops += self.depth.snapshot_ops()
        if include_surge and self.surge_list:
            ops += self._replace_list(self.keys.state_surge, list(self.surge_list))
        ops += self.triggers.snapshot_ops()
        return ops

    # -- worker threads → Qt thread --------------------------------------------------------
    def _deliver(self, taken: Taken) -> None:
        """Called on the command thread."""
        self._delivered += 1
        self.bridge.taken.emit(taken)

    def _on_taken(self, taken: Taken) -> None:
        self._received += 1
        if taken.command is not None:
            self.triggers.on_command(taken.command)
        self.dispatcher.handle(taken)

    def _on_log_record(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self._last_error = record.getMessage()[:300]
        payload = LogRecord(record.levelname, record.name, record.getMessage())
        self.emit("log", payload.to_dict())

    # -- BrokerListener (Qt thread) --------------------------------------------------------
    def on_quote(self, quote: Quote) -> None:
        self.books.quotes[quote.code] = quote
        self._pending_quotes.append(quote)
        self.depth.on_quote(quote)
        f = self._trigger_filters.get(quote.code)
        if f is not None and not f.lo < quote.price < f.hi:
            self.triggers.on_quote(quote, f)
        if self.surge is not None:
            code = quote.code
            alert = self.surge.update(
                quote, time.time(), self.broker.base_price(code), self._name(code)
            )
            if alert is not None:
                self._on_surge(alert)

    def _name(self, code: str) -> str:
        name = self.books.names.get(code)
        if name is None:
            name = self.broker.name_of(code)
            self.books.names[code] = name
        return name

    def _on_surge(self, alert: Surge) -> None:
        envelope = self._envelope("surge", alert.to_dict())
        # The stored alert keeps the time it was raised (the event's ts), so a client that
        # rebuilds from P:state:surge shows when each alert happened, not when it rebuilt.
        stored = dict(envelope.data)
        stored["ts"] = envelope.ts
        text = dumps(stored)
        self.surge_list.appendleft(text)
        self.publisher.put(
            Event(
                envelope,
                [
                    ("LPUSH", self.keys.state_surge, text),
                    ("LTRIM", self.keys.state_surge, 0, SURGE_KEEP - 1),
                ],
            )
        )

    def on_condition(self, code: str, name: str, condition: str) -> None:
        """A Kiwoom condition-search hit becomes a surge alert, priced from the last quote."""
        quote = self.books.quotes.get(code)
        self._on_surge(
            Surge(
                code=code,
                price=quote.price if quote is not None else 0,
                change_pct=quote.change_pct if quote is not None else 0.0,
                volume_ratio=0.0,
                window_s=0,
                reason="condition search {!r} matched".format(condition),
                name=name or self._name(code),
            )
        )

    def _keep_streaming(self, code: str) -> None:
        """Held codes and codes with open orders stream quotes whether watched or not (their
        positions and orders need the price); the engine asks the broker once per code."""
        if code in self._streamed or code in self.books.watchlist or not self.status.connected:
            return
        self._streamed.add(code)
        self.broker.subscribe([code])

    def on_order(self, order: Order) -> None:
        self.books.on_order(order)
        if order.is_open:
            self._keep_streaming(order.code)
        data = order.to_dict()
        self.emit("order", data, [("HSET", self.keys.state_orders, order.order_id, dumps(data))])
        self.triggers.on_order(order)

    def on_fill(self, fill: Fill) -> None:
        self.emit("fill", fill.to_dict())
        self.triggers.on_fill(fill)

    def on_position(self, position: Position) -> None:
        self.books.on_position(position)
        if position.qty:
            self._keep_streaming(position.code)
        data = position.to_dict()
        if position.qty == 0:
            state: List[Op] = [("HDEL", self.keys.state_positions, position.code)]
        else:
            state = [("HSET", self.keys.state_positions, position.code, dumps(data))]
        self.emit("position", data, state)
        self.triggers.on_position(position)

    def on_account(self, account: Account) -> None:
        self.books.on_account(account)
        data = account.to_dict()
        flat: List[Any] = ["HSET", self.keys.state_account]
        for key, value in data.items():
            flat.extend((key, value))
        self.emit("account", data, [tuple(flat)])

    def on_connection(self, connected: bool, message: str) -> None:
        was = self.status.connected
        self.status.connected = connected
        self.status.broker_message = message
        if connected and not was:
            log.info("broker ready: %s", message or "connected")
            # Held codes, open orders, triggers and alerts stream whatever group is active.
            self._streamed = self.watching.needed_elsewhere() - set(self.books.watchlist)
            streams = list(dict.fromkeys(list(self.books.watchlist) + list(self._streamed)))
            if streams:
                self.broker.subscribe(streams)
            self.depth.on_connected()
            self.publish_watchlist()
            self._load_master()
        elif was and not connected:
            log.warning("broker connection lost: %s", message)
            self._master_asked = False  # the next connect asks again, whatever became of it
        self.publish_status()
        if connected and not was:
            self.triggers.on_connection(True)

    # -- the broker's master list (P:state:names) ---------------------------------------------
    def _load_master(self) -> None:
        """Ask the broker for its code → name list once the broker is ready (every (re)connect:
        a new day may list new codes); the answer comes later, on the Qt thread."""
        if self._master_asked:
            return
        self._master_asked = True
        self.broker.master_list(self._master_loaded)

    def _master_loaded(self, result: Result) -> None:
        self._master_asked = False
        if not result.ok:
            log.warning("no master list from the broker: %s", result.message)
            return
        listings = (result.value or {}).get("listings") or {}
        names = {code: item.name for code, item in listings.items() if item.name}
        if not names:
            log.warning("the broker's master list is empty; P:state:names left as it was")
            return
        markets: Dict[str, int] = collections.Counter(
            item.market or "other" for item in listings.values()
        )
        log.info(
            "master list: %d codes (%s)",
            len(names),
            ", ".join("{} {}".format(m, n) for m, n in sorted(markets.items())),
        )
        self.master_names = names
        self.master_at = now_ms()
        known = self.books.names
        for code, name in names.items():
            if not known.get(code):  # '' is cached for codes the broker could not name
                known[code] = name
        # One pipeline on the publisher thread: the Qt thread only builds the list.
        self.publisher.put(Writes(self._replace_hash(self.keys.state_names, names)))
        self.publish_status()  # names / names_at: consoles reload the list

    def on_restart_needed(self, words: str) -> None:
        """The broker can only recover in a new process (Kiwoom's -106): stop as on SIGTERM
        (answer what was taken, flush), then exit with exitcodes.RESTART for --supervise."""
        from .exitcodes import RESTART

        log.error("%s: stopping for a new process (exit %d)", words, RESTART)
        self.exit_code = RESTART
        self.request_stop()

    def on_names(self, names: Dict[str, str]) -> None:
        self.books.names.update(names)

    def on_book(self, book: Book) -> None:
        self.depth.on_book(book)
