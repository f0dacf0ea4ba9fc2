"""The hot path for batched quotes (orjson, binary COPY rows) stores exactly what the general
path stores, and hands everything else to the general path, so dead letters and their
reasons do not change."""

from __future__ import annotations

import datetime
import random
import struct

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.protocol import Envelope, Keys
from core.writer import Writer
from core.writer.batching import Batch
from core.writer.fastpath import (
    COPY_HEADER,
    COPY_TRAILER,
    QUOTE_COPY_COLUMNS,
    base_micros,
    encode_quotes,
    quotes_envelope,
)
from core.writer.tables import QUOTES

from .conftest import DbTarget, db_conn
from .helpers import Engine, quote, random_quotes, run_until_caught_up, xadd
from .helpers import settings as writer_settings

UTC = datetime.timezone.utc
EPOCH_2000 = datetime.datetime(2000, 1, 1, tzinfo=UTC)
INT8 = (-(2**63), 2**63 - 1)


def parse_copy(data: bytes | bytearray) -> list[tuple]:
    """Read binary COPY rows of the quotes table (columns QUOTE_COPY_COLUMNS) back into
    tuples in table order, ts as a datetime."""
    data = bytes(data)
    assert data.startswith(COPY_HEADER) and data.endswith(COPY_TRAILER)
    pos, end = len(COPY_HEADER), len(data) - len(COPY_TRAILER)
    kinds = dict(QUOTES.columns)
    rows = []
    while pos < end:
        (n,) = struct.unpack_from(">h", data, pos)
        pos += 2
        assert n == len(QUOTE_COPY_COLUMNS)
        row = {}
        for col in QUOTE_COPY_COLUMNS:
            (size,) = struct.unpack_from(">i", data, pos)
            pos += 4
            raw = data[pos : pos + size]
            pos += size
            kind = kinds[col]
            if kind == "text":
                row[col] = raw.decode()
            elif kind == "int8":
                row[col] = struct.unpack(">q", raw)[0]
            elif kind == "int4":
                row[col] = struct.unpack(">i", raw)[0]
            elif kind == "float8":
                row[col] = struct.unpack(">d", raw)[0]
            else:
                assert kind == "timestamptz"
                us = struct.unpack(">q", raw)[0]
                row[col] = EPOCH_2000 + datetime.timedelta(microseconds=us)
        rows.append(tuple(row[c] for c in QUOTES.column_names))
    assert pos == end
    return rows


def stored(batch: Batch) -> tuple[list[tuple], list[tuple]]:
    """(rows, dead letters) of a batch, whichever way its rows are held."""
    rows = list(batch.rows.get("quotes", []))
    if "quotes" in batch.encoded:
        rows += parse_copy(batch.encoded["quotes"].payload())
    dead = [(d.stream_id, d.reason, d.raw, d.run, d.seq) for d in batch.dead]
    return sorted(rows), dead


def general_rows(raw: str) -> list[tuple]:
    """The rows of one envelope by the general path alone (stdlib JSON, tables.py checks)."""
    from core.writer.tables import decode, rows_of

    return [row for _, row in rows_of(decode(raw))]


ints = st.integers(*INT8)
codes = st.sampled_from(["005930", "000660", "0001A0", "035420"])
items = st.fixed_dictionaries(
    {
        "code": codes,
        "price": ints,
        "change": ints,
        "change_pct": st.one_of(
            st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53)
        ),
        "volume": ints,
        "trade_qty": ints,
        "open": ints,
        "high": ints,
        "low": ints,
        "ask": ints,
        "bid": ints,
        "time": st.text(max_size=8),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(items, max_size=12),
    st.integers(0, 2**40),
    st.integers(0, 253402300799000),
    st.text(min_size=1, max_size=30),
)
def test_copy_rows_equal_the_general_rows(batch: list, seq: int, ts: int, run: str) -> None:
    raw = Envelope("quotes", run, seq, ts, {"items": batch}).encode()
    head = quotes_envelope(raw.encode())
    assert head is not None
    base = base_micros(ts)
    assert base is not None
    data = encode_quotes(*head[:2], base, head[3])
    assert data is not None
    assert parse_copy(COPY_HEADER + data + COPY_TRAILER) == general_rows(raw)


BAD_ITEMS = [
    {"price": True},  # a bool is not an integer
    {"price": 70000.0},  # the general path takes it; the hot path leaves it to it
    {"price": "70000"},
    {"price": None},
    {"price": 2**63},  # beyond bigint
    {"price": 2**70},  # beyond 64 bits: orjson would read a float
    {"change_pct": False},
    {"change_pct": "1.5"},
    {"code": "5930"},
    {"code": "005930\n"},
    {"code": 5930},
    {"time": 91500},
    {"time": None},
]


def test_anything_unusual_is_left_to_the_general_path() -> None:
    eng = Engine()
    for change in BAD_ITEMS:
        raw = eng.env("quotes", {"items": [quote(), {**quote(), **change}]}).encode()
        head = quotes_envelope(raw.encode())
        if head is not None:
            base = base_micros(head[2])
            assert encode_quotes(head[0], head[1], base, head[3], False) is None, change
            if "true" not in raw and "false" not in raw:
                assert encode_quotes(head[0], head[1], base, head[3], True) is None, change
    missing = {k: v for k, v in quote().items() if k != "bid"}
    raw = eng.env("quotes", {"items": [missing]}).encode().encode()
    head = quotes_envelope(raw)
    assert head is not None and encode_quotes(head[0], head[1], 0, head[3]) is None
    for raw in [
        eng.env("quote", quote()).encode(),
        eng.env("order", {"order_id": "1"}).encode(),
        '{"v":1,"type":"quotes","run":"r","seq":1,"ts":1,"data":{"items":[{"price":NaN}]}}',
        '{"v":1,"type":"quotes","run":"r","seq":1.0,"ts":1,"data":{"items":[]}}',
        '{"v":true,"type":"quotes","run":"r","seq":1,"ts":1,"data":{"items":[]}}',
        '{"v":1,"type":"quotes","run":"r","seq":1,"ts":1,"data":{"items":{}}}',
        '{"v":1,"type":"quotes","run":"r","seq":1,"ts":1,"data":{"items":["\\ud800"]}}',
        "not json",
    ]:
        assert quotes_envelope(raw.encode()) is None, raw


def test_a_batch_keeps_the_same_rows_and_dead_letters_either_way() -> None:
    eng = Engine()
    raws: list = []
    for change in BAD_ITEMS:
        raws.append(eng.env("quotes", {"items": [quote(), {**quote(), **change}]}).encode())
    raws.append(eng.env("quotes", {"items": [quote("000660", 120500), quote()]}).encode())
    raws.append(eng.env("quotes", {"items": []}).encode())
    raws.append(eng.env("quotes", {"items": [quote()]}, ts=10**16).encode())  # out of range
    raws.append(eng.env("quote", quote(price=1)).encode())
    raws.append("not json")
    general = Batch(fast=False)
    for k, raw in enumerate(raws):
        general.add(f"1-{k}", {b"e": raw.encode()})
    g_rows, g_dead = stored(general)
    assert len(g_dead) >= 10  # bools, strings, None, bad codes, out-of-range time, not JSON
    for fast in (Batch(), Batch(copy_quotes=True)):
        for k, raw in enumerate(raws):
            fast.add(f"1-{k}", {b"e": raw.encode()})
        if fast.copy_quotes:
            assert fast.encoded["quotes"].count > 0
        assert stored(fast) == (g_rows, g_dead)
        assert (fast.row_count, fast.envelopes, fast.seqs, fast.raws) == (
            general.row_count,
            general.envelopes,
            general.seqs,
            general.raws,
        )


async def test_copy_and_unnest_store_the_same_quotes(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    rng = random.Random(7)
    eng = Engine()
    envs = [eng.env("quotes", {"items": random_quotes(rng, rng.randint(1, 30))}) for _ in range(60)]
    envs.insert(10, eng.env("quotes", {"items": [{**quote(), "price": True}]}))  # dead letter
    tables = {}
    for method in ("copy", "unnest"):
        # the same entries on a stream and in a database schema of each method's own
        mkeys = Keys(f"{keys.prefix}{method}")
        target = DbTarget(pg.kind, pg.dsn, f"{pg.schema}_{method}")
        xadd(rconn, mkeys, envs)
        writer = Writer(writer_settings(redis_url, mkeys, target, sink=method))
        try:
            await run_until_caught_up(writer, rconn, mkeys)
            assert writer.sink.name == method
            async with db_conn(target) as conn:
                tables[method] = [tuple(r) for r in await conn.fetch("SELECT * FROM quotes")]
                dead = await conn.fetch("SELECT reason FROM dead_letters")
        finally:
            rconn.delete(mkeys.events, mkeys.writer)
            async with db_conn(target) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{target.schema}" CASCADE')
        assert len(dead) == 1 and "price must be an integer" in dead[0]["reason"]
    assert sorted(tables["copy"]) == sorted(tables["unnest"])
    assert len(tables["copy"]) == sum(len(e.data["items"]) for e in envs) - 1
    first = envs[0].data["items"][0]
    assert (first["code"], first["price"]) in {(r[4], r[5]) for r in tables["copy"]}
