"""Faults: ``kill -9`` with commands queued and in flight; Redis restarted under the engine;
clean stops on SIGTERM/SIGINT; a second engine on the same prefix refused."""

import json
import signal
import time
from collections import defaultdict

import pytest
import redis

from core.devservers import RedisServer, free_port
from core.protocol import make_command

CODE = "005930"


def _buy(cmd_id):
    return {
        "id": cmd_id,
        "cmd": "buy",
        "code": CODE,
        "qty": 1,
        "type": "market",
        "ts": int(time.time() * 1000),
    }


def _orders_per_cmd(engine):
    """cmd_id → set of order ids across every run in the stream. The simulator's order ids
    continue across restarts and a restart re-publishes the orders it took back, so one order
    is one id whichever run published it."""
    out = defaultdict(set)
    for _, fields in engine.redis.xrange(engine.keys.events):
        event = json.loads(fields["e"])
        if event["type"] == "order" and event["data"]["cmd_id"]:
            out[event["data"]["cmd_id"]].add(event["data"]["order_id"])
    return out


def test_kill_9_with_commands_queued_and_in_flight(engine_factory):
    eng = engine_factory(settings={"engine.cmd_ttl_ms": 60000})
    eng.wait_ready()
    # A burst, then kill -9 in the middle of it: some answered, maybe one in flight, the rest queued.
    burst = ["burst-{}".format(i) for i in range(30)]
    eng.redis.rpush(eng.keys.cmd, *[json.dumps(_buy(i)) for i in burst])
    time.sleep(0.05)
    eng.kill(signal.SIGKILL)

    # Deterministically in flight: taken and claimed by the engine that died.
    in_flight = make_command("buy", id="inflight-1", code=CODE, qty=1, type="market").encode()
    eng.redis.rpush(eng.keys.cmd_processing, in_flight)
    eng.redis.set(eng.keys.seen("inflight-1"), "running", ex=600)
    queued = ["queued-{}".format(i) for i in range(3)]
    eng.redis.rpush(eng.keys.cmd, *[json.dumps(_buy(i)) for i in queued])

    eng.start()  # same prefix: the restart rule applies
    eng.wait_ready(timeout=30)

    dead = eng.reply("inflight-1", timeout=10)
    assert dead["error"]["code"] == "ENGINE_RESTARTED"
    assert in_flight in eng.redis.lrange(eng.keys.cmd_dead, 0, -1)
    assert (
        json.loads(eng.redis.get(eng.keys.seen("inflight-1")))["error"]["code"]
        == "ENGINE_RESTARTED"
    )
    for cmd_id in queued:
        assert eng.reply(cmd_id, timeout=10)["ok"]
    codes = {}
    for cmd_id in burst:
        reply = eng.reply(cmd_id, timeout=10)
        codes[cmd_id] = reply["ok"] or reply["error"]["code"]
        assert eng.redis.llen(eng.keys.reply(cmd_id)) == 0, "two replies for " + cmd_id
    assert set(codes.values()) <= {True, "ENGINE_RESTARTED"}
    time.sleep(0.3)
    orders = _orders_per_cmd(eng)
    assert all(len(placed) <= 1 for placed in orders.values()), orders
    assert "inflight-1" not in orders
    for cmd_id in queued:
        assert len(orders[cmd_id]) == 1
    assert eng.redis.llen(eng.keys.cmd_processing) == 0
    # Resending a dead-lettered id is refused: the trader must check and use a new id.
    again = eng.send(_buy("inflight-1"))
    assert (
        again["error"]["code"] == "DUPLICATE"
        and again["first"]["error"]["code"] == "ENGINE_RESTARTED"
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly_after_answering(engine, sig):
    ids = [engine.push({"cmd": "ping"}) for _ in range(5)]
    engine.kill(sig)
    assert engine.proc.wait(15) == 0
    queued = "".join(engine.redis.lrange(engine.keys.cmd, 0, -1))
    for cmd_id in ids:
        # Taken before the stop: answered. Not taken: still queued for the next run.
        assert engine.redis.llen(engine.keys.reply(cmd_id)) == 1 or '"{}"'.format(cmd_id) in queued
    assert engine.redis.llen(engine.keys.cmd_processing) == 0
    assert engine.engine_hash()["state"] == "stopping"
    assert not engine.redis.exists(engine.keys.engine_alive)
    assert "stopped (run" in engine.stderr_text()


def test_a_second_engine_on_the_same_prefix_is_refused(engine, engine_factory):
    second = engine_factory(prefix=engine.prefix)
    assert second.proc.wait(20) == 3
    assert "another engine is alive" in second.stderr_text()
    assert engine.send({"cmd": "ping"})["ok"]


def test_bad_configuration_exits_2_naming_the_key(engine_factory):
    eng = engine_factory(settings={"risk.max_order_qty": "lots"})
    assert eng.proc.wait(20) == 2
    assert "[risk] max_order_qty" in eng.stderr_text()


# -- Redis restarted under the engine ---------------------------------------------------------


def _wait(predicate, timeout=15.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_redis_restart_under_the_engine(engine_factory, tmp_path):
    own = RedisServer(tmp_path / "own-redis", port=free_port())
    own.start()
    try:
        eng = engine_factory(
            url=own.url, settings={"engine.publish_buffer": 20, "sim.quote_rate": 1000}
        )
        eng.wait_ready()
        assert eng.send({"cmd": "subscribe", "codes": ["000270"]})["ok"]
        buy = eng.send({"cmd": "buy", "code": CODE, "qty": 3, "type": "market"})
        assert buy["ok"]
        _wait(lambda: eng.redis.hget(eng.keys.state_positions, CODE), what="position")
        time.sleep(0.3)
        before = {
            "orders": eng.redis.hgetall(eng.keys.state_orders),
            "positions": {
                c: json.loads(v)["qty"]
                for c, v in eng.redis.hgetall(eng.keys.state_positions).items()
            },
            "watchlist": eng.redis.lrange(eng.keys.state_watchlist, 0, -1),
            "cash": eng.redis.hget(eng.keys.state_account, "cash"),
        }

        own.stop()
        time.sleep(1.5)  # quotes pile up beyond the 20-event buffer
        assert eng.alive()
        own.start()  # empty: everything the engine had written is gone

        _wait(
            lambda: int(eng.redis.hget(eng.keys.engine, "redis_reconnects") or 0) >= 1,
            what="reconnect reported",
        )
        fields = eng.engine_hash()
        assert int(fields["dropped"]) > 0 and fields["state"] == "ready"
        _wait(lambda: eng.redis.exists(eng.keys.engine_alive), what="heartbeat")
        # A late subscriber rebuilds the same view from the snapshots alone.
        after = {
            "orders": eng.redis.hgetall(eng.keys.state_orders),
            "positions": {
                c: json.loads(v)["qty"]
                for c, v in eng.redis.hgetall(eng.keys.state_positions).items()
            },
            "watchlist": eng.redis.lrange(eng.keys.state_watchlist, 0, -1),
            "cash": eng.redis.hget(eng.keys.state_account, "cash"),
        }
        assert after == before
        # Commands work again (the command thread reconnected too).
        pong = eng.send({"cmd": "ping"}, timeout=10)
        assert pong["ok"] and pong["result"]["redis_reconnects"] >= 2
        assert eng.send({"cmd": "sell", "code": CODE, "qty": 3, "type": "market"})["ok"]
        assert "lost Redis" in eng.stderr_text()
        eng.stop()
    finally:
        own.stop()


def test_help_lists_the_flags():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "engine32", "--help"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0
    for flag in (
        "--broker",
        "--config",
        "--redis",
        "--prefix",
        "--log-file",
        "--log-level",
        "--set",
    ):
        assert flag in out.stdout


def test_json_log_file_and_no_password_in_logs(engine_factory, tmp_path):
    log_file = tmp_path / "engine.jsonl"
    eng = engine_factory(extra_args=["--log-file", str(log_file), "--log-level", "DEBUG"])
    eng.wait_ready()
    assert eng.send({"cmd": "halt"})["ok"]
    eng.stop()
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    messages = [r["message"] for r in records]
    assert any("starting: run" in m for m in messages)
    assert any("trading halted" in m for m in messages)
    assert any(m.startswith("stopped (run") for m in messages)


def test_a_command_taken_as_the_connection_broke_is_dead_lettered_and_answered(
    engine_factory, tmp_path
):
    own = RedisServer(tmp_path / "own-redis", port=free_port())
    own.start()
    try:
        eng = engine_factory(url=own.url)
        eng.wait_ready()
        # As if a BLMOVE had moved it and its answer had been lost with the connection.
        lost = make_command("buy", id="orphan-1", code=CODE, qty=1, type="market").encode()
        eng.redis.rpush(eng.keys.cmd_processing, lost)
        admin = redis.Redis.from_url(own.url)
        assert admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") >= 2
        reply = eng.reply("orphan-1", timeout=10)
        assert reply["error"]["code"] == "ENGINE_RESTARTED"
        assert "connection broke" in reply["error"]["message"]
        assert eng.redis.lrange(eng.keys.cmd_dead, 0, -1) == [lost]
        assert eng.redis.llen(eng.keys.cmd_processing) == 0
        pong = eng.send({"cmd": "ping"})
        assert pong["ok"] and pong["result"]["redis_reconnects"] >= 1
        time.sleep(0.2)
        assert "orphan-1" not in _orders_per_cmd(eng)
        admin.close()
        eng.stop()
    finally:
        own.stop()
