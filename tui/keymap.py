"""Keymap from ``[tui.keymap]`` in config.toml: ``action id = "key[,key...]"`` overriding the
defaults in :mod:`tui.actions` (as Posting and Harlequin do)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .actions import ALL_ACTIONS, BY_ID

KEY_RE = re.compile(r"^[A-Za-z0-9_+]+$")

#: Friendly names for keys whose Textual names are not what a person types.
DISPLAY = {
    "question_mark": "?",
    "enter": "Enter",
    "delete": "Del",
    "escape": "Esc",
    "pageup": "PgUp",
    "pagedown": "PgDn",
    "plus": "+",
    "equals_sign": "=",
    "minus": "-",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
}


class KeymapError(ValueError):
    """A ``[tui.keymap]`` entry that names no action or no usable key."""


def _clean(keys: str) -> str:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    return ",".join(parts)


def load_keymap(overrides: Mapping[str, str]) -> dict[str, str]:
    """Check ``[tui.keymap]``; returns ``{action id: keys}`` to hand to ``App.set_keymap``."""
    out: dict[str, str] = {}
    for action_id, keys in overrides.items():
        if action_id not in BY_ID:
            known = ", ".join(sorted(BY_ID))
            raise KeymapError(f"[tui.keymap] {action_id}: no such action (known: {known})")
        if not isinstance(keys, str) or not _clean(keys):
            raise KeymapError(
                f'[tui.keymap] {action_id}: expected a key such as "ctrl+b", got {keys!r}'
            )
        cleaned = _clean(keys)
        for key in cleaned.split(","):
            if not KEY_RE.match(key):
                raise KeymapError(f"[tui.keymap] {action_id}: {key!r} is not a Textual key name")
        out[action_id] = cleaned
    return out


def effective_keys(keymap: Mapping[str, str]) -> dict[str, str]:
    """Every action id → its keys after remapping."""
    return {a.id: keymap.get(a.id, a.key) for a in ALL_ACTIONS}


#: Keys bound only as a second name of another on the same binding (``=`` is the unshifted
#: ``+``): not shown when that other key is shown.
ALIASES = {"equals_sign": "plus"}


def display_keys(keys: str) -> str:
    """``question_mark,f1`` → ``? / F1``; ``plus,equals_sign`` → ``+``."""
    shown = []
    names = keys.split(",")
    for key in names:
        if ALIASES.get(key) in names:
            continue
        parts = key.split("+")
        last = DISPLAY.get(parts[-1], parts[-1])
        if len(last) > 1 and last[0].islower():
            last = last.capitalize()
        elif len(parts) > 1 and len(last) == 1:
            last = last.upper()
        mods = [p.capitalize() for p in parts[:-1]]
        shown.append("+".join([*mods, last]))
    return " / ".join(shown)
