"""Deterministic engine state for the console tests: what a sim engine would have written.

Everything goes through a real Redis in the protocol's real format (``P:state:*`` hashes and
lists, ``P:engine``, envelopes on ``P:ev:*``), so the console reads it the way it reads an engine.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import redis

from core.protocol import Envelope, Keys
from core.protocol.krx import KST

RUN = "20261123-0930-seed01"
#: The frozen clock of the snapshot tests: a Monday, mid-session.
FROZEN = datetime.datetime(2026, 11, 23, 10, 15, 30, tzinfo=KST)
FROZEN_MS = int(FROZEN.timestamp() * 1000)

WATCHLIST = ["005930", "000660", "035420", "035720", "005380", "051910", "006400", "068270"]
#: code -> (price, change, volume)
QUOTES: dict[str, tuple[int, int, int]] = {
    "005930": (71200, 900, 12_345_678),
    "000660": (182300, -2700, 3_210_987),
    "035420": (201500, 0, 845_120),
    "035720": (48950, -550, 2_004_311),
    "005380": (243000, 4500, 612_004),
    "051910": (372500, -6500, 301_220),
    "006400": (405000, 12000, 288_931),
    "068270": (176800, 1300, 955_410),
}


def quote(code: str, price: int, change: int, volume: int) -> dict[str, Any]:
    base = price - change
    return {
        "code": code,
        "price": price,
        "change": change,
        "change_pct": round(change / base * 100, 2) if base else 0.0,
        "volume": volume,
        "trade_qty": 10,
        "open": base,
        "high": max(price, base),
        "low": min(price, base),
        "ask": price,
        "bid": price,
        "time": "101530",
    }


def orders() -> list[dict[str, Any]]:
    t = FROZEN_MS
    return [
        {
            "order_id": "0000101",
            "cmd_id": "c1",
            "code": "005930",
            "name": "삼성전자",
            "side": "buy",
            "kind": "limit",
            "qty": 10,
            "price": 71000,
            "filled_qty": 0,
            "avg_fill_price": 0,
            "remaining_qty": 10,
            "status": "accepted",
            "reason": "",
            "orig_order_id": "",
            "created_ts": t - 95_000,
            "updated_ts": t - 95_000,
        },
        {
            "order_id": "0000100",
            "cmd_id": "c0",
            "code": "000660",
            "name": "SK하이닉스",
            "side": "sell",
            "kind": "limit",
            "qty": 5,
            "price": 182300,
            "filled_qty": 5,
            "avg_fill_price": 182300,
            "remaining_qty": 0,
            "status": "filled",
            "reason": "",
            "orig_order_id": "",
            "created_ts": t - 600_000,
            "updated_ts": t - 590_000,
        },
        {
            "order_id": "0000099",
            "cmd_id": "c9",
            "code": "035720",
            "name": "카카오",
            "side": "buy",
            "kind": "limit",
            "qty": 100,
            "price": 40000,
            "filled_qty": 0,
            "avg_fill_price": 0,
            "remaining_qty": 0,
            "status": "rejected",
            "reason": "price below the daily lower limit",
            "orig_order_id": "",
            "created_ts": t - 900_000,
            "updated_ts": t - 900_000,
        },
    ]


def positions() -> list[dict[str, Any]]:
    return [
        {
            "code": "005930",
            "name": "삼성전자",
            "qty": 120,
            "avg_price": 69850,
            "last_price": 71200,
            "unrealized_pnl": 162000,
            "unrealized_pnl_pct": 1.93,
            "realized_pnl": 0,
        },
        {
            "code": "000660",
            "name": "SK하이닉스",
            "qty": 15,
            "avg_price": 185000,
            "last_price": 182300,
            "unrealized_pnl": -40500,
            "unrealized_pnl_pct": -1.46,
            "realized_pnl": -13500,
        },
    ]


def account() -> dict[str, Any]:
    return {
        "account": "8012****11",
        "cash": 87_654_321,
        "orderable": 86_944_321,
        "equity": 99_930_821,
        "realized_pnl_today": -13500,
        "unrealized_pnl": 121500,
    }


def surges() -> list[dict[str, Any]]:
    """Newest first, as ``P:state:surge`` keeps them."""
    return [
        {
            "code": "006400",
            "name": "삼성SDI",
            "price": 405000,
            "change_pct": 3.05,
            "volume_ratio": 7.4,
            "window_s": 60,
            "reason": "+3.0% with 7.4x volume in 60 s",
            "ts": FROZEN_MS - 20_000,
        },
        {
            "code": "005380",
            "name": "현대차",
            "price": 243000,
            "change_pct": 1.89,
            "volume_ratio": 5.2,
            "window_s": 60,
            "reason": "volume burst 5.2x in 60 s",
            "ts": FROZEN_MS - 400_000,
        },
    ]


def triggers() -> list[dict[str, Any]]:
    """A stop and a take-profit on the 005930 position (one OCO group)."""
    base = {
        "code": "005930",
        "side": "sell",
        "qty": "position",
        "status": "armed",
        "oco": "pos-005930",
    }
    return [
        dict(
            base, trigger_id="tseed1", kind="stop", trigger_price=68000, level=68000, created_ts=1
        ),
        dict(
            base,
            trigger_id="tseed2",
            kind="take_profit",
            trigger_price=75000,
            level=75000,
            created_ts=2,
        ),
    ]


def seed(
    client: redis.Redis, prefix: str, *, alive: bool = True, state: str = "ready", seq: int = 100
) -> Keys:
    """Write a complete engine state under ``prefix``; the heartbeat lives an hour."""
    k = Keys(prefix)
    pipe = client.pipeline()
    for key in k.all_state() + (k.engine, k.engine_alive):
        pipe.delete(key)
    pipe.hset(
        k.engine,
        mapping={
            "run_id": RUN,
            "broker": "sim",
            "mode": "sim",
            "state": state,
            "session": "continuous",
            "pid": "4242",
            "version": "0.1.0",
            "started_at": str(FROZEN_MS - 3_600_000),
            "seq": str(seq),
        },
    )
    for code, (price, change, volume) in QUOTES.items():
        pipe.hset(k.state_quotes, code, json.dumps(quote(code, price, change, volume)))
    for p in positions():
        pipe.hset(k.state_positions, p["code"], json.dumps(p, ensure_ascii=False))
    for o in orders():
        pipe.hset(k.state_orders, o["order_id"], json.dumps(o, ensure_ascii=False))
    pipe.hset(k.state_account, mapping={key: json.dumps(v) for key, v in account().items()})
    for s in surges():
        pipe.rpush(k.state_surge, json.dumps(s, ensure_ascii=False))
    pipe.rpush(k.state_watchlist, *WATCHLIST)
    for t in triggers():  # issue 14: the Stop/TP marks of 005930
        pipe.hset(k.state_triggers, t["trigger_id"], json.dumps(t))
    if alive:
        pipe.set(k.engine_alive, "1", px=3_600_000)
    pipe.execute()
    return k


def publish(
    client: redis.Redis,
    prefix: str,
    etype: str,
    data: dict[str, Any],
    seq: int,
    run: str = RUN,
    ts: int | None = None,
) -> int:
    """Publish one envelope on its topic; returns the number of subscribers that got it."""
    env = Envelope(type=etype, run=run, seq=seq, ts=ts if ts is not None else FROZEN_MS, data=data)
    return client.publish(Keys(prefix).ev(env.topic), env.encode())


def history(steps: int = 160, step_ms: int = 15_000, seed: int = 11) -> list[Envelope]:
    """``quotes`` envelopes for every watchlist code, ``steps`` × ``step_ms`` ending at FROZEN.

    Seqs follow the seeded snapshot's (101, 102, ...); prices walk on the KRX tick grid and end at
    the snapshot's prices, so what the panels show stays consistent.
    """
    import random

    from core.protocol.krx import next_tick

    rng = random.Random(seed)
    paths: dict[str, list[int]] = {}
    for code, (last, _change, _volume) in QUOTES.items():
        path = [last]
        for _ in range(steps - 1):
            path.append(max(1, next_tick(path[-1], rng.choice((-2, -1, -1, 0, 1, 1, 2)))))
        paths[code] = path[::-1]
    out = []
    for i in range(steps):
        ts = FROZEN_MS - (steps - 1 - i) * step_ms
        items = []
        for code, (_last, change, volume) in QUOTES.items():
            base = QUOTES[code][0] - change
            price = paths[code][i]
            items.append(quote(code, price, price - base, volume - (steps - 1 - i) * 1000))
        out.append(Envelope(type="quotes", run=RUN, seq=101 + i, ts=ts, data={"items": items}))
    return out
