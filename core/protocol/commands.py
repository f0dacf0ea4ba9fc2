"""Commands (``P:cmd``) and replies (``P:reply:<id>``): parsing, validation and construction.

:func:`parse_command` turns *any* input into either a valid :class:`Command` or a
:class:`~core.protocol.errors.ProtocolError` whose message names the field and the problem
in words a trader understands. It never raises anything else.
"""

import dataclasses
import json
import re
from typing import Any, Dict, Optional, Tuple, Union

from . import krx, sessions
from .envelope import now_ms
from .errors import (
    BAD_JSON,
    ERROR_CODES,
    INVALID_ARGUMENT,
    UNKNOWN_COMMAND,
    ProtocolError,
)
from .events import BUY, KINDS, LIMIT, MARKET, SELL
from .triggers import SIM_PRICE, TRIGGER_COMMANDS, parse_bracket, parse_trigger_args, sim_price_args
from .watchgroups import check_name as check_group_name

# Used with ``fullmatch``: ``$`` alone would let a trailing newline through ("n2\n").
ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
ORDER_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

#: Largest quantity and price the parser accepts (far above anything real; risk limits are tighter).
MAX_QTY = 100000000
MAX_PRICE = 100000000
MAX_CODES = 2000
MAX_TTL_MS = 86400000
MAX_RAW_BYTES = 65536
#: An oversized command up to this size is still read for its id, so that its error goes to
#: its reply list (Redis itself refuses bulks over ``proto-max-bulk-len``, 1 MB in redis.conf).
MAX_ID_READ_BYTES = 4 * 1024 * 1024
#: Default for ``[engine] max_clock_ahead_ms``: a ``ts`` further ahead of the Redis clock is refused.
MAX_CLOCK_AHEAD_MS = 60000
#: Candles one ``history`` command may ask for (Kiwoom pages 600-900 rows per TR request).
MAX_HISTORY_COUNT = 5000
HISTORY_INTERVALS = ("1d", "1m")

ORDER_COMMANDS = ("buy", "sell")
COMMANDS = (
    "ping",
    "buy",
    "sell",
    "cancel",
    "modify",
    "cancel_all",
    "subscribe",
    "unsubscribe",
    "snapshot",
    "halt",
    "resume",
    "history",
    "book_subscribe",
    "book_unsubscribe",
    "alert_add",
    "alert_remove",
    "trigger_add",
    "trigger_cancel",
    "trigger_modify",
    "sim_price",
    "watchgroup_save",
    "watchgroup_delete",
    "watchgroup_select",
)
#: Commands that can change orders: refused while halted / not ready, checked for staleness.
TRADING_COMMANDS = ("buy", "sell", "cancel", "modify", "cancel_all")

COMMON_FIELDS = ("id", "cmd", "ts", "ttl_ms", "client")
ARGUMENTS = {
    "ping": (),
    "buy": (
        "code",
        "qty",
        "price",
        "type",
        "stop_loss",
        "take_profit",
        "stop_loss_pct",
        "take_profit_pct",
        "venue",
    ),
    "sell": ("code", "qty", "price", "type", "venue"),
    "cancel": ("order_id",),
    "modify": ("order_id", "qty", "price"),
    "cancel_all": ("code",),
    "subscribe": ("codes", "group"),
    "unsubscribe": ("codes", "group"),
    "snapshot": (),
    "halt": ("cancel_open",),
    "resume": (),
    "history": ("code", "interval", "count"),
    "book_subscribe": ("codes",),
    "book_unsubscribe": ("codes",),
    "alert_add": ("code", "above", "below", "change_pct"),
    "alert_remove": ("alert_id",),
    "trigger_add": (
        "code",
        "side",
        "qty",
        "kind",
        "trigger_price",
        "trail_pct",
        "trail_ticks",
        "order_type",
        "limit_offset_ticks",
        "oco",
        "expires",
    ),
    "trigger_cancel": ("trigger_id",),
    "trigger_modify": (
        "trigger_id",
        "trigger_price",
        "qty",
        "trail_pct",
        "trail_ticks",
        "limit_offset_ticks",
    ),
    "sim_price": ("code", "price"),
    "watchgroup_save": ("group", "codes"),
    "watchgroup_delete": ("group",),
    "watchgroup_select": ("group",),
}


@dataclasses.dataclass(frozen=True)
class Command:
    """A validated command. Only the arguments of its ``cmd`` are set."""

    cmd: str
    id: Optional[str] = None
    ts: Optional[int] = None
    ttl_ms: Optional[int] = None
    client: str = ""
    code: Optional[str] = None
    qty: Optional[int] = None
    price: Optional[int] = None
    type: str = LIMIT
    order_id: Optional[str] = None
    codes: Tuple[str, ...] = ()
    cancel_open: bool = False
    interval: Optional[str] = None
    count: Optional[int] = None
    above: Optional[int] = None
    below: Optional[int] = None
    change_pct: Optional[float] = None
    alert_id: Optional[str] = None
    #: The arguments of trigger_add / trigger_cancel / trigger_modify (core.protocol.triggers).
    args: Optional[Dict[str, Any]] = None
    #: A buy's bracket: prices, or percent from the fill price.
    stop_loss: Optional[int] = None
    take_profit: Optional[int] = None
    stop_loss_pct: Optional[float] = None
    take_profit_pct: Optional[float] = None
    venue: Optional[str] = None  # buy/sell: KRX (when omitted) | NXT | SOR
    #: subscribe/unsubscribe: the watchlist group (None: the active one); watchgroup_*: its name
    group: Optional[str] = None

    @property
    def order_venue(self) -> str:
        """The venue of an order command (``KRX`` when the command names none)."""
        return self.venue or sessions.DEFAULT_VENUE

    @property
    def side(self) -> str:
        """``buy`` or ``sell`` for order commands."""
        if self.cmd not in ORDER_COMMANDS:
            raise ValueError("{} is not an order command".format(self.cmd))
        return BUY if self.cmd == "buy" else SELL

    @property
    def is_trading(self) -> bool:
        return self.cmd in TRADING_COMMANDS

    def to_dict(self) -> Dict[str, Any]:
        """The wire form: only the fields that mean something for this command."""
        out: Dict[str, Any] = {"cmd": self.cmd}
        for name in ("id", "ts", "ttl_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.client:
            out["client"] = self.client
        if self.args is not None:
            out.update(self.args)
            return out
        for name in ARGUMENTS[self.cmd]:
            value = getattr(self, name)
            if name == "codes":
                out[name] = list(value)
            elif value is not None:
                out[name] = value
        return out

    def encode(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


# --- parsing ----------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A short rendering of a bad value for an error message, always encodable as UTF-8.

    Korean stays readable; a lone surrogate (``"\\ud800"`` sent as a JSON escape) is shown
    as its escape text, never echoed as it is: an unencodable character in a reply would
    stop the reply (and, before, the whole publish round) from being written."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Checker:
    """Validates fields of one command object, remembering its id and cmd for the error."""

    def __init__(self, obj: Dict[str, Any], cmd_id: Optional[str], cmd: Optional[str]) -> None:
        self.obj = obj
        self.cmd_id = cmd_id
        self.cmd = cmd

    def fail(self, field: str, message: str, code: str = INVALID_ARGUMENT) -> ProtocolError:
        return ProtocolError(code, message, field=field, cmd_id=self.cmd_id, cmd=self.cmd)

    def int_field(self, name: str, low: int, high: int, required: bool, what: str) -> Optional[int]:
        if name not in self.obj or self.obj[name] is None:
            if required:
                raise self.fail(name, "{} is required ({})".format(name, what))
            return None
        value = self.obj[name]
        if not _is_int(value) or not low <= value <= high:
            raise self.fail(name, "{} must be {}, got {}".format(name, what, _show(value)))
        return value

    def str_field(
        self, name: str, pattern: "re.Pattern[str]", required: bool, what: str
    ) -> Optional[str]:
        if name not in self.obj or self.obj[name] is None:
            if required:
                raise self.fail(name, "{} is required ({})".format(name, what))
            return None
        value = self.obj[name]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(name, "{} must be {}, got {}".format(name, what, _show(value)))
        return value

    def code_field(self, name: str, required: bool) -> Optional[str]:
        if name not in self.obj or self.obj[name] is None:
            if required:
                raise self.fail(name, "code is required (a 6-character stock code such as 005930)")
            return None
        value = self.obj[name]
        if not krx.is_valid_code(value):
            raise self.fail(
                name,
                "code must be a 6-character stock code such as 005930, got {}".format(_show(value)),
            )
        return value


def _decode_object(raw: Union[bytes, bytearray, str, Dict[str, Any]]) -> Dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > MAX_RAW_BYTES:
            raise ProtocolError(
                BAD_JSON,
                "command is too long ({} bytes, at most {})".format(len(raw), MAX_RAW_BYTES),
                cmd_id=_oversized_id(raw),
            )
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(BAD_JSON, "command is not UTF-8 text") from None
    if not isinstance(raw, str):
        raise ProtocolError(
            BAD_JSON, "command must be a JSON object, got {}".format(type(raw).__name__)
        )
    if len(raw) > MAX_RAW_BYTES:
        raise ProtocolError(
            BAD_JSON,
            "command is too long ({} characters, at most {})".format(len(raw), MAX_RAW_BYTES),
        )
    try:
        obj = json.loads(raw)
    except RecursionError:
        raise ProtocolError(BAD_JSON, "command is nested too deeply") from None
    except ValueError as exc:
        raise ProtocolError(BAD_JSON, "command is not valid JSON: {}".format(exc)) from None
    if not isinstance(obj, dict):
        raise ProtocolError(
            BAD_JSON,
            'command must be a JSON object such as {{"cmd":"ping"}}, got {}'.format(_show(obj)),
        )
    return obj


def _oversized_id(raw: Union[bytes, bytearray]) -> Optional[str]:
    """The top-level ``id`` of a command too long to run, so that its refusal reaches its
    reply list; None when it cannot be read (not JSON, no valid id, or beyond
    :data:`MAX_ID_READ_BYTES`). Only the top level counts: an ``id`` nested in a value must not
    address someone else's reply list."""
    if len(raw) > MAX_ID_READ_BYTES:
        return None
    try:
        obj = json.loads(bytes(raw).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    cmd_id = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(cmd_id, str) and ID_RE.fullmatch(cmd_id):
        return cmd_id
    return None


def check_clock_ahead(
    command: "Command", server_now_ms: int, max_ahead_ms: int = MAX_CLOCK_AHEAD_MS
) -> Optional[ProtocolError]:
    """INVALID_ARGUMENT when the command's ``ts`` is more than ``max_ahead_ms``
    (``[engine] max_clock_ahead_ms``) ahead of the Redis server's clock, else None."""
    if command.ts is None or command.ts - server_now_ms <= max_ahead_ms:
        return None
    return ProtocolError(
        INVALID_ARGUMENT,
        "ts is {:,} ms ahead of the Redis server's clock (at most {:,} allowed by [engine] "
        "max_clock_ahead_ms): the sending machine's clock is wrong (or ts is not in "
        "milliseconds since the epoch); set its clock right; not run".format(
            command.ts - server_now_ms, max_ahead_ms
        ),
        field="ts",
        cmd_id=command.id,
        cmd=command.cmd,
    )


def parse_command(raw: Union[bytes, bytearray, str, Dict[str, Any]]) -> Command:
    """Validate one command. Raises only :class:`ProtocolError` (with ``cmd_id`` set when readable)."""
    try:
        return _parse(raw)
    except ProtocolError:
        raise
    except Exception as exc:  # a bug here must still produce a reply, never crash the engine
        raise ProtocolError(
            INVALID_ARGUMENT, "command could not be read: {}".format(type(exc).__name__)
        ) from None


def _parse(raw: Union[bytes, bytearray, str, Dict[str, Any]]) -> Command:
    obj = _decode_object(raw)

    # The id first, so that every later error can be addressed to the sender.
    cmd_id = obj.get("id")
    if cmd_id is not None and (not isinstance(cmd_id, str) or not ID_RE.fullmatch(cmd_id)):
        raise ProtocolError(
            INVALID_ARGUMENT,
            "id must be 1-64 characters of letters, digits and _ . : -, got {}".format(
                _show(cmd_id)
            ),
            field="id",
        )
    cmd = obj.get("cmd")
    cmd_name = cmd if isinstance(cmd, str) and cmd in COMMANDS else None
    check = _Checker(obj, cmd_id, cmd_name)
    if cmd is None:
        raise check.fail(
            "cmd", "cmd is required (one of {})".format(", ".join(COMMANDS)), UNKNOWN_COMMAND
        )
    if cmd_name is None:
        raise check.fail(
            "cmd",
            "unknown command {} (known: {})".format(_show(cmd), ", ".join(COMMANDS)),
            UNKNOWN_COMMAND,
        )

    allowed = set(COMMON_FIELDS) | set(ARGUMENTS[cmd_name])
    for key in obj:
        if key not in allowed:
            args = ", ".join(ARGUMENTS[cmd_name]) or "none"
            raise check.fail(
                key,
                "unknown field {} for {} (its arguments: {})".format(_show(key), cmd_name, args),
            )

    ts = check.int_field("ts", 0, 2**53, False, "milliseconds since the epoch")
    ttl_ms = check.int_field("ttl_ms", 1, MAX_TTL_MS, False, "a positive number of milliseconds")
    client = obj.get("client", "")
    if not isinstance(client, str) or len(client) > 64:
        raise check.fail("client", "client must be a string of at most 64 characters")
    fields: Dict[str, Any] = {
        "cmd": cmd_name,
        "id": cmd_id,
        "ts": ts,
        "ttl_ms": ttl_ms,
        "client": client,
    }

    if cmd_name in ORDER_COMMANDS:
        fields.update(_parse_order(check))
        if cmd_name == "buy":
            fields.update(parse_bracket(check))
            _bracket_around_price(check, fields)
    elif cmd_name in TRIGGER_COMMANDS:
        fields["args"] = parse_trigger_args(check, cmd_name)
    elif cmd_name == SIM_PRICE:
        fields.update(sim_price_args(check))
    elif cmd_name == "cancel":
        fields["order_id"] = check.str_field(
            "order_id", ORDER_ID_RE, True, "the id of an open order"
        )
    elif cmd_name == "modify":
        fields["order_id"] = check.str_field(
            "order_id", ORDER_ID_RE, True, "the id of an open order"
        )
        fields["qty"] = check.int_field(
            "qty", 1, MAX_QTY, False, "a positive whole number of shares"
        )
        fields["price"] = check.int_field("price", 1, MAX_PRICE, False, "a positive price in KRW")
        if fields["qty"] is None and fields["price"] is None:
            raise check.fail("qty", "modify needs a new qty, a new price, or both")
        if fields["price"] is not None and not krx.is_on_tick(fields["price"]):
            raise check.fail("price", krx.check_price(fields["price"], fields["price"]))
    elif cmd_name == "cancel_all":
        fields["code"] = check.code_field("code", False)
    elif cmd_name in ("subscribe", "unsubscribe", "book_subscribe", "book_unsubscribe"):
        fields["codes"] = _parse_codes(check)
        if cmd_name in ("subscribe", "unsubscribe"):
            fields["group"] = _parse_group(check, False)
    elif cmd_name == "watchgroup_save":
        fields["group"] = _parse_group(check, True)
        fields["codes"] = _parse_codes(check, allow_empty=True)
    elif cmd_name in ("watchgroup_delete", "watchgroup_select"):
        fields["group"] = _parse_group(check, True)
    elif cmd_name == "alert_add":
        fields.update(_parse_alert(check))
    elif cmd_name == "alert_remove":
        fields["alert_id"] = check.str_field(
            "alert_id", ID_RE, True, "the id of an alert (alert_add's reply, P:state:alerts)"
        )
    elif cmd_name == "halt":
        cancel_open = obj.get("cancel_open", False)
        if not isinstance(cancel_open, bool):
            raise check.fail(
                "cancel_open",
                "cancel_open must be true or false, got {}".format(_show(cancel_open)),
            )
        fields["cancel_open"] = cancel_open
    elif cmd_name == "history":
        fields.update(_parse_history(check))
    return Command(**fields)


def _parse_history(check: _Checker) -> Dict[str, Any]:
    interval = check.obj.get("interval", "1d")
    if interval not in HISTORY_INTERVALS:
        raise check.fail(
            "interval",
            "interval must be {}, got {}".format(" or ".join(HISTORY_INTERVALS), _show(interval)),
        )
    count = check.int_field(
        "count",
        1,
        MAX_HISTORY_COUNT,
        False,
        "a number of candles from 1 to {}".format(MAX_HISTORY_COUNT),
    )
    return {
        "code": check.code_field("code", True),
        "interval": interval,
        "count": count if count is not None else (250 if interval == "1d" else 390),
    }


def _parse_order(check: _Checker) -> Dict[str, Any]:
    obj = check.obj
    kind = obj.get("type", LIMIT)
    if kind not in KINDS:
        raise check.fail("type", "type must be limit or market, got {}".format(_show(kind)))
    code = check.code_field("code", True)
    qty = check.int_field("qty", 1, MAX_QTY, True, "a positive whole number of shares")
    if kind == MARKET:
        price = obj.get("price", 0)
        if price not in (0, None) or isinstance(price, bool):
            raise check.fail(
                "price",
                "a market order takes no price (omit it or send 0), got {}".format(_show(price)),
            )
        price = 0
    else:
        price = check.int_field(
            "price", 1, MAX_PRICE, True, "a positive price in whole KRW for a limit order"
        )
        assert price is not None
        if not krx.is_on_tick(price):
            raise check.fail("price", krx.check_price(price, price))
    venue = obj.get("venue")
    if venue is not None:
        try:
            venue = sessions.parse_venue(venue)
        except ValueError as exc:
            raise check.fail("venue", str(exc)) from None
    return {"code": code, "qty": qty, "price": price, "type": kind, "venue": venue}


#: A day's change beyond the KRX daily limit (±30 %) can never happen: refused as a typo.
MAX_ALERT_PCT = 30.0


def _parse_alert(check: _Checker) -> Dict[str, Any]:
    """``code`` and exactly one of ``above`` / ``below`` (a price) or ``change_pct`` (signed)."""
    obj = check.obj
    code = check.code_field("code", True)
    given = [n for n in ("above", "below", "change_pct") if obj.get(n) is not None]
    if len(given) != 1:
        raise check.fail(
            given[1] if len(given) > 1 else "above",
            "alert_add needs exactly one of above (a price), below (a price) or change_pct "
            "(a signed percentage), got {}".format(", ".join(given) or "none"),
        )
    out: Dict[str, Any] = {"code": code}
    name = given[0]
    if name == "change_pct":
        value = obj["change_pct"]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != value  # NaN
            or value == 0
            or abs(value) > MAX_ALERT_PCT
        ):
            raise check.fail(
                "change_pct",
                "change_pct must be a signed percentage between -30 and 30, not 0 (e.g. 5 or "
                "-3.5; KRX prices move at most 30 % a day), got {}".format(_show(value)),
            )
        out["change_pct"] = float(value)
    else:
        out[name] = check.int_field(name, 1, MAX_PRICE, True, "a positive price in whole KRW")
    return out


def _parse_group(check: _Checker, required: bool) -> Optional[str]:
    """A watchlist group's name (core.protocol.watchgroups.check_name)."""
    name = check.obj.get("group")
    if name is None:
        if required:
            raise check.fail("group", 'group is required (a group name such as "관심종목 2")')
        return None
    problem = check_group_name(name)
    if problem:
        raise check.fail("group", "{}, got {}".format(problem, _show(name)))
    return name


def _parse_codes(check: _Checker, allow_empty: bool = False) -> Tuple[str, ...]:
    codes = check.obj.get("codes")
    if not isinstance(codes, list) or (not codes and not allow_empty):
        raise check.fail(
            "codes",
            'codes must be a {}list of stock codes such as ["005930"], got {}'.format(
                "" if allow_empty else "non-empty ", _show(codes)
            ),
        )
    if len(codes) > MAX_CODES:
        raise check.fail(
            "codes", "codes has {} entries, at most {} at once".format(len(codes), MAX_CODES)
        )
    out = []
    for code in codes:
        if not krx.is_valid_code(code):
            raise check.fail(
                "codes",
                "codes must hold 6-character stock codes such as 005930, got {}".format(
                    _show(code)
                ),
            )
        if code not in out:
            out.append(code)
    return tuple(out)


def make_command(cmd: str, id: Optional[str] = None, **args: Any) -> Command:
    """Build and validate a command on the client side (TUI, ``kc send``, tests).

    ``ts`` defaults to now; raises :class:`ProtocolError` exactly as the engine would reply.
    """
    obj: Dict[str, Any] = {"cmd": cmd}
    if id is not None:
        obj["id"] = id
    obj.setdefault("ts", now_ms())
    for key, value in args.items():
        if value is not None:
            obj[key] = list(value) if key == "codes" else value
    return parse_command(obj)


# --- replies ----------------------------------------------------------------------------------


def make_reply(
    cmd_id: Optional[str],
    cmd: Optional[str],
    result: Any = None,
    error: Optional[ProtocolError] = None,
    ts: Optional[int] = None,
) -> Dict[str, Any]:
    """The reply object: ``result`` on success, ``error`` ``{code, message}`` on failure."""
    reply: Dict[str, Any] = {
        "id": cmd_id,
        "cmd": cmd,
        "ok": error is None,
        "ts": now_ms() if ts is None else ts,
    }
    if error is None:
        reply["result"] = result
    else:
        reply["error"] = error.to_dict()
    return reply


def error_reply(
    cmd_id: Optional[str], cmd: Optional[str], code: str, message: str
) -> Dict[str, Any]:
    return make_reply(cmd_id, cmd, error=ProtocolError(code, message))


def encode_reply(reply: Dict[str, Any]) -> str:
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))


def decode_reply(raw: Union[bytes, str]) -> Dict[str, Any]:
    """Parse a reply (client side); raises :class:`ProtocolError` if it is not one."""
    obj = _decode_object(raw)
    if not isinstance(obj.get("ok"), bool):
        raise ProtocolError(BAD_JSON, "reply has no boolean ok field")
    if not obj["ok"]:
        err = obj.get("error")
        if not isinstance(err, dict) or err.get("code") not in ERROR_CODES:
            raise ProtocolError(BAD_JSON, "failed reply has no valid error")
    return obj


def _bracket_around_price(check: Any, fields: Dict[str, Any]) -> None:
    """A limit buy fills at its price or lower: a stop-loss at or above that price would sell
    the moment it fills, a take-profit at or below it likewise. Both are typing mistakes."""
    price = fields.get("price")
    if fields.get("type") != LIMIT or not price:
        return
    stop, take = fields.get("stop_loss"), fields.get("take_profit")
    if stop is not None and stop >= price:
        raise check.fail(
            "stop_loss",
            "stop_loss {:,} is not below the buy price {:,}: it would sell as soon as the buy "
            "fills".format(stop, price),
        )
    if take is not None and take <= price:
        raise check.fail(
            "take_profit",
            "take_profit {:,} is not above the buy price {:,}: it would sell as soon as the buy "
            "fills".format(take, price),
        )
