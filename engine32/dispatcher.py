"""Runs commands on the Qt thread: gates (ready, halted), risk checks, then the broker.

Every command handed over by the command thread ends in exactly one call of
``respond(taken, reply)``: at once for the quick ones, from the broker's ``done`` callback
for orders, or from :meth:`Dispatcher.expire` when the broker has not answered within
``broker_timeout_s`` (a late answer is then ignored, and logged).
"""

import itertools
import logging
import time
from typing import Any, Callable, Dict, List, Optional

from core.protocol import Command, ProtocolError, make_reply
from core.protocol.errors import (
    BROKER_ERROR,
    HALTED,
    INVALID_ARGUMENT,
    NOT_READY,
    RISK_REJECTED,
)
from core.protocol.events import HALTED as HALTED_STATE
from core.protocol.events import LIMIT, PENDING, READY, STARTING, STOPPING, Order

from .books import Books
from .brokers.base import Broker, ModifyRequest, OrderRequest, Result
from .consumer import Taken
from .risk import OrderIntent, RiskLimits, check_order

log = logging.getLogger("engine32.dispatcher")

#: Commands that place or change orders: refused while halted.
OPENING = ("buy", "sell", "modify")
#: Commands that need a connected broker.
NEEDS_BROKER = ("buy", "sell", "modify", "cancel", "cancel_all", "history")
#: A history request may page through several rate-limited queries: it waits longer.
HISTORY_TIMEOUT_S = 60.0


class EngineStatus:
    """The switches behind ``P:engine`` ``state``."""

    def __init__(self) -> None:
        self.connected = False
        self.halted = False
        self.stopping = False
        self.broker_message = ""

    @property
    def state(self) -> str:
        if self.stopping:
            return STOPPING
        if not self.connected:
            return STARTING
        return HALTED_STATE if self.halted else READY


class Hooks:
    """What the dispatcher needs from the engine (set by :mod:`engine32.app`)."""

    def __init__(
        self,
        respond: Callable[[Taken, Dict[str, Any]], None],
        engine_fields: Callable[[], Dict[str, Any]],
        state_changed: Callable[[], None],
        watchlist_changed: Callable[[], None],
        snapshot: Callable[[], Dict[str, Any]],
        emit: Optional[Callable[[str, Dict[str, Any]], None]] = None,
    ) -> None:
        self.respond = respond
        self.engine_fields = engine_fields
        self.state_changed = state_changed
        self.watchlist_changed = watchlist_changed
        self.snapshot = snapshot
        self.emit = emit or (lambda etype, data: None)


class Job:
    """One command on its way to its one reply; a second answer is refused (and logged)."""

    __slots__ = ("taken", "deadline", "answered")

    def __init__(self, taken: Taken) -> None:
        self.taken = taken
        self.deadline = 0.0  # set while waiting for the broker
        self.answered = False

    @property
    def command(self) -> Optional[Command]:
        return self.taken.command


class Dispatcher:
    def __init__(
        self,
        broker: Broker,
        books: Books,
        limits: RiskLimits,
        status: EngineStatus,
        hooks: Hooks,
        broker_timeout_s: float = 10.0,
    ) -> None:
        self.broker = broker
        self.books = books
        self.limits = limits
        self.status = status
        self.hooks = hooks
        self.broker_timeout_s = broker_timeout_s
        self._pending: Dict[int, Job] = {}
        self._tokens = itertools.count(1)  # placeholder order ids
        self.handled = 0
        self._handlers: Dict[str, Callable[[Taken, Command], None]] = {
            "ping": self._ping,
            "buy": self._place,
            "sell": self._place,
            "cancel": self._cancel,
            "modify": self._modify,
            "cancel_all": self._cancel_all,
            "snapshot": self._snapshot,
            "halt": self._halt,
            "resume": self._resume,
            "history": self._history,
        }

    def register(self, cmd: str, handler: Callable[[Command], Any]) -> None:
        """Add a command answered at once on the Qt thread (e.g. from :mod:`engine32.depth`):
        ``handler(command)`` returns the result, or raises :class:`ProtocolError`."""

        def run(job: Job, command: Command) -> None:
            try:
                result = handler(command)
            except ProtocolError as exc:
                self._fail(job, exc)
                return
            self._ok(job, result)

        self._handlers[cmd] = run

    @property
    def in_flight(self) -> int:
        """Commands waiting for the broker."""
        return len(self._pending)

    # -- entry -----------------------------------------------------------------------------
    def handle(self, taken: Taken) -> None:
        self.handled += 1
        job = Job(taken)
        if taken.command is None:
            self._answer(job, taken.reply or {})
            return
        command = taken.command
        try:
            refusal = self._gate(command)
            if refusal is not None:
                self._fail(job, refusal)
                return
            self._handlers[command.cmd](job, command)
        except Exception as exc:  # noqa: BLE001 - a bug answers the command, never kills the loop
            log.exception("command %s (%s) failed", command.cmd, command.id)
            self._fail(job, ProtocolError(BROKER_ERROR, "engine error: {}".format(exc)))

    def _gate(self, command: Command) -> Optional[ProtocolError]:
        if command.cmd in NEEDS_BROKER:
            if self.status.stopping:
                return ProtocolError(NOT_READY, "the engine is stopping; no new orders")
            if not self.status.connected:
                why = self.status.broker_message or "connecting and reconciling"
                return ProtocolError(NOT_READY, "the broker is not ready yet ({})".format(why))
        if command.cmd in OPENING and self.status.halted:
            return ProtocolError(
                HALTED, "trading is halted (kill switch); send resume to allow new orders"
            )
        return None

    # -- answering ---------------------------------------------------------------------------
    def _answer(self, job: Job, reply: Dict[str, Any]) -> None:
        if job.answered:
            log.warning("second answer to %s ignored: %s", job.command, reply.get("error") or "ok")
            return
        job.answered = True
        self._pending.pop(id(job), None)
        self.hooks.respond(job.taken, reply)

    def _ok(self, job: Job, result: Any) -> None:
        command = job.command
        assert command is not None
        self._answer(job, make_reply(command.id, command.cmd, result=result))

    def _fail(self, job: Job, error: ProtocolError) -> None:
        command = job.command
        cmd_id = command.id if command is not None else None
        cmd = command.cmd if command is not None else None
        self._answer(job, make_reply(cmd_id, cmd, error=error))

    def _wait_broker(
        self, job: Job, timeout_s: Optional[float] = None
    ) -> Callable[[Callable[[], None]], bool]:
        """Register a command that waits for the broker; returns ``finish(answer)`` which runs
        ``answer`` unless the command was answered already (timed out: returns False)."""
        job.deadline = time.monotonic() + (timeout_s or self.broker_timeout_s)
        self._pending[id(job)] = job

        def finish(answer: Callable[[], None]) -> bool:
            if job.answered:
                log.warning("late broker answer for %s ignored (already answered)", job.command)
                return False
            answer()
            return True

        return finish

    def expire(self, now: Optional[float] = None) -> int:
        """Answer BROKER_ERROR to commands the broker left unanswered too long."""
        now = time.monotonic() if now is None else now
        late = [job for job in self._pending.values() if job.deadline <= now]
        for job in late:
            self._fail(
                job,
                ProtocolError(
                    BROKER_ERROR,
                    "no answer from the broker within {:g} s; check the orders before "
                    "resending".format(self.broker_timeout_s),
                ),
            )
        return len(late)

    def _broker_done(self, job: Job, shape: Callable[[dict], Any]) -> Callable[[Result], None]:
        finish = self._wait_broker(job)

        def done(result: Result) -> None:
            def answer() -> None:
                if result.ok:
                    self._ok(job, shape(result.value or {}))
                else:
                    self._fail(
                        job,
                        ProtocolError(
                            result.error_code or BROKER_ERROR, result.message or "broker refused"
                        ),
                    )

            finish(answer)

        return done

    # -- commands ----------------------------------------------------------------------------
    def _ping(self, job: Job, command: Command) -> None:
        self._ok(job, self.hooks.engine_fields())

    def _place(self, job: Job, command: Command) -> None:
        assert command.code is not None and command.qty is not None
        code = command.code
        price = command.price or 0
        intent = OrderIntent(code, command.side, command.qty, price, command.type)
        venue = command.order_venue
        # The venue first (issue 12): can the broker route there, is the venue's phase open
        # and does it take this kind of order; then the risk limits.
        reason = self.broker.check_venue(code, venue, command.type)
        if not reason:
            exposure = self.books.exposure(code, self.broker.base_price(code))
            reason = check_order(intent, exposure, self.limits)
        if reason:
            log.info("risk rejected %s %s: %s", command.cmd, command.id or "", reason)
            self._fail(job, ProtocolError(RISK_REJECTED, reason))
            return
        # Count the order against the limits until the broker has answered (and its own
        # order events arrive), so two quick orders cannot both slip under a limit.
        placeholder = "~{}".format(next(self._tokens))
        self.books.on_order(
            Order(
                order_id=placeholder,
                code=code,
                side=command.side,
                qty=command.qty,
                price=price,
                kind=command.type,
                cmd_id=command.id or "",
                remaining_qty=command.qty,
                status=PENDING,
                venue=venue,
            )
        )
        inner = self._broker_done(job, lambda v: {"order_id": v.get("order_id")})

        def done(result: Result) -> None:
            provisional = self.books.orders.pop(placeholder, None)
            order_id = (result.value or {}).get("order_id") if result.ok else None
            if order_id and provisional is not None and order_id not in self.books.orders:
                self.books.on_order(provisional.replace(order_id=str(order_id)))
            inner(result)

        request = OrderRequest(
            code, command.side, command.qty, price, command.type, command.id or "", venue
        )
        try:
            self.broker.place_order(request, done)
        except Exception:
            self.books.orders.pop(placeholder, None)
            raise

    def _cancel(self, job: Job, command: Command) -> None:
        assert command.order_id is not None
        known = self.books.orders.get(command.order_id)
        if known is not None and not known.is_open:
            self._fail(
                job,
                ProtocolError(
                    INVALID_ARGUMENT,
                    "order {} is already {}".format(command.order_id, known.status),
                ),
            )
            return
        done = self._broker_done(job, lambda v: {"order_id": command.order_id})
        self.broker.cancel_order(command.order_id, command.id or "", done)

    def _modify(self, job: Job, command: Command) -> None:
        assert command.order_id is not None
        order = self.books.orders.get(command.order_id)
        if order is None or not order.is_open:
            what = "unknown" if order is None else "already {}".format(order.status)
            self._fail(
                job,
                ProtocolError(INVALID_ARGUMENT, "order {} is {}".format(command.order_id, what)),
            )
            return
        remaining = order.remaining_qty or max(order.qty - order.filled_qty, 0)
        intent = OrderIntent(
            order.code,
            order.side,
            command.qty if command.qty is not None else remaining,
            command.price if command.price is not None else order.price,
            LIMIT if command.price is not None else order.kind,
        )
        exposure = self.books.exposure(
            order.code, self.broker.base_price(order.code), excluding=order.order_id
        )
        # The order's venue must still take it now (issue 12), then the risk limits.
        reason = self.broker.check_venue(order.code, order.venue, intent.kind)
        if not reason:
            reason = check_order(intent, exposure, self.limits, new_order=False)
        if reason:
            self._fail(job, ProtocolError(RISK_REJECTED, reason))
            return
        done = self._broker_done(
            job, lambda v: {"order_id": v.get("order_id"), "orig_order_id": order.order_id}
        )
        self.broker.modify_order(
            ModifyRequest(command.order_id, command.qty, command.price, command.id or ""), done
        )

    def _open_order_ids(self, code: Optional[str]) -> List[str]:
        ids = [o.order_id for o in self.books.open_orders(code) if not o.order_id.startswith("~")]
        for order in self.broker.open_orders():
            if (code is None or order.code == code) and order.order_id not in ids:
                ids.append(order.order_id)
        return ids

    def _cancel_many(
        self, job: Job, code: Optional[str], shape: Callable[[int, List[str]], Any]
    ) -> None:
        """Cancel every open order (of ``code``), then answer once all cancels are answered."""
        ids = self._open_order_ids(code)
        if not ids:
            self._ok(job, shape(0, []))
            return
        finish = self._wait_broker(job)
        outcome = {"left": len(ids), "count": 0}
        errors: List[str] = []

        def one_done(order_id: str) -> Callable[[Result], None]:
            def done(result: Result) -> None:
                # Each answer is progress: the cancels go out at the broker's order rate
                # (Kiwoom: 5 a second), so 50 of them take longer than broker_timeout_s.
                job.deadline = time.monotonic() + self.broker_timeout_s
                outcome["left"] -= 1
                if result.ok:
                    outcome["count"] += 1
                else:
                    errors.append("{}: {}".format(order_id, result.message))
                if outcome["left"] == 0:
                    finish(lambda: self._ok(job, shape(outcome["count"], errors)))

            return done

        cmd_id = job.command.id if job.command is not None else ""
        for order_id in ids:
            self.broker.cancel_order(order_id, cmd_id or "", one_done(order_id))

    def _cancel_all(self, job: Job, command: Command) -> None:
        self._cancel_many(job, command.code, lambda n, errs: {"count": n, "errors": errs})

    def _snapshot(self, job: Job, command: Command) -> None:
        self._ok(job, self.hooks.snapshot())

    def _halt(self, job: Job, command: Command) -> None:
        was = self.status.halted
        self.status.halted = True
        if not was:
            log.warning("trading halted by command %s", command.id or "(no id)")
            self.hooks.state_changed()
        if not command.cancel_open:
            self._ok(job, self.hooks.engine_fields())
            return
        if not self.status.connected:
            self._fail(
                job,
                ProtocolError(NOT_READY, "halted, but cannot cancel: the broker is not ready"),
            )
            return

        def shape(count: int, errors: List[str]) -> Dict[str, Any]:
            fields = self.hooks.engine_fields()
            fields["cancelled"] = count
            fields["errors"] = errors
            return fields

        self._cancel_many(job, None, shape)

    def _history(self, job: Job, command: Command) -> None:
        """Past candles from the broker, published as one ``candles`` event (the writer
        stores them); the reply says how many and which span."""
        assert command.code is not None and command.interval and command.count
        code, interval = command.code, command.interval
        finish = self._wait_broker(job, HISTORY_TIMEOUT_S)

        def done(result: Result) -> None:
            def answer() -> None:
                if not result.ok:
                    self._fail(
                        job,
                        ProtocolError(
                            result.error_code or BROKER_ERROR, result.message or "broker refused"
                        ),
                    )
                    return
                value = result.value or {}
                candles = value.get("candles") or []
                source = value.get("source") or self.broker.name
                if candles:
                    self.hooks.emit(
                        "candles",
                        {"code": code, "interval": interval, "source": source, "candles": candles},
                    )
                self._ok(
                    job,
                    {
                        "code": code,
                        "interval": interval,
                        "count": len(candles),
                        "first": candles[0][0] if candles else None,
                        "last": candles[-1][0] if candles else None,
                        "source": source,
                    },
                )

            finish(answer)

        self.broker.history(code, interval, command.count, done)

    def _resume(self, job: Job, command: Command) -> None:
        if self.status.halted:
            self.status.halted = False
            log.warning("trading resumed by command %s", command.id or "(no id)")
            self.hooks.state_changed()
        self._ok(job, self.hooks.engine_fields())
