"""Scripting the engine with the real ``redis-cli`` binary, as docs/scripting.md shows."""

import json
import subprocess
import time

from core.protocol import krx

CODE = "005930"


class Cli:
    def __init__(self, server, engine):
        self.base = [server.cli_binary, "-h", server.host, "-p", str(server.port)]
        self.keys = engine.keys

    def __call__(self, *args, timeout=10):
        out = subprocess.run(
            self.base + [str(a) for a in args], capture_output=True, text=True, timeout=timeout
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def send(self, cmd_id, body):
        """RPUSH the command typed as JSON, then BLPOP its reply like a script would."""
        body = dict(body, id=cmd_id)
        assert self("RPUSH", self.keys.cmd, json.dumps(body)).strip().isdigit()
        lines = self("BLPOP", self.keys.reply(cmd_id), 5).splitlines()
        assert len(lines) == 2, lines  # key, value
        assert lines[0] == self.keys.reply(cmd_id)
        return json.loads(lines[1])


def test_every_command_through_redis_cli(redis_server, engine, tap):
    cli = Cli(redis_server, engine)
    assert cli.send("c-ping", {"cmd": "ping"})["result"]["state"] == "ready"
    sub = cli.send("c-sub", {"cmd": "subscribe", "codes": ["000270"]})
    assert "000270" in sub["result"]["watchlist"]
    assert "000270" in cli("LRANGE", engine.keys.state_watchlist, 0, -1).split()
    assert cli.send("c-unsub", {"cmd": "unsubscribe", "codes": ["000270"]})["ok"]

    buy = cli.send("c-buy", {"cmd": "buy", "code": CODE, "qty": 2, "type": "market"})
    assert buy["ok"], buy
    tap.wait_for(
        lambda e: e["type"] == "fill" and e["data"]["order_id"] == buy["result"]["order_id"],
        what="fill",
    )
    time.sleep(0.2)
    position = json.loads(cli("HGET", engine.keys.state_positions, CODE))
    assert position["qty"] == 2
    sell = cli.send("c-sell", {"cmd": "sell", "code": CODE, "qty": 1, "type": "market"})
    assert sell["ok"], sell

    last = json.loads(cli("HGET", engine.keys.state_quotes, CODE))["price"]
    rest = krx.snap_down(int(last * 0.95))
    limit = cli.send("c-limit", {"cmd": "buy", "code": CODE, "qty": 1, "price": rest})
    assert limit["ok"], limit
    modify = cli.send(
        "c-mod",
        {"cmd": "modify", "order_id": limit["result"]["order_id"], "price": krx.prev_tick(rest)},
    )
    assert modify["ok"], modify
    cancel = cli.send("c-cancel", {"cmd": "cancel", "order_id": modify["result"]["order_id"]})
    assert cancel["ok"], cancel
    cli.send("c-limit2", {"cmd": "buy", "code": CODE, "qty": 1, "price": rest})
    assert cli.send("c-all", {"cmd": "cancel_all"})["result"]["count"] == 1
    assert cli.send("c-snap", {"cmd": "snapshot"})["result"]["positions"] == 1
    assert cli.send("c-halt", {"cmd": "halt", "cancel_open": True})["result"]["state"] == "halted"
    assert cli("HGET", engine.keys.engine, "state").strip() == "halted"
    assert cli.send("c-resume", {"cmd": "resume"})["result"]["state"] == "ready"
    assert int(cli("PTTL", engine.keys.engine_alive)) > 0
    orders = json.loads("[" + ",".join(cli("HVALS", engine.keys.state_orders).splitlines()) + "]")
    assert {o["status"] for o in orders} >= {"filled", "cancelled"}


def test_a_typo_typed_by_hand_gets_a_readable_error(redis_server, engine, tap):
    cli = Cli(redis_server, engine)
    reply = cli.send("c-typo", {"cmd": "buy", "code": CODE, "qty": -5, "price": 70000})
    assert reply["error"] == {
        "code": "INVALID_ARGUMENT",
        "message": "qty must be a positive whole number of shares, got -5",
    }
    raw = cli("RPUSH", engine.keys.cmd, '{"id":"c-bad", "cmd": buy}')
    assert raw.strip().isdigit()
    # Not JSON: the id cannot be read, so the answer goes to P:ev:reply only.
    event = tap.wait_for(
        lambda e: e["type"] == "reply" and e["data"]["id"] is None, what="BAD_JSON reply"
    )
    assert event["data"]["error"]["code"] == "BAD_JSON"
    assert cli("EXISTS", engine.keys.reply("c-bad")).strip() == "0"


def test_watch_events_with_redis_cli_subscribe(redis_server, engine):
    watcher = subprocess.Popen(
        [
            redis_server.cli_binary,
            "-h",
            redis_server.host,
            "-p",
            str(redis_server.port),
            "SUBSCRIBE",
            engine.keys.ev("reply"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watcher.stdout.readline().strip() == "subscribe"  # the subscription's confirmation
        watcher.stdout.readline()
        watcher.stdout.readline()
        reply = engine.send({"id": "c-watch", "cmd": "ping"})
        assert watcher.stdout.readline().strip() == "message"
        assert watcher.stdout.readline().strip() == engine.keys.ev("reply")
        envelope = json.loads(watcher.stdout.readline())
        assert envelope["type"] == "reply" and envelope["data"] == reply
    finally:
        watcher.terminate()
        watcher.wait(5)
