"""The watchlist commands: ``subscribe`` / ``unsubscribe`` (with an optional ``group``) and the
named groups' ``watchgroup_save`` / ``watchgroup_delete`` / ``watchgroup_select``.

The engine streams the **active** group's codes (the watchlist), plus every code held, with an
open order, a live trigger or an active price alert: those keep streaming when they leave the
watchlist or when another group becomes active. The other groups cost the broker nothing, so a
trader may keep many codes in groups within the broker's real-time limits (OCX screens of 100
codes, the REST connection's 200 items). Every change rewrites ``P:state:watchlist`` and
``P:state:watchgroups`` (core.protocol.watchgroups). Runs on the Qt thread.
"""

import logging
from typing import TYPE_CHECKING, Any, Dict, Sequence, Set

from core.protocol import Command, ProtocolError
from core.protocol.errors import INVALID_ARGUMENT

from .watchgroups import GroupError

if TYPE_CHECKING:  # pragma: no cover
    from .app import Engine
    from .dispatcher import Dispatcher

log = logging.getLogger("engine32.watching")


class Watching:
    """The commands above, registered on the dispatcher."""

    def __init__(self, engine: "Engine") -> None:
        self.engine = engine

    def register(self, dispatcher: "Dispatcher") -> None:
        dispatcher.register("subscribe", self._subscribe)
        dispatcher.register("unsubscribe", self._unsubscribe)
        dispatcher.register("watchgroup_save", self._save)
        dispatcher.register("watchgroup_delete", self._delete)
        dispatcher.register("watchgroup_select", self._select)

    @property
    def groups(self) -> Any:
        return self.engine.books.groups

    # -- streams -----------------------------------------------------------------------------
    def needed_elsewhere(self) -> Set[str]:
        """Codes that stream whatever the watchlist: held, open orders, triggers, alerts."""
        e = self.engine
        codes = set(e.books.traded_codes())
        codes.update(e.triggers.codes)
        codes.update(e.depth.alerts.active_codes())
        return codes

    def _stream(self, codes: Sequence[str]) -> None:
        """The watchlist gained ``codes``: ask the broker for those not streamed already."""
        e = self.engine
        new = [c for c in codes if c not in e._streamed]
        e._streamed.difference_update(codes)  # now streamed as watchlist codes
        if new and e.status.connected:
            e.broker.subscribe(new)

    def _unstream(self, codes: Sequence[str]) -> None:
        """The watchlist lost ``codes``: stop those nothing else needs; keep the others."""
        e = self.engine
        needed = self.needed_elsewhere()
        keep = [c for c in codes if c in needed]
        stop = [c for c in codes if c not in needed]
        e._streamed.update(keep)
        if stop and e.status.connected:
            e.broker.unsubscribe(stop)

    def _switch(self, before: Sequence[str], after: Sequence[str]) -> None:
        """The watchlist went from ``before`` to ``after`` (another group, or a saved one)."""
        after_set, before_set = set(after), set(before)
        self._unstream([c for c in before if c not in after_set])
        self._stream([c for c in after if c not in before_set])

    def _changed(self) -> None:
        self.engine.publish_watchlist()

    # -- commands ----------------------------------------------------------------------------
    def _group_of(self, command: Command) -> str:
        return command.group if command.group is not None else self.groups.active

    def _refuse(self, exc: GroupError) -> ProtocolError:
        return ProtocolError(INVALID_ARGUMENT, str(exc), field=exc.field)

    def _subscribe(self, command: Command) -> Dict[str, Any]:
        # Codes the broker's universe does not list are named in the reply, not watched.
        unknown = self.engine.broker.unknown_codes(command.codes)
        name = self._group_of(command)
        try:
            added = self.groups.add(
                name, [c for c in command.codes if c not in unknown], strict=True
            )
        except GroupError as exc:
            raise self._refuse(exc) from None
        if added:
            if name == self.groups.active:
                self._stream(added)
            self._changed()
        return {
            "watchlist": list(self.engine.books.watchlist),
            "added": added,
            "unknown": unknown,
            "group": name,
            "codes": self.groups.codes(name),
        }

    def _unsubscribe(self, command: Command) -> Dict[str, Any]:
        name = self._group_of(command)
        try:
            gone = self.groups.remove(name, command.codes)
        except GroupError as exc:
            raise self._refuse(exc) from None
        if gone:
            if name == self.groups.active:
                # Held codes, open orders, triggers and alerts keep streaming quotes: their
                # positions, orders and levels need prices whether the code is watched or not.
                self._unstream(gone)
            self._changed()
        return {
            "watchlist": list(self.engine.books.watchlist),
            "removed": gone,
            "group": name,
            "codes": self.groups.codes(name),
        }

    def _save(self, command: Command) -> Dict[str, Any]:
        assert command.group is not None
        name = command.group
        unknown = self.engine.broker.unknown_codes(command.codes) if command.codes else []
        codes = [c for c in command.codes if c not in unknown]
        active = name == self.groups.active
        before = list(self.engine.books.watchlist)
        try:
            created = self.groups.save(name, codes)
        except GroupError as exc:
            raise self._refuse(exc) from None
        if active:
            self._switch(before, self.engine.books.watchlist)
        self._changed()
        log.info("watchlist group %r %s: %d code(s)", name, "made" if created else "saved",
                 len(codes))  # fmt: skip
        out = {"group": name, "codes": self.groups.codes(name), "unknown": unknown,
               "created": created}  # fmt: skip
        out.update(self.groups.summary())
        out["watchlist"] = list(self.engine.books.watchlist)
        return out

    def _delete(self, command: Command) -> Dict[str, Any]:
        assert command.group is not None
        before = list(self.engine.books.watchlist)
        try:
            codes, _active = self.groups.delete(command.group)
        except GroupError as exc:
            raise self._refuse(exc) from None
        self._switch(before, self.engine.books.watchlist)
        self._changed()
        self.engine.publish_status()  # P:engine watchgroup: other consoles follow
        log.info("watchlist group %r deleted (%d code(s))", command.group, len(codes))
        out: Dict[str, Any] = {"group": command.group, "removed": codes}
        out.update(self.groups.summary())
        out["watchlist"] = list(self.engine.books.watchlist)
        return out

    def _select(self, command: Command) -> Dict[str, Any]:
        assert command.group is not None
        before = list(self.engine.books.watchlist)
        try:
            self.groups.select(command.group)
        except GroupError as exc:
            raise self._refuse(exc) from None
        self._switch(before, self.engine.books.watchlist)
        self._changed()
        self.engine.publish_status()  # P:engine watchgroup: other consoles follow
        out: Dict[str, Any] = dict(self.groups.summary())
        out["watchlist"] = list(self.engine.books.watchlist)
        return out
