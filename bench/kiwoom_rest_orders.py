"""What the kiwoom_rest broker adds to an order's round trip, against the fake Kiwoom server.

Places N one-share limit orders one at a time through ``KiwoomRestBroker.place_order`` (Qt
thread → network thread → HTTP ``kt10000`` → queued signal back to the Qt thread → ``done``)
and, in the same run, N raw ``httpx`` POSTs of the same body to the same fake from one
keep-alive client (the baseline: what the network and the fake cost by themselves).

    .venv/bin/python bench/kiwoom_rest_orders.py [--orders 300]

Prints its figure on the last line: the broker's median overhead over the raw POST.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx  # noqa: E402
from PyQt5.QtCore import QCoreApplication  # noqa: E402

from core.config import load_config  # noqa: E402
from engine32.brokers.base import OrderRequest  # noqa: E402
from engine32.brokers.kiwoom_rest import KiwoomRestBroker  # noqa: E402
from tests.fakes.kiwoom_rest import FakeKiwoomRest  # noqa: E402
from tests.kiwoom.helpers import Recorder, wait_until  # noqa: E402

KEYS = {
    "KC_KIWOOM_APPKEY": "fake-appkey-0123456789",
    "KC_KIWOOM_SECRETKEY": "fake-secretkey-0123456789",
}
BODY = {"dmst_stex_tp": "KRX", "stk_cd": "005930", "ord_qty": "1", "ord_uv": "60000",
        "trde_tp": "0", "cond_uv": ""}  # fmt: skip


def pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_posts(fake: FakeKiwoomRest, token: str, n: int) -> List[float]:
    async def run() -> List[float]:
        out = []
        headers = {"api-id": "kt10000", "authorization": "Bearer " + token}
        async with httpx.AsyncClient(base_url=fake.base_url) as client:
            for _ in range(n):
                t0 = time.perf_counter()
                resp = await client.post("/api/dostk/ordr", json=BODY, headers=headers)
                assert resp.json()["return_code"] == 0, resp.text
                out.append((time.perf_counter() - t0) * 1000)
        return out

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    n = parser.parse_args().orders
    app = QCoreApplication.instance() or QCoreApplication([])
    with FakeKiwoomRest(rate_per_s=100000, fill_plan="none", holdings={}) as fake:
        cfg = load_config(overrides={"engine.kiwoom_rest.base_url": fake.base_url,
                                     "engine.kiwoom_rest.ws_url": fake.ws_url,
                                     "engine.kiwoom_rest.order_per_s": 100000.0}, environ={})  # fmt: skip
        rec = Recorder()
        broker = KiwoomRestBroker(rec, cfg, env=dict(KEYS))
        broker.connect()
        wait_until(lambda: rec.connected, 30, "ready")
        broker_ms: List[float] = []
        for i in range(n):
            answers: list = []
            t0 = time.perf_counter()
            broker.place_order(
                OrderRequest("005930", "buy", 1, 60000, "limit", "b%d" % i), answers.append
            )
            wait_until(lambda got=answers: got, 10, "the answer")
            broker_ms.append((time.perf_counter() - t0) * 1000)
            assert answers[0].ok, answers[0]
        token = broker.rest._token
        raw_ms = raw_posts(fake, token, n)
        broker.disconnect()
        broker.net.join(10)
    del app
    print("raw httpx POST kt10000:  p50 {:.2f} ms  p99 {:.2f} ms  (n={})".format(
        statistics.median(raw_ms), pct(raw_ms, 0.99), n))  # fmt: skip
    print("broker place_order:      p50 {:.2f} ms  p99 {:.2f} ms  (n={})".format(
        statistics.median(broker_ms), pct(broker_ms, 0.99), n))  # fmt: skip
    print("kiwoom_rest order overhead over a raw POST: p50 {:+.2f} ms".format(
        statistics.median(broker_ms) - statistics.median(raw_ms)))  # fmt: skip


if __name__ == "__main__":
    main()
