"""From envelopes to rows: which table each event type goes to, its columns, and the checks.

Every row starts with ``ts, run, seq``. A value of the wrong type (a price that is a string, a
missing code) makes the whole envelope a dead letter, with a reason naming the field; unknown
extra fields are ignored (newer engines may add some).
"""

from __future__ import annotations

import datetime
import json
import operator
from dataclasses import dataclass
from typing import Any, Callable

from core.protocol import Envelope, decode_envelope
from core.protocol.errors import ProtocolError
from core.protocol.krx import is_valid_code

UTC = datetime.timezone.utc
_MICRO = datetime.timedelta(microseconds=1)


class Poison(ValueError):
    """An envelope (or stream entry) that cannot be stored; the message is the reason."""


@dataclass(frozen=True)
class Table:
    """One event table: its name, columns (name, PostgreSQL type) in row order, and key."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


_HEAD = (("ts", "timestamptz"), ("run", "text"), ("seq", "int8"))


def _table(name: str, key: tuple[str, ...], *cols: tuple[str, str]) -> Table:
    return Table(name, _HEAD + cols, key)


QUOTES = _table(
    "quotes",
    ("run", "seq", "i", "ts"),
    ("i", "int4"),
    ("code", "text"),
    ("price", "int8"),
    ("change", "int8"),
    ("change_pct", "float8"),
    ("volume", "int8"),
    ("trade_qty", "int8"),
    ("open", "int8"),
    ("high", "int8"),
    ("low", "int8"),
    ("ask", "int8"),
    ("bid", "int8"),
    ("exch_time", "text"),
)
ORDERS = _table(
    "orders",
    ("run", "seq"),
    ("order_id", "text"),
    ("cmd_id", "text"),
    ("code", "text"),
    ("name", "text"),
    ("side", "text"),
    ("kind", "text"),
    ("qty", "int8"),
    ("price", "int8"),
    ("filled_qty", "int8"),
    ("avg_fill_price", "int8"),
    ("remaining_qty", "int8"),
    ("status", "text"),
    ("reason", "text"),
    ("orig_order_id", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("venue", "text"),  # migration 003
)
FILLS = _table(
    "fills",
    ("run", "seq"),
    ("fill_id", "text"),
    ("order_id", "text"),
    ("code", "text"),
    ("side", "text"),
    ("qty", "int8"),
    ("price", "int8"),
    ("fee", "int8"),
    ("tax", "int8"),
    ("venue", "text"),  # migration 003
)
POSITIONS = _table(
    "positions",
    ("run", "seq", "ts"),
    ("code", "text"),
    ("name", "text"),
    ("qty", "int8"),
    ("avg_price", "int8"),
    ("last_price", "int8"),
    ("unrealized_pnl", "int8"),
    ("unrealized_pnl_pct", "float8"),
    ("realized_pnl", "int8"),
)
ACCOUNT = _table(
    "account",
    ("run", "seq", "ts"),
    ("account", "text"),
    ("cash", "int8"),
    ("orderable", "int8"),
    ("equity", "int8"),
    ("realized_pnl_today", "int8"),
    ("unrealized_pnl", "int8"),
)
SURGE_ALERTS = _table(
    "surge_alerts",
    ("run", "seq"),
    ("code", "text"),
    ("name", "text"),
    ("price", "int8"),
    ("change_pct", "float8"),
    ("volume_ratio", "float8"),
    ("window_s", "int4"),
    ("reason", "text"),
)
COMMANDS = _table(
    "commands",
    ("run", "seq"),
    ("cmd_id", "text"),
    ("cmd", "text"),
    ("ok", "bool"),
    ("error_code", "text"),
    ("error_message", "text"),
    ("replied_at", "timestamptz"),
    ("result", "jsonb"),
    ("reply", "jsonb"),
)
ENGINE_LOGS = _table(
    "engine_logs",
    ("run", "seq", "ts"),
    ("level", "text"),
    ("logger", "text"),
    ("message", "text"),
)
ENGINE_STATUS = _table(
    "engine_status",
    ("run", "seq", "ts"),
    ("state", "text"),
    ("broker", "text"),
    ("mode", "text"),
    ("data", "jsonb"),
)

CANDLE_HISTORY = _table(
    "candle_history",
    ("code", "interval", "source", "bucket"),
    ("code", "text"),
    ("interval", "text"),
    ("source", "text"),
    ("bucket", "timestamptz"),
    ("open", "int8"),
    ("high", "int8"),
    ("low", "int8"),
    ("close", "int8"),
    ("volume", "int8"),
)
PRICE_ALERTS = _table(
    "price_alerts",
    ("run", "seq"),
    ("alert_id", "text"),
    ("code", "text"),
    ("name", "text"),
    ("condition", "text"),
    ("threshold", "float8"),
    ("price", "int8"),
    ("change_pct", "float8"),
    ("created_at", "timestamptz"),
    ("fired_at", "timestamptz"),
    ("message", "text"),
)

TRIGGERS = _table(
    "triggers",
    ("run", "seq"),
    ("trigger_id", "text"),
    ("code", "text"),
    ("side", "text"),
    ("kind", "text"),
    ("status", "text"),
    ("qty", "text"),
    ("trigger_price", "int8"),
    ("level", "int8"),
    ("mark", "int8"),
    ("oco", "text"),
    ("cmd_id", "text"),
    ("order_id", "text"),
    ("outcome", "text"),
    ("reason", "text"),
    ("data", "jsonb"),
)

EVENT_TABLES: tuple[Table, ...] = (
    QUOTES,
    ORDERS,
    FILLS,
    POSITIONS,
    ACCOUNT,
    SURGE_ALERTS,
    COMMANDS,
    ENGINE_LOGS,
    ENGINE_STATUS,
    CANDLE_HISTORY,
    PRICE_ALERTS,
    TRIGGERS,
)
BY_NAME: dict[str, Table] = {t.name: t for t in EVENT_TABLES}


# --- value checks ----------------------------------------------------------------------------

_MISSING = object()


def _int(d: dict[str, Any], key: str, default: Any = _MISSING) -> int:
    v = d.get(key, default)
    if type(v) is int:  # noqa: E721 - bool must not pass
        return v
    if v is _MISSING:
        raise Poison(f"{key} is missing")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    raise Poison(f"{key} must be an integer, got {v!r}")


def _float(d: dict[str, Any], key: str, default: Any = _MISSING) -> float:
    v = d.get(key, default)
    if type(v) is float or type(v) is int:  # noqa: E721
        return float(v)
    if v is _MISSING:
        raise Poison(f"{key} is missing")
    raise Poison(f"{key} must be a number, got {v!r}")


def _str(d: dict[str, Any], key: str, default: Any = _MISSING) -> str:
    v = d.get(key, default)
    if type(v) is str:  # noqa: E721
        return v
    if v is _MISSING:
        raise Poison(f"{key} is missing")
    if v is None and default is not _MISSING:
        return default
    raise Poison(f"{key} must be a string, got {v!r}")


def _code(d: dict[str, Any]) -> str:
    code = _str(d, "code")
    if not is_valid_code(code):
        raise Poison(f"code must be 6 characters (digits or capital letters), got {code!r}")
    return code


def _ms_time(d: dict[str, Any], key: str) -> datetime.datetime | None:
    ms = _int(d, key, 0)
    if ms <= 0:
        return None
    return _from_ms(ms)


def _from_ms(ms: int) -> datetime.datetime:
    try:
        return datetime.datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        raise Poison(f"time {ms} ms is out of range") from None


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


# --- rows per event type ---------------------------------------------------------------------


#: Codes already checked (the hot path skips the regular expression for them).
_GOOD_CODES: set[str] = set()
_GOOD_CODES_MAX = 100000


def quote_row(ts: datetime.datetime, run: str, seq: int, i: int, q: Any) -> tuple:
    """One row of ``quotes``. The hot path: every value present with its right type."""
    if type(q) is dict:  # noqa: E721
        g = q.get
        code, price, pct, tm = g("code"), g("price"), g("change_pct", 0.0), g("time", "")
        change, volume, tq = g("change", 0), g("volume", 0), g("trade_qty", 0)
        o, h, lo, ask, bid = g("open", 0), g("high", 0), g("low", 0), g("ask", 0), g("bid", 0)
        if (
            code in _GOOD_CODES
            and type(price) is int
            and type(change) is int
            and type(volume) is int
            and type(tq) is int
            and type(o) is int
            and type(h) is int
            and type(lo) is int
            and type(ask) is int
            and type(bid) is int
            and type(tm) is str
            and (type(pct) is float or type(pct) is int)
        ):  # fmt: skip
            return (
                ts + _MICRO * i if i else ts,
                run, seq, i, code, price, change, float(pct), volume, tq, o, h, lo, ask, bid, tm,
            )  # fmt: skip
    row = _quote_row_checked(ts, run, seq, i, q)
    if len(_GOOD_CODES) < _GOOD_CODES_MAX:
        _GOOD_CODES.add(row[4])
    return row


def _quote_row_checked(ts: datetime.datetime, run: str, seq: int, i: int, q: Any) -> tuple:
    if not isinstance(q, dict):
        raise Poison(f"quote item {i} must be an object, got {type(q).__name__}")
    try:
        return (
            ts + _MICRO * i if i else ts,
            run,
            seq,
            i,
            _code(q),
            _int(q, "price"),
            _int(q, "change", 0),
            _float(q, "change_pct", 0.0),
            _int(q, "volume", 0),
            _int(q, "trade_qty", 0),
            _int(q, "open", 0),
            _int(q, "high", 0),
            _int(q, "low", 0),
            _int(q, "ask", 0),
            _int(q, "bid", 0),
            _str(q, "time", ""),
        )
    except Poison as exc:
        raise Poison(f"quote item {i}: {exc}") from None


_QUOTE_KEYS = (
    "code", "price", "change", "change_pct", "volume", "trade_qty",
    "open", "high", "low", "ask", "bid", "time",
)  # fmt: skip
_quote_values = operator.itemgetter(*_QUOTE_KEYS)
_INT = int
#: The value types of a complete, well-typed quote (``change_pct`` may be written as 1 or 1.0).
_QUOTE_TYPES = {
    (str, _INT, _INT, float, _INT, _INT, _INT, _INT, _INT, _INT, _INT, str),
    (str, _INT, _INT, _INT, _INT, _INT, _INT, _INT, _INT, _INT, _INT, str),
}
_MICROS = [datetime.timedelta(microseconds=i) for i in range(1000)]


def quote_rows(ts: datetime.datetime, run: str, seq: int, items: list) -> list[tuple]:
    """The rows of a batched ``quotes`` envelope. Items that carry every field with its exact
    type take a fast path (C-level lookups); any other goes through :func:`quote_row`."""
    out = []
    head = (ts, run, seq, 0)
    for i, q in enumerate(items):
        try:
            values = _quote_values(q)
        except (KeyError, TypeError):
            out.append(quote_row(ts, run, seq, i, q))
            continue
        if values[0] in _GOOD_CODES and tuple(map(type, values)) in _QUOTE_TYPES:
            if i:
                head = (ts + (_MICROS[i] if i < 1000 else _MICRO * i), run, seq, i)
            out.append(head + values)
        else:
            out.append(quote_row(ts, run, seq, i, q))
    return out


def _quotes(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    return [(QUOTES, row) for row in _quote_items(env, ts)]


def _quote_items(env: Envelope, ts: datetime.datetime) -> list[tuple]:
    items = env.data.get("items")
    if not isinstance(items, list):
        raise Poison("quotes envelope needs data.items, a list of quotes")
    return quote_rows(ts, env.run, env.seq, items)


def _quote(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    return [(QUOTES, quote_row(ts, env.run, env.seq, 0, env.data))]


def _side(d: dict[str, Any]) -> str:
    side = _str(d, "side")
    if side not in ("buy", "sell"):
        raise Poison(f"side must be buy or sell, got {side!r}")
    return side


def _venue(d: dict[str, Any]) -> str:
    """KRX when absent (engines before issue 12 knew no other venue)."""
    venue = d.get("venue", "KRX")
    if venue not in ("KRX", "NXT", "SOR"):
        raise Poison(f"venue must be KRX, NXT or SOR, got {venue!r}")
    return venue


def _order(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "order_id"),
        _str(d, "cmd_id", ""),
        _code(d),
        _str(d, "name", ""),
        _side(d),
        _str(d, "kind", "limit"),
        _int(d, "qty"),
        _int(d, "price", 0),
        _int(d, "filled_qty", 0),
        _int(d, "avg_fill_price", 0),
        _int(d, "remaining_qty", 0),
        _str(d, "status"),
        _str(d, "reason", ""),
        _str(d, "orig_order_id", ""),
        _ms_time(d, "created_ts"),
        _ms_time(d, "updated_ts"),
        _venue(d),
    )
    return [(ORDERS, row)]


def _fill(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "fill_id"),
        _str(d, "order_id"),
        _code(d),
        _side(d),
        _int(d, "qty"),
        _int(d, "price"),
        _int(d, "fee", 0),
        _int(d, "tax", 0),
        _venue(d),
    )
    return [(FILLS, row)]


def _position(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _code(d),
        _str(d, "name", ""),
        _int(d, "qty"),
        _int(d, "avg_price", 0),
        _int(d, "last_price", 0),
        _int(d, "unrealized_pnl", 0),
        _float(d, "unrealized_pnl_pct", 0.0),
        _int(d, "realized_pnl", 0),
    )
    return [(POSITIONS, row)]


def _account(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "account", ""),
        _int(d, "cash", 0),
        _int(d, "orderable", 0),
        _int(d, "equity", 0),
        _int(d, "realized_pnl_today", 0),
        _int(d, "unrealized_pnl", 0),
    )
    return [(ACCOUNT, row)]


def _surge(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _code(d),
        _str(d, "name", ""),
        _int(d, "price"),
        _float(d, "change_pct"),
        _float(d, "volume_ratio"),
        _int(d, "window_s"),
        _str(d, "reason"),
    )
    return [(SURGE_ALERTS, row)]


def _reply(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    ok = d.get("ok")
    if not isinstance(ok, bool):
        raise Poison(f"ok must be true or false, got {ok!r}")
    error = d.get("error")
    if error is not None and not isinstance(error, dict):
        raise Poison(f"error must be an object, got {error!r}")
    error = error or {}
    result = d.get("result")
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "id", ""),
        _str(d, "cmd", ""),
        ok,
        _str(error, "code", ""),
        _str(error, "message", ""),
        _ms_time(d, "ts"),
        None if result is None else _json(result),
        _json(d),
    )
    return [(COMMANDS, row)]


def _log(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (ts, env.run, env.seq, _str(d, "level"), _str(d, "logger", ""), _str(d, "message"))
    return [(ENGINE_LOGS, row)]


def _status(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data

    def text(key: str) -> str:
        v = d.get(key, "")
        return v if isinstance(v, str) else _json(v)

    row = (ts, env.run, env.seq, text("state"), text("broker"), text("mode"), _json(d))
    return [(ENGINE_STATUS, row)]


def _candles(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    """A ``candles`` event (``history`` command): one row per candle
    ``[start_ms, open, high, low, close, volume]``."""
    d = env.data
    code, interval, source = _code(d), _str(d, "interval"), _str(d, "source")
    if interval not in ("1d", "1m"):
        raise Poison(f"interval must be 1d or 1m, got {interval!r}")
    candles = d.get("candles")
    if not isinstance(candles, list):
        raise Poison(f"candles must be a list, got {candles!r:.60}")
    rows = []
    for c in candles:
        if (
            not isinstance(c, list) or len(c) != 6 or not all(type(v) is int for v in c)  # noqa: E721 - bool must not pass
        ):
            raise Poison(
                f"a candle must be [start_ms, open, high, low, close, volume], got {c!r:.80}"
            )
        start, o, h, lo, cl, v = c
        if not lo <= min(o, cl) <= max(o, cl) <= h:
            raise Poison(f"candle {c!r} has open/close outside its low-high range")
        rows.append(
            (ts, env.run, env.seq, code, interval, source, _from_ms(start), o, h, lo, cl, v)
        )
    return [(CANDLE_HISTORY, row) for row in rows]


def _alert(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "alert_id"),
        _code(d),
        _str(d, "name", ""),
        _str(d, "condition"),
        _float(d, "threshold"),
        _int(d, "price", 0),
        _float(d, "change_pct", 0.0),
        _ms_time(d, "created_ts"),
        _ms_time(d, "fired_ts"),
        _str(d, "message", ""),
    )
    return [(PRICE_ALERTS, row)]


#: Event types the writer reads and acknowledges but never stores: order books (one per code
#: per quote flush, only the latest matters: ``P:state:book``).
#: Not stored: the order book (a live view), and trailing marks moving (every trigger event
#: that changes a status carries the mark of that moment).
SKIPPED_TYPES = frozenset(("book", "trigger_marks"))


def _trigger(env: Envelope, ts: datetime.datetime) -> list[tuple[Table, tuple]]:
    d = env.data
    qty = d.get("qty")
    if not (qty == "position" or type(qty) is int):  # noqa: E721 - bool must not pass
        raise Poison(f'qty must be a number or "position", got {qty!r}')
    row = (
        ts,
        env.run,
        env.seq,
        _str(d, "trigger_id"),
        _code(d),
        _side(d),
        _str(d, "kind"),
        _str(d, "status"),
        str(qty),
        _int(d, "trigger_price", 0),
        _int(d, "level", 0),
        _int(d, "mark", 0),
        _str(d, "oco", ""),
        _str(d, "cmd_id", ""),
        _str(d, "order_id", ""),
        _str(d, "outcome", ""),
        _str(d, "reason", ""),
        _json(d),
    )
    return [(TRIGGERS, row)]


_CONVERTERS: dict[str, Callable[[Envelope, datetime.datetime], list[tuple[Table, tuple]]]] = {
    "quote": _quote,
    "quotes": _quotes,
    "order": _order,
    "fill": _fill,
    "position": _position,
    "account": _account,
    "surge": _surge,
    "reply": _reply,
    "log": _log,
    "status": _status,
    "candles": _candles,
    "alert": _alert,
    "trigger": _trigger,
}


def decode(raw: bytes | str | None) -> Envelope:
    """The envelope in a stream entry's ``e`` field; raises :class:`Poison` with the reason."""
    if raw is None:
        raise Poison("stream entry has no field 'e' (the envelope)")
    try:
        return decode_envelope(raw)
    except ProtocolError as exc:
        raise Poison(f"{exc.code}: {exc.message}") from None


def grouped_rows(env: Envelope) -> list[tuple[Table, list[tuple]]]:
    """Like :func:`rows_of`, grouped by table: ``[(table, rows), ...]``."""
    if env.type == "quotes":
        return [(QUOTES, _quote_items(env, _from_ms(env.ts)))]
    grouped: dict[Table, list[tuple]] = {}
    for table, row in rows_of(env):
        grouped.setdefault(table, []).append(row)
    return list(grouped.items())  # [] for the SKIPPED_TYPES (rows_of gives none)


def rows_of(env: Envelope) -> list[tuple[Table, tuple]]:
    """The rows one envelope becomes; raises :class:`Poison` when it cannot be stored."""
    if env.type in SKIPPED_TYPES:
        return []
    convert = _CONVERTERS.get(env.type)
    if convert is None:
        raise Poison(f"no table for event type {env.type!r}")
    return convert(env, _from_ms(env.ts))
