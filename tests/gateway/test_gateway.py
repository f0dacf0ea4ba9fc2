"""The gateway with real ``websockets`` clients, a real Redis and the real sim engine."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed

from core.protocol import Keys, make_command

from .conftest import READ_TOKEN, TRADE_TOKEN, next_of, open_ws

pytestmark = pytest.mark.slow


def gateway_log(caplog) -> str:
    """What the gateway logged (the test's own client logs its request, token included)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("kc.gateway"))


async def _closed(ws) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 20)
    return info.value


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789abcdef"])
async def test_refused_at_the_handshake_and_logged_without_the_token(
    redis_url, prefix, start_gateway, caplog, token
):
    gw = await start_gateway(redis_url, prefix)
    caplog.set_level(logging.DEBUG)
    query = "token=" + token if token else ""
    async with open_ws(gw, "market", token=None, query=query) as ws:
        closed = await _closed(ws)
    assert closed.rcvd.code == 4401
    assert "unauthorized" in closed.rcvd.reason
    logged = gateway_log(caplog)
    assert "refused" in logged and "/ws/market" in logged
    if token:
        assert token not in logged
    # A Bearer token that is wrong is refused the same way.
    async with open_ws(gw, "orders", token="not-" + READ_TOKEN) as ws:
        assert (await _closed(ws)).rcvd.code == 4401
    assert gw.snapshot_stats()["refused"] == 2


async def test_accepted_with_bearer_or_query_token(
    redis_url, prefix, engine, start_gateway, caplog
):
    gw = await start_gateway(redis_url, prefix)
    caplog.set_level(logging.DEBUG)
    async with open_ws(gw, "positions") as ws:
        snap = await next_of(ws, "snapshot")
        assert snap["data"]["channel"] == "positions"
        assert "cash" in snap["data"]["account"] and snap["run"] == engine.redis.hget(
            engine.keys.engine, "run_id"
        )
    async with open_ws(gw, "orders", token=None, query="token=" + READ_TOKEN) as ws:
        assert (await next_of(ws, "snapshot"))["data"]["channel"] == "orders"
    assert READ_TOKEN not in gateway_log(caplog)
    # Unknown channel, and /ws/commands while trade is off: no such channel.
    async with open_ws(gw, "nothing") as ws:
        assert (await _closed(ws)).rcvd.code == 4404
    async with open_ws(gw, "commands", token=TRADE_TOKEN) as ws:
        assert (await _closed(ws)).rcvd.code == 4404


async def test_snapshot_then_live_with_seq_and_filter(redis_url, prefix, engine, start_gateway):
    gw = await start_gateway(redis_url, prefix)
    async with open_ws(gw, "market", query="codes=005930,000660") as ws:
        snap = await next_of(ws)
        assert snap["type"] == "snapshot"
        assert set(snap["data"]["quotes"]) <= {"005930", "000660"}
        assert snap["seq"] >= 0
        seen_codes: set[str] = set()
        last = snap["seq"]
        while len(seen_codes) < 2:
            msg = await next_of(ws)
            if msg["type"] != "quotes":
                continue
            assert msg["run"] == snap["run"] and msg["seq"] > last  # live, after the snapshot
            last = msg["seq"]
            codes = {q["code"] for q in msg["data"]["items"]}
            assert codes <= {"005930", "000660"}, codes
            seen_codes |= codes
        # Narrow the filter: a fresh snapshot with one code, then only that code.
        await ws.send(json.dumps({"op": "unsubscribe", "codes": ["000660"]}))
        snap2 = await next_of(ws, "snapshot")
        assert set(snap2["data"]["quotes"]) == {"005930"}
        assert snap2["seq"] >= last
        for _ in range(3):
            msg = await next_of(ws, "quotes")
            assert {q["code"] for q in msg["data"]["items"]} == {"005930"}
            assert msg["seq"] > snap2["seq"]
        # A fresh snapshot on request; bad input is answered, not fatal.
        await ws.send(json.dumps({"op": "snapshot"}))
        assert (await next_of(ws, "snapshot"))["seq"] >= snap2["seq"]
        await ws.send("not json")
        assert (await next_of(ws, "error"))["type"] == "error"
        await ws.send(json.dumps({"op": "subscribe", "codes": ["12"]}))
        assert "stock code" in (await next_of(ws, "error"))["data"]["message"]
        # Snapshots cost Redis a full read: a client cannot ask for them in a loop.
        for _ in range(8):
            await ws.send(json.dumps({"op": "snapshot"}))
        assert "too many snapshots" in (await next_of(ws, "error"))["data"]["message"]


async def test_commands_place_an_order_exactly_once(redis_url, prefix, engine, start_gateway):
    gw = await start_gateway(redis_url, prefix, trade=True)
    async with open_ws(gw, "commands", token=READ_TOKEN) as ws:
        closed = await _closed(ws)
        assert closed.rcvd.code == 4403 and "read" in closed.rcvd.reason
    for _ in range(200):  # the engine is ready before its first quote of 005930 is stored
        raw = engine.redis.hget(engine.keys.state_quotes, "005930")
        if raw:
            break
        await asyncio.sleep(0.05)
    quote = json.loads(raw)
    cmd = make_command("buy", id="o1", code="005930", qty=1, price=quote["price"])
    async with open_ws(gw, "commands", token=TRADE_TOKEN) as ws:
        await ws.send(cmd.encode())
        first = await next_of(ws)
        assert first["id"] == "o1" and first["ok"], first
        order_id = first["result"]["order_id"]
        await ws.send(cmd.encode())  # the same id again: never a second order
        again = await next_of(ws)
        assert again["id"] == "o1" and again["error"]["code"] == "DUPLICATE"
        assert again["result"]["order_id"] == order_id
        await ws.send('{"cmd": "buy", "id": "o2", "code": "005930", "qty": -1}')
        bad = await next_of(ws)
        assert bad["id"] == "o2" and bad["error"]["code"] == "INVALID_ARGUMENT"
        stale = make_command("buy", id="o3", code="005930", qty=1, price=quote["price"])
        await ws.send(json.dumps(dict(stale.to_dict(), ts=1, ttl_ms=1000)))
        assert (await next_of(ws))["error"]["code"] == "STALE"
    orders = [json.loads(v) for v in engine.redis.hvals(engine.keys.state_orders)]
    assert [o["order_id"] for o in orders if o.get("code") == "005930"] == [order_id]
    keys = Keys(prefix)
    assert engine.redis.exists(keys.seen("gw.alice.o1"))
    assert not engine.redis.exists(keys.seen("gw.alice.o2"))  # malformed: never claimed


async def test_stats_channel_counts_connections_and_messages(
    redis_url, prefix, engine, start_gateway
):
    gw = await start_gateway(redis_url, prefix)
    async with open_ws(gw, "market", query="codes=*") as market, open_ws(gw, "stats") as stats:
        await next_of(market, "quotes")
        await stats.send("{}")  # any message asks for the figures now
        while True:
            figures = (await next_of(stats, "stats"))["data"]
            if figures["sent"].get("market", 0) >= 2:
                break
            await stats.send("{}")
        assert figures["connections"]["market"] == 1 and figures["connections"]["stats"] == 1
        assert figures["redis"] == "up" and figures["events"] > 0
        assert figures["slow_clients"] == [] and figures["slow_disconnects"] == 0


async def test_tls_option_serves_wss(redis_url, prefix, start_gateway, tmp_path):
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (needed to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    gw = await start_gateway(redis_url, prefix, tls_cert=str(cert), tls_key=str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    from websockets.asyncio.client import connect

    host, port = gw.address
    uri = "wss://{}:{}/ws/orders".format(host, port)
    async with connect(
        uri, ssl=ctx, additional_headers={"Authorization": "Bearer " + READ_TOKEN}
    ) as ws:
        assert (await next_of(ws, "snapshot"))["data"]["channel"] == "orders"
