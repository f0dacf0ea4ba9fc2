"""Round trip of a command through the real engine: RPUSH ``P:cmd`` → reply on ``BLPOP``.

Starts its own redis-server and ``python -m engine32 --broker sim``; measures ``ping`` and a
sim market ``buy`` (one share), one at a time, against a raw Redis ``PING`` from the same
client in the same run.

    .venv/bin/python bench/command_rtt.py [--pings 2000] [--buys 300]

Prints its figure on the last line. Goal: ping p99 <= 2 ms on loopback.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import redis  # noqa: E402
from bus import start_redis  # noqa: E402

from tests.helpers.engine_process import EngineProcess  # noqa: E402

GOAL_P99_MS = 2.0
EXTRA = json.loads(os.environ.get("RTT_EXTRA", "{}"))


def cpu_times() -> List[int]:
    """The machine's CPU counters (/proc/stat: user nice system idle iowait irq softirq steal),
    to tell how busy the machine was while the figures were taken; [] where there is none."""
    try:
        with open("/proc/stat") as f:
            return [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def machine_busy(before: List[int], after: List[int]) -> str:
    """'busy N %, steal M %' of all cores between two :func:`cpu_times`."""
    if not before or not after:
        return "machine load unknown"
    d = [b - a for a, b in zip(before, after)]
    total = sum(d) or 1
    busy = total - d[3] - d[4]
    return "machine busy {:.0%}, steal {:.0%}".format(busy / total, d[7] / total)


def percentile(samples: List[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def measure(count: int, one: Callable[[int], None], warmup: int = 50) -> List[float]:
    for i in range(warmup):
        one(-1 - i)
    out = []
    for i in range(count):
        started = time.perf_counter()
        one(i)
        out.append((time.perf_counter() - started) * 1000.0)
    return out


def summary(name: str, samples: List[float]) -> Dict[str, float]:
    figures = {"p50": percentile(samples, 50), "p99": percentile(samples, 99), "max": max(samples)}
    print(
        "{:<10} n={:<5} p50 {:.3f} ms  p99 {:.3f} ms  max {:.3f} ms".format(
            name, len(samples), *figures.values()
        )
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--buys", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(tmp)
        eng = EngineProcess(
            server.url,
            prefix="rtt",
            settings={
                "sim.seed": 1,
                "sim.burst_every_s": 0,
                "engine.log_level": "WARNING",
                **EXTRA,
            },
            log_dir=tmp,
        )
        try:
            eng.start()
            eng.wait_ready(30)
            client = redis.Redis.from_url(server.url)
            keys = eng.keys

            def roundtrip(body: Dict[str, object]) -> Callable[[int], None]:
                def one(i: int) -> None:
                    cmd_id = "{}{}".format(body["cmd"], i)
                    client.rpush(keys.cmd, json.dumps(dict(body, id=cmd_id)))
                    got = client.blpop([keys.reply(cmd_id)], timeout=5)
                    if got is None or not json.loads(got[1])["ok"]:
                        raise RuntimeError("no good reply to {}: {}".format(cmd_id, got))

                return one

            cpu0 = cpu_times()
            raw = summary("raw PING", measure(args.pings, lambda i: client.ping()))
            ping = summary("ping", measure(args.pings, roundtrip({"cmd": "ping"})))
            buy = summary(
                "sim buy",
                measure(
                    args.buys,
                    roundtrip({"cmd": "buy", "code": "005930", "qty": 1, "type": "market"}),
                ),
            )
            busy = machine_busy(cpu0, cpu_times())
            print("while measuring: {} ({} cores, shared)".format(busy, os.cpu_count()))
            client.close()
            eng.stop()
        finally:
            eng.close()
            server.stop()
    met = ping["p99"] <= GOAL_P99_MS
    load = os.getloadavg()[0]
    why = ""
    if not met:
        why = " (load average {:.1f}, {}, on {} cores shared with other processes; raw PING p99 {:.2f} ms)".format(
            load, busy, os.cpu_count(), raw["p99"]
        )
    print(
        "command_rtt: ping p50 {:.2f} ms p99 {:.2f} ms; sim buy p50 {:.2f} ms p99 {:.2f} ms; raw PING p50 {:.2f} ms "
        "p99 {:.2f} ms; goal ping p99 <= {:.1f} ms: {}".format(
            ping["p50"], ping["p99"], buy["p50"], buy["p99"], raw["p50"], raw["p99"], GOAL_P99_MS,
            "met" if met else "MISSED by {:.2f} ms{}".format(ping["p99"] - GOAL_P99_MS, why),
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
