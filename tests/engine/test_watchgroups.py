"""Named watchlist groups and the master list (issue 10), against a real sim engine and Redis.

The engine owns the groups (``P:state:watchgroups``), streams the active group's codes, keeps
held codes streaming across a switch, refuses bad names and sizes in words, and keeps the
groups across a restart. It writes the broker's code → name list to ``P:state:names``.
"""

import json
import subprocess
import time

from core.protocol import krx
from core.protocol import watchgroups as wg

DEFAULT = wg.DEFAULT_GROUP


def groups_of(engine):
    """``P:state:watchgroups`` read back: (names in order, active, {name: codes})."""
    groups, active = wg.decode(engine.redis.hgetall(engine.keys.state_watchgroups))
    return [g.name for g in groups], active, {g.name: g.codes for g in groups}


def quotes_of(tap, code, after=0):
    return [
        q for e in tap.of_type("quotes")[after:] for q in e["data"]["items"] if q["code"] == code
    ]


def test_a_fresh_engine_has_one_default_group_holding_the_watchlist(engine):
    names, active, codes = groups_of(engine)
    assert names == [DEFAULT] and active == DEFAULT
    assert codes[DEFAULT] == engine.redis.lrange(engine.keys.state_watchlist, 0, -1)
    assert engine.engine_hash()["watchgroup"] == DEFAULT
    raw = json.loads(engine.redis.hget(engine.keys.state_watchgroups, DEFAULT))
    assert raw["pos"] == 1 and raw["active"] is True


def test_groups_save_select_and_stream_only_the_active_group(engine, tap):
    saved = engine.send({"cmd": "watchgroup_save", "group": "관심종목 2",
                         "codes": ["086520", "247540", "999999"]})  # fmt: skip
    assert saved["ok"], saved
    assert saved["result"]["created"] is True
    assert saved["result"]["codes"] == ["086520", "247540"]
    assert saved["result"]["unknown"] == ["999999"]
    assert saved["result"]["groups"] == [DEFAULT, "관심종목 2"]
    assert saved["result"]["active"] == DEFAULT
    # Hold one code of the default group: it must keep streaming after the switch.
    held = engine.redis.lrange(engine.keys.state_watchlist, 0, -1)[0]
    buy = engine.send({"cmd": "buy", "code": held, "qty": 1, "type": "market"})
    assert buy["ok"], buy
    tap.wait_for(lambda e: e["type"] == "fill", what="the fill of the held code")
    dropped = engine.redis.lrange(engine.keys.state_watchlist, 0, -1)[1]

    def trade(code, price):
        """One sim trade at ``price``: quoted only while the code streams."""
        assert engine.send({"cmd": "sim_price", "code": code, "price": price})["ok"]

    def quoted(code, price):
        return any(q["price"] == price for q in quotes_of(tap, code))

    def marker(price):
        """The held code quoted at ``price``: every trade asked before it is in by then."""
        trade(held, price)
        tap.wait_for(
            lambda e: (
                e["type"] == "quotes"
                and any(q["code"] == held and q["price"] == price for q in e["data"]["items"])
            ),
            timeout=8,
            what="the held code's marker trade",
        )

    base = {c: json.loads(engine.redis.hget(engine.keys.state_quotes, c))["price"]
            for c in (held, dropped)}  # fmt: skip
    odd = {c: krx.snap_down(int(p * 0.8)) for c, p in base.items()}  # a price the walk avoids
    # Before: the inactive group does not stream; the code about to be dropped does.
    trade("086520", krx.snap_down(68000))
    trade(dropped, odd[dropped])
    marker(krx.next_tick(odd[held]))
    assert quoted(dropped, odd[dropped]), "the check below could not fail"
    assert not quotes_of(tap, "086520")

    selected = engine.send({"cmd": "watchgroup_select", "group": "관심종목 2"})
    assert selected["ok"], selected
    assert selected["result"]["active"] == "관심종목 2"
    assert selected["result"]["watchlist"] == ["086520", "247540"]
    assert engine.redis.lrange(engine.keys.state_watchlist, 0, -1) == ["086520", "247540"]
    names, active, _ = groups_of(engine)
    assert active == "관심종목 2"
    # After: the selected group streams, the held code too, the dropped one no more.
    after = krx.next_tick(odd[dropped])
    trade(dropped, after)
    trade("247540", krx.snap_down(120000))
    marker(odd[held])
    assert quoted("247540", krx.snap_down(120000))
    assert not quoted(dropped, after), "the code that left the watchlist still streams"

    # add / remove act on the named group; the default stays as it was
    sub = engine.send({"cmd": "subscribe", "codes": ["000270"], "group": DEFAULT})
    assert sub["ok"] and sub["result"]["group"] == DEFAULT and "000270" in sub["result"]["codes"]
    assert "000270" not in sub["result"]["watchlist"]
    unsub = engine.send({"cmd": "unsubscribe", "codes": ["086520"]})
    assert unsub["ok"] and unsub["result"]["group"] == "관심종목 2"
    assert groups_of(engine)[2]["관심종목 2"] == ["247540"]

    # deleting the active group makes the other one active again
    gone = engine.send({"cmd": "watchgroup_delete", "group": "관심종목 2"})
    assert gone["ok"], gone
    assert gone["result"]["active"] == DEFAULT and gone["result"]["groups"] == [DEFAULT]
    assert "000270" in engine.redis.lrange(engine.keys.state_watchlist, 0, -1)


def test_bad_group_commands_are_refused_in_words(engine_factory):
    engine = engine_factory(settings={"sim.extra_codes": 3001})
    engine.wait_ready()

    def error(body):
        reply = engine.send(body)
        assert not reply["ok"], reply
        assert reply["error"]["code"] == "INVALID_ARGUMENT", reply
        return reply["error"]["message"]

    assert "at most 20 characters" in error(
        {"cmd": "watchgroup_save", "group": "가" * 21, "codes": []}
    )
    assert "start or end with a space" in error(
        {"cmd": "watchgroup_select", "group": " 관심종목 1"}
    )
    assert "no group" in error({"cmd": "watchgroup_select", "group": "없는 그룹"})
    assert "no group" in error({"cmd": "subscribe", "codes": ["005930"], "group": "없는 그룹"})
    assert "only group" in error({"cmd": "watchgroup_delete", "group": DEFAULT})
    for n in range(2, wg.MAX_GROUPS + 1):
        assert engine.send({"cmd": "watchgroup_save", "group": "g{}".format(n), "codes": []})["ok"]
    assert "at most 20 groups" in error(
        {"cmd": "watchgroup_save", "group": "one more", "codes": []}
    )
    # too many codes: 2,000 in one command (the parser's cap), then 1,001 more
    codes = ["Z{:05d}".format(i) for i in range(1, 2001)]
    more = ["Z{:05d}".format(i) for i in range(2001, 3002)]
    saved = engine.send({"cmd": "watchgroup_save", "group": "g2", "codes": codes})
    assert saved["ok"] and len(saved["result"]["codes"]) == 2000
    message = error({"cmd": "subscribe", "codes": more, "group": "g2"})
    assert "at most 3,000 codes" in message
    # nothing was lost: the default group is as it was
    assert groups_of(engine)[2][DEFAULT] == engine.redis.lrange(engine.keys.state_watchlist, 0, -1)


def test_groups_survive_an_engine_restart(engine_factory):
    first = engine_factory(settings={"sim.extra_codes": 10})
    first.wait_ready()
    assert first.send({"cmd": "watchgroup_save", "group": "단타", "codes": ["Z00001", "Z00002"]})[
        "ok"
    ]
    assert first.send({"cmd": "watchgroup_select", "group": "단타"})["ok"]
    first.stop()
    second = engine_factory(settings={"sim.extra_codes": 10}, prefix=first.prefix)
    second.wait_ready()
    names, active, codes = groups_of(second)
    assert names == [DEFAULT, "단타"] and active == "단타"
    assert codes["단타"] == ["Z00001", "Z00002"]
    assert second.redis.lrange(second.keys.state_watchlist, 0, -1) == ["Z00001", "Z00002"]
    assert second.engine_hash()["watchgroup"] == "단타"


def test_the_master_list_is_written_to_state_names(engine):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not engine.redis.hlen(engine.keys.state_names):
        time.sleep(0.05)
    names = engine.redis.hgetall(engine.keys.state_names)
    assert names["005930"] == "삼성전자"
    assert len(names) >= 40  # the sim's built-in universe
    fields = engine.engine_hash()
    assert int(fields["names"]) == len(names) and int(fields["names_at"]) > 0


def test_groups_through_redis_cli(redis_server, engine):
    base = [redis_server.cli_binary, "-h", redis_server.host, "-p", str(redis_server.port)]

    def cli(*args):
        out = subprocess.run(base + [str(a) for a in args], capture_output=True, text=True,
                             timeout=10)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return out.stdout

    body = {"id": "g-save", "cmd": "watchgroup_save", "group": "관심종목 2", "codes": ["000270"]}
    cli("RPUSH", engine.keys.cmd, json.dumps(body, ensure_ascii=False))
    lines = cli("BLPOP", engine.keys.reply("g-save"), 5).splitlines()
    reply = json.loads(lines[1])
    assert reply["ok"] and reply["result"]["groups"] == [DEFAULT, "관심종목 2"]
    stored = json.loads(cli("HGET", engine.keys.state_watchgroups, "관심종목 2"))
    assert stored == {"pos": 2, "active": False, "codes": ["000270"]}
    assert cli("HGET", engine.keys.state_names, "000270").strip() == "기아"
