"""Every event type lands in its table with its values; poison goes to dead_letters; the
insert method is chosen by what the server can do."""

from __future__ import annotations

import datetime
import json

import pytest
import redis

from core.protocol import Keys
from core.writer import Writer

from .conftest import DbTarget, db_conn
from .helpers import BASE_TS, Engine, quote, run_until_caught_up, settings, xadd

UTC = datetime.timezone.utc


def at(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, UTC)


def one_of_each(eng: Engine) -> list:
    return [
        eng.env(
            "quotes", {"items": [quote("005930", 70000), quote("000660", 120500, trade_qty=-7)]}
        ),
        eng.env("quote", {**quote("035420", 201000), "change_pct": -1.25}),
        eng.env(
            "order",
            {
                "order_id": "0001234",
                "cmd_id": "s1",
                "code": "005930",
                "name": "삼성전자",
                "side": "buy",
                "kind": "limit",
                "qty": 10,
                "price": 70000,
                "filled_qty": 4,
                "avg_fill_price": 70000,
                "remaining_qty": 6,
                "status": "partially_filled",
                "created_ts": BASE_TS - 500,
                "updated_ts": BASE_TS,
                "something_new": 1,
            },
        ),
        eng.env(
            "fill",
            {
                "fill_id": "f-1",
                "order_id": "0001234",
                "code": "005930",
                "side": "buy",
                "qty": 4,
                "price": 70000,
                "fee": 42,
                "tax": 0,
            },
        ),
        eng.env(
            "position",
            {
                "code": "005930",
                "name": "삼성전자",
                "qty": 4,
                "avg_price": 70000,
                "last_price": 70100,
                "unrealized_pnl": 400,
                "unrealized_pnl_pct": 0.14,
                "realized_pnl": 0,
            },
        ),
        eng.env(
            "account",
            {
                "account": "8012****11",
                "cash": 99719958,
                "orderable": 99300000,
                "equity": 100000358,
                "realized_pnl_today": -1200,
                "unrealized_pnl": 400,
            },
        ),
        eng.env(
            "surge",
            {
                "code": "000660",
                "name": "SK하이닉스",
                "price": 125000,
                "change_pct": 4.2,
                "volume_ratio": 6.5,
                "window_s": 60,
                "reason": "+4.2% on 6.5x volume",
            },
        ),
        eng.env(
            "reply",
            {
                "id": "s1",
                "cmd": "buy",
                "ok": True,
                "ts": BASE_TS + 3,
                "result": {"order_id": "0001234"},
            },
        ),
        eng.env(
            "reply",
            {
                "id": "s2",
                "cmd": "sell",
                "ok": False,
                "ts": BASE_TS + 4,
                "error": {"code": "RISK_REJECTED", "message": "qty above max_order_qty"},
            },
        ),
        eng.env("log", {"level": "WARNING", "logger": "engine32.risk", "message": "한도 초과"}),
        eng.env("status", {"run_id": eng.run, "broker": "sim", "mode": "paper", "state": "ready"}),
    ]


async def test_every_event_type_round_trips(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    envs = one_of_each(eng)
    xadd(rconn, keys, envs)
    writer = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(writer, rconn, keys)
    assert writer.sink.name == ("unnest" if db.timescale else "copy")

    async with db_conn(db) as conn:
        q = await conn.fetch("SELECT * FROM quotes ORDER BY seq, i")
        assert [(r["seq"], r["i"], r["code"], r["price"], r["trade_qty"]) for r in q] == [
            (1, 0, "005930", 70000, 10),
            (1, 1, "000660", 120500, -7),
            (2, 0, "035420", 201000, 10),
        ]
        assert q[0]["ts"] == at(envs[0].ts)
        assert q[1]["ts"] == at(envs[0].ts) + datetime.timedelta(microseconds=1)
        assert q[2]["change_pct"] == -1.25 and q[2]["exch_time"] == "091320"
        assert all(r["run"] == eng.run for r in q)

        o = await conn.fetchrow("SELECT * FROM orders")
        assert (o["order_id"], o["name"], o["side"], o["qty"], o["filled_qty"], o["status"]) == (
            "0001234",
            "삼성전자",
            "buy",
            10,
            4,
            "partially_filled",
        )
        assert o["created_at"] == at(BASE_TS - 500) and o["updated_at"] == at(BASE_TS)
        assert o["ts"] == at(envs[2].ts) and o["seq"] == 3

        f = await conn.fetchrow("SELECT * FROM fills")
        assert (f["fill_id"], f["qty"], f["price"], f["fee"], f["seq"]) == ("f-1", 4, 70000, 42, 4)

        p = await conn.fetchrow("SELECT * FROM positions")
        assert (p["code"], p["qty"], p["last_price"], p["unrealized_pnl_pct"]) == (
            "005930",
            4,
            70100,
            0.14,
        )
        a = await conn.fetchrow("SELECT * FROM account")
        assert (a["account"], a["cash"], a["realized_pnl_today"]) == ("8012****11", 99719958, -1200)

        s = await conn.fetchrow("SELECT * FROM surge_alerts")
        assert (s["code"], s["name"], s["volume_ratio"], s["window_s"]) == (
            "000660",
            "SK하이닉스",
            6.5,
            60,
        )
        c = await conn.fetch("SELECT * FROM commands ORDER BY seq")
        assert [(r["cmd_id"], r["cmd"], r["ok"], r["error_code"]) for r in c] == [
            ("s1", "buy", True, ""),
            ("s2", "sell", False, "RISK_REJECTED"),
        ]
        assert json.loads(c[0]["result"]) == {"order_id": "0001234"}
        assert json.loads(c[1]["reply"])["error"]["message"] == "qty above max_order_qty"
        assert c[0]["replied_at"] == at(BASE_TS + 3)

        lg = await conn.fetchrow("SELECT * FROM engine_logs")
        assert (lg["level"], lg["logger"], lg["message"]) == (
            "WARNING",
            "engine32.risk",
            "한도 초과",
        )
        st = await conn.fetchrow("SELECT * FROM engine_status")
        assert (st["state"], st["broker"], st["mode"]) == ("ready", "sim", "paper")
        assert json.loads(st["data"])["run_id"] == eng.run

        assert await conn.fetchval("SELECT count(*) FROM dead_letters") == 0
        assert await conn.fetchval("SELECT count(*) FROM gaps") == 0
        assert await conn.fetchval("SELECT last_seq FROM writer_runs WHERE run = $1", eng.run) == 11
    assert writer.stats.rows == 12 and writer.stats.envelopes == 11


POISON = [
    ("not json at all", "BAD_JSON"),
    ('{"v": 1, "type": "bogus", "run": "r", "seq": 1, "ts": 1, "data": {}}', "unknown event type"),
    ('{"v": 2, "type": "quote", "run": "r", "seq": 1, "ts": 1, "data": {}}', "version"),
    ('{"v": 1, "type": "quote", "run": "r", "seq": -1, "ts": 1, "data": {}}', "seq"),
]


async def test_poison_goes_to_dead_letters_and_is_acknowledged(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    good1 = eng.env("quote", quote())
    bad_price = eng.env("quote", {**quote(), "price": "70000"})  # a string price
    bad_code = eng.env(
        "order", {"order_id": "1", "code": "5930", "side": "buy", "qty": 1, "status": "accepted"}
    )
    bad_side = eng.env(
        "fill",
        {"fill_id": "1", "order_id": "1", "code": "005930", "side": "long", "qty": 1, "price": 1},
    )
    huge = eng.env("quote", {**quote(), "price": 2**70})  # PostgreSQL's bigint refuses it
    good2 = eng.env("quote", quote(price=70100))
    ids = xadd(
        rconn, keys, [good1, bad_price, bad_code, bad_side, huge] + [p for p, _ in POISON] + [good2]
    )
    rconn.xadd(keys.events, {"other": "field"})
    writer = Writer(settings(redis_url, keys, db))
    await run_until_caught_up(writer, rconn, keys)

    assert rconn.xpending(keys.events, "writer")["pending"] == 0
    async with db_conn(db) as conn:
        assert [r["price"] for r in await conn.fetch("SELECT price FROM quotes ORDER BY seq")] == [
            70000,
            70100,
        ]
        dead = {r["stream_id"]: r for r in await conn.fetch("SELECT * FROM dead_letters")}
    assert len(dead) == 9
    assert "price must be an integer" in dead[ids[1]]["reason"]
    assert dead[ids[1]]["run"] == eng.run and dead[ids[1]]["seq"] == 2
    assert "code must be 6 characters" in dead[ids[2]]["reason"]
    assert "side must be buy or sell" in dead[ids[3]]["reason"]
    assert "refused" in dead[ids[4]]["reason"]
    for (raw, why), sid in zip(POISON, ids[5:9]):
        assert why in dead[sid]["reason"] and dead[sid]["raw"] == raw
    assert sum("no field 'e'" in d["reason"] for d in dead.values()) == 1
    assert writer.stats.dead_letters == 9
    assert rconn.hget(keys.writer, "dead_letters") == b"9"


async def test_the_same_envelope_twice_lands_once(
    db: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis
) -> None:
    eng = Engine()
    envs = one_of_each(eng)
    xadd(rconn, keys, envs + envs)  # every envelope twice in the stream
    writer = Writer(settings(redis_url, keys, db, batch_rows=7))
    await run_until_caught_up(writer, rconn, keys)
    counts = {}
    async with db_conn(db) as conn:
        for table in ("quotes", "orders", "fills", "commands", "engine_status", "engine_logs"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
    assert counts == {
        "quotes": 3,
        "orders": 1,
        "fills": 1,
        "commands": 2,
        "engine_status": 1,
        "engine_logs": 1,
    }
    assert writer.stats.envelopes == 22  # all were read and written; half landed


@pytest.mark.parametrize("method", ["copy", "unnest"])
async def test_both_insert_methods_on_postgresql(
    pg: DbTarget, redis_url: str, keys: Keys, rconn: redis.Redis, method: str
) -> None:
    eng = Engine()
    xadd(rconn, keys, one_of_each(eng))
    writer = Writer(settings(redis_url, keys, pg, sink=method))
    await run_until_caught_up(writer, rconn, keys)
    assert writer.sink.name == method
    async with db_conn(pg) as conn:
        assert await conn.fetchval("SELECT count(*) FROM quotes") == 3
        assert await conn.fetchval("SELECT count(*) FROM commands") == 2


async def test_copy_is_never_tried_on_timescale_pglite(ts: DbTarget) -> None:
    import asyncpg

    from core.writer.sinks import probe_copy

    async def connect():
        return await asyncpg.connect(ts.dsn)

    ok, why = await probe_copy(connect)
    assert not ok and "WebAssembly" in why
    # and the server is still alive afterwards
    async with db_conn(ts) as conn:
        assert await conn.fetchval("SELECT 41 + 1") == 42
