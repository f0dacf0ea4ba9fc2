"""History queries for the console (asyncpg): candles, today's fills and orders.

Candles come from the continuous aggregates ``candles_1m`` / ``candles_1d`` when the writer
made them (TimescaleDB), and are computed from ``quotes`` otherwise (plain PostgreSQL, or the
Apache-only TimescaleDB build) — the same numbers either way:

- open/close: the price of the first/last quote of the bucket, in stream order (``ts``, which
  the writer makes unique within a batched envelope);
- high/low: the highest/lowest price; volume: the sum of ``|trade_qty|``.

Minute intervals are aligned to the hour; days are Korean days (00:00 Asia/Seoul). Every
timestamp returned is timezone-aware (UTC; show it in Asia/Seoul).

All functions take an open connection (the TimescaleDB test server allows only one at a
time) and use the tables on its ``search_path``.
"""

from __future__ import annotations

import datetime
from typing import Any

import asyncpg

from core.protocol.krx import KST

#: Interval labels the console asks for → minutes.
INTERVALS: dict[str, int] = {
    "1m": 1,
    "3m": 3,
    "5m": 5,
    "10m": 10,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "1d": 1440,
}

# Bucket origin: midnight KST, so days are Korean days and minute buckets line up with hours.
_ORIGIN = datetime.datetime(2000, 1, 3, tzinfo=KST)

Candle = dict[str, Any]  # bucket (datetime), code, open, high, low, close, volume, ticks


def interval_minutes(interval: str | int | datetime.timedelta) -> int:
    """``"5m"``, ``5`` or ``timedelta(minutes=5)`` → 5."""
    if isinstance(interval, datetime.timedelta):
        minutes = int(interval.total_seconds() // 60)
    elif isinstance(interval, int):
        minutes = interval
    else:
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r} (known: {', '.join(INTERVALS)})")
        minutes = INTERVALS[interval]
    if minutes <= 0 or (minutes > 1440 and minutes % 1440):
        raise ValueError(f"an interval must be a positive number of minutes or days, got {minutes}")
    return minutes


def _aware(t: datetime.datetime) -> datetime.datetime:
    if t.tzinfo is None:
        raise ValueError("give timezone-aware datetimes (e.g. in Asia/Seoul)")
    return t


async def has_candle_views(conn: asyncpg.Connection) -> bool:
    """Are ``candles_1m`` and ``candles_1d`` continuous aggregates on this connection's schema?"""
    ext = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    if not ext:
        return False
    n = await conn.fetchval(
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = current_schema() AND view_name IN ('candles_1m', 'candles_1d')"
    )
    return n == 2


def _rows(records: list[asyncpg.Record]) -> list[Candle]:
    out = []
    for r in records:
        c = dict(r)
        c["bucket"] = c["bucket"].astimezone(datetime.timezone.utc)
        for k in ("open", "high", "low", "close", "volume", "ticks"):
            c[k] = int(c[k]) if c[k] is not None else 0
        out.append(c)
    return out


async def candles(
    conn: asyncpg.Connection,
    code: str,
    interval: str | int | datetime.timedelta,
    start: datetime.datetime,
    end: datetime.datetime,
    source: str = "auto",
) -> list[Candle]:
    """Candles of ``code`` whose bucket starts in ``[start, end)``, oldest first.

    ``source``: ``auto`` (aggregates when present), ``aggregate`` or ``quotes`` for the
    live candles; backfilled candles (``candle_history``) fill the buckets they leave empty.
    """
    minutes = interval_minutes(interval)
    start, end = _aware(start), _aware(end)
    use_views = source == "aggregate" or (source == "auto" and await has_candle_views(conn))
    if use_views:
        live = await _from_views(conn, code, minutes, start, end)
    else:
        live = await _from_quotes(conn, code, minutes, start, end)
    past = await _from_history(conn, code, minutes, start, end)
    if not past:
        return live
    merged = {c["bucket"]: c for c in past}
    merged.update((c["bucket"], c) for c in live)  # what the quotes say wins
    return [merged[b] for b in sorted(merged)]


async def _from_history(
    conn: asyncpg.Connection,
    code: str,
    minutes: int,
    start: datetime.datetime,
    end: datetime.datetime,
) -> list[Candle]:
    """Backfilled candles (``candle_history``, from the ``history`` command) as ``minutes``
    candles: a broker's rows before the simulator's for the same bucket; none if the writer
    has not made the table yet."""
    base = "1d" if minutes % 1440 == 0 else "1m"
    step = datetime.timedelta(minutes=minutes)
    first = _ORIGIN + ((start - _ORIGIN) // step) * step
    try:
        records = await conn.fetch(
            """SELECT DISTINCT ON (bucket) bucket, open, high, low, close, volume
               FROM candle_history
               WHERE code = $1 AND interval = $2 AND bucket >= $3 AND bucket < $4
               ORDER BY bucket, (source = 'sim'), ts DESC""",
            code,
            base,
            first,
            end,
        )
    except asyncpg.UndefinedTableError:
        return []
    out: list[Candle] = []
    for r in records:
        bucket = _ORIGIN + ((r["bucket"] - _ORIGIN) // step) * step
        if bucket < start:
            continue
        bucket = bucket.astimezone(datetime.timezone.utc)
        if out and out[-1]["bucket"] == bucket:
            c = out[-1]
            c["high"] = max(c["high"], int(r["high"]))
            c["low"] = min(c["low"], int(r["low"]))
            c["close"] = int(r["close"])
            c["volume"] += int(r["volume"])
        else:
            out.append(
                {
                    "bucket": bucket,
                    "code": code,
                    "open": int(r["open"]),
                    "high": int(r["high"]),
                    "low": int(r["low"]),
                    "close": int(r["close"]),
                    "volume": int(r["volume"]),
                    "ticks": 0,
                }
            )
    return out


def _bucket_sql(column: str, minutes: int) -> str:
    """A bucket expression aligned to midnight KST (date_bin: PostgreSQL 14+)."""
    return f"date_bin(make_interval(mins => {minutes}), {column}, $4::timestamptz)"


async def _from_quotes(
    conn: asyncpg.Connection,
    code: str,
    minutes: int,
    start: datetime.datetime,
    end: datetime.datetime,
) -> list[Candle]:
    bucket = _bucket_sql("ts", minutes)
    records = await conn.fetch(
        f"""SELECT {bucket} AS bucket, $1::text AS code,
                   (array_agg(price ORDER BY ts, seq, i))[1] AS open,
                   max(price) AS high,
                   min(price) AS low,
                   (array_agg(price ORDER BY ts DESC, seq DESC, i DESC))[1] AS close,
                   sum(abs(trade_qty)) AS volume,
                   count(*) AS ticks
            FROM quotes
            WHERE code = $1 AND ts >= {_bucket_sql("$2::timestamptz", minutes)} AND ts < $3
            GROUP BY 1
            HAVING {bucket} >= $2::timestamptz
            ORDER BY 1""",
        code,
        start,
        end,
        _ORIGIN,
    )
    return _rows(records)


async def _from_views(
    conn: asyncpg.Connection,
    code: str,
    minutes: int,
    start: datetime.datetime,
    end: datetime.datetime,
) -> list[Candle]:
    if minutes % 1440 == 0:
        view, base = "candles_1d", 1440
    else:
        view, base = "candles_1m", 1
    if minutes == base:
        records = await conn.fetch(
            f"""SELECT bucket, code, open, high, low, close, volume, ticks FROM {view}
                WHERE code = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket""",
            code,
            start,
            end,
        )
        return _rows(records)
    bucket = _bucket_sql("bucket", minutes)
    records = await conn.fetch(
        f"""SELECT {bucket} AS bucket, $1::text AS code,
                   (array_agg(open ORDER BY bucket))[1] AS open,
                   max(high) AS high,
                   min(low) AS low,
                   (array_agg(close ORDER BY bucket DESC))[1] AS close,
                   sum(volume) AS volume,
                   sum(ticks) AS ticks
            FROM {view}
            WHERE code = $1 AND bucket >= {_bucket_sql("$2::timestamptz", minutes)}
              AND bucket < $3
            GROUP BY 1
            HAVING {bucket} >= $2::timestamptz
            ORDER BY 1""",
        code,
        start,
        end,
        _ORIGIN,
    )
    return _rows(records)


def kst_day_bounds(day: datetime.date | None = None) -> tuple[datetime.datetime, datetime.datetime]:
    """00:00 to 24:00 of ``day`` (default today) in Asia/Seoul, as aware datetimes."""
    if day is None:
        day = datetime.datetime.now(KST).date()
    start = datetime.datetime(day.year, day.month, day.day, tzinfo=KST)
    return start, start + datetime.timedelta(days=1)


async def fills_today(
    conn: asyncpg.Connection, day: datetime.date | None = None, code: str | None = None
) -> list[dict[str, Any]]:
    """The fills of a Korean trading day (default today), oldest first."""
    start, end = kst_day_bounds(day)
    records = await conn.fetch(
        """SELECT ts, run, seq, fill_id, order_id, code, side, qty, price, fee, tax
           FROM fills WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR code = $3)
           ORDER BY ts, run, seq""",
        start,
        end,
        code,
    )
    return [dict(r) for r in records]


async def orders_today(
    conn: asyncpg.Connection,
    day: datetime.date | None = None,
    code: str | None = None,
    latest_only: bool = True,
) -> list[dict[str, Any]]:
    """The orders of a Korean trading day. ``latest_only``: one row per order (its last
    state); otherwise every state change. Oldest first."""
    start, end = kst_day_bounds(day)
    if latest_only:
        sql = """SELECT * FROM (
                     SELECT DISTINCT ON (order_id) ts, run, seq, order_id, cmd_id, code, name,
                            side, kind, qty, price, filled_qty, avg_fill_price, remaining_qty,
                            status, reason, orig_order_id, created_at, updated_at
                     FROM orders WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR code = $3)
                     ORDER BY order_id, ts DESC, seq DESC) o
                 ORDER BY ts, run, seq"""
    else:
        sql = """SELECT ts, run, seq, order_id, cmd_id, code, name, side, kind, qty, price,
                        filled_qty, avg_fill_price, remaining_qty, status, reason,
                        orig_order_id, created_at, updated_at
                 FROM orders WHERE ts >= $1 AND ts < $2 AND ($3::text IS NULL OR code = $3)
                 ORDER BY ts, run, seq"""
    records = await conn.fetch(sql, start, end, code)
    return [dict(r) for r in records]


async def fills_between(
    conn: asyncpg.Connection,
    start: datetime.datetime | None,
    end: datetime.datetime,
    code: str | None = None,
) -> list[dict[str, Any]]:
    """Every fill with ``start <= ts < end`` (``start`` None: from the first), oldest first,
    with all the columns the ``fills`` table has (``venue`` once the writer stores it)."""
    end = _aware(end)
    records = await conn.fetch(
        """SELECT * FROM fills
           WHERE ($1::timestamptz IS NULL OR ts >= $1) AND ts < $2
             AND ($3::text IS NULL OR code = $3)
           ORDER BY ts, run, seq""",
        None if start is None else _aware(start),
        end,
        code,
    )
    return [dict(r) for r in records]


async def code_names(conn: asyncpg.Connection) -> dict[str, str]:
    """code → the latest Korean name the engine gave it on an order."""
    records = await conn.fetch(
        """SELECT DISTINCT ON (code) code, name FROM orders WHERE name <> ''
           ORDER BY code, ts DESC"""
    )
    return {r["code"]: r["name"] for r in records}
