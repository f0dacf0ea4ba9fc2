"""The named watchlist groups (관심종목 1, 2, …) the engine keeps (core.protocol.watchgroups).

Plain data on the Qt thread: the groups in order, each an ordered list of codes, and the
active one, whose codes are the watchlist the engine streams. Nothing here touches Redis or
the broker; :class:`GroupError` says in words why a change cannot be made.
"""

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from core.protocol import watchgroups as wg


class GroupError(ValueError):
    """A group change refused: unknown group, too many groups or codes, the last group.
    ``field`` is the command field at fault (``group`` or ``codes``)."""

    def __init__(self, message: str, field: str = "group") -> None:
        super().__init__(message)
        self.field = field


class WatchGroups:
    """Ordered groups of codes; exactly one is active."""

    def __init__(
        self,
        groups: Sequence[wg.Group] = (),
        active: Optional[str] = None,
        initial: Sequence[str] = (),
    ) -> None:
        self._groups: Dict[str, List[str]] = {}
        for group in groups:
            if group.name not in self._groups and len(self._groups) < wg.MAX_GROUPS:
                self._groups[group.name] = list(dict.fromkeys(group.codes))
        if not self._groups:
            # No groups kept: one default group holding today's watchlist.
            self._groups[wg.DEFAULT_GROUP] = list(dict.fromkeys(initial))
        self.active = active if active in self._groups else next(iter(self._groups))

    # -- reading -----------------------------------------------------------------------------
    def names(self) -> List[str]:
        return list(self._groups)

    def codes(self, name: str) -> List[str]:
        return list(self._known(name))

    @property
    def active_codes(self) -> List[str]:
        """The active group's codes (the engine's watchlist). Read only: change it here."""
        return self._groups[self.active]

    def all_codes(self) -> List[str]:
        """Every code of every group, once."""
        out: Dict[str, None] = {}
        for codes in self._groups.values():
            out.update(dict.fromkeys(codes))
        return list(out)

    def encode(self) -> Dict[str, str]:
        """The ``P:state:watchgroups`` fields."""
        return wg.encode([wg.Group(n, c) for n, c in self._groups.items()], self.active)

    def summary(self) -> Dict[str, Any]:
        """What a reply says about the groups: their names in order and the active one."""
        return {"groups": self.names(), "active": self.active}

    # -- changes -----------------------------------------------------------------------------
    def add(self, name: str, codes: Sequence[str], strict: bool = True) -> List[str]:
        """Add codes to a group; returns those that were not in it. ``strict``: refuse more
        than :data:`MAX_GROUP_CODES` (a trader's command); an alert or a trigger that needs
        a code's quotes adds it anyway."""
        group = self._known(name)
        added = [c for c in dict.fromkeys(codes) if c not in group]
        if strict and len(group) + len(added) > wg.MAX_GROUP_CODES:
            raise GroupError(
                "group {} holds at most {:,} codes ({:,} now, {:,} more asked); "
                "remove some or use another group".format(
                    json.dumps(name, ensure_ascii=False),
                    wg.MAX_GROUP_CODES,
                    len(group),
                    len(added),
                ),
                "codes",
            )
        group.extend(added)
        return added

    def remove(self, name: str, codes: Sequence[str]) -> List[str]:
        """Remove codes from a group; returns those that were in it."""
        group = self._known(name)
        gone = [c for c in dict.fromkeys(codes) if c in group]
        if gone:
            self._groups[name] = [c for c in group if c not in gone]
        return gone

    def save(self, name: str, codes: Sequence[str]) -> bool:
        """Set a group to exactly ``codes``, making it if new (True then)."""
        codes = list(dict.fromkeys(codes))
        if len(codes) > wg.MAX_GROUP_CODES:
            raise GroupError(
                "a group holds at most {:,} codes, got {:,}".format(wg.MAX_GROUP_CODES, len(codes)),
                "codes",
            )
        created = name not in self._groups
        if created and len(self._groups) >= wg.MAX_GROUPS:
            raise GroupError(
                "at most {} groups ({}); delete one first (watchgroup_delete)".format(
                    wg.MAX_GROUPS, ", ".join(self._groups)
                )
            )
        self._groups[name] = codes
        return created

    def delete(self, name: str) -> Tuple[List[str], str]:
        """Delete a group; returns its codes and the active group after (the next one when the
        active group went)."""
        codes = self._known(name)
        if len(self._groups) == 1:
            raise GroupError(
                "{} is the only group; a console always has one (save another first)".format(
                    json.dumps(name, ensure_ascii=False)
                )
            )
        names = self.names()
        index = names.index(name)
        del self._groups[name]
        if self.active == name:
            rest = self.names()
            self.active = rest[min(index, len(rest) - 1)]
        return codes, self.active

    def select(self, name: str) -> None:
        self._known(name)
        self.active = name

    def _known(self, name: str) -> List[str]:
        group = self._groups.get(name)
        if group is None:
            raise GroupError(
                "no group {} (groups: {})".format(
                    json.dumps(name, ensure_ascii=False), ", ".join(self._groups)
                )
            )
        return group


def read_kept(client: Any, keys: Any) -> Tuple[List[wg.Group], Optional[str]]:
    """``P:state:watchgroups`` as a previous run left it (a synchronous redis-py client)."""
    return wg.decode(client.hgetall(keys.state_watchgroups))
