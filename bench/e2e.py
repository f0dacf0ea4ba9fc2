"""End-to-end benchmark of the whole stack: ``python bench/e2e.py --rate R --codes N --clients K --seconds S``.

One run on this machine starts Redis, PostgreSQL, the sim engine streaming R quotes/s over N
codes (all subscribed), the writer, the console (``python -m tui``) in a pseudo-terminal at
120×40, the gateway with K WebSocket clients subscribed to every code (in a child process), and
a child process sending a steady trickle of orders (market buy/sell, which fill) and ``ping``
commands. After a warm-up it measures for S seconds:

- writer lag: sampled 4×/s from the stream itself (``XINFO GROUPS``/``XPENDING``: the age, by
  Redis' clock, of the oldest entry the writer has not yet acknowledged), on every stream with
  a ``writer`` group under the prefix;
- quote → console screen: for the first watchlist rows (on screen at 120×40), each new price
  of a probe code is searched in what the console writes to the terminal after the batch that
  carried it; delay = when it was written − the batch's ``ts`` (the engine's clock = ours);
- quote → gateway client: each client's receive time − the batch's ``ts``; messages/s;
- command RTT: ``ping`` (RPUSH + BLPOP) 20×/s, and the orders' RTT;
- every process's CPU (% of one core) and memory (PSS, so PostgreSQL's shared buffers are not
  counted once per backend), and Redis ``used_memory``.

Before the stack starts, the same run measures the baselines on the same servers: raw PUBLISH
of pre-encoded quote batches (redis-py pipeline), raw COPY of quote rows (asyncpg), and a raw
``websockets`` broadcast of pre-encoded batches to K clients.

Last line: ``e2e: <R> quotes/s, writer lag p99 <ms> ms, tui p99 <ms> ms, gateway p99 <ms> ms,
stack RSS <MB> MB`` (R is the rate the engine actually delivered).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from core.devservers import PostgresServer, RedisServer  # noqa: E402
from core.protocol import Keys  # noqa: E402

PREFIX = "e2e"
TOKEN = "bench-token-0123456789abcdef"
GOALS = {"rate": 20000, "writer_p99_ms": 1000, "tui_p99_ms": 250, "gateway_p99_ms": 250,
         "rtt_p99_ms": 5.0, "stack_mb": 1024}  # fmt: skip
PROBES = 6  # the first watchlist rows, visible at 120x40
_TS = re.compile(rb'"ts":(\d+)')
_SEQ = re.compile(rb'"seq":(\d+)')


def _load_terminal():
    """bench/tui.py's Terminal (the console in a pty, output timestamped)."""
    spec = importlib.util.spec_from_file_location("bench_tui", REPO / "bench" / "tui.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.Terminal


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


# --------------------------------------------------------------------------------------------
# Processes: CPU and memory
# --------------------------------------------------------------------------------------------


def machine_ticks() -> list[int]:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def _cpu_ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    except (OSError, AttributeError):
        try:
            text = Path(f"/proc/{pid}/status").read_text()
            return int(re.search(r"^VmRSS:\s+(\d+)", text, re.M).group(1))
        except (OSError, AttributeError):
            return 0


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry.name))
    return out


class Sampler:
    """Every 0.25 s: CPU ticks and PSS of each named process tree, and the writer's lag."""

    def __init__(self, procs: dict[str, int], url: str, keys: Keys) -> None:
        self.procs = procs
        self.redis = redis.Redis.from_url(url)
        self.keys = keys
        self.mem: dict[str, list[int]] = {n: [] for n in procs}
        self.total_mem: list[int] = []
        self.cpu0: dict[str, int] = {}
        self.cpu1: dict[str, int] = {}
        self.lag_ms: list[float] = []
        self.writer_reported: list[float] = []
        self.used_memory: list[int] = []
        self.on = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def tree(self, name: str) -> list[int]:
        pid = self.procs[name]
        return [pid] + (_children(pid) if name == "postgres" else [])

    def cpu(self) -> dict[str, int]:
        return {n: sum(_cpu_ticks(p) or 0 for p in self.tree(n)) for n in self.procs}

    def begin(self) -> None:
        self.cpu0, self.t0 = self.cpu(), time.monotonic()
        self.machine0 = machine_ticks()
        self.on = True

    def end(self) -> None:
        self.on = False
        self.cpu1, self.t1 = self.cpu(), time.monotonic()
        self.machine1 = machine_ticks()
        self.loadavg = os.getloadavg()[0]

    def machine_busy(self) -> float:
        """Share of all cores busy (anyone's work) while measuring, 0..1."""
        d = [b - a for a, b in zip(self.machine0, self.machine1)]
        total = sum(d) or 1
        return (total - d[3] - d[4]) / total

    def cpu_pct(self) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        dur = self.t1 - self.t0
        return {n: (self.cpu1[n] - self.cpu0[n]) / hz / dur * 100 for n in self.procs}

    def streams(self) -> list[bytes]:
        found = []
        for key in self.redis.scan_iter(match=self.keys.prefix + ":*", count=1000, _type="stream"):
            try:
                groups = self.redis.xinfo_groups(key)
            except redis.ResponseError:
                continue
            if any(g["name"] in (b"writer", "writer") for g in groups):
                found.append(key)
        return found

    def writer_lag_ms(self, streams: list[bytes]) -> float:
        sec, usec = self.redis.time()
        now = sec * 1000 + usec // 1000
        worst = 0.0
        for key in streams:
            oldest = None
            pending = self.redis.xpending(key, "writer")
            if pending and pending.get("pending"):
                oldest = pending["min"]
            else:
                group = next(
                    g for g in self.redis.xinfo_groups(key) if g["name"] in (b"writer", "writer")
                )
                after = self.redis.xrange(
                    key, "(" + group["last-delivered-id"].decode(), "+", count=1
                )
                oldest = after[0][0] if after else None
            if oldest is not None:
                ms = int(
                    oldest.split(b"-")[0] if isinstance(oldest, bytes) else oldest.split("-")[0]
                )
                worst = max(worst, float(now - ms))
        return worst

    def _run(self) -> None:
        streams: list[bytes] = []
        last_scan = 0.0
        while not self.stop.wait(0.25):
            if not self.on:
                continue
            if time.monotonic() - last_scan > 5:
                streams, last_scan = self.streams(), time.monotonic()
            total = 0
            for name in self.procs:
                kb = sum(_pss_kb(p) for p in self.tree(name))
                self.mem[name].append(kb)
                if name not in ("clients", "commands"):
                    total += kb
            self.total_mem.append(total)
            try:
                self.lag_ms.append(self.writer_lag_ms(streams))
                info = self.redis.hget(self.keys.writer, "lag_ms")
                if info:
                    self.writer_reported.append(float(info))
                self.used_memory.append(int(self.redis.info("memory")["used_memory"]))
            except redis.RedisError:
                pass


# --------------------------------------------------------------------------------------------
# Children: gateway clients, command sender
# --------------------------------------------------------------------------------------------


async def child_clients(uri: str, count: int, seconds: float, out: str) -> None:
    from websockets.asyncio.client import connect

    lat: list[float] = []
    msgs = [0] * count
    quotes = [0] * count
    gaps = [0] * count
    measuring = asyncio.Event()
    stop = asyncio.Event()

    async def one(i: int) -> None:
        async with connect(
            uri, additional_headers={"Authorization": "Bearer " + TOKEN}, max_size=None,
            max_queue=256,
        ) as ws:  # fmt: skip
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(decode=False), 1.0)
                except asyncio.TimeoutError:
                    continue
                now = time.time() * 1000
                head = raw[:200]
                if b'"type":"quotes"' not in head:
                    if b'"type":"dropped"' in head:
                        gaps[i] += 1
                    continue
                if measuring.is_set():
                    ts = _TS.search(head)
                    if ts:
                        lat.append(now - int(ts.group(1)))
                    msgs[i] += 1
                    quotes[i] += raw.count(b'"code"')

    tasks = [asyncio.ensure_future(one(i)) for i in range(count)]
    Path(out + ".ready").write_text("1")
    while not Path(out + ".go").exists():
        await asyncio.sleep(0.05)
    measuring.set()
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    measuring.clear()
    dur = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    Path(out).write_text(json.dumps({"lat": lat, "msgs": sum(msgs), "quotes": sum(quotes),
                                     "dropped_notices": sum(gaps), "seconds": dur}))  # fmt: skip


async def child_commands(url: str, prefix: str, seconds: float, out: str) -> None:
    from core.bus import Bus

    bus = Bus(url, prefix)
    pings: list[float] = []
    orders: list[float] = []
    failed: list[str] = []
    Path(out + ".ready").write_text("1")
    while not Path(out + ".go").exists():
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < seconds:
        n += 1
        start = time.perf_counter()
        reply = await bus.send("ping")
        pings.append((time.perf_counter() - start) * 1000)
        if not reply.get("ok"):
            failed.append(str(reply.get("error")))
        if n % 10 == 0:  # 2 orders/s: market buy then sell of one share, which fill
            side = "buy" if (n // 10) % 2 else "sell"
            start = time.perf_counter()
            reply = await bus.send(side, code="005930", qty=1, type="market")
            orders.append((time.perf_counter() - start) * 1000)
            if not reply.get("ok"):
                failed.append(str(reply.get("error")))
        await asyncio.sleep(max(0.0, t0 + n * 0.05 - time.monotonic()))
    await bus.close()
    Path(out).write_text(json.dumps({"pings": pings, "orders": orders, "failed": failed}))


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def sample_batch(codes: list[str], n: int) -> bytes:
    items = [
        {
            "code": codes[i % len(codes)],
            "price": 70000 + i,
            "change": 100,
            "change_pct": 0.14,
            "volume": 1000 + i,
            "trade_qty": 1,
            "open": 70000,
            "high": 70500,
            "low": 69500,
            "ask": 70100,
            "bid": 70000,
            "time": "101500",
        }  # fmt: skip
        for i in range(n)
    ]
    env = {"v": 1, "type": "quotes", "run": "baseline", "seq": 1, "ts": 0, "data": {"items": items}}
    return json.dumps(env, separators=(",", ":")).encode()


def baseline_publish(url: str, batch: bytes, per_batch: int, seconds: float = 2.0) -> float:
    """Pre-encoded batches PUBLISHed in pipelines of 20, with one subscriber draining them."""
    r = redis.Redis.from_url(url)
    sub = r.pubsub()
    sub.subscribe("baseline:ev:quotes")
    done = threading.Event()

    def drain() -> None:
        while not done.is_set():
            try:
                sub.get_message(timeout=0.1)
            except redis.RedisError:  # dropped for a full output buffer: the figure still holds
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        pipe = r.pipeline(transaction=False)
        for _ in range(20):
            pipe.publish("baseline:ev:quotes", batch)
        pipe.execute()
        n += 20
    rate = n * per_batch / (time.perf_counter() - t0)
    done.set()
    reader.join(2)
    sub.close()
    r.close()
    return rate


async def baseline_copy(dsn: str, codes: list[str], rows: int = 200000) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE raw_quotes (ts timestamptz, run text, seq bigint, i int, code text,"
            " price bigint, volume bigint)"
        )
        now = datetime.datetime.now(datetime.timezone.utc)
        records = [(now, "r", k // 1000, k % 1000, codes[k % len(codes)], 70000 + k, k)
                   for k in range(rows)]  # fmt: skip
        t0 = time.perf_counter()
        for k in range(0, rows, 5000):
            await conn.copy_records_to_table("raw_quotes", records=records[k : k + 5000])
        return rows / (time.perf_counter() - t0)
    finally:
        await conn.close()


async def baseline_broadcast(batch: bytes, per_batch: int, clients: int, seconds: float = 2.0):
    """A bare websockets server sending pre-encoded batches to K clients: (quotes/s, p99 ms)."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import broadcast, serve

    conns: set[Any] = set()
    text = batch.decode()

    async def handler(ws):
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    got = [0]
    lat: list[float] = []

    async def client(uri: str, stop: asyncio.Event) -> None:
        async with connect(uri, max_size=None) as ws:
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(decode=False), 0.5)
                except asyncio.TimeoutError:
                    continue
                lat.append(time.time() * 1000 - int(_TS.search(raw[:200]).group(1)))
                got[0] += 1

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stop = asyncio.Event()
        tasks = [
            asyncio.ensure_future(client(f"ws://127.0.0.1:{port}", stop)) for _ in range(clients)
        ]
        while len(conns) < clients:
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:  # 20 batches/s, as the engine sends them
            stamped = re.sub(r'"ts":0', '"ts":%d' % int(time.time() * 1000), text, count=1)
            broadcast(conns, stamped)
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return got[0] * per_batch / seconds, pct(lat, 99)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def universe(n: int) -> list[str]:
    from engine32.brokers.sim.universe import build_universe

    return [ins.code for ins in build_universe((), max(0, n - 40))][:n]


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    full = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", QT_QPA_PLATFORM="offscreen")
    full.update(env or {})
    return subprocess.Popen(argv, cwd=str(REPO), env=full, stdin=subprocess.DEVNULL,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)  # fmt: skip


def wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/e2e.py: timed out waiting for {what}")
        time.sleep(0.05)


class Tap:
    """Follows P:ev:quotes: quotes delivered, and the price changes of the probe codes."""

    def __init__(self, url: str, keys: Keys, probes: list[str]) -> None:
        self.r = redis.Redis.from_url(url)
        self.pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(keys.prefix + ":ev:quotes")
        self.probes = set(probes)
        self.last: dict[str, int] = {}
        self.changes: list[tuple[float, str, int]] = []  # (batch ts in s, code, new price)
        self.quotes = 0
        self.on = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import orjson

        while not self.stop.is_set():
            msg = self.pubsub.get_message(timeout=0.2)
            if not msg:
                continue
            env = orjson.loads(msg["data"])
            items = env["data"]["items"]
            if self.on:
                self.quotes += len(items)
            for q in items:
                code = q["code"]
                if code in self.probes:
                    if self.on and self.last.get(code) != q["price"]:
                        self.changes.append((env["ts"] / 1000, code, q["price"]))
                    self.last[code] = q["price"]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.pubsub.close()
        self.r.close()


def tui_delays(term: Any, changes: list[tuple[float, str, int]], wall_minus_mono: float):
    """Delay of each probe price change to its first appearance in the console's output."""
    out = term.output()
    delays, missing = [], 0
    for ts, _code, price in changes:
        needle = f"{price:,}".encode()
        t_mono = ts - wall_minus_mono
        start = term.offset_at(t_mono - 0.002)
        i = out.find(needle, start)
        if i < 0:
            missing += 1
            continue
        delays.append((term.time_of_offset(i + len(needle)) - t_mono) * 1000)
    return delays, missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=20000, help="quotes/s the sim engine makes")
    ap.add_argument("--codes", type=int, default=2700, help="codes (KOSPI + KOSDAQ ≈ 2,700)")
    ap.add_argument("--clients", type=int, default=10, help="gateway clients, all codes")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--keep-logs", action="store_true", help="print where the logs are")
    ap.add_argument("--child", choices=("clients", "commands"), help=argparse.SUPPRESS)
    ap.add_argument("--child-arg", action="append", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "clients":
        uri, count, out = args.child_arg
        asyncio.run(child_clients(uri, int(count), args.seconds, out))
        return 0
    if args.child == "commands":
        url, prefix, out = args.child_arg
        asyncio.run(child_commands(url, prefix, args.seconds, out))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    keys = Keys(PREFIX)
    codes = universe(args.codes)
    Terminal = _load_terminal()
    servers: list[Any] = []
    procs: dict[str, subprocess.Popen] = {}
    term = None
    tap = None
    sampler = None
    pg_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-pg-"))
    try:
        rs = RedisServer(work / "redis").start()
        servers.append(rs)
        pg = PostgresServer(pg_dir).start()
        servers.append(pg)
        url, dsn = rs.url, pg.dsn

        base: dict[str, Any] = {}
        per_batch = max(1, args.rate // 20)
        batch = sample_batch(codes, per_batch)
        if not args.no_baselines:
            base["publish"] = baseline_publish(url, batch, per_batch)
            base["copy"] = asyncio.run(baseline_copy(dsn, codes))
            base["broadcast"], base["broadcast_p99"] = asyncio.run(
                baseline_broadcast(batch, per_batch, args.clients)
            )
            redis.Redis.from_url(url).flushall()

        py = sys.executable
        procs["engine"] = spawn(
            [py, "-m", "engine32", "--broker", "sim", "--redis", url, "--prefix", PREFIX,
             "--set", f"sim.quote_rate={args.rate}", "--set", f"sim.extra_codes={max(0, args.codes - 40)}",
             "--set", "sim.seed=1"],
            work / "engine.log",
        )  # fmt: skip
        r = redis.Redis.from_url(url, decode_responses=True)
        wait(lambda: r.hget(keys.engine, "state") == "ready", "the engine to be ready")
        from core.bus import Bus

        async def subscribe_all() -> None:
            bus = Bus(url, PREFIX)
            for k in range(0, len(codes), 2000):
                reply = await bus.send("subscribe", codes=codes[k : k + 2000], timeout=30)
                if not reply["ok"]:
                    raise SystemExit(f"bench/e2e.py: subscribe failed: {reply}")
            await bus.close()

        asyncio.run(subscribe_all())
        watch = r.lrange(keys.state_watchlist, 0, -1)
        probes = watch[:PROBES]

        procs["writer"] = spawn(
            [py, "-m", "core.writer", "--redis", url, "--dsn", dsn, "--prefix", PREFIX],
            work / "writer.log",
        )
        procs["gateway"] = spawn(
            [py, "-m", "core.gateway", "--redis", url, "--prefix", PREFIX, "--listen",
             "127.0.0.1:0"],
            work / "gateway.log",
            env={"KC_GATEWAY_TOKENS": f"bench:trade:{TOKEN}"},
        )  # fmt: skip
        gw_log = work / "gateway.log"
        wait(lambda: "listening on ws://" in gw_log.read_text(), "the gateway to listen")
        port = re.search(r"listening on ws://[\d.]+:(\d+)", gw_log.read_text()).group(1)
        clients_out = str(work / "clients.json")
        commands_out = str(work / "commands.json")
        me = [py, str(Path(__file__).resolve()), "--seconds", str(args.seconds)]
        procs["clients"] = spawn(
            me + ["--child", "clients", "--child-arg", f"ws://127.0.0.1:{port}/ws/market?codes=*",
                  "--child-arg", str(args.clients), "--child-arg", clients_out],
            work / "clients.log",
        )  # fmt: skip
        procs["commands"] = spawn(
            me + ["--child", "commands", "--child-arg", url, "--child-arg", PREFIX,
                  "--child-arg", commands_out],
            work / "commands.log",
        )  # fmt: skip
        env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=str(REPO), COLUMNS="120",
                   LINES="40", KC_DATABASE_URL="")  # fmt: skip
        env.pop("COLORTERM", None)
        term = Terminal([py, "-m", "tui", "--redis", url, "--prefix", PREFIX], env)
        if term.wait_for(b"Watchlist", 60) is None:
            raise SystemExit("bench/e2e.py: the console never drew its watchlist")
        wait(lambda: Path(clients_out + ".ready").exists(), "the gateway clients")
        wait(lambda: Path(commands_out + ".ready").exists(), "the command sender")

        pids = {n: p.pid for n, p in procs.items()}
        pids.update(tui=term.proc.pid, redis=rs.pid, postgres=pg.pid)
        sampler = Sampler(pids, url, keys)
        sampler.thread.start()
        tap = Tap(url, keys, probes)
        time.sleep(args.warmup)

        wall_minus_mono = time.time() - time.monotonic()
        Path(clients_out + ".go").write_text("1")
        Path(commands_out + ".go").write_text("1")
        tap.on = True
        sampler.begin()
        t0 = time.monotonic()
        time.sleep(args.seconds)
        tap.on = False
        sampler.end()
        measured = time.monotonic() - t0
        time.sleep(1.0)  # the last probes reach the screen
        wait(lambda: Path(clients_out).exists(), "the clients' figures", args.seconds + 30)
        wait(lambda: Path(commands_out).exists(), "the command figures", args.seconds + 30)
        cl = json.loads(Path(clients_out).read_text())
        cm = json.loads(Path(commands_out).read_text())
        delays, missing = tui_delays(term, tap.changes, wall_minus_mono)
        engine_info = r.hgetall(keys.engine)
    finally:
        if tap:
            tap.close()
        if sampler:
            sampler.stop.set()
        if term:
            term.stop()
        for name in ("clients", "commands", "gateway", "writer", "engine"):
            p = procs.get(name)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for s in reversed(servers):
            s.stop()
        if not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)

    rate = tap.quotes / measured
    cpu = sampler.cpu_pct()
    mem_mb = {n: max(v or [0]) / 1024 for n, v in sampler.mem.items()}
    stack_mb = max(sampler.total_mem or [0]) / 1024
    writer_p = [pct(sampler.lag_ms, q) for q in (50, 99, 100)]
    tui_p99 = pct(delays, 99)
    gw_p99 = pct(cl["lat"], 99)
    rtt_p99 = pct(cm["pings"], 99)
    print(f"e2e bench: {args.codes:,} codes, engine asked for {args.rate:,} quotes/s, "
          f"{args.clients} gateway clients, {measured:.0f} s measured after {args.warmup:g} s warm-up")  # fmt: skip
    print(
        f"engine delivered {rate:,.0f} quotes/s on P:ev:quotes (engine dropped {engine_info.get('dropped', '?')})"
    )
    print(f"writer lag: p50 {writer_p[0]:.0f} ms, p99 {writer_p[1]:.0f} ms, max {writer_p[2]:.0f} ms "
          f"({len(sampler.lag_ms)} samples; the writer's own lag_ms p99 {pct(sampler.writer_reported, 99):.0f})")  # fmt: skip
    print(f"quote -> console screen: p50 {pct(delays, 50):.0f} ms, p99 {tui_p99:.0f} ms "
          f"({len(delays)} probe prices, {missing} not found)")  # fmt: skip
    print(f"quote -> gateway client: p50 {pct(cl['lat'], 50):.0f} ms, p99 {gw_p99:.0f} ms; "
          f"{cl['msgs'] / cl['seconds']:,.0f} messages/s, {cl['quotes'] / cl['seconds']:,.0f} quotes/s "
          f"delivered to {args.clients} clients; {cl['dropped_notices']} dropped notices")  # fmt: skip
    print(f"command RTT (ping): p50 {pct(cm['pings'], 50):.2f} ms, p99 {rtt_p99:.2f} ms "
          f"({len(cm['pings'])}); orders p99 {pct(cm['orders'], 99):.2f} ms ({len(cm['orders'])}); "
          f"failed {len(cm['failed'])} {cm['failed'][:2]}")  # fmt: skip
    ours = sum(cpu.values())
    busy = sampler.machine_busy()
    print(f"machine: {os.cpu_count()} cores {busy:.0%} busy, load average {sampler.loadavg:.1f}; "
          f"this run's processes used {ours:.0f}% of one core, others "
          f"{max(0.0, busy * 100 * (os.cpu_count() or 1) - ours):.0f}%")  # fmt: skip
    print("process           CPU %   PSS MB   CPU ms per 1,000 quotes   quotes/s at 1 core")
    for name in pids:
        per_k = cpu[name] * 10 / max(rate / 1000, 1e-9)
        at_core = rate / (cpu[name] / 100) if cpu[name] > 0 else float("inf")
        print(f"  {name:<14}{cpu[name]:>7.0f}{mem_mb[name]:>9.0f}{per_k:>16.1f}{at_core:>24,.0f}")
    stack_cpu = sum(cpu[n] for n in ("engine", "writer", "gateway", "tui", "redis", "postgres"))
    if stack_cpu > 0:
        print(f"projection from CPU cost (not a measurement): the stack alone would fill 2 cores "
              f"at {rate * 200 / stack_cpu:,.0f} quotes/s")  # fmt: skip
    um = sampler.used_memory or [0]
    growth = (um[-1] - um[0]) / 2**20 / (measured / 60) if len(um) > 1 else 0.0
    print(f"Redis used_memory grew {growth:.0f} MB/min while measuring (P:events keeps what "
          f"the writer has not committed, capped by [engine] stream_budget_mb); at that pace "
          f"the 1 GB budget lasts "
          f"{(1024 - stack_mb) / growth if growth > 0 else float('inf'):.0f} more minutes")  # fmt: skip
    print(f"Redis used_memory max {max(sampler.used_memory or [0]) / 2**20:.0f} MB; stack "
          f"(redis, postgres, engine, writer, tui, gateway) PSS max {stack_mb:.0f} MB")  # fmt: skip
    if base:
        print(f"baselines (same run): raw PUBLISH {base['publish']:,.0f} quotes/s "
              f"(batches of {per_batch}); raw COPY {base['copy']:,.0f} rows/s; raw websockets "
              f"broadcast to {args.clients} clients {base['broadcast']:,.0f} quotes/s at 20 "
              f"batches/s, p99 {base['broadcast_p99']:.0f} ms")  # fmt: skip
    goals = [
        ("rate", rate >= GOALS["rate"] * 0.98, f"{rate:,.0f} >= {GOALS['rate']:,}"),
        ("writer lag p99", writer_p[1] < GOALS["writer_p99_ms"], f"{writer_p[1]:.0f} < 1000 ms"),
        ("tui p99", tui_p99 <= GOALS["tui_p99_ms"], f"{tui_p99:.0f} <= 250 ms"),
        ("gateway p99", gw_p99 <= GOALS["gateway_p99_ms"], f"{gw_p99:.0f} <= 250 ms"),
        ("command RTT p99", rtt_p99 <= GOALS["rtt_p99_ms"], f"{rtt_p99:.2f} <= 5 ms"),
        ("stack memory", stack_mb <= GOALS["stack_mb"], f"{stack_mb:.0f} <= 1024 MB"),
    ]
    for name, ok, text in goals:
        print(f"goal {name:<16} {'met   ' if ok else 'MISSED'} {text}")
    if args.keep_logs:
        print(f"logs: {work}")
    print(f"e2e: {rate:.0f} quotes/s, writer lag p99 {writer_p[1]:.0f} ms, tui p99 {tui_p99:.0f} ms, "
          f"gateway p99 {gw_p99:.0f} ms, stack RSS {stack_mb:.0f} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
