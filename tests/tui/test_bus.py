"""core.bus against a real Redis: snapshots, commands and replies, heartbeat age."""

from __future__ import annotations

import asyncio
import json

import pytest
import tui_seed

from core.bus import Bus, ReplyTimeout
from core.protocol import encode_reply, make_reply, parse_command


async def test_read_snapshot_returns_the_seeded_state(redis_url, redis_client, prefix) -> None:
    tui_seed.seed(redis_client, prefix)
    bus = Bus(redis_url, prefix)
    try:
        snap = await bus.read_snapshot()
    finally:
        await bus.close()
    assert snap.run == tui_seed.RUN and snap.last_seq == 100 and snap.alive
    assert snap.watchlist == tui_seed.WATCHLIST
    assert snap.quotes["005930"]["price"] == 71200
    assert snap.account["cash"] == 87_654_321 and snap.account["account"] == "8012****11"
    assert [s["code"] for s in snap.surge] == ["006400", "005380"]
    assert set(snap.orders) == {"0000101", "0000100", "0000099"}


async def test_send_command_waits_for_its_own_reply(redis_url, aredis, prefix) -> None:
    bus = Bus(redis_url, prefix)

    async def responder() -> None:
        _, raw = await aredis.blpop([f"{prefix}:cmd"], timeout=5)
        cmd = parse_command(raw)
        await aredis.lpush(
            f"{prefix}:reply:other", encode_reply(make_reply("other", "ping", result="x"))
        )
        await aredis.lpush(
            f"{prefix}:reply:{cmd.id}",
            encode_reply(make_reply(cmd.id, cmd.cmd, result={"order_id": "9"})),
        )

    task = asyncio.create_task(responder())
    try:
        reply = await bus.send("buy", code="005930", qty=1, price=70000)
    finally:
        await task
        await bus.close()
    assert reply["ok"] and reply["result"] == {"order_id": "9"}


async def test_send_command_times_out_without_an_engine(redis_url, aredis, prefix) -> None:
    bus = Bus(redis_url, prefix)
    try:
        with pytest.raises(ReplyTimeout):
            await bus.send("ping", timeout=0.3)
    finally:
        await bus.close()
    queued = await aredis.lrange(f"{prefix}:cmd", 0, -1)
    assert [json.loads(q)["cmd"] for q in queued] == ["ping"]


async def test_heartbeat_age_and_rtt(redis_url, aredis, prefix) -> None:
    bus = Bus(redis_url, prefix)
    try:
        assert await bus.heartbeat_age_ms() is None
        await aredis.set(f"{prefix}:engine:alive", "1", px=3000)
        age = await bus.heartbeat_age_ms()
        assert age is not None and 0 <= age < 1000
        assert 0 < await bus.rtt_ms() < 1000
    finally:
        await bus.close()


async def test_no_reply_at_the_consoles_own_timeout_is_a_reply_timeout(
    redis_url, aredis, prefix
) -> None:
    """B3: at 5 s the connection's read timeout fired with BLPOP's and looked like a Redis error."""
    from tui.app import REPLY_TIMEOUT_S

    bus = Bus(redis_url, prefix)
    try:
        with pytest.raises(ReplyTimeout):
            await bus.send("ping", timeout=REPLY_TIMEOUT_S)
    finally:
        await bus.close()
    assert await aredis.llen(f"{prefix}:cmd") == 1
