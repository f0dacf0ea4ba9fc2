"""The engine side of conditional orders: commands, firing exactly once, recovery, brackets.

The firing path (docs/protocol.md, "Triggers"), all on the Qt thread:

1. a quote crosses an armed trigger (:class:`engine32.triggers.TriggerBook`);
2. the trigger becomes ``firing`` with attempt ``n``: its JSON (holding the exact order
   command) is queued as ``HSET P:state:triggers`` plus a ``trigger`` event;
3. the order is queued *behind it on the same publisher connection* as ``RPUSH P:cmd`` of a
   ``sell``/``buy`` with the deterministic id ``trg-<trigger_id>-<n>``. Redis runs one
   connection's commands in order, so the ``firing`` record is in Redis before the order
   can be taken;
4. the command thread takes it like any client's command: the ``P:seen`` claim, the
   staleness check, the gates and the risk checks, the broker, the reply (``P:reply``,
   ``P:seen``);
5. :meth:`TriggerEngine.on_reply` reads the reply: ``fired`` (with the order id), or back to
   ``armed`` when the order certainly never reached the broker (``STALE``, ``NOT_READY``,
   ``RATE_LIMITED``; ``HALTED`` suspends).

After a crash, a ``firing`` trigger is decided from ``P:seen:trg-<id>-<n>``: a reply there is
read as in step 5; ``running`` (or ``ENGINE_RESTARTED``) means the order may have reached the
broker, so the trigger is ``fired`` with outcome ``unknown`` and is never sent again; nothing
there means the order never left: the stale copy is removed from ``P:cmd`` and the same
command (same id) is pushed again. The ``P:seen`` claim makes a second copy harmless.
"""

import json
import logging
import os
import signal
import time
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from core.protocol import Command, ProtocolError, krx, now_ms
from core.protocol.errors import (
    DUPLICATE,
    ENGINE_RESTARTED,
    HALTED,
    INVALID_ARGUMENT,
    NOT_READY,
    RATE_LIMITED,
    STALE,
)
from core.protocol.events import BUY, REJECTED, Fill, Order, Position
from core.protocol.events import CANCELLED as ORDER_CANCELLED
from core.protocol.triggers import (
    ARMED,
    CANCELLED,
    EXPIRED,
    FIRED,
    FIRING,
    POSITION,
    STOP,
    SUSPENDED,
    TAKE_PROFIT,
    TRAILING,
    end_of_day_ms,
    fire_cmd_id,
    parse_fire_cmd_id,
)

from .triggers import ALWAYS, Trigger, TriggerBook, new_trigger_id, prices_of

log = logging.getLogger("engine32.triggers")

#: Replies that prove the order never reached the broker: the trigger is armed again.
RETRY_CODES = (STALE, NOT_READY, RATE_LIMITED)
#: Orders a trigger may send before it gives up (each refused with a RETRY_CODES error).
MAX_ATTEMPTS = 5
#: Test hook: ``KC_TRIGGER_CRASH_AT=<step>`` kills the engine (SIGKILL) at that step of a
#: firing: before_firing, after_firing, after_send, after_answer. Never set in production.
CRASH_ENV = "KC_TRIGGER_CRASH_AT"
RUNNING = b"running"


class TriggerSettings(NamedTuple):
    """Config ``[triggers]`` (config.toml says what each means)."""

    price_source: str = "last"
    max_quote_age_ms: int = 5000
    auction: str = "limit"
    marketable_ticks: int = 5
    on_resume: str = "ask"
    flush_ms: int = 1000
    order_ttl_ms: int = 60000
    keep_final_s: int = 86400

    @classmethod
    def from_config(cls, config: Any) -> "TriggerSettings":
        try:
            section = config.section("triggers")
        except (AttributeError, KeyError):
            return cls()
        return cls(**{k: v for k, v in section.items() if k in cls._fields})


def _crash_point(step: str, before: Optional[Callable[[], Any]] = None) -> None:
    if os.environ.get(CRASH_ENV) != step:
        return
    if before is not None:
        before()
    log.critical("test crash point %s: killing the engine", step)
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    time.sleep(5)  # pragma: no cover - the signal ends the process


#: Trailing marks per ``trigger_marks`` event (bounds one event's size).
MARKS_PER_EVENT = 500


def _take_saved_mark(trigger: Trigger, saved: Any) -> None:
    """Apply a mark from ``P:state:trigger_marks`` if it is further than the JSON's (higher
    for a sell trailing stop, lower for a buy one): the marks are saved more often."""
    if trigger.kind != TRAILING or saved is None:
        return
    try:
        mark = int(saved)
    except (TypeError, ValueError):
        log.error("unreadable trailing mark %r of trigger %s; the JSON's kept", saved, trigger)
        return
    if mark > 0 and (
        trigger.mark <= 0 or (mark > trigger.mark if trigger.down else mark < trigger.mark)
    ):
        trigger.mark = mark
        trigger.update_level()


def _trigger_orders(raw_orders: Iterable[Any]) -> Dict[str, str]:
    """cmd_id → order_id of the trigger orders (``trg-…``) in ``P:state:orders`` as the
    previous run left it: which in-flight orders the broker had accepted before a crash."""
    found: Dict[str, str] = {}
    for text in raw_orders:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        cmd_id, order_id = data.get("cmd_id"), data.get("order_id")
        if isinstance(cmd_id, str) and cmd_id.startswith("trg-") and isinstance(order_id, str):
            found[cmd_id] = order_id
    return found


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class TriggerEngine:
    """Owns the :class:`TriggerBook`; the engine calls its hooks on the Qt thread."""

    def __init__(self, engine: Any, redis_url: str) -> None:
        self.engine = engine
        self.keys = engine.keys
        self.books = engine.books
        self.status = engine.status
        self.settings = TriggerSettings.from_config(engine.config)
        self.redis_url = redis_url
        self.book = TriggerBook()
        #: Codes with live (not final) triggers → their ids: ``code in codes`` is the one
        #: test the quote path makes for every quote.
        self.codes: Dict[str, Set[str]] = {}
        #: code → an object with ``lo`` and ``hi``: the engine hands a quote of ``code`` to
        #: :meth:`on_quote` only if its last price is <= lo or >= hi (the code's index; while
        #: halted, ALWAYS for codes with suspended triggers). The O(1) test of the quote path.
        self.filters: Dict[str, Any] = {}
        #: with price_source "quote_side" the filter on the last price is not enough
        self.every_quote = self.settings.price_source == "quote_side"
        self.loaded = False
        #: cmd_id → order_id of trigger orders the previous run saw accepted (see load)
        self._orders_before: Dict[str, str] = {}
        self._recovered = False
        self._was_halted = False
        self.fired_count = 0
        #: order id of a modified bracket buy → the buy's command id (its legs' ``parent``)
        self._aliases: Dict[str, str] = {}

    # -- start: load and recover -------------------------------------------------------------
    def _client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=2)

    def load(self) -> None:
        """Read ``P:state:triggers`` (before the engine takes commands)."""
        try:
            client = self._client()
            try:
                raw = client.hgetall(self.keys.state_triggers)
                marks = client.hgetall(self.keys.state_trigger_marks)
                orders = client.hvals(self.keys.state_orders) if raw else []
            finally:
                client.close()
        except Exception as exc:  # noqa: BLE001 - Redis away: retried when the broker connects
            log.warning(
                "cannot read %s yet (%s); triggers load later", self.keys.state_triggers, exc
            )
            return
        for tid, text in raw.items():
            try:
                data = json.loads(text)
                trigger = Trigger.from_dict(data)
            except (ValueError, TypeError) as exc:
                log.error("unreadable trigger %r in Redis (%s); left out", tid, exc)
                continue
            _take_saved_mark(trigger, marks.get(tid))
            if trigger.status == SUSPENDED:
                trigger.status = ARMED  # a new run is not halted
                trigger.reason = "re-armed after an engine restart"
            self.book.add(trigger)
            self._track(trigger)
        self._orders_before = _trigger_orders(orders)
        self.loaded = True
        if raw:
            log.info(
                "loaded %d trigger(s), %d armed, %d firing",
                len(self.book),
                len(self.book.armed()),
                sum(1 for t in self.book.all.values() if t.status == FIRING),
            )

    def on_connection(self, connected: bool) -> None:
        if not connected:
            return
        if not self.loaded:
            self.load()
        if self.loaded and not self._recovered:
            self._recovered = True
            self.recover()

    def recover(self) -> None:
        """Decide every trigger left ``firing`` by a previous run from ``P:seen``."""
        firing = [t for t in self.book.all.values() if t.status == FIRING]
        if not firing:
            return
        client = self._client()
        try:
            for t in firing:
                removed = client.lrem(self.keys.cmd, 0, t.cmd_text) if t.cmd_text else 0
                seen = client.get(self.keys.seen(t.cmd_id)) if t.cmd_id else None
                if removed or seen is None:
                    log.warning(
                        "trigger %s was firing at a crash and its order %s never left: sending it again",
                        t.trigger_id,
                        t.cmd_id,
                    )
                    self._push(t, restamp=True)
                elif seen == RUNNING:
                    self._fired(
                        t,
                        "",
                        "unknown",
                        "the engine stopped while its order was in "
                        "flight; check orders before acting",
                    )
                else:
                    try:
                        reply = json.loads(seen)
                    except ValueError:
                        reply = {"ok": False, "error": {"code": ENGINE_RESTARTED, "message": "?"}}
                    self.on_reply(reply, recovering=True)
        finally:
            client.close()

    # -- state out ---------------------------------------------------------------------------
    def publish(self, t: Trigger) -> None:
        t.updated_ts = now_ms()
        data = t.to_dict()
        ops: List[Tuple[Any, ...]] = [
            ("HSET", self.keys.state_triggers, t.trigger_id, _dumps(data))
        ]
        if t.kind == TRAILING and t.is_final:
            ops.append(("HDEL", self.keys.state_trigger_marks, t.trigger_id))
        self.engine.emit("trigger", data, ops)

    def publish_marks(self, moved: List[Trigger]) -> None:
        """Trailing marks that moved since the last flush, in one compact ``trigger_marks``
        event per MARKS_PER_EVENT and one HSET of ``P:state:trigger_marks`` (trigger_id →
        mark): a few µs per trigger where a full ``trigger`` event costs ~20 (the JSON of
        every field, twice). :meth:`load` takes the further of that mark and the JSON's."""
        for i in range(0, len(moved), MARKS_PER_EVENT):
            part = moved[i : i + MARKS_PER_EVENT]
            rows = []
            flat: List[Any] = ["HSET", self.keys.state_trigger_marks]
            for t in part:
                rows.append([t.trigger_id, t.mark, t.wire_level()])
                flat.append(t.trigger_id)
                flat.append(t.mark)
            self.engine.emit("trigger_marks", {"marks": rows}, [tuple(flat)])

    def snapshot_ops(self) -> List[Tuple[Any, ...]]:
        """Writes that replace ``P:state:triggers`` (only once loaded: never wipe it); the
        JSON then holds every mark, so ``P:state:trigger_marks`` goes."""
        if not self.loaded:
            return []
        key = self.keys.state_triggers
        if not self.book.all:
            return [("DEL", key), ("DEL", self.keys.state_trigger_marks)]
        flat: List[Any] = ["HSET", key + ":tmp"]
        for tid, t in self.book.all.items():
            flat.extend((tid, _dumps(t.to_dict())))
        return [
            ("DEL", key + ":tmp"),
            tuple(flat),
            ("RENAME", key + ":tmp", key),
            ("DEL", self.keys.state_trigger_marks),
        ]

    def _track(self, t: Trigger) -> None:
        """Keep :attr:`codes` in step with a trigger's status."""
        ids = self.codes.get(t.code)
        if t.is_final:
            if ids is not None:
                ids.discard(t.trigger_id)
                if not ids:
                    del self.codes[t.code]
        elif ids is None:
            self.codes[t.code] = {t.trigger_id}
        else:
            ids.add(t.trigger_id)
        self._refresh_filter(t.code)

    def _refresh_filter(self, code: str) -> None:
        if self.status.halted:
            found: Any = ALWAYS if code in self.codes else None
        else:
            found = self.book._armed.get(code)
            if found is not None and self.every_quote:
                found = ALWAYS  # bid/ask decide: the last price says nothing
        if found is None:
            self.filters.pop(code, None)
        else:
            self.filters[code] = found

    def _set(self, t: Trigger, status: str, reason: str = "") -> None:
        if t.status == ARMED and status != ARMED:
            self.book.disarm(t)
        t.status = status
        t.reason = reason
        if status == ARMED:
            self.book.arm(t)
        self._track(t)
        self.publish(t)

    # -- the quote path ----------------------------------------------------------------------
    def on_quote(self, quote: Any, band: Any = None) -> None:
        """Called only for a quote outside its code's filter ``band`` (the engine tests that
        first): it may move trailing marks or cross a trigger."""
        code = quote.code
        if self.every_quote:
            sell_px, buy_px = prices_of(quote, self.settings.price_source)
        else:  # the last trade price for both sides
            sell_px = buy_px = quote.price
        if self.status.halted:
            self._note_halt_crossings(code, sell_px, buy_px)
            return
        crossed = self.book.on_price(code, sell_px, buy_px, None if band is ALWAYS else band)
        if crossed and self.status.connected and not self.status.halted:
            stale = self._stale_by_exchange_time(quote)
            if stale:
                for t in crossed:
                    if t.reason != stale:
                        t.reason = stale
                        self.publish(t)
                return
            for t in crossed:
                if t.status == ARMED:
                    self._fire(t, sell_px if t.side == "sell" else buy_px)

    def _note_halt_crossings(self, code: str, sell_px: int, buy_px: int) -> None:
        """While halted: trailing marks keep following the price (a halt stops sending, not
        watching: the stop still locks in the gain made meanwhile), and each suspended
        trigger remembers whether a quote crossed it (for resume)."""
        for tid in self.codes.get(code, ()):
            t = self.book.get(tid)
            if t is None or t.status != SUSPENDED:
                continue
            px = sell_px if t.side == "sell" else buy_px
            if t.kind == TRAILING and t.move_mark(px):
                self.book.marks_moved.append(t)
            if not t.halt_crossed and t.crossed(px):
                t.halt_crossed = True

    def _stale_by_exchange_time(self, quote: Any) -> str:
        """Why a live quote is too old to fire anything ('' when fresh): its exchange time
        (HHMMSS, KST) against the engine's clock, one second of truncation allowed. A broker
        feed that lags (a backlog of real-time data) must not fire stops at old prices; keep
        the engine PC's clock synchronised (NTP)."""
        hhmmss = getattr(quote, "time", "")
        if len(hhmmss) != 6 or not hhmmss.isdigit():
            return ""
        now = krx.now_kst()
        then = int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + int(hhmmss[4:])
        age = (now.hour * 3600 + now.minute * 60 + now.second - then) % 86400
        if age >= 43200:  # a little ahead of our clock: treated as fresh
            return ""
        if age * 1000 > self.settings.max_quote_age_ms + 1000:
            return "the quote that crossed is {} s old by its exchange time {} (max {} ms); not fired".format(
                age, hhmmss, self.settings.max_quote_age_ms
            )
        return ""

    def _fresh_prices(self, code: str) -> Optional[Tuple[int, int]]:
        """The last quote's prices, if it is younger than ``max_quote_age_ms``."""
        quote = self.books.quotes.get(code)
        if quote is None or self._stale_by_exchange_time(quote):
            return None
        return prices_of(quote, self.settings.price_source)

    def evaluate(self, t: Trigger) -> bool:
        """Check one armed trigger against the last fresh quote (after add/modify/resume)."""
        prices = self._fresh_prices(t.code)
        if prices is None or t.status != ARMED:
            return False
        px = prices[0] if t.side == "sell" else prices[1]
        if t.crossed(px) and self.status.connected and not self.status.halted:
            self._fire(t, px)
            return True
        return False

    # -- firing ------------------------------------------------------------------------------
    def _sellable(self, t: Trigger) -> Tuple[int, str]:
        """How many shares this trigger's order may have now, and why not more."""
        if t.side == BUY:
            return int(t.qty), ""
        exposure = self.books.exposure(t.code)
        free = exposure.position_qty - exposure.open_sell_qty
        want = exposure.position_qty if t.follows_position else int(t.qty)
        if exposure.position_qty <= 0:
            return 0, "no position in {} to sell".format(t.code)
        qty = min(want, free)
        if qty <= 0:
            return 0, "all {:,} shares held are already offered by open sells".format(
                exposure.position_qty
            )
        return qty, ""

    def _order_price(self, t: Trigger, px: int) -> Tuple[str, int, str]:
        """(type, price, why-not) of the order for a trigger crossing at ``px``."""
        session = self.engine.broker.market_session()
        if session == krx.CLOSED:
            return "", 0, "the market is closed; waiting for it to open"
        order_type = t.order_type
        sell = t.side == "sell"
        if order_type == "limit":
            steps = t.limit_offset_ticks
            price = krx.prev_tick(px, steps) if sell else krx.next_tick(px, steps)
        elif session in (krx.PRE_OPEN, krx.CLOSING_AUCTION):
            # No market orders in a single-price session (KRX 단일가매매): a marketable limit
            # order, or wait for continuous trading (config [triggers] auction).
            if self.settings.auction == "wait":
                return "", 0, "single-price session: waiting for continuous trading"
            steps = self.settings.marketable_ticks
            order_type = "limit"
            price = krx.prev_tick(px, steps) if sell else krx.next_tick(px, steps)
        else:
            return "market", 0, ""
        base = self.engine.broker.base_price(t.code)
        if base > 0:  # the daily price limits cap a limit price (core.protocol.krx.limit_band)
            lower, upper = krx.limit_band(base)
            price = min(max(price, lower), upper)
        return order_type, max(price, 1), ""

    def _partner_firing(self, t: Trigger) -> bool:
        return any(p.status == FIRING for p in self.book.partners(t))

    def _fire(self, t: Trigger, px: int) -> None:
        if self._partner_firing(t):
            return
        qty, why = self._sellable(t)
        if qty <= 0:
            if t.follows_position and "no position" in why:
                self._set(t, CANCELLED, "the position is closed")
            elif t.reason != why:
                t.reason = why
                self.publish(t)
            return
        order_type, price, why = self._order_price(t, px)
        if not order_type:
            if t.reason != why:
                t.reason = why
                self.publish(t)
            return
        _crash_point("before_firing")
        t.attempt += 1
        t.cmd_id = fire_cmd_id(t.trigger_id, t.attempt)
        command: Dict[str, Any] = {
            "id": t.cmd_id,
            "cmd": t.side,
            "code": t.code,
            "qty": qty,
            "type": order_type,
            "client": "trigger",
        }
        if order_type == "limit":
            command["price"] = price
        command["ts"] = self.engine.consumer.server_now_ms()
        command["ttl_ms"] = self.settings.order_ttl_ms
        # The exact text goes into the firing record, so that a recovery can LREM it.
        t.cmd_text = _dumps(command)
        t.fired_price = px
        self._set(
            t,
            FIRING,
            "{} {:,} crossed {:,}: {} {:,} {}".format(
                "bid"
                if self.settings.price_source == "quote_side" and t.side == "sell"
                else "ask"
                if self.settings.price_source == "quote_side"
                else "price",
                px,
                int(t.level),
                t.side,
                qty,
                order_type if order_type == "market" else "limit {:,}".format(price),
            ),
        )
        log.info("trigger %s firing: %s", t.trigger_id, t.reason)
        _crash_point("after_firing", lambda: self.engine.publisher.wait_idle(10))
        self._push(t)

    def _push(self, t: Trigger, restamp: bool = False) -> None:
        """Queue the trigger's order command behind its ``firing`` record (``restamp``:
        a recovery sends it again with a new ``ts``, and records that text first)."""
        from .publisher import Writes

        if restamp:
            command = json.loads(t.cmd_text)
            command["ts"] = self.engine.consumer.server_now_ms()
            t.cmd_text = _dumps(command)
            self.publish(t)
        self.engine.publisher.put(Writes([("RPUSH", self.keys.cmd, t.cmd_text)]))

    # -- replies -----------------------------------------------------------------------------
    def reply_coming(self, reply: Dict[str, Any]) -> None:
        """Just before a reply is written (test crash point ``after_send``)."""
        if parse_fire_cmd_id(reply.get("id")) is not None:
            _crash_point("after_send")

    def on_reply(self, reply: Dict[str, Any], recovering: bool = False) -> None:
        """Every reply the engine writes passes here (trigger orders and bracket buys)."""
        cmd_id = reply.get("id")
        parsed = parse_fire_cmd_id(cmd_id)
        if parsed is None:
            if cmd_id and not reply.get("ok"):
                self._bracket_refused(str(cmd_id), reply)
            return
        if not recovering:
            _crash_point("after_answer", lambda: self.engine.publisher.wait_idle(10))
        tid, attempt = parsed
        t = self.book.get(tid)
        if t is None or attempt != t.attempt:
            log.info("reply to %s for no current trigger attempt; ignored", cmd_id)
            return
        error = reply.get("error") or {}
        code = error.get("code", "")
        if code == DUPLICATE:
            first = reply.get("first")
            if isinstance(first, dict) and first.get("id") == cmd_id:
                self.on_reply(first, recovering=True)
            return  # the first copy's own reply decides
        if t.status not in (FIRING, ARMED) and not (t.status == FIRED and t.outcome == "unknown"):
            return
        if reply.get("ok"):
            result = reply.get("result") or {}
            self._fired(t, str(result.get("order_id") or ""), "sent", "")
            return
        message = error.get("message", "")
        if t.status == FIRED:
            return
        if code == HALTED:
            self._set(t, SUSPENDED, "trading is halted; its order was not sent")
        elif code in RETRY_CODES and t.attempt < MAX_ATTEMPTS:
            self._set(
                t, ARMED, "order {} not sent ({}: {}); armed again".format(cmd_id, code, message)
            )
            self.evaluate(t)
        elif code == ENGINE_RESTARTED:
            self._fired(
                t,
                "",
                "unknown",
                "the engine restarted while its order was in flight; check orders before acting",
            )
        else:
            self._fired(t, "", "error", "its order failed: {}: {}".format(code, message))

    def _fired(self, t: Trigger, order_id: str, outcome: str, reason: str) -> None:
        if outcome == "unknown" and t.cmd_id in self._orders_before:
            # The previous run saw the broker accept it: the order did go out.
            order_id = self._orders_before[t.cmd_id]
            outcome = "sent"
            reason = "order {} was accepted before the engine restarted".format(order_id)
        t.order_id = order_id
        t.outcome = outcome
        if t.status == ARMED:
            self.book.disarm(t)
        if not reason:
            reason = "order {} sent".format(order_id or t.cmd_id)
        t.status = FIRED
        t.reason = reason
        self._track(t)
        self.fired_count += 1
        self.publish(t)
        (log.info if outcome == "sent" else log.warning)(
            "trigger %s fired: %s", t.trigger_id, reason
        )
        for partner in self.book.partners(t):
            self._set(partner, CANCELLED, "OCO partner {} fired".format(t.trigger_id))

    # -- commands ----------------------------------------------------------------------------
    def cmd_add(self, command: Command) -> Dict[str, Any]:
        args = dict(command.args or {})
        now = now_ms()
        t = Trigger(
            trigger_id=new_trigger_id(now),
            code=args["code"],
            side=args["side"],
            qty=args["qty"],
            kind=args["kind"],
            trigger_price=args.get("trigger_price") or 0,
            trail_pct=args.get("trail_pct"),
            trail_ticks=args.get("trail_ticks"),
            order_type=args.get("order_type", "market"),
            limit_offset_ticks=args.get("limit_offset_ticks", 0),
            oco=args.get("oco", ""),
            expires=args.get("expires") or end_of_day_ms(now),
            client=command.client,
            created_ts=now,
        )
        if t.expires <= now:
            raise ProtocolError(INVALID_ARGUMENT, "expires is in the past", field="expires")
        self._add(t)
        return {"trigger_id": t.trigger_id, "status": t.status, "expires": t.expires}

    def _add(self, t: Trigger) -> None:
        if t.kind == TRAILING:
            quote = self.books.quotes.get(t.code)
            if quote is not None:
                sell_px, buy_px = prices_of(quote, self.settings.price_source)
                t.move_mark(sell_px if t.side == "sell" else buy_px)
        t.update_level()
        if self.status.halted:
            t.status = SUSPENDED
            t.reason = "trading is halted"
        self.book.add(t)
        self._track(t)
        self.publish(t)
        self._watch(t.code)
        if t.status == ARMED and t.qty != 0:
            self.evaluate(t)

    def _watch(self, code: str) -> None:
        """A trigger needs quotes: its code joins the watchlist."""
        added = self.books.watch([code])
        if added:
            if self.status.connected:
                self.engine.broker.subscribe(added)
            self.engine.publish_watchlist()

    def _known(self, command: Command) -> Trigger:
        tid = (command.args or {}).get("trigger_id", "")
        t = self.book.get(tid)
        if t is None:
            raise ProtocolError(
                INVALID_ARGUMENT, "unknown trigger {}".format(tid), field="trigger_id"
            )
        if t.is_final:
            raise ProtocolError(
                INVALID_ARGUMENT,
                "trigger {} is already {}".format(tid, t.status),
                field="trigger_id",
            )
        if t.status == FIRING:
            raise ProtocolError(
                INVALID_ARGUMENT,
                "trigger {} is firing (its order {} is on its way); cancel the order "
                "instead".format(tid, t.cmd_id),
                field="trigger_id",
            )
        return t

    def cmd_cancel(self, command: Command) -> Dict[str, Any]:
        t = self._known(command)
        self._set(
            t, CANCELLED, "cancelled by {}".format(command.client or command.id or "a client")
        )
        return {"trigger_id": t.trigger_id, "status": t.status}

    def cmd_modify(self, command: Command) -> Dict[str, Any]:
        t = self._known(command)
        args = command.args or {}
        if "trigger_price" in args:
            if t.kind == TRAILING:
                raise ProtocolError(
                    INVALID_ARGUMENT,
                    "a trailing trigger has no trigger_price",
                    field="trigger_price",
                )
            t.trigger_price = args["trigger_price"]
            t.pct = None
        if "trail_pct" in args or "trail_ticks" in args:
            if t.kind != TRAILING:
                raise ProtocolError(
                    INVALID_ARGUMENT,
                    "trail_pct/trail_ticks are only for trailing triggers",
                    field="trail_pct",
                )
            t.trail_pct = args.get("trail_pct")
            t.trail_ticks = args.get("trail_ticks")
        if "qty" in args:
            if args["qty"] == POSITION and t.side != "sell":
                raise ProtocolError(
                    INVALID_ARGUMENT, 'qty "position" is only for sells', field="qty"
                )
            t.qty = args["qty"]
        if "limit_offset_ticks" in args:
            t.limit_offset_ticks = args["limit_offset_ticks"]
        self.book.changed(t)
        if t.status == SUSPENDED and not self.status.halted:
            self._set(t, ARMED, "modified and armed again")
        else:
            t.reason = "modified"
            self.publish(t)
        self.evaluate(t)
        return {"trigger_id": t.trigger_id, "status": t.status, "trigger": t.to_dict()}

    def cmd_sim_price(self, command: Command) -> Dict[str, Any]:
        set_price = getattr(self.engine.broker, "set_price", None)
        if set_price is None:
            raise ProtocolError(INVALID_ARGUMENT, "sim_price works only with the simulator broker")
        reason = set_price(command.code, command.price)
        if reason:
            raise ProtocolError(INVALID_ARGUMENT, reason)
        return {"code": command.code, "price": command.price}

    # -- brackets on a buy -------------------------------------------------------------------
    def on_command(self, command: Command) -> None:
        """A command is about to run: a ``buy`` with a bracket gets its two OCO triggers,
        armed with quantity 0 until the buy fills."""
        if command.cmd != "buy" or not command.id:
            return
        legs = (
            (STOP, command.stop_loss, command.stop_loss_pct),
            (TAKE_PROFIT, command.take_profit, command.take_profit_pct),
        )
        if all(price is None and pct is None for _, price, pct in legs):
            return
        now = now_ms()
        for kind, price, pct in legs:
            if price is None and pct is None:
                continue
            self._add(
                Trigger(
                    trigger_id=new_trigger_id(now),
                    code=command.code,
                    side="sell",
                    qty=0,
                    kind=kind,
                    trigger_price=price or 0,
                    pct=pct,
                    oco="bkt-" + command.id,
                    expires=end_of_day_ms(now),
                    parent=command.id,
                    client=command.client,
                    reason="waiting for the buy {} to fill".format(command.id),
                    created_ts=now,
                )
            )

    def _bracket_refused(self, cmd_id: str, reply: Dict[str, Any]) -> None:
        legs = [t for t in self.book.by_parent(cmd_id) if not t.is_final]
        for t in legs:
            err = reply.get("error") or {}
            self._set(
                t, CANCELLED, "the buy {} was refused: {}".format(cmd_id, err.get("message", ""))
            )

    def _parent_of(self, order_id: str) -> str:
        alias = self._aliases.get(order_id)
        if alias:
            return alias
        order = self.books.orders.get(order_id)
        return order.cmd_id if order is not None else ""

    def on_fill(self, fill: Fill) -> None:
        if fill.side != BUY or not self.book.parents:
            return
        parent = self._parent_of(fill.order_id)
        if not parent:
            return
        legs = [t for t in self.book.by_parent(parent) if not t.is_final]
        for t in legs:
            if isinstance(t.qty, int):
                t.qty += fill.qty
            if t.pct is not None and not t.trigger_price:
                if t.kind == STOP:
                    t.trigger_price = krx.snap_down(int(fill.price * (100.0 - t.pct) / 100.0))
                else:
                    t.trigger_price = krx.snap_up(int(fill.price * (100.0 + t.pct) / 100.0 + 0.999))
            t.reason = "bracket of buy {}: {:,} filled".format(parent, t.qty)
            self.book.changed(t)
            self.publish(t)

    def on_order(self, order: Order) -> None:
        if order.side != BUY or not self.book.parents:
            return
        if order.orig_order_id and order.order_id not in self._aliases:
            # a modified bracket buy: its new order's fills still grow the bracket
            parent = self._parent_of(order.orig_order_id)
            if parent in self.book.parents:
                self._aliases[order.order_id] = parent
        parent = self._parent_of(order.order_id)
        if order.is_open or parent not in self.book.parents:
            return
        if order.status in (ORDER_CANCELLED, REJECTED) and order.filled_qty == 0:
            if order.reason.startswith("modified"):
                return  # replaced by a modify (the new order keeps the bracket)
            for t in self.book.by_parent(parent):
                if not t.is_final and t.status != FIRING:
                    self._set(
                        t,
                        CANCELLED,
                        "the buy {} ended {} with nothing filled".format(
                            order.cmd_id, order.status
                        ),
                    )

    def on_position(self, position: Position) -> None:
        """A position closed (by hand or otherwise): its sell triggers go."""
        if position.qty != 0:
            return
        for t in self.book.of_code(position.code):
            if t.side == "sell" and not t.is_final and t.status != FIRING and t.qty != 0:
                self._set(t, CANCELLED, "the position in {} is closed".format(position.code))

    # -- halt and resume ---------------------------------------------------------------------
    def on_status(self) -> None:
        halted = self.status.halted
        if halted == self._was_halted:
            return
        self._was_halted = halted
        if halted:
            for t in self.book.armed():
                self._set(t, SUSPENDED, "trading is halted")
            for code in list(self.codes):
                self._refresh_filter(code)
            return
        for code in list(self.filters):
            self._refresh_filter(code)
        for t in [t for t in self.book.all.values() if t.status == SUSPENDED]:
            prices = self._fresh_prices(t.code)
            px = None if prices is None else (prices[0] if t.side == "sell" else prices[1])
            crossed = t.halt_crossed or (px is not None and t.crossed(px))
            t.halt_crossed = False
            if crossed and self.settings.on_resume == "ask":
                t.reason = (
                    "the price crossed {:,} during the halt (now {}); send trigger_modify to "
                    "arm it again (it then fires) or trigger_cancel".format(
                        int(t.level), "{:,}".format(px) if px else "unknown"
                    )
                )
                self.publish(t)
                log.warning("trigger %s: %s", t.trigger_id, t.reason)
                continue
            self._set(t, ARMED, "trading resumed")
            if crossed and px is not None and self.status.connected:
                self._fire(t, px)  # on_resume "fire": at once, at the current price
            else:
                self.evaluate(t)

    # -- the timer: expiry, trailing marks, pruning --------------------------------------------
    def tick(self) -> None:
        now = now_ms()
        for t in list(self.book.all.values()):
            if t.expires and now >= t.expires and t.status in (ARMED, SUSPENDED):
                self._set(t, EXPIRED, "expired")
        moved = self.book.marks_moved
        if moved:
            self.book.marks_moved = []
            live = [t for t in dict.fromkeys(moved) if t.status in (ARMED, SUSPENDED)]
            if live:
                self.publish_marks(live)
        gone = self.book.prune(self.settings.keep_final_s * 1000, now)
        if gone:
            from .publisher import Writes

            self.engine.publisher.put(
                Writes(
                    [
                        ("HDEL", self.keys.state_triggers) + tuple(gone),
                        ("HDEL", self.keys.state_trigger_marks) + tuple(gone),
                    ]
                )
            )
