"""Named watchlist groups (관심종목 1, 2, …): names, limits and the ``P:state:watchgroups`` form.

The engine owns the groups (a console's Redis user may only push commands and read state):
``watchgroup_save`` / ``watchgroup_delete`` / ``watchgroup_select`` change them, ``subscribe`` /
``unsubscribe`` take an optional ``group``. The engine streams the **active** group (plus held
codes, codes with open orders and alerted codes); the other groups cost the broker nothing.
``P:state:watchlist`` stays what the engine streams for the watchlist: the active group's codes.

``P:state:watchgroups`` is a hash, group name → JSON ``{"pos": 1, "active": true, "codes":
[...]}`` (``pos`` from 1 in the order the groups were made; exactly one is ``active``), replaced
as a whole on every change and read back at start (groups survive a restart). See
docs/protocol.md, "Watchlist groups".
"""

import json
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from . import krx

#: The group a fresh engine starts with (today's watchlist goes in it).
DEFAULT_GROUP = "관심종목 1"
#: Groups at most.
MAX_GROUPS = 20
#: Codes in one group at most: the whole KOSPI + KOSDAQ list (~2,700) fits. The broker may
#: stream fewer (Kiwoom REST: 200 items a connection; it logs which codes it refused).
MAX_GROUP_CODES = 3000
#: Characters in a group name at most.
MAX_NAME_CHARS = 20


class Group(NamedTuple):
    name: str
    codes: List[str]


def check_name(name: Any) -> str:
    """Why ``name`` cannot name a group ('' when it can): 1-20 printable characters, no
    leading or trailing space."""
    if not isinstance(name, str) or not name:
        return 'a group name is 1-{} characters, e.g. "관심종목 2"'.format(MAX_NAME_CHARS)
    if len(name) > MAX_NAME_CHARS:
        return "a group name is at most {} characters, got {}".format(MAX_NAME_CHARS, len(name))
    if name != name.strip():
        return "a group name does not start or end with a space"
    if any(not ch.isprintable() for ch in name):
        return "a group name holds printable characters only (no tabs or newlines)"
    return ""


def next_default_name(existing: Sequence[str]) -> str:
    """``관심종목 N`` with the smallest N not taken."""
    n = 1
    while "관심종목 {}".format(n) in existing:
        n += 1
    return "관심종목 {}".format(n)


def encode(groups: Sequence[Group], active: str) -> Dict[str, str]:
    """The ``P:state:watchgroups`` fields of ``groups`` (in order) with ``active`` marked."""
    out: Dict[str, str] = {}
    for pos, group in enumerate(groups, 1):
        out[group.name] = json.dumps(
            {"pos": pos, "active": group.name == active, "codes": list(group.codes)},
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return out


def decode(raw: Dict[Any, Any]) -> Tuple[List[Group], Optional[str]]:
    """Groups (by ``pos``) and the active name from a ``HGETALL P:state:watchgroups``; entries
    that cannot be read (bad name, bad JSON, bad codes) are skipped, never the whole hash."""
    rows = []
    active = None
    for key, value in raw.items():
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if check_name(name):
            continue
        try:
            data = json.loads(value)
        except (ValueError, TypeError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
            continue
        codes = [c for c in dict.fromkeys(data["codes"]) if krx.is_valid_code(c)]
        pos = data.get("pos")
        pos = pos if isinstance(pos, int) and not isinstance(pos, bool) else 1 << 30
        rows.append((pos, name, codes[:MAX_GROUP_CODES]))
        if data.get("active") is True and active is None:
            active = name
    rows.sort(key=lambda r: (r[0], r[1]))
    return [Group(name, codes) for _, name, codes in rows[:MAX_GROUPS]], active
