"""The Textual app: wiring of the store, the feed worker, the refresh timer and the actions."""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from textual.app import App, SystemCommand
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.timer import Timer

from core.bus import Bus, ReplyTimeout, new_command_id
from core.config import Config
from core.protocol import make_command
from core.protocol.errors import ProtocolError
from core.protocol.events import BUY, FILLED, HALTED, OPEN_STATUSES, REJECTED, Fill
from core.protocol.krx import KST, is_valid_code

from .actions import ACTIONS, APP, PALETTE_SCOPES, bindings
from .feed import (
    EngineChanged,
    Feed,
    FeedConnected,
    FeedLost,
    FillEvent,
    OrderEvent,
    ReplyEvent,
    Resynced,
    SurgeEvent,
)
from .hts import HtsActions, HtsStore
from .keymap import effective_keys, load_keymap
from .screens.main import MainScreen
from .state import Store
from .triggers import TriggerActions
from .widgets import fmt

#: Seconds to wait for the engine's reply to a command.
REPLY_TIMEOUT_S = 5.0
#: Matches of a name search offered in the pick list at most (the rest: type more).
PICK_MAX = 30
#: Seconds the console may take to exit after SIGHUP before it is ended hard.
TERMINAL_GONE_GRACE_S = 3.0
#: Textual system commands left out of the palette (their titles start with these).
PALETTE_HIDDEN = ("maximize", "minimize", "screenshot", "save screenshot", "keys", "quit")
#: At most one fill toast per this many seconds; fills in between are summed up in one.
FILL_TOAST_S = 1.0


class KiwoomConsole(TriggerActions, HtsActions, App[None]):
    """``python -m tui``: the trading console. Talks only to Redis (and the database for charts)."""

    CSS_PATH = str(Path(__file__).with_name("theme.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "Kiwoom Console"
    BINDINGS = bindings(APP)
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Callable[[], datetime.datetime] | None = None,
        poll_s: float = 1.0,
        feed: bool = True,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.prefix = cfg.redis.prefix
        self.clock = clock or (lambda: datetime.datetime.now(KST))
        self.frozen = clock is not None
        self.store: Store = HtsStore(cfg.tui.sparkline_s, clock_ms=self.now_ms)
        self.install_hts()
        self.keymap = load_keymap(cfg.tui.keymap)
        self.keys_by_action = effective_keys(self.keymap)
        self.set_keymap(self.keymap)
        self.feed = Feed(self._new_bus, self.store, self.post_message, poll_s=poll_s)
        self._start_feed = feed
        self.cmd_bus: Bus | None = None
        self.my_cmd_ids: set[str] = set()
        #: Command ids whose rejection the trader has been told about (one notification each).
        self._told_rejected: set[str] = set()
        self._pending_fills: list[Fill] = []
        self._last_fill_toast = 0.0
        self._fill_timer: Timer | None = None
        self.flushes = 0
        self.flush_s = 0.0
        #: Every notification shown, newest last (tests and the log read it).
        self.notices: deque[tuple[str, str, str]] = deque(maxlen=200)
        if cfg.tui.theme:
            self.theme = cfg.tui.theme
        fmt.KOREAN_UNITS = bool(cfg.tui.korean_units)

    def notify(
        self, message: str, *, title: str = "", severity: Any = "information", **kw: Any
    ) -> None:
        self.notices.append((str(severity), title, message))
        super().notify(message, title=title, severity=severity, **kw)

    def _new_bus(self) -> Bus:
        return Bus(self.cfg.redis_url_with_auth(), self.prefix)

    def now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    # --- lifecycle ----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen(id="main")

    @property
    def main(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_load(self) -> None:
        # Connect and read the snapshot while Textual is still building the first frame.
        self.cmd_bus = self._new_bus()
        if self._start_feed:
            self.run_worker(self.feed.run(), name="feed", group="feed", exclusive=True)

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.cfg.tui.refresh_hz, self.flush, name="flush")
        if not self.frozen:
            self.set_interval(1.0, self.tick, name="tick")
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._terminal_gone)
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    def _terminal_gone(self) -> None:
        """SSH session or terminal closed: leave at once instead of writing into the void.

        The orderly exit restores a terminal that no longer exists and can block on it, so a
        watchdog ends the process if the exit has not finished within a few seconds.
        """
        watchdog = threading.Timer(TERMINAL_GONE_GRACE_S, os._exit, (129,))
        watchdog.daemon = True
        watchdog.start()
        self.exit(return_code=129)

    async def on_unmount(self) -> None:
        if self.cmd_bus is not None:
            try:
                await self.cmd_bus.close()
            except Exception:  # noqa: BLE001
                pass

    def flush(self) -> None:
        """Repaint what changed since the last flush: at most ``refresh_hz`` times a second."""
        if self.main_hidden():
            return  # kept dirty until the main screen is back (see main_hidden)
        dirty = self.store.take_dirty()
        if not dirty:
            return
        start = time.perf_counter()
        main = self.main
        if not main.ready:
            self.store.dirty.everything()  # composed yet? repaint all on the next flush
            return
        try:
            with self.batch_update():
                main.apply_dirty(dirty)
        except NoMatches:  # the app is shutting down and the panels are gone
            return
        self.flushes += 1
        self.flush_s += time.perf_counter() - start

    def main_hidden(self) -> bool:
        """A full screen (the ladder, a chart) covers the main screen: repainting its hidden
        panels would make Textual lay out and repaint the whole terminal at every flush
        (measured with the ladder open: 88 KiB/s instead of 20). Modal screens leave it seen."""
        return self.screen is not self.main and not isinstance(self.screen, ModalScreen)

    def tick(self) -> None:
        if not self.screen_stack:  # the app is shutting down: its timer may fire once more
            return
        if self.main_hidden():
            return
        if self.main.ready:
            try:
                self.main.tick()
            except NoMatches:
                pass

    # --- feed messages -------------------------------------------------------------------------

    def on_feed_connected(self, message: FeedConnected) -> None:
        self.store.dirty.status = True

    def on_feed_lost(self, message: FeedLost) -> None:
        self.store.dirty.status = True

    def on_resynced(self, message: Resynced) -> None:
        self.run_worker(self.load_triggers(), group="triggers")
        self.flush()  # show the rebuilt view now, not at the next tick
        if message.reason not in ("connect",):
            self.notify(f"View rebuilt from the engine's snapshot ({message.reason}).", timeout=3)

    def on_engine_changed(self, message: EngineChanged) -> None:
        self.store.dirty.status = True

    def on_order_event(self, message: OrderEvent) -> None:
        o = message.order
        if o.status == REJECTED and o.cmd_id not in self.my_cmd_ids:
            self.notify(
                f"{o.side.upper()} {o.code} {o.qty:,} rejected: {o.reason or 'no reason given'}",
                title="Order rejected",
                severity="error",
                timeout=8,
            )
        elif o.status == REJECTED and o.reason and o.cmd_id not in self._told_rejected:
            # One rejection, one notification: the engine's refusal reply may say it too.
            self._told_rejected.add(o.cmd_id)
            self.notify(
                f"Order {o.order_id} rejected by the broker: {fmt.reason(o.reason)}",
                severity="error",
                timeout=8,
            )

    def on_fill_event(self, message: FillEvent) -> None:
        """One toast per fill, but at most one a second: a burst becomes one summary toast."""
        self._pending_fills.append(message.fill)
        now = time.monotonic()
        if now - self._last_fill_toast >= FILL_TOAST_S and len(self._pending_fills) == 1:
            self._show_fills()
        elif self._fill_timer is None:
            wait = max(0.05, FILL_TOAST_S - (now - self._last_fill_toast))
            self._fill_timer = self.set_timer(wait, self._show_fills)

    def _fill_words(self, f: Fill) -> str:
        side = "Bought" if f.side == BUY else "Sold"
        return f"{side} {f.qty:,} {f.code} {self.store.name_of(f.code)} @ {f.price:,} KRW"

    def _show_fills(self) -> None:
        fills, self._pending_fills = self._pending_fills, []
        self._fill_timer = None
        self._last_fill_toast = time.monotonic()
        if not fills:
            return
        if len(fills) == 1:
            f = fills[0]
            order = self.store.orders.get(f.order_id)
            done = " (order complete)" if order and order.status == FILLED else ""
            self.notify(self._fill_words(f) + done, title=f"Fill - order {f.order_id}", timeout=5)
            return
        lines = [self._fill_words(f) for f in fills[:4]]
        if len(fills) > 4:
            lines.append(f"... and {len(fills) - 4} more (see Orders)")
        self.notify("\n".join(lines), title=f"{len(fills)} fills", timeout=5)

    def on_reply_event(self, message: ReplyEvent) -> None:
        """Replies to commands other clients sent: only errors are worth a word."""
        reply = message.reply
        if reply.get("id") in self.my_cmd_ids or reply.get("ok"):
            return
        err = reply.get("error") or {}
        if reply.get("cmd") in ("buy", "sell", "cancel", "modify", "cancel_all", "halt", "resume"):
            self.notify(
                f"{reply.get('cmd')} from another client failed: {err.get('message', '')}",
                severity="warning",
                timeout=5,
            )

    def on_surge_event(self, message: SurgeEvent) -> None:
        s = message.surge
        if self.cfg.tui.bell:
            self.bell()
        name = s.name or self.store.name_of(s.code)
        self.notify(
            f"{s.code} {name} {s.change_pct:+.2f}% at {s.price:,}, volume ×{s.volume_ratio:.1f}",
            title="Surge",
            severity="warning",
            timeout=4,
        )

    # --- commands -----------------------------------------------------------------------------

    async def send_command(self, name: str, **args: Any) -> dict[str, Any] | None:
        """Send one command and tell the trader what came of it, in plain words."""
        cmd_id = new_command_id()
        try:
            cmd = make_command(name, id=cmd_id, client="tui", **args)
        except ProtocolError as exc:
            self.notify(f"Not sent: {exc.message}", severity="error", timeout=8)
            return None
        self.my_cmd_ids.add(cmd_id)
        assert self.cmd_bus is not None
        try:
            reply = await self.cmd_bus.send_command(cmd, timeout=REPLY_TIMEOUT_S)
        except ReplyTimeout:
            # A missing reply is not a Redis error (B3): the command waits in P:cmd.
            why = (
                "the engine is down (no heartbeat); it answers or drops the command when it is back"
                if not self.store.status.alive
                else "the engine is busy or stuck"
            )
            self.notify(
                f"No reply to {name} within {REPLY_TIMEOUT_S:g} s: {why}. "
                "Check the Orders panel before sending again.",
                severity="error",
                timeout=10,
            )
            return None
        except (RedisError, OSError) as exc:
            self.notify(
                f"{name} not sent: Redis is unreachable ({type(exc).__name__}).", severity="error"
            )
            return None
        except ProtocolError as exc:
            self.notify(f"{name}: unreadable reply ({exc.message})", severity="error")
            return None
        self.notify_reply(reply, args)
        return reply

    def notify_reply(self, reply: dict[str, Any], args: dict[str, Any]) -> None:
        cmd = reply.get("cmd") or ""
        if not reply.get("ok"):
            if reply.get("id") in self._told_rejected:
                return  # the rejected order's event already told the trader
            self._told_rejected.add(str(reply.get("id")))
            err = reply.get("error") or {}
            code = err.get("code", "")
            self.notify(
                f"{err.get('message') or code} ({code})",
                title=f"{cmd.replace('_', ' ').capitalize()} refused",
                severity="error",
                timeout=10,
            )
            return
        result = reply.get("result")
        if cmd in ("buy", "sell"):
            oid = result.get("order_id") if isinstance(result, dict) else result
            price = "market" if args.get("type") == "market" else f"{args.get('price', 0):,} KRW"
            self.notify(
                f"{cmd.upper()} {args.get('code')} {args.get('qty', 0):,} @ {price} - order id {oid}",
                title="Order accepted",
                timeout=6,
            )
        elif cmd == "cancel":
            self.notify(f"Cancel sent for order {args.get('order_id')}.", title="Cancel accepted")
        elif cmd == "modify":
            oid = result.get("order_id") if isinstance(result, dict) else result
            self.notify(
                f"Order {args.get('order_id')} modified - new order id {oid}.",
                title="Modify accepted",
            )
        elif cmd == "cancel_all":
            n = result.get("count") if isinstance(result, dict) else result
            self.notify(f"Cancel sent for {n} open order(s).", title="Cancel all")
        elif cmd in ("halt", "resume"):
            state = result.get("state") if isinstance(result, dict) else result
            self.notify(
                f"Engine is now {state}.", title="Kill switch" if cmd == "halt" else "Resumed"
            )
        elif cmd in ("watchgroup_save", "watchgroup_delete", "watchgroup_select"):
            if isinstance(result, dict):
                self._take_groups(result)
                if cmd == "watchgroup_delete":
                    self.notify(
                        f"Deleted group {args.get('group')}; showing {result.get('active')}.",
                        title="Watchlist",
                    )
                elif cmd == "watchgroup_select":
                    n = len(result.get("watchlist") or [])
                    self.notify(
                        f"{result.get('active')}: {n} code(s).", title="Watchlist", timeout=2
                    )
        elif cmd in ("subscribe", "unsubscribe"):
            wl = result.get("watchlist") if isinstance(result, dict) else result
            if (
                isinstance(result, dict)
                and self.store.group
                and result.get("group") == (self.store.group)
            ):
                wl = result.get("codes")  # the group shown (the engine's reply names it)
            if isinstance(wl, list):
                self.store.set_watchlist([str(c) for c in wl])
            unknown = result.get("unknown") if isinstance(result, dict) else None
            unknown = [str(c) for c in unknown] if isinstance(unknown, list) else []
            if unknown:
                self.notify(
                    f"No such code: {', '.join(unknown)} (not in the broker's list).",
                    title="Watchlist",
                    severity="error",
                )
            codes = [c for c in args.get("codes") or [] if c not in unknown]
            if codes:
                verb = "Added" if cmd == "subscribe" else "Removed"
                self.notify(f"{verb} {', '.join(codes)}.", title="Watchlist")

    def _take_groups(self, result: dict[str, Any]) -> None:
        """A watchgroup reply: the groups, the active one and its codes (the watchlist)."""
        groups, active, wl = result.get("groups"), result.get("active"), result.get("watchlist")
        if isinstance(groups, list) and isinstance(active, str):
            self.store.set_groups(groups, active)
        if isinstance(wl, list):
            self.store.set_watchlist([str(c) for c in wl])
        self.flush()

    def send_in_background(self, name: str, **args: Any) -> None:
        self.run_worker(self.send_command(name, **args), group="commands")

    # --- actions -------------------------------------------------------------------------------

    def _order_ticket(self, side: str) -> None:
        from .screens.ticket import TicketScreen

        code = self.main.selected_code() or ""
        self.push_screen(TicketScreen(side=side, code=code), self._ticket_done)

    def _ticket_done(self, order: dict[str, Any] | None) -> None:
        """The ticket sends its order itself; a screen that returns one gets it sent here."""
        if order:
            cmd = order.pop("cmd")
            self.send_in_background(cmd, **order)

    def follow_order(self, order_id: str) -> None:
        """Put the Orders cursor on this order (placed from this console) once its row is in."""
        self.store.follow = order_id
        self.store.dirty.orders_rows = True

    def action_buy(self) -> None:
        self._order_ticket("buy")

    def action_sell(self) -> None:
        self._order_ticket("sell")

    def _selected_order(self) -> Any:
        key = self.main.orders.cursor_key
        order = self.store.orders.get(key or "")
        if order is None or order.status not in OPEN_STATUSES:
            self.notify(
                "Select an open order in the Orders panel first (press 4).", severity="warning"
            )
            return None
        return order

    def action_cancel_order(self) -> None:
        order = self._selected_order()
        if order is None:
            return
        self.send_in_background("cancel", order_id=order.order_id)

    def action_modify_order(self) -> None:
        from .screens.ticket import TicketScreen

        order = self._selected_order()
        if order is None:
            return
        self.push_screen(
            TicketScreen(side=order.side, code=order.code, modify=order), self._ticket_done
        )

    def _confirm(self, question: str, then: Callable[[], None], danger: bool = True) -> None:
        from .screens.confirm import ConfirmScreen

        def done(ok: bool | None) -> None:
            if ok:
                then()

        self.push_screen(ConfirmScreen(question, danger=danger), done)

    def action_cancel_all(self) -> None:
        n = len(self.store.open_orders())
        self._confirm(
            f"Cancel all {n} open order(s)?",
            lambda: self.send_in_background("cancel_all"),
        )

    def action_halt(self) -> None:
        n = len(self.store.open_orders())
        self._confirm(
            f"KILL SWITCH: halt trading and cancel {n} open order(s)? New orders will be refused.",
            lambda: self.send_in_background("halt", cancel_open=True),
        )

    def action_resume(self) -> None:
        if self.store.status.state != HALTED:
            self.notify("The engine is not halted.", severity="information")
            return
        self._confirm(
            "Resume trading? New orders will be accepted again.",
            lambda: self.send_in_background("resume"),
            danger=False,
        )

    def action_journal(self) -> None:
        from .screens.journal import JournalScreen

        self.push_screen(JournalScreen())

    def action_chart(self) -> None:
        from .screens.chart import ChartScreen

        code = self.main.selected_code()
        if not code:
            self.notify("Select a code first.", severity="warning")
            return
        self.push_screen(ChartScreen(code))

    def action_add_code(self) -> None:
        from .screens.confirm import PickScreen, PromptScreen

        def subscribe(codes: list[str]) -> None:
            if codes:
                self.send_in_background("subscribe", **self._group_args(codes=codes))

        def done(text: str | None) -> None:
            words = [c.strip() for c in (text or "").replace(",", " ").split() if c.strip()]
            codes = []
            for word in words:
                if is_valid_code(word.upper()):
                    codes.append(word.upper())
                    continue
                # Part of a name (or the start of a code): the broker's master list
                # (P:state:names), the names seen in events and the well-known names.
                found = self.store.find_names(word)
                if len(found) == 1:
                    codes.append(found[0][0])
                elif found:
                    if len(words) > 1:
                        shown = ", ".join(f"{c} {n}" for c, n in found[:6])
                        more = f" and {len(found) - 6} more" if len(found) > 6 else ""
                        self.notify(
                            f"'{word}' matches {shown}{more}: add it on its own to pick one, "
                            "or type more of the name.",
                            title="Watchlist",
                            severity="warning",
                            timeout=8,
                        )
                        return
                    self.push_screen(
                        PickScreen(f"'{word}' matches {len(found)}: pick one", found[:PICK_MAX]),
                        lambda code: subscribe([code] if code else []),
                    )
                    return
                else:
                    self.notify(
                        f"No such code or name: {word} (a code is six characters, e.g. 005930).",
                        severity="error",
                    )
                    return
            subscribe(codes)

        where = self.store.group or "watchlist"
        self.push_screen(
            PromptScreen(f"Add to {where}: code(s) or part of a name, e.g. 005930 하이닉스"), done
        )

    def _group_args(self, **args: Any) -> dict[str, Any]:
        """Name the group shown, so that add/remove act on it even if another console
        switched the engine's active group meanwhile."""
        if self.store.group:
            args["group"] = self.store.group
        return args

    def action_watchgroup(self, step: int) -> None:
        groups = self.store.groups
        if len(groups) < 2:
            self.notify("One watchlist group only: N makes another.", title="Watchlist", timeout=4)
            return
        at = groups.index(self.store.group) if self.store.group in groups else 0
        self.send_in_background("watchgroup_select", group=groups[(at + step) % len(groups)])

    def action_watchgroup_new(self) -> None:
        from core.protocol.watchgroups import check_name, next_default_name

        from .screens.confirm import PromptScreen

        default = next_default_name(self.store.groups)

        async def make(name: str) -> None:
            if name not in self.store.groups:
                reply = await self.send_command("watchgroup_save", group=name, codes=[])
                if not reply or not reply.get("ok"):
                    return
            await self.send_command("watchgroup_select", group=name)

        def done(text: str | None) -> None:
            if text is None:
                return
            name = text.strip() or default
            problem = check_name(name)
            if problem:
                self.notify(f"Not made: {problem}.", title="Watchlist", severity="error")
                return
            self.run_worker(make(name), group="commands")

        self.push_screen(PromptScreen(f"New watchlist group (Enter: {default})"), done)

    def action_watchgroup_delete(self) -> None:
        group = self.store.group
        if not group:
            self.notify("The engine keeps no watchlist groups.", title="Watchlist")
            return
        if len(self.store.groups) < 2:
            self.notify(f"{group} is the only group.", title="Watchlist", severity="warning")
            return
        n = len(self.store.watchlist)
        self._confirm(
            f"Delete watchlist group {group} ({n} code(s))? Positions and orders are not touched.",
            lambda: self.send_in_background("watchgroup_delete", group=group),
        )

    def action_remove_code(self) -> None:
        code = self.main.watchlist.cursor_key
        if not code:
            return
        self.send_in_background("unsubscribe", **self._group_args(codes=[code]))

    def action_watchlist_sort(self) -> None:
        keys = [k for k, _ in self.store.SORTS]
        self.store.watch_sort = keys[(keys.index(self.store.watch_sort) + 1) % len(keys)]
        self.store.dirty.watchlist = True
        self.flush()
        label = dict(self.store.SORTS)[self.store.watch_sort]
        self.notify(f"Watchlist sorted {label}.", title="Watchlist", timeout=2)

    def action_resync(self) -> None:
        self.feed.request_resync("asked")

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # --- command palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for spec in ACTIONS:
            if spec.scope not in PALETTE_SCOPES:
                continue
            keys = fmt_keys(self.keys_by_action[spec.id])
            yield SystemCommand(
                f"{spec.title}  [{keys}]", spec.help, partial(self.run_action, spec.action)
            )
        # Textual's own commands, without the maximise/screenshot noise a trader never needs.
        for command in super().get_system_commands(screen):
            if not command.title.lower().startswith(PALETTE_HIDDEN):
                yield command


def fmt_keys(keys: str) -> str:
    from .keymap import display_keys

    return display_keys(keys)


__all__ = ["KiwoomConsole", "fmt"]
