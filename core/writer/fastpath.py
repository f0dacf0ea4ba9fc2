"""The hot path for batched ``quotes`` envelopes: orjson decoding, binary COPY rows.

Nearly every stream entry is a ``quotes`` envelope whose items carry every field with its
exact type. For those, :func:`quotes_envelope` decodes the entry with orjson and
:func:`encode_quotes` turns each item straight into a row of PostgreSQL's binary COPY format:
one ``struct.pack`` per row, no ``datetime`` per row, no per-value encoder calls.

Anything else returns None and the caller takes the general path (``core.protocol``'s
decoder and the checks in :mod:`.tables`), so what is stored, what becomes a dead letter and
the reason given are exactly what they are without this module: another event type, a
missing or mistyped field (a ``bool``, a price written ``70000.0``), a code not checked yet
and not valid, a value outside ``bigint``, JSON that orjson reads differently from the
standard library (integers beyond 64 bits, which orjson makes floats; ``NaN``; lone
surrogates, which orjson refuses).
"""

from __future__ import annotations

import datetime
import operator
import struct
from typing import Any

import orjson

from core.protocol.krx import is_valid_code

from .tables import QUOTES, Table

UTC = datetime.timezone.utc
_EPOCH_2000 = datetime.datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamp origin
_MICRO = datetime.timedelta(microseconds=1)

#: The order of the columns in the COPY rows :func:`encode_quotes` makes: the envelope's
#: ``run`` and ``seq`` first, so they are encoded once per envelope.
QUOTE_COPY_COLUMNS = (
    "run", "seq", "ts", "i", "code", "price", "change", "change_pct", "volume", "trade_qty",
    "open", "high", "low", "ask", "bid", "exch_time",
)  # fmt: skip
assert sorted(QUOTE_COPY_COLUMNS) == sorted(QUOTES.column_names)

_QUOTE_KEYS = (
    "code", "price", "change", "change_pct", "volume", "trade_qty",
    "open", "high", "low", "ask", "bid", "time",
)  # fmt: skip
_quote_values = operator.itemgetter(*_QUOTE_KEYS)
#: The value types of a complete, well-typed quote (``change_pct`` may be written 1 or 1.0).
_QUOTE_TYPES = frozenset(
    {
        (str, int, int, float, int, int, int, int, int, int, int, str),
        (str, int, int, int, int, int, int, int, int, int, int, str),
    }
)

# Binary COPY: a header, then per row an int16 field count and per field an int32 length and
# the value in network order (int8, int4, float8, text as UTF-8, timestamptz as int8
# microseconds since 2000-01-01 UTC), then an int16 -1.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
_RUN_HEAD = struct.Struct(">hi")  # field count, length of run
_SEQ = struct.Struct(">iq")
#: ts, i, code (6 ASCII characters), price … bid (change_pct float8), then the length of
#: exch_time, whose bytes follow.
_ROW = struct.Struct(">iq ii i6s iq iq id iq iq iq iq iq iq iq i")

#: Codes already checked (valid, 6 ASCII characters) → their bytes.
_CODE_BYTES: dict[str, bytes] = {}
_CODE_BYTES_MAX = 100000


def has_no_bools(raw: bytes | str) -> bool:
    """True when the JSON text cannot hold a ``true`` or ``false`` (see :func:`encode_quotes`)."""
    if isinstance(raw, str):
        return "true" not in raw and "false" not in raw
    return b"true" not in raw and b"false" not in raw


def _code_bytes(code: str) -> bytes | None:
    if not is_valid_code(code) or len(code) != 6:
        return None
    b = code.encode("ascii")
    if len(_CODE_BYTES) < _CODE_BYTES_MAX:
        _CODE_BYTES[code] = b
    return b


def quotes_envelope(raw: bytes | str) -> tuple[str, int, int, list] | None:
    """``(run, seq, ts, items)`` of a well-formed ``quotes`` envelope; None for anything
    else (which the general path then decodes and judges)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or obj.get("type") != "quotes":
        return None
    v, run, seq, ts, data = (obj.get(k) for k in ("v", "run", "seq", "ts", "data"))
    if (
        type(v) is not int
        or v != 1
        or type(run) is not str
        or not run
        or type(seq) is not int
        or seq < 0
        or type(ts) is not int
        or ts < 0
        or type(data) is not dict
    ):
        return None
    items = data.get("items")
    if type(items) is not list:
        return None
    return run, seq, ts, items


def envelope_time(ts_ms: int) -> datetime.datetime | None:
    """The envelope time as the general path computes it; None when out of range."""
    try:
        return datetime.datetime.fromtimestamp(ts_ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def base_micros(ts_ms: int) -> int | None:
    """The envelope time as microseconds since 2000-01-01 UTC (what binary COPY sends for a
    ``timestamptz``), from the same ``datetime`` the general path makes, so both store the same
    instant; None when out of range."""
    dt = envelope_time(ts_ms)
    return None if dt is None else (dt - _EPOCH_2000) // _MICRO


def encode_quotes(
    run: str, seq: int, base_us: int, items: list, plain: bool = False
) -> bytes | None:
    """The binary COPY rows (columns :data:`QUOTE_COPY_COLUMNS`) of one envelope's items, or
    None if any item is not complete and exactly typed (then none is encoded).

    ``plain``: the envelope's text holds no ``true``/``false``, so no value is a ``bool``;
    then ``struct`` alone checks the types (it refuses anything but an ``int`` for ``bigint``
    and ``int4``, and anything but a number for ``float8``) and the per-item type check is
    skipped."""
    try:
        run_b = run.encode()
        prefix = _RUN_HEAD.pack(16, len(run_b)) + run_b + _SEQ.pack(8, seq)
    except (struct.error, UnicodeError):
        return None
    pack = _ROW.pack
    codes = _CODE_BYTES
    types = _QUOTE_TYPES
    values_of = _quote_values
    parts: list[bytes] = []
    add = parts.append
    i = 0
    try:
        for q in items:
            v = values_of(q)
            if not plain and tuple(map(type, v)) not in types:
                return None
            code_s, price, change, pct, volume, tq, o, h, lo, ask, bid, tm = v
            code = codes.get(code_s) or _code_bytes(code_s)
            if code is None:
                return None
            tm = tm.encode()
            add(prefix)
            add(
                pack(
                    8, base_us + i, 4, i, 6, code, 8, price, 8, change, 8, pct, 8, volume,
                    8, tq, 8, o, 8, h, 8, lo, 8, ask, 8, bid, len(tm),
                )
            )  # fmt: skip
            add(tm)
            i += 1
    except (KeyError, TypeError, AttributeError, struct.error, OverflowError, UnicodeError):
        return None
    return b"".join(parts)


def quote_tuples(
    ts: datetime.datetime, run: str, seq: int, items: list
) -> list[tuple[Any, ...]] | None:
    """The ``quotes`` rows (tuples in table order) of one envelope's items for a sink that
    takes tuples, or None if any item is not complete and exactly typed."""
    out = []
    head = (ts, run, seq, 0)
    types = _QUOTE_TYPES
    codes = _CODE_BYTES
    try:
        for i, q in enumerate(items):
            v = _quote_values(q)
            if tuple(map(type, v)) not in types:
                return None
            if v[0] not in codes and _code_bytes(v[0]) is None:
                return None
            if i:
                head = (ts + _MICRO * i, run, seq, i)
            out.append(head + v)
    except (KeyError, TypeError):
        return None
    return out


class CopyRows:
    """Rows of one table already in the binary COPY format, gathered for one batch."""

    def __init__(self, table: Table, columns: tuple[str, ...]) -> None:
        self.table = table
        self.columns = columns
        self.count = 0
        self._parts: list[bytes] = [COPY_HEADER]

    def __len__(self) -> int:
        return self.count

    def add(self, data: bytes, rows: int) -> None:
        self._parts.append(data)
        self.count += rows

    def payload(self) -> bytearray:
        """The whole COPY stream (a bytearray: asyncpg would take ``bytes`` for a path)."""
        return bytearray(b"".join(self._parts + [COPY_TRAILER]))
