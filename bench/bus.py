"""Quote throughput of the engine's event path into a local Redis, against raw redis-py.

Engine path: the real :class:`engine32.app.Engine` (sim broker built but idle) is fed quotes
through its broker-listener entry ``on_quote`` (books, surge detector, batching), flushed
every ``quote_flush_ms`` of wall time as the Qt timer would, and written by its publisher
thread (PUBLISH ``P:ev:quotes`` + XADD ``P:events`` + HSET ``P:state:quotes``). The figure is
quotes fed / time until the publisher has written the last one.

Raw: the same quotes, JSON-encoded beforehand, sent as pipelined PUBLISH (1,000 a round).

Triggers (issue 14): the engine path runs again with ``--triggers`` (default 10,000) armed
triggers spread over the codes (a third each sell stops 50 % below, sell take-profits 50 %
above, trailing stops of 30 %: they follow every new high but never fire), with the broker
marked connected so the whole check runs. Each side runs twice, alternating; the best of each
is compared. Goal: at most 10 % slower than without triggers.

    .venv/bin/python bench/bus.py [--quotes 300000] [--codes 2000] [--triggers 10000]

Prints its figure on the last line. Goal: >= 50,000 quotes/s and >= half the raw rate.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import redis  # noqa: E402

from core.protocol import Quote, krx  # noqa: E402

GOAL_RATE = 50000
GOAL_RATIO = 0.5
GOAL_TRIGGER_SLOWDOWN = 0.10


def start_redis(data_dir: str):
    """A redis-server of the benchmark's own."""
    from core.devservers import RedisServer

    return RedisServer(Path(data_dir)).start()


def make_quotes(count: int, codes: int, seed: int = 1) -> List[Quote]:
    rng = random.Random(seed)
    universe = ["{:06d}".format(100000 + i) for i in range(codes)]
    prices = {c: krx.snap(rng.uniform(2000, 300000)) for c in universe}
    volume = dict.fromkeys(universe, 0)
    out = []
    for i in range(count):
        code = universe[rng.randrange(codes)]
        price = max(1, krx.next_tick(prices[code], rng.choice((-1, 0, 1))))
        prices[code] = price
        qty = rng.randint(1, 500)
        volume[code] += qty
        out.append(
            Quote(
                code,
                price,
                change=0,
                change_pct=0.0,
                volume=volume[code],
                trade_qty=qty,
                open=price,
                high=price,
                low=price,
                ask=krx.next_tick(price),
                bid=price,
                time="{:06d}".format(90000 + i % 60000),
            )
        )
    return out


def arm_triggers(engine, quotes: List[Quote], count: int) -> None:
    """``count`` armed triggers over the codes of ``quotes``, none of which will fire."""
    from engine32.triggers import Trigger

    first = {}
    for q in quotes:
        first.setdefault(q.code, q.price)
    codes = list(first)
    for i in range(count):
        code = codes[i % len(codes)]
        price = first[code]
        kind = ("stop", "take_profit", "trailing")[i % 3]
        trigger = Trigger(
            trigger_id="b{}".format(i),
            code=code,
            side="sell",
            qty=1,
            kind=kind,
            trigger_price=(krx.snap(price * 0.5) if kind == "stop" else krx.snap(price * 1.5))
            if kind != "trailing"
            else 0,
            trail_pct=30.0 if kind == "trailing" else None,
            expires=2**62,
        )
        engine.triggers._add(trigger)
    engine.status.connected = True  # the full check runs (nothing crosses)


_runs = iter(range(1, 1000))


def quote_cpu_cost(quotes: List[Quote], triggers: int) -> "tuple[float, float]":
    """CPU time of ``Engine.on_quote`` alone (no publisher), one engine, its trigger filters
    switched off and on in alternating rounds: (µs/quote without, with)."""
    from PyQt5.QtCore import QCoreApplication

    from core.config import load_config
    from engine32.app import Engine

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    url = "redis://127.0.0.1:1/0"  # never connected: nothing is written
    config = load_config(overrides={"redis.url": url, "redis.prefix": "benchcpu", "sim.seed": 1})
    engine = Engine(config, url, watchlist=[])
    arm_triggers(engine, quotes, triggers)
    engine.publisher._others.clear()
    for quote in quotes:  # the trailing marks settle on the first pass
        engine.on_quote(quote)
    live = engine.triggers.filters
    armed = dict(live)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(40):
        for on in (False, True):
            live.clear()
            if on:
                live.update(armed)
            engine._pending_quotes = []
            started = time.process_time()
            for quote in quotes:
                engine.on_quote(quote)
            best[on] = min(best[on], time.process_time() - started)
    engine.close()
    return best[False] / len(quotes) * 1e6, best[True] / len(quotes) * 1e6


def quote_path_cost(
    url: str, quotes: List[Quote], triggers: int, rounds: int, flush_every: int = 2500
) -> "tuple[list[float], list[float]]":
    """CPU time per quote of the whole quote path, one thread, nothing left to chance: two
    engines live side by side (one with ``triggers`` armed), each fed the same slice of the
    quote stream in alternating rounds, flushed every ``flush_every`` quotes (50 ms at 50,000
    quotes/s) and written to Redis by their publisher's own round (``_write``) in this thread.
    A slice continues the previous one's random walk, so trailing marks keep moving as in a
    live feed. Returns the µs/quote of each round: (without, with)."""
    from PyQt5.QtCore import QCoreApplication

    from core.config import load_config
    from engine32.app import Engine
    from engine32.publisher import held_connection

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    client = redis.Redis.from_url(url)
    engines = []
    for armed in (0, triggers):
        prefix = "benchpath{}".format(next(_runs))
        config = load_config(overrides={"redis.url": url, "redis.prefix": prefix, "sim.seed": 1})
        engine = Engine(config, url, watchlist=[])
        if armed:
            arm_triggers(engine, quotes, armed)
        else:  # a trigger's code is watched: so are they all here, as a fair baseline
            engine.books.watch(sorted({q.code for q in quotes}))
        engine.status.connected = True
        engines.append((engine, held_connection(client)))

    def drain(engine: "Engine", conn: object) -> None:
        publisher = engine.publisher
        while publisher.pending():
            publisher._write(conn, publisher._take())
            publisher._busy = False

    for engine, conn in engines:  # the trigger events of arming are not the quote path's
        drain(engine, conn)
    size = len(quotes) // (rounds + 1)
    costs: "tuple[list[float], list[float]]" = ([], [])
    for r in range(rounds + 1):  # round 0 warms both up (caches, first marks) and is dropped
        part = quotes[r * size : (r + 1) * size]
        order = (0, 1) if r % 2 else (1, 0)  # who goes first alternates
        for side in order:
            engine, conn = engines[side]
            on_quote = engine.on_quote
            started = time.process_time()
            for i, quote in enumerate(part, 1):
                on_quote(quote)
                if not i % flush_every:
                    engine.flush_quotes()
                    drain(engine, conn)
            engine.flush_quotes()
            drain(engine, conn)
            if r:
                costs[side].append((time.process_time() - started) / len(part) * 1e6)
    for engine, _ in engines:
        if engine.triggers.fired_count:
            raise RuntimeError("a benchmark trigger fired")
        client.delete(engine.keys.events)
        engine.close()
    client.close()
    return costs


def run_engine_path(url: str, quotes: List[Quote], triggers: int = 0) -> float:
    from PyQt5.QtCore import QCoreApplication

    from core.config import load_config
    from engine32.app import Engine

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    prefix = "benchbus{}".format(next(_runs))
    config = load_config(overrides={"redis.url": url, "redis.prefix": prefix, "sim.seed": 1})
    engine = Engine(config, url, watchlist=[])
    flush_s = config.engine.quote_flush_ms / 1000.0
    engine.publisher.start()
    if triggers:
        arm_triggers(engine, quotes, triggers)
        if not engine.publisher.wait_idle(120):
            raise RuntimeError("publisher did not drain the trigger events")
    try:
        on_quote = engine.on_quote
        started = time.perf_counter()
        next_flush = started + flush_s
        for i, quote in enumerate(quotes):
            on_quote(quote)
            if not i & 255 and time.perf_counter() >= next_flush:
                engine.flush_quotes()
                next_flush += flush_s
        engine.flush_quotes()
        if not engine.publisher.wait_idle(120):
            raise RuntimeError("publisher did not drain")
        elapsed = time.perf_counter() - started
    finally:
        engine.publisher.stop()
        engine.close()
    client = redis.Redis.from_url(url)
    entries = [json.loads(fields[b"e"]) for _, fields in client.xrange(prefix + ":events")]
    written = sum(len(e["data"]["items"]) for e in entries if e["type"] == "quotes")
    if written != len(quotes):
        raise RuntimeError("stream holds {} quotes, fed {}".format(written, len(quotes)))
    if triggers and engine.triggers.fired_count:
        raise RuntimeError("a benchmark trigger fired")
    client.delete(prefix + ":events")
    client.close()
    return len(quotes) / elapsed


def run_raw(url: str, quotes: List[Quote]) -> float:
    payloads = [json.dumps(q.__dict__, separators=(",", ":")) for q in quotes]
    client = redis.Redis.from_url(url)
    started = time.perf_counter()
    for i in range(0, len(payloads), 1000):
        pipe = client.pipeline(transaction=False)
        for payload in payloads[i : i + 1000]:
            pipe.publish("raw:ev:quotes", payload)
        pipe.execute()
    elapsed = time.perf_counter() - started
    client.close()
    return len(payloads) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quotes", type=int, default=300000)
    parser.add_argument("--codes", type=int, default=2000)
    parser.add_argument("--triggers", type=int, default=10000)
    parser.add_argument(
        "--rounds", type=int, default=2, help="engine runs per side, alternating (best kept)"
    )
    args = parser.parse_args()
    quotes = make_quotes(args.quotes, args.codes)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(tmp)
        try:
            raw = run_raw(server.url, quotes)
            engine = armed = 0.0
            for _ in range(args.rounds):
                engine = max(engine, run_engine_path(server.url, quotes))
                armed = max(armed, run_engine_path(server.url, quotes, args.triggers))
            raw2 = run_raw(server.url, quotes)
            cpu_without, cpu_with = quote_cpu_cost(quotes[:20000], args.triggers)
        finally:
            server.stop()
    raw = max(raw, raw2)
    ratio = engine / raw
    met = engine >= GOAL_RATE and ratio >= GOAL_RATIO
    print(
        "quotes: {:,} over {:,} codes; load average {:.1f} on {} cores".format(
            args.quotes, args.codes, os.getloadavg()[0], os.cpu_count()
        )
    )
    print("raw redis-py pipelined PUBLISH: {:,.0f} quotes/s".format(raw))
    print("engine path (batch + stream + snapshot): {:,.0f} quotes/s".format(engine))
    print(
        "Qt-thread on_quote CPU time (best of 40 alternating rounds): {:.2f} us/quote without "
        "triggers, {:.2f} with {:,} armed ({:+.1f}%)".format(
            cpu_without, cpu_with, args.triggers, (cpu_with / cpu_without - 1) * 100
        )
    )
    slowdown = 1.0 - armed / engine
    print(
        "triggers: {:,} armed: {:,.0f} quotes/s vs {:,.0f} without = {:+.1f}% slower; "
        "goal <= {:.0f}%: {}".format(
            args.triggers,
            armed,
            engine,
            slowdown * 100,
            GOAL_TRIGGER_SLOWDOWN * 100,
            "met" if slowdown <= GOAL_TRIGGER_SLOWDOWN else "MISSED",
        )
    )
    print(
        "bus: engine {:,.0f} quotes/s vs raw PUBLISH {:,.0f}/s = {:.2f}x; goal >= {:,} and >= {:.1f}x: {}".format(
            engine, raw, ratio, GOAL_RATE, GOAL_RATIO, "met" if met else "MISSED"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
