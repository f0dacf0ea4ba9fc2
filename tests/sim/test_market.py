"""Prices the simulator generates: on the tick grid, inside the daily band, consistent quotes,
deterministic for a seed."""

from typing import Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import krx
from core.protocol.events import Quote
from engine32.brokers.sim.universe import DEFAULT_UNIVERSE, build_universe, synthetic_instruments

from .helpers import FakeClock, kst, make_exchange

#: Prices on both sides of tick-size boundaries (2,000 / 5,000 / 20,000 / 50,000 / 200,000 /
#: 500,000) and one above 1,000,000.
BOUNDARY_CODES = ["032820", "003530", "010140", "035720", "068270", "196170", "010130", "207940"]


def quotes_of(payloads: List[object]) -> List[Quote]:
    return [p for p in payloads if isinstance(p, Quote)]


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(1, 2**31 - 1), volatility=st.sampled_from([1.0, 20.0, 80.0]))
def test_every_quote_is_on_the_tick_grid_inside_the_band_and_consistent(seed, volatility) -> None:
    clock = FakeClock(kst(2026, 3, 3, 10, 0))
    ex = make_exchange(
        clock, seed, codes=BOUNDARY_CODES, volatility=volatility, burst_every_s=2.0, quote_rate=4000
    )
    ex.subscribe(BOUNDARY_CODES)
    snapshots = quotes_of(ex.drain())  # the current quote of each, no trade yet
    assert [q.code for q in snapshots] == BOUNDARY_CODES
    assert all(q.trade_qty == 0 and q.volume == 0 and q.open == 0 for q in snapshots)
    last_volume: Dict[str, int] = {}
    seen = 0
    for _ in range(100):
        ex.step(0.05)
        clock.advance(0.05)
        for q in quotes_of(ex.drain()):
            seen += 1
            base = ex.base_price(q.code)
            lower, upper = krx.limit_band(base)
            assert krx.is_on_tick(q.price) and lower <= q.price <= upper, q
            assert krx.is_on_tick(q.bid) and krx.is_on_tick(q.ask), q
            assert lower <= q.bid <= q.ask <= upper, q
            assert q.ask == q.bid or q.ask == krx.next_tick(q.bid), q  # one tick apart
            assert q.price in (q.bid, q.ask)
            assert q.change == q.price - base
            assert q.change_pct == round(q.change * 100.0 / base, 2)
            assert q.low <= q.price <= q.high and q.low <= q.open <= q.high
            assert all(krx.is_on_tick(p) for p in (q.open, q.high, q.low))
            assert q.trade_qty != 0
            assert (q.trade_qty > 0) == (q.price == q.ask) or q.ask == q.bid
            assert q.volume - last_volume.get(q.code, 0) == abs(q.trade_qty)
            last_volume[q.code] = q.volume
            assert len(q.time) == 6 and q.time.isdigit()
    assert seen == 100 * 0.05 * 4000


def test_big_volatility_reaches_the_limits_and_stays_there(clock) -> None:
    ex = make_exchange(clock, 3, codes=["005930"], volatility=400.0, quote_rate=2000)
    ex.subscribe(["005930"])
    lower, upper = krx.limit_band(ex.base_price("005930"))
    prices = set()
    for _ in range(500):
        ex.step(0.05)
        prices.update(q.price for q in quotes_of(ex.drain()))
    assert lower in prices or upper in prices
    assert min(prices) >= lower and max(prices) <= upper


def run_quotes(seed: int, n_steps: int = 40) -> List[Quote]:
    clock = FakeClock(kst(2026, 3, 3, 10, 0))
    ex = make_exchange(clock, seed, burst_every_s=1.0, quote_rate=1000)
    ex.subscribe(["005930", "000660", "035720", "086520"])
    out = []
    for _ in range(n_steps):
        ex.step(0.02)
        out.extend(quotes_of(ex.drain()))
    return out


def test_the_same_seed_gives_the_same_quotes_another_seed_does_not() -> None:
    a, b, c = run_quotes(5), run_quotes(5), run_quotes(6)
    assert len(a) == 4 + 800 and a == b  # 4 quotes at subscribe, then 40 steps × 20
    assert a != c


def test_quotes_only_for_subscribed_codes_but_unwatched_codes_move_too(clock) -> None:
    ex = make_exchange(clock, 9, volatility=30.0, quote_rate=1000)
    ex.subscribe(["005930", "000660"])
    ex.step(1.0)
    assert {q.code for q in quotes_of(ex.drain())} == {"005930", "000660"}
    ex.unsubscribe(["000660"])
    ex.step(1.0)
    assert {q.code for q in quotes_of(ex.drain())} == {"005930"}
    assert ex.active_codes == ["005930"]
    # 035720 was never watched; an hour later, subscribing it catches up in one move
    before = ex.market.states["035720"].price
    for _ in range(3600):
        ex.step(1.0, quotes=0)
    ex.subscribe(["035720"])
    assert ex.market.states["035720"].price != before
    ex.step(0.1)
    assert {q.code for q in quotes_of(ex.drain())} == {"005930", "035720"}


def test_bursts_bring_volume_and_a_move(clock) -> None:
    ex = make_exchange(clock, 21, burst_every_s=0.0, quote_rate=400)
    ex.subscribe(["005930", "000660"])
    ex.step(60.0)  # a minute of ordinary trading
    ex.drain()
    st = ex.market.states["005930"]
    normal_volume, start_price = st.volume, st.price
    ex.market.start_burst(st, ex.t)
    ex._bursting.append("005930")
    duration = st.burst_until - ex.t
    for _ in range(int(duration / 0.5)):
        ex.step(0.5)
    ex.drain()
    assert st.volume - normal_volume > 4 * normal_volume * duration / 60.0
    assert abs(st.price - start_price) >= 0.02 * start_price


def test_krx_time_and_a_new_day_roll_the_base(clock) -> None:
    clock.set(kst(2026, 3, 3, 23, 59, 59))
    ex = make_exchange(clock, 4, volatility=50.0)
    ex.subscribe(["005930"])
    ex.step(0.5)
    q = quotes_of(ex.drain())[-1]
    assert q.time == "235959"
    old_base, last = ex.base_price("005930"), ex.market.states["005930"].price
    clock.set(kst(2026, 3, 4, 0, 0, 1))
    ex.step(0.5)
    q = quotes_of(ex.drain())[0]
    assert ex.base_price("005930") == last and q.time == "000001"
    assert q.volume == abs(q.trade_qty)  # the day's volume started again
    assert last != old_base  # (the seed and volatility make the day move)


def test_the_default_universe() -> None:
    codes = [ins.code for ins in DEFAULT_UNIVERSE]
    assert len(codes) >= 40 and len(set(codes)) == len(codes)
    assert all(
        krx.is_valid_code(c) and krx.is_on_tick(ins.base) for c, ins in zip(codes, DEFAULT_UNIVERSE)
    )
    assert {ins.market for ins in DEFAULT_UNIVERSE} == {"KOSPI", "KOSDAQ"}
    names = {ins.code: ins.name for ins in DEFAULT_UNIVERSE}
    assert names["005930"] == "삼성전자" and names["247540"] == "에코프로비엠"
    extra = synthetic_instruments(3000)
    assert len({i.code for i in extra}) == 3000 and all(krx.is_on_tick(i.base) for i in extra)
    assert all(krx.is_valid_code(i.code) for i in extra)
    picked = build_universe(["000660", "123450"], 2)
    assert [i.code for i in picked] == ["000660", "123450", "Z00001", "Z00002"]
    assert picked[1].name == "SIM 123450" and picked[1] == build_universe(["123450"])[0]


def test_a_rate_below_one_quote_per_tick_carries_over(clock) -> None:
    ex = make_exchange(clock, 2, quote_rate=30.0)
    ex.subscribe(["005930"])
    ex.drain()
    made = [ex.step(0.02) for _ in range(100)]  # 0.6 quotes a tick
    assert sum(made) == 60 and set(made) == {0, 1}
    assert len(quotes_of(ex.drain())) == 60


def test_codes_left_alone_for_hours_catch_up_to_a_plausible_price(clock) -> None:
    ex = make_exchange(clock, 17)
    ex.step(10 * 3600.0, quotes=0)  # ten market hours with nobody watching
    codes = [ins.code for ins in DEFAULT_UNIVERSE]
    ex.subscribe(codes)
    changes = [q.change_pct for q in quotes_of(ex.drain())]
    assert len(changes) == len(codes)
    assert all(abs(c) < 20.0 for c in changes)  # pulled back towards the close, no limit hit
    assert sum(1 for c in changes if c != 0.0) > len(codes) // 2  # but they did move
