"""Quote throughput of the engine's event path into a local Redis, against raw redis-py.

Engine path: the real :class:`engine32.app.Engine` (sim broker built but idle) is fed quotes
through its broker-listener entry ``on_quote`` (books, surge detector, batching), flushed
every ``quote_flush_ms`` of wall time as the Qt timer would, and written by its publisher
thread (PUBLISH ``P:ev:quotes`` + XADD ``P:events`` + HSET ``P:state:quotes``). The figure is
quotes fed / time until the publisher has written the last one.

Raw: the same quotes, JSON-encoded beforehand, sent as pipelined PUBLISH (1,000 a round).

Triggers (issue 14): the cost of ``--triggers`` (default 10,000) armed triggers on the quote
path, spread over the codes: a third each sell stops 50 % below, sell take-profits 50 % above
and trailing stops of 30 % (they follow every new high but never fire), the broker marked
connected so the whole check runs. Wall-clock throughput on a shared 2-core machine varies by
±20 % from run to run, far more than the effect, so this is measured as CPU time per quote in
one thread (:func:`quote_path_cost`): an engine with the triggers and one without, side by
side, fed the same slices of the quote stream in alternating rounds (fresh quote objects,
parsed from Kiwoom's real-time rows just before, as a live engine gets them), the engine's
timers run by quote count, the bench's own data frozen out of the garbage collector. Five
such runs; the median of their total-CPU ratios is the figure, for the mix above and for stops
and take-profits alone. With no triggers on either side it reads within ±1 %. Goal: at most
10 % more.

    .venv/bin/python bench/bus.py [--quotes 300000] [--codes 2000] [--triggers 10000]

Prints its figure on the last line. Goal: >= 50,000 quotes/s and >= half the raw rate.
"""

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import redis  # noqa: E402

from core.protocol import Quote, krx  # noqa: E402

GOAL_RATE = 50000
GOAL_RATIO = 0.5
GOAL_TRIGGER_SLOWDOWN = 0.10
#: quotes parsed at a time before they are fed (fresh in the caches, as from a live broker);
#: divides the quotes of one flush (2,500) and of one trigger flush (50,000)
BATCH = 50


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


MIX = ("stop", "take_profit", "trailing")


def arm_triggers(engine, quotes: List[Quote], count: int, kinds: "tuple[str, ...]" = MIX) -> None:
    """``count`` armed triggers over the codes of ``quotes``, none of which will fire, their
    kinds taken in turn from ``kinds``."""
    from engine32.triggers import Trigger

    first = {}
    for q in quotes:
        first.setdefault(q.code, q.price)
    codes = list(first)
    for i in range(count):
        code = codes[i % len(codes)]
        price = first[code]
        kind = kinds[i % len(kinds)]
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


def as_message(q: Quote) -> "tuple[str, dict[str, str]]":
    """A quote as Kiwoom sends it: the code and the 주식체결 FID values, signed strings (the
    ``values`` of a REST ``0B`` row; the OCX answers ``GetCommRealData`` with the same)."""

    def signed(v: int) -> str:
        return "{:+d}".format(v)

    return q.code, {
        "20": q.time,
        "10": signed(q.price),
        "11": signed(q.change),
        "12": "{:+.2f}".format(q.change_pct),
        "15": signed(q.trade_qty),
        "13": str(q.volume),
        "16": signed(q.open),
        "17": signed(q.high),
        "18": signed(q.low),
        "27": signed(q.ask),
        "28": signed(q.bid),
    }


def quote_path_cost(
    url: str,
    quotes: List[Quote],
    triggers: int,
    rounds: int,
    kinds: "tuple[str, ...]" = MIX,
    fresh: bool = True,
) -> "tuple[list[float], list[float]]":
    """CPU time per quote of the engine's quote path (``Engine.on_quote`` to Redis), one
    thread, nothing left to chance: two engines live side by side (one with ``triggers``
    armed), each fed the same slice of the quote stream in alternating rounds.

    The quotes are parsed from Kiwoom's real-time rows (``parse_stock_trade``, untimed) in
    batches of BATCH just before they are fed, so each is new to the CPU's caches as in a live
    engine: quote objects built long before are cold, and every read of one is a cache miss a
    live engine does not pay. The engine's timers run by quote count as if the feed came at
    GOAL_RATE: quotes flushed every ``quote_flush_ms`` and written to Redis by the publisher's
    own round (``_write``) in this thread, the trigger timer (expiry, saving the trailing
    marks) every ``[triggers] flush_ms``. A slice continues the previous one's random walk,
    so trailing marks keep moving as in a live feed. ``fresh=False`` feeds the quote objects
    built beforehand instead (cold: an upper bound). Returns the µs/quote of each round:
    (without, with)."""
    from PyQt5.QtCore import QCoreApplication

    from core.config import load_config
    from engine32.app import Engine
    from engine32.brokers.kiwoom.realtime import parse_stock_trade
    from engine32.publisher import held_connection

    app = QCoreApplication.instance() or QCoreApplication([])
    assert app is not None
    client = redis.Redis.from_url(url)
    # The bench's own data (hundreds of thousands of quote objects and rows) is no live
    # engine's: frozen out of the garbage collector, or each full collection walks it and
    # lands, 50 ms at a time, in whichever side's round it happens to fall.
    messages: List[Any] = [as_message(q) for q in quotes] if fresh else list(quotes)
    gc.collect()
    gc.freeze()
    engines = []
    for armed in (0, triggers):
        prefix = "benchpath{}".format(next(_runs))
        config = load_config(overrides={"redis.url": url, "redis.prefix": prefix, "sim.seed": 1})
        engine = Engine(config, url, watchlist=[])
        if armed:
            arm_triggers(engine, quotes, armed, kinds)
        else:  # a trigger's code is watched: so are they all here, as a fair baseline
            engine.books.watch(sorted({q.code for q in quotes}))
        engine.status.connected = True
        engines.append((engine, held_connection(client)))
    flush_every = GOAL_RATE * config.engine.quote_flush_ms // 1000
    tick_every = GOAL_RATE * config.triggers.flush_ms // 1000

    def drain(engine: "Engine", conn: object) -> None:
        publisher = engine.publisher
        while publisher.pending():
            publisher._write(conn, publisher._take())
            publisher._busy = False

    for engine, conn in engines:  # the trigger events of arming are not the quote path's
        drain(engine, conn)
    size = len(quotes) // (rounds + 1) // BATCH * BATCH
    fed = [0, 0]
    costs: "tuple[list[float], list[float]]" = ([], [])
    for r in range(rounds + 1):  # round 0 warms both up (caches, first marks) and is dropped
        part = messages[r * size : (r + 1) * size]
        order = (0, 1) if r % 2 else (1, 0)  # who goes first alternates
        for side in order:
            engine, conn = engines[side]
            on_quote = engine.on_quote
            n = fed[side]
            spent = 0.0
            for i in range(0, len(part), BATCH):
                # Parsed as the Kiwoom brokers do a real-time row (kiwoom_rest/broker.py):
                # fresh objects, as a live engine gets them; the parsing is not timed.
                batch = (
                    [
                        parse_stock_trade(code, lambda fid, v=values: v.get(str(fid), ""))
                        for code, values in part[i : i + BATCH]
                    ]
                    if fresh
                    else part[i : i + BATCH]
                )
                started = time.process_time()
                for quote in batch:
                    on_quote(quote)
                n += len(batch)
                if not n % flush_every:
                    engine.flush_quotes()
                    drain(engine, conn)
                    if not n % tick_every:
                        engine.triggers.tick()
                        drain(engine, conn)
                spent += time.process_time() - started
            fed[side] = n
            if r:
                costs[side].append(spent / len(part) * 1e6)
    for engine, _ in engines:
        if engine.triggers.fired_count:
            raise RuntimeError("a benchmark trigger fired")
        client.delete(engine.keys.events)
        engine.close()
    client.close()
    gc.unfreeze()
    return costs


def run_engine_path(url: str, quotes: List[Quote]) -> float:
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


def new_high_share(quotes: List[Quote]) -> float:
    """The share of quotes that are a new high of their code (each moves trailing marks)."""
    high: "dict[str, int]" = {}
    count = 0
    for q in quotes:
        if q.price > high.get(q.code, 0):
            high[q.code] = q.price
            count += 1
    return count / len(quotes)


def trigger_cost(
    url: str, quotes: List[Quote], triggers: int, kinds: "tuple[str, ...]", fresh: bool = True
) -> float:
    """The median over five runs of (total CPU with triggers / without) - 1."""
    ratios = []
    for _ in range(5):
        without, with_ = quote_path_cost(url, quotes, triggers, 40, kinds, fresh)
        ratios.append(sum(with_) / sum(without) - 1)
    return sorted(ratios)[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quotes", type=int, default=300000)
    parser.add_argument("--codes", type=int, default=2000)
    parser.add_argument("--triggers", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2, help="engine path runs (the best kept)")
    args = parser.parse_args()
    quotes = make_quotes(args.quotes, args.codes)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(tmp)
        try:
            raw = run_raw(server.url, quotes)
            engine = 0.0
            for _ in range(args.rounds):
                engine = max(engine, run_engine_path(server.url, quotes))
            raw2 = run_raw(server.url, quotes)
            mixed = trigger_cost(server.url, quotes, args.triggers, MIX)
            fixed = trigger_cost(server.url, quotes, args.triggers, MIX[:2])
            cold = trigger_cost(server.url, quotes, args.triggers, MIX, fresh=False)
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
        "triggers, upper bound: {:+.1f}% CPU for the mix when the quote objects are built long "
        "before (cold in the caches; a live engine's are fresh)".format(cold * 100)
    )
    print(
        "triggers: {:,} armed cost the quote path {:+.1f}% CPU (a third trailing; {:.1%} of "
        "the quotes are a new high), {:+.1f}% as stops and take-profits alone; "
        "goal <= {:.0f}%: {}".format(
            args.triggers,
            mixed * 100,
            new_high_share(quotes),
            fixed * 100,
            GOAL_TRIGGER_SLOWDOWN * 100,
            "met" if max(mixed, fixed) <= GOAL_TRIGGER_SLOWDOWN else "MISSED",
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
