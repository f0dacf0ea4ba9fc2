"""Conditional orders held by the engine (issue 14): the ``trigger_*`` command arguments,
the ``buy`` bracket fields and the names of trigger kinds and statuses.

Standard library only (runs inside the 32-bit engine). :mod:`core.protocol.commands` calls
:func:`parse_trigger_args` and :func:`parse_bracket` with its field checker; the engine's
:mod:`engine32.triggers` does everything else.
"""

import datetime
import re
from typing import Any, Dict, Optional

from . import krx

# Kinds, statuses and choices (docs/protocol.md, "Triggers").
STOP = "stop"
TAKE_PROFIT = "take_profit"
TRAILING = "trailing"
TRIGGER_KINDS = (STOP, TAKE_PROFIT, TRAILING)

ARMED = "armed"
FIRING = "firing"
FIRED = "fired"
CANCELLED = "cancelled"
EXPIRED = "expired"
SUSPENDED = "suspended"
TRIGGER_STATUSES = (ARMED, FIRING, FIRED, CANCELLED, EXPIRED, SUSPENDED)
#: Statuses a trigger never leaves.
FINAL_STATUSES = (FIRED, CANCELLED, EXPIRED)

#: ``qty`` value that follows the held quantity.
POSITION = "position"

TRIGGER_COMMANDS = ("trigger_add", "trigger_cancel", "trigger_modify")
#: The sim-only command that moves a simulated price (tests and demos; refused by Kiwoom).
SIM_PRICE = "sim_price"

TRIGGER_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,40}$")
OCO_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,40}$")
#: Prefix of the command ids of trigger orders: ``trg-<trigger_id>-<n>``.
CMD_PREFIX = "trg-"

MAX_TRAIL_PCT = 30.0
MAX_TRAIL_TICKS = 1000
MAX_OFFSET_TICKS = 100
MAX_PCT = 30.0  # the daily limit: a bracket further away could never trigger


def fire_cmd_id(trigger_id: str, attempt: int) -> str:
    """The deterministic command id of a trigger's ``attempt``-th order."""
    return "{}{}-{}".format(CMD_PREFIX, trigger_id, attempt)


def parse_fire_cmd_id(cmd_id: Any) -> Optional[tuple]:
    """``trg-<trigger_id>-<n>`` → ``(trigger_id, n)``; None for any other id."""
    if not isinstance(cmd_id, str) or not cmd_id.startswith(CMD_PREFIX):
        return None
    body = cmd_id[len(CMD_PREFIX) :]
    tid, sep, n = body.rpartition("-")
    if not sep or not n.isdigit() or not TRIGGER_ID_RE.match(tid):
        return None
    return tid, int(n)


def parse_expires(value: Any) -> Optional[int]:
    """``expires``: epoch milliseconds, or a KST date-time string (``2026-12-02T15:20``, an
    explicit offset is honoured; a date alone means 15:30 KST that day); None when the string
    cannot be read."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip().replace(" ", "T", 1)
    try:
        if "T" in text:
            when = datetime.datetime.fromisoformat(text)
        else:  # a date alone: the close of that day's regular session
            when = datetime.datetime.combine(
                datetime.date.fromisoformat(text), datetime.time(15, 30)
            )
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=krx.KST)
    return int(when.timestamp() * 1000)


def end_of_day_ms(now_ms: int) -> int:
    """The default ``expires``: the close of the regular KRX session (15:30 KST) of today, or
    of the next weekday when added after it (KRX hours: see ``core.protocol.krx``)."""
    now = datetime.datetime.fromtimestamp(now_ms / 1000.0, krx.KST)
    close = now.replace(hour=15, minute=30, second=0, microsecond=0)
    if now >= close:
        close += datetime.timedelta(days=1)
    while close.weekday() >= 5:
        close += datetime.timedelta(days=1)
    return int(close.timestamp() * 1000)


def _pct(check: Any, name: str, required: bool = False) -> Optional[float]:
    obj = check.obj
    if name not in obj or obj[name] is None:
        if required:
            raise check.fail(name, "{} is required (a percentage)".format(name))
        return None
    v = obj[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_PCT:
        raise check.fail(
            name,
            "{} must be a percentage above 0 and at most {:g}, got {!r}".format(name, MAX_PCT, v),
        )
    return float(v)


def _price(check: Any, name: str, required: bool) -> Optional[int]:
    price = check.int_field(name, 1, 100000000, required, "a positive price in whole KRW")
    if price is not None and not krx.is_on_tick(price):
        raise check.fail(name, "{}: {}".format(name, krx.check_price(price, price)))
    return price


def _trigger_id(check: Any) -> str:
    tid = check.str_field(
        "trigger_id", TRIGGER_ID_RE, True, "a trigger id as returned by trigger_add"
    )
    assert tid is not None
    return tid


def _qty(check: Any, required: bool) -> Any:
    obj = check.obj
    if obj.get("qty") == POSITION:
        return POSITION
    if required and obj.get("qty") is None:
        raise check.fail("qty", 'qty is required (a number of shares, or "position")')
    if obj.get("qty") is None:
        return None
    value = obj["qty"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100000000:
        raise check.fail(
            "qty", 'qty must be a positive number of shares or "position", got {!r}'.format(value)
        )
    return value


def _choice(check: Any, name: str, choices: tuple, default: Optional[str]) -> Optional[str]:
    value = check.obj.get(name, default)
    if value is None:
        return None
    if value not in choices:
        raise check.fail(
            name, "{} must be one of {}, got {!r}".format(name, ", ".join(choices), value)
        )
    return value


def _trail(check: Any, args: Dict[str, Any]) -> None:
    obj = check.obj
    if obj.get("trail_pct") is not None:
        v = obj["trail_pct"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_TRAIL_PCT:
            raise check.fail(
                "trail_pct",
                "trail_pct must be a percentage above 0 and at most {:g}, got {!r}".format(
                    MAX_TRAIL_PCT, v
                ),
            )
        args["trail_pct"] = float(v)
    ticks = check.int_field("trail_ticks", 1, MAX_TRAIL_TICKS, False, "a positive number of ticks")
    if ticks is not None:
        args["trail_ticks"] = ticks


def parse_trigger_args(check: Any, cmd: str) -> Dict[str, Any]:
    """The validated arguments of one ``trigger_*`` command (``check`` is the command
    parser's field checker); raises its :class:`ProtocolError` on the first bad field."""
    obj = check.obj
    args: Dict[str, Any] = {}
    if cmd == "trigger_cancel":
        args["trigger_id"] = _trigger_id(check)
        return args
    if cmd == "trigger_modify":
        args["trigger_id"] = _trigger_id(check)
        price = _price(check, "trigger_price", False)
        if price is not None:
            args["trigger_price"] = price
        qty = _qty(check, False)
        if qty is not None:
            args["qty"] = qty
        _trail(check, args)
        offset = check.int_field(
            "limit_offset_ticks", 0, MAX_OFFSET_TICKS, False, "a number of ticks from 0 to 100"
        )
        if offset is not None:
            args["limit_offset_ticks"] = offset
        if "trail_pct" in args and "trail_ticks" in args:
            raise check.fail("trail_ticks", "give trail_pct or trail_ticks, not both")
        return args
    # trigger_add
    args["code"] = check.code_field("code", True)
    args["side"] = _choice(check, "side", ("buy", "sell"), None)
    if args["side"] is None:
        raise check.fail("side", "side is required (buy or sell)")
    args["qty"] = _qty(check, True)
    if args["qty"] == POSITION and args["side"] != "sell":
        raise check.fail("qty", 'qty "position" follows a held position: only for side sell')
    kind = _choice(check, "kind", TRIGGER_KINDS, None)
    if kind is None:
        raise check.fail("kind", "kind is required (stop, take_profit or trailing)")
    args["kind"] = kind
    if kind == TRAILING:
        if obj.get("trigger_price") is not None:
            raise check.fail(
                "trigger_price",
                "a trailing trigger takes trail_pct or trail_ticks, no trigger_price",
            )
        _trail(check, args)
        if ("trail_pct" in args) == ("trail_ticks" in args):
            raise check.fail("trail_pct", "a trailing trigger needs trail_pct or trail_ticks (one)")
    else:
        args["trigger_price"] = _price(check, "trigger_price", True)
        for name in ("trail_pct", "trail_ticks"):
            if obj.get(name) is not None:
                raise check.fail(name, "{} is only for kind trailing".format(name))
    order_type = _choice(check, "order_type", ("market", "limit"), None)
    if order_type is not None:
        args["order_type"] = order_type
    offset = check.int_field(
        "limit_offset_ticks", 0, MAX_OFFSET_TICKS, False, "a number of ticks from 0 to 100"
    )
    if offset and order_type != "limit":
        raise check.fail("limit_offset_ticks", "limit_offset_ticks is only for order_type limit")
    if offset is not None:
        args["limit_offset_ticks"] = offset
    oco = check.str_field("oco", OCO_RE, False, "a group name of letters, digits and _ . : -")
    if oco is not None:
        args["oco"] = oco
    if obj.get("expires") is not None:
        expires = parse_expires(obj["expires"])
        if expires is None:
            raise check.fail(
                "expires",
                "expires must be a KST date-time such as 2026-12-02T15:20 (or epoch ms), "
                "got {!r}".format(obj["expires"]),
            )
        args["expires"] = expires
    return args


def parse_bracket(check: Any) -> Dict[str, Any]:
    """The bracket fields of a ``buy``: ``stop_loss``/``take_profit`` (prices) or
    ``stop_loss_pct``/``take_profit_pct`` (percent from the fill price)."""
    out: Dict[str, Any] = {
        "stop_loss": _price(check, "stop_loss", False),
        "take_profit": _price(check, "take_profit", False),
        "stop_loss_pct": _pct(check, "stop_loss_pct"),
        "take_profit_pct": _pct(check, "take_profit_pct"),
    }
    if out["stop_loss"] is not None and out["stop_loss_pct"] is not None:
        raise check.fail("stop_loss_pct", "give stop_loss or stop_loss_pct, not both")
    if out["take_profit"] is not None and out["take_profit_pct"] is not None:
        raise check.fail("take_profit_pct", "give take_profit or take_profit_pct, not both")
    if (
        out["stop_loss"] is not None
        and out["take_profit"] is not None
        and out["stop_loss"] >= out["take_profit"]
    ):
        raise check.fail("stop_loss", "stop_loss must be below take_profit")
    if any(v is not None for v in out.values()) and not check.cmd_id:
        raise check.fail("id", "a buy with a bracket needs an id (the bracket follows its fills)")
    return out


def sim_price_args(check: Any) -> Dict[str, Any]:
    return {"code": check.code_field("code", True), "price": _price(check, "price", True)}
