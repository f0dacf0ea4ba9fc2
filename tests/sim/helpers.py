"""Helpers for the simulator tests: a settable exchange clock, an exchange, a run loop."""

import datetime
from typing import List

from core.protocol import krx
from engine32.brokers.sim.exchange import SimExchange
from engine32.brokers.sim.universe import build_universe


class FakeClock:
    """An exchange clock (ms since the epoch) that moves only when told."""

    def __init__(self, when: datetime.datetime) -> None:
        self.ms = int(when.timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def set(self, when: datetime.datetime) -> None:
        self.ms = int(when.timestamp() * 1000)

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def kst(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> datetime.datetime:
    return datetime.datetime(y, mo, d, h, mi, s, tzinfo=krx.KST)


def make_exchange(clock: FakeClock, seed: int = 42, **kw: object) -> SimExchange:
    kw.setdefault("burst_every_s", 0.0)
    kw.setdefault("quote_rate", 500.0)
    codes = kw.pop("codes", ())
    return SimExchange(build_universe(codes), seed=seed, clock=clock, **kw)  # type: ignore[arg-type]


def run_until(ex: SimExchange, predicate, max_steps: int = 20000, dt: float = 0.02) -> List:
    """Step ``ex`` until ``predicate(payloads so far)`` holds; returns the payloads."""
    seen: List = []
    for _ in range(max_steps):
        ex.step(dt)
        seen.extend(ex.drain())
        if predicate(seen):
            return seen
    raise AssertionError("condition not reached in {} steps".format(max_steps))
