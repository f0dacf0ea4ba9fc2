"""Number formats and the Korean colour convention (rises red, falls blue)."""

from __future__ import annotations

import datetime
import re

from rich.style import Style

from core.protocol.krx import KST

UP = Style(color="rgb(255,82,82)")
DOWN = Style(color="rgb(84,148,255)")
FLAT = Style(color="rgb(200,205,212)")
DIM = Style(color="rgb(120,128,138)")
BOLD_UP = Style(color="rgb(255,82,82)", bold=True)
BOLD_DOWN = Style(color="rgb(84,148,255)", bold=True)
PLAIN = Style()

SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sign_style(value: float) -> Style:
    if value > 0:
        return UP
    if value < 0:
        return DOWN
    return FLAT


def krw(value: int) -> str:
    return f"{value:,}"


def signed(value: int) -> str:
    return f"{value:+,}" if value else "0"


def change(value: int) -> str:
    """``▲1,200`` / ``▼500`` / ``0``, as Korean trading screens show a day's change."""
    if value > 0:
        return f"▲{value:,}"
    if value < 0:
        return f"▼{-value:,}"
    return "0"


def pct(value: float) -> str:
    return f"{value:+.2f}%"


#: ``[tui] korean_units``: volumes and values in 만 (10^4) and 억 (10^8) instead of K/M/B.
KOREAN_UNITS = False


def compact(value: int) -> str:
    """12,345,678 → ``12.35M`` (or ``1,235만`` with Korean units); small numbers stay exact."""
    if KOREAN_UNITS:
        return korean(value)
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v >= 1_000_000_000:
        return f"{sign}{v / 1_000_000_000:.2f}B"
    if v >= 10_000_000:
        return f"{sign}{v / 1_000_000:.1f}M"
    if v >= 1_000_000:
        return f"{sign}{v / 1_000_000:.2f}M"
    return f"{value:,}"


def korean(value: int) -> str:
    """12,345,678 → ``1,235만``; 1,234,567,890 → ``12.3억``; below 100,000 exact."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v >= 100_000_000:
        eok = v / 100_000_000
        return f"{sign}{eok:,.1f}억" if eok < 1000 else f"{sign}{eok:,.0f}억"
    if v >= 100_000:
        return f"{sign}{round(v / 10_000):,}만"
    return f"{value:,}"


def sparkline(values: list[int], width: int) -> str:
    if not values:
        return ""
    values = values[-width:]
    lo, hi = min(values), max(values)
    if hi == lo:
        return SPARK_CHARS[3] * len(values)
    scale = (len(SPARK_CHARS) - 1) / (hi - lo)
    return "".join(SPARK_CHARS[int((v - lo) * scale)] for v in values)


def kst_time(ts_ms: int, seconds: bool = True) -> str:
    if ts_ms <= 0:
        return ""
    t = datetime.datetime.fromtimestamp(ts_ms / 1000, KST)
    return t.strftime("%H:%M:%S" if seconds else "%H:%M")


def seconds(ms: int) -> str:
    """A short duration that keeps its width: ``0.4s``, ``12.3s``, ``4m``, ``3h``."""
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    return age(ms)


def age(ms: int) -> str:
    """Compact age: ``4s``, ``12m``, ``3h``."""
    s = max(0, ms // 1000)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h"


#: "cancelled by tui-3f9a…": the command id that caused a change means nothing to a trader.
_CMD_ID = re.compile(r"\s+(?:by|from)\s+(?:command\s+)?[A-Za-z0-9_.:]*-[0-9a-f]{6,}\b")


def reason(text: str) -> str:
    """An order's reason without internal command ids."""
    return _CMD_ID.sub("", text or "").strip()
