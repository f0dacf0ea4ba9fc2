"""How many quotes a second the simulator's core makes, and what the surge detector adds.

    python -m engine32.brokers.sim.bench [--codes 3000] [--seconds 3] [--qt-rate 20000]

Prints one line per measurement; the last line is the core's figure (quotes/s, all codes
subscribed, outbox drained). ``--qt-rate`` also runs :class:`SimBroker` under a real
QCoreApplication at that configured rate and reports what reached the listener.
"""

import argparse
import os
import sys
import time
from typing import Any, List, Tuple

from core.protocol.events import Quote

from .exchange import SimExchange
from .universe import build_universe


def _exchange(codes: int, seed: int = 1) -> SimExchange:
    universe = build_universe((), max(0, codes - 48))
    ex = SimExchange(universe, seed=seed, quote_rate=1.0, burst_every_s=30.0)
    ex.subscribe([ins.code for ins in universe])
    return ex


def core_rate(
    codes: int, seconds: float, batch: int = 400, surge: bool = False
) -> Tuple[float, float]:
    """Quotes/s of ``step`` + ``drain`` in batches of ``batch`` quotes (a 20 ms timer tick at
    20,000 quotes/s), optionally feeding each quote to the surge detector as the engine does.
    Returns ``(per wall second, per CPU second)``: on a shared machine the second is steadier."""
    from engine32.surge import SurgeDetector

    ex = _exchange(codes)
    det = SurgeDetector(60, 1200, 3.0, 5.0, 300)
    made = 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        made += ex.step(0.02, batch)
        if surge:
            t = ex.t
            for p in ex.drain():
                if type(p) is Quote:
                    det.update(p, t)
        else:
            ex.drain()
    return made / (time.perf_counter() - wall), made / (time.process_time() - cpu)


def qt_rate(codes: int, rate: int, seconds: float) -> float:
    """Quotes/s reaching a listener from SimBroker ticking under a real Qt event loop."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtCore import QCoreApplication, QTimer

    from ..base import BrokerListener
    from .broker import SimBroker

    class Count(BrokerListener):
        quotes = 0

        def on_quote(self, quote: Any) -> None:
            self.quotes += 1

        def on_order(self, order: Any) -> None: ...
        def on_fill(self, fill: Any) -> None: ...
        def on_position(self, position: Any) -> None: ...
        def on_account(self, account: Any) -> None: ...
        def on_connection(self, connected: bool, message: str) -> None: ...

    app = QCoreApplication.instance() or QCoreApplication([])
    listener = Count()
    broker = SimBroker(listener, {"seed": 1, "quote_rate": rate, "extra_codes": max(0, codes - 48)})
    broker.connect()
    broker.subscribe(list(broker.exchange.market.states))
    listener.quotes = 0  # not the snapshot quotes sent on subscribe
    start = time.perf_counter()
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec_()
    elapsed = time.perf_counter() - start
    broker.disconnect()
    print("  (dropped timer ticks: {})".format(broker.dropped_ticks))
    return listener.quotes / elapsed


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--qt-rate", type=int, default=0, help="also run SimBroker under Qt")
    args = parser.parse_args(argv)
    print("python {}".format(sys.version.split()[0]))
    if args.qt_rate:
        got = qt_rate(args.codes, args.qt_rate, args.seconds)
        print(
            "SimBroker under Qt, {:,} quotes/s configured: {:,.0f} quotes/s delivered".format(
                args.qt_rate, got
            )
        )
    wall, cpu = core_rate(args.codes, args.seconds, surge=True)
    print(
        "core + surge detector, {:,} codes: {:,.0f} quotes/s ({:,.0f} per CPU second)".format(
            args.codes, wall, cpu
        )
    )
    wall, cpu = core_rate(args.codes, args.seconds)
    print(
        "sim core, {:,} codes subscribed: {:,.0f} quotes/s ({:,.0f} per CPU second)".format(
            args.codes, wall, cpu
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
