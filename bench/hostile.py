"""Replay of the hostile campaign (issue 9): fuzzed commands from several clients at once.

Starts Redis with the memory and size limits of ``deploy/redis/redis.conf`` and the sim engine,
then ``--clients`` threads each push their share of ``--commands`` fuzzed commands (lone
surrogates, NUL and control characters, Korean, quotes in every field; trailing newlines;
``ts`` far ahead; entries of 100 KB to 900 KB; the same id from every client at once), each
followed by a valid market buy. A few multi-MB entries are sent too: Redis refuses them
(``proto-max-bulk-len``) and nothing is queued. Then it checks that every queued command got
exactly one ``reply`` event, every valid id exactly one reply on its list, every accepted buy
its fill, nothing is left in ``P:cmd:processing``, and the engine still answers.

    .venv/bin/python bench/hostile.py [--commands 10000] [--clients 8]

Last line: ``hostile: <N> commands from <C> clients, <N> answered once, <lost> lost replies,
<missing> missing fills, engine alive``. Goal: 0 lost, 0 missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.soak import memory_config  # noqa: E402
from core.protocol import COMMANDS, Keys  # noqa: E402

FIELDS = ("cmd", "ts", "ttl_ms", "client", "code", "qty", "price", "type", "order_id", "codes")
NASTY = ["\ud800", "\udfff", "\udbff\udc00x", "\x00", "\n", "가나", '"', "\\", "\u2028", "\ufffe"]
CMDS = [c for c in COMMANDS if c not in ("halt", "cancel_all")]  # those touch others rightly


def nasty_text(rng: random.Random) -> str:
    parts = [rng.choice(NASTY) if rng.random() < 0.5 else chr(rng.randrange(32, 0x3000))]
    for _ in range(rng.randrange(0, 6)):
        parts.append(rng.choice(NASTY) if rng.random() < 0.3 else chr(rng.randrange(32, 0x3000)))
    return "".join(parts)


def nasty_value(rng: random.Random) -> object:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice([-1, 0, 1, 70000, 2**63, 1.5])
    if kind == 1:
        return [nasty_text(rng)]
    if kind == 2:
        return {nasty_text(rng): nasty_text(rng)}
    if kind == 3:
        return rng.choice(["005930\n", "005930 ", "o1\n", "limit\n"])
    return nasty_text(rng)


def fuzzed(rng: random.Random, cmd_id: str | None, now_ms: int) -> bytes:
    obj: dict = {"cmd": rng.choice(CMDS) if rng.random() < 0.7 else nasty_text(rng)}
    for name in rng.sample(FIELDS, rng.randrange(0, len(FIELDS))):
        obj[name] = nasty_value(rng)
    if rng.random() < 0.05:
        obj["ts"] = now_ms + 600000  # ten minutes ahead
    if rng.random() < 0.3:
        obj[nasty_text(rng)] = nasty_value(rng)
    if cmd_id is not None:
        obj["id"] = cmd_id
    if rng.random() < 0.01:
        obj["pad"] = "x" * rng.randrange(100000, 900000)
    return json.dumps(obj).encode()  # surrogates travel as \ud800 escapes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", type=int, default=10000, help="fuzzed commands in all")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seed", type=int, default=9)
    args = p.parse_args()
    from core.devservers import RedisServer

    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    extra, _ = memory_config()
    rs = RedisServer(work / "redis", extra_config=extra).start()
    keys = Keys("hostile")
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    env.update(KC_SIM__BURST_EVERY_S="0", KC_SIM__SEED="7", KC_ENGINE__LOG_LEVEL="ERROR")
    env.update(KC_RISK__MAX_POSITION_VALUE="9000000000000", KC_RISK__MAX_OPEN_ORDERS="100000")
    log = open(work / "engine.log", "ab")  # noqa: SIM115
    engine = subprocess.Popen(
        [sys.executable, "-m", "engine32", "--broker", "sim"]
        + ["--redis", rs.url, "--prefix", keys.prefix],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    r = redis.Redis.from_url(rs.url, socket_timeout=60)
    try:
        deadline = time.monotonic() + 60
        while r.hget(keys.engine, "state") != b"ready":
            if time.monotonic() > deadline or engine.poll() is not None:
                raise SystemExit(f"hostile: the engine did not start; {work}")
            time.sleep(0.1)
        start = (r.xrevrange(keys.events, count=1) or [(b"0-0", {})])[0][0].decode()
        per_client = args.commands // args.clients
        queued = [0] * args.clients
        refused_by_redis = [0] * args.clients
        valid_ids: list[list[str]] = [[] for _ in range(args.clients)]
        buys: list[list[str]] = [[] for _ in range(args.clients)]

        def client(n: int) -> None:
            rng = random.Random(args.seed * 1000 + n)
            c = redis.Redis.from_url(rs.url, socket_timeout=60)
            for i in range(per_client):
                now = int(time.time() * 1000)
                roll = rng.random()
                if roll < 0.4:
                    cmd_id: str | None = f"c{n}-{i}"
                elif roll < 0.45:
                    cmd_id = f"shared-{i // 50}"  # the same id from every client at once
                elif roll < 0.7:
                    cmd_id = nasty_text(rng)
                else:
                    cmd_id = None
                raw = fuzzed(rng, cmd_id, now)
                c.rpush(keys.cmd, raw)
                queued[n] += 1
                if roll < 0.4:
                    valid_ids[n].append(cmd_id)  # type: ignore[arg-type]
                if i % 10 == 0:
                    buy_id = f"b{n}-{i}"
                    buy = {"id": buy_id, "cmd": "buy", "code": "005930", "qty": 1}
                    buy.update(type="market", ts=now, ttl_ms=600000)  # the queue is long
                    c.rpush(keys.cmd, json.dumps(buy))
                    queued[n] += 1
                    buys[n].append(buy_id)
                if i % 500 == 499:
                    try:
                        c.rpush(keys.cmd, b'{"id":"huge","cmd":"ping","pad":"' + b"y" * 3 * 2**20)
                    except redis.RedisError:
                        refused_by_redis[n] += 1  # proto-max-bulk-len: never queued
                        c = redis.Redis.from_url(rs.url, socket_timeout=60)
            c.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(queued)
        replies: list[dict] = []
        fills: set[str] = set()
        cursor = start
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for sid, fields in r.xrange(keys.events, min="(" + cursor, count=5000):
                cursor = sid.decode()
                e = json.loads(fields[b"e"])
                if e["type"] == "reply":
                    replies.append(e["data"])
                elif e["type"] == "fill":
                    fills.add(e["data"]["order_id"])
            if len(replies) >= total and not r.llen(keys.cmd) and not r.llen(keys.cmd_processing):
                break
            time.sleep(0.2)
        counts: dict[str, int] = {}
        for reply in replies:
            if reply.get("id"):
                counts[reply["id"]] = counts.get(reply["id"], 0) + 1
        lost = max(0, total - len(replies))
        for ids in valid_ids + buys:
            for cmd_id in ids:
                if counts.get(cmd_id) != 1 or r.llen(keys.reply(cmd_id)) != 1:
                    lost += 1
        accepted = {
            x["result"]["order_id"]
            for x in replies
            if x.get("ok") and x.get("cmd") == "buy" and str(x.get("id", "")).startswith("b")
        }
        time.sleep(2)
        for _sid, fields in r.xrange(keys.events, min="(" + cursor):
            e = json.loads(fields[b"e"])
            if e["type"] == "fill":
                fills.add(e["data"]["order_id"])
        missing = len(accepted - fills)
        refusals: dict[str, int] = {}
        for x in replies:
            if x.get("cmd") == "buy" and str(x.get("id", "")).startswith("b") and not x["ok"]:
                refusals[x["error"]["code"]] = refusals.get(x["error"]["code"], 0) + 1
        alive = engine.poll() is None and r.exists(keys.engine_alive)
        print(
            f"hostile: {total} queued, {len(replies)} reply events, {len(accepted)} buys accepted"
        )
        print(f"hostile: buys refused (in words, by code): {refusals}")
        print(f"hostile: {sum(refused_by_redis)} multi-MB entries refused by Redis itself")
        print(f"hostile: {r.llen(keys.cmd_processing)} left in processing")
        print(
            f"hostile: {total} commands from {args.clients} clients, {total - lost} answered once, "
            f"{lost} lost replies, {missing} missing fills, engine {'alive' if alive else 'DEAD'}"
        )
        return 0 if lost == 0 and missing == 0 and alive else 1
    finally:
        if engine.poll() is None:
            engine.send_signal(signal.SIGTERM)
            try:
                engine.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(engine.pid, signal.SIGKILL)
        r.close()
        rs.stop()


if __name__ == "__main__":
    sys.exit(main())
