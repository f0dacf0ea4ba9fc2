"""Orders in the simulator: validation, resting limits, market slippage, partial fills,
cancel/modify, costs, no overselling, sessions."""

from typing import List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import krx
from core.protocol.events import (
    ACCEPTED,
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    REJECTED,
    Account,
    Fill,
    Order,
    Position,
    Quote,
)

from .helpers import FakeClock, kst, make_exchange, run_until


def of(kind, payloads: List[object]) -> list:
    return [p for p in payloads if isinstance(p, kind)]


def fills_for(order_id: str, payloads: List[object]) -> List[Fill]:
    return [f for f in of(Fill, payloads) if f.order_id == order_id]


def order_filled(order_id: str):
    return lambda seen: any(o.order_id == order_id and o.status == FILLED for o in of(Order, seen))


def test_invalid_orders_are_rejected_with_reasons(clock) -> None:
    ex = make_exchange(clock)
    base = ex.base_price("005930")
    lower, upper = krx.limit_band(base)
    cases = [
        (("999999", "buy", 1, 1000), "unknown code"),
        (("005930", "buy", 0, base), "qty must be a positive integer"),
        (("005930", "buy", -5, base), "qty must be a positive integer"),
        (("005930", "hold", 1, base), "side must be buy or sell"),
        (("005930", "buy", 1, base + 50), "not on the 100 KRW tick"),
        (("005930", "buy", 1, krx.next_tick(upper)), "above the daily upper limit"),
        (("005930", "sell", 1, krx.prev_tick(lower)), "below the daily lower limit"),
        (("005930", "sell", 1, base), "no short selling"),
        (("005930", "buy", 10**6, base), "insufficient orderable cash"),
    ]
    for args, words in cases:
        order_id, reason = ex.place(*args)
        assert words in reason, (args, reason)
        (order,) = of(Order, ex.drain())
        assert order.order_id == order_id and order.status == REJECTED and order.reason == reason
    assert ex.open_orders() == [] and ex.ledger.reserved == 0
    assert ex.place("005930", "buy", 1, base, "bogus")[1].startswith("type must be")


def test_order_ids_count_up(clock) -> None:
    ex = make_exchange(clock)
    ids = [ex.place("005930", "buy", 1, ex.base_price("005930"))[0] for _ in range(3)]
    assert ids == ["S000001", "S000002", "S000003"]


def test_a_limit_order_rests_until_the_market_crosses_it(clock) -> None:
    ex = make_exchange(clock, 8, codes=["035720"], volatility=30.0, quote_rate=1000)
    ex.subscribe(["035720"])
    ex.step(0.1)
    ex.drain()
    ask = ex.market.states["035720"].ask
    limit = krx.prev_tick(ask, 5)
    order_id, reason = ex.place("035720", "buy", 10, limit)
    assert reason == ""
    seen = run_until(ex, order_filled(order_id))
    fill_at = next(i for i, p in enumerate(seen) if isinstance(p, Fill))
    *before, crossing = of(Quote, seen[:fill_at])
    assert before and all(q.ask > limit for q in before)  # never crossed before the fill
    assert seen[fill_at - 1] is crossing and crossing.ask <= limit  # the quote that crossed
    assert all(f.price == limit for f in fills_for(order_id, seen))  # at its own price
    statuses = [o.status for o in of(Order, seen) if o.order_id == order_id]
    assert statuses[0] == ACCEPTED and statuses[-1] == FILLED


def test_a_marketable_limit_order_fills_at_the_touch(clock) -> None:
    ex = make_exchange(clock, 2, quote_rate=100)
    ex.subscribe(["005930"])
    ex.step(0.1)
    ex.drain()
    st_ = ex.market.states["005930"]
    ask = st_.ask
    order_id, _ = ex.place("005930", "buy", 1, krx.next_tick(ask, 3))
    ex.step(0.0, quotes=0)  # the arrival match only
    (fill,) = fills_for(order_id, ex.drain())
    assert fill.price == ask  # price improvement: the touch, not its limit


@pytest.mark.parametrize("slippage", [0, 1, 3])
def test_market_orders_fill_at_the_touch_plus_slippage(clock, slippage) -> None:
    ex = make_exchange(clock, 12, slippage_ticks=slippage)
    ex.subscribe(["000660"])
    ex.step(0.2)
    ex.drain()
    st_ = ex.market.states["000660"]
    ask, bid = st_.ask, st_.bid
    buy_id, _ = ex.place("000660", "buy", 2, 0, "market")
    ex.step(0.0, quotes=0)
    (fill,) = fills_for(buy_id, ex.drain())
    assert fill.price == krx.next_tick(ask, slippage) and fill.qty == 2
    sell_id, _ = ex.place("000660", "sell", 2, 0, "market")
    ex.step(0.0, quotes=0)
    (fill,) = fills_for(sell_id, ex.drain())
    assert fill.price == krx.prev_tick(bid, slippage)


def test_a_large_order_fills_partially_over_several_quotes(clock) -> None:
    ex = make_exchange(clock, 5, quote_rate=200, cash=10**10)
    ex.subscribe(["005930"])
    lot = ex.market.states["005930"].lot
    qty = lot * 200
    order_id, reason = ex.place("005930", "buy", qty, 0, "market")
    assert reason == ""
    seen = run_until(ex, order_filled(order_id))
    fills = fills_for(order_id, seen)
    assert len(fills) >= 5 and sum(f.qty for f in fills) == qty
    assert all(f.qty <= 20 * lot for f in fills)  # never more than one quote's depth
    orders = [o for o in of(Order, seen) if o.order_id == order_id]
    assert [o.status for o in orders][:2] == [ACCEPTED, PARTIALLY_FILLED]
    assert orders[-1].status == FILLED and orders[-1].remaining_qty == 0
    assert orders[-1].avg_fill_price == round(sum(f.qty * f.price for f in fills) / qty)
    filled = [o.filled_qty for o in orders]
    assert filled == sorted(filled)
    position = of(Position, seen)[-1]
    assert position.qty == qty
    assert of(Account, seen)[-1].cash == 10**10 - sum(f.qty * f.price + f.fee for f in fills)


def test_fees_and_tax_per_market(clock) -> None:
    ex = make_exchange(
        clock, 3, codes=["005930", "247540"], commission_pct=0.015,
        tax_kospi_pct=0.20, tax_kosdaq_pct=0.15, slippage_ticks=0,
    )  # fmt: skip
    cash = ex.ledger.cash
    for code in ("005930", "247540"):
        ex.place(code, "buy", 7, 0, "market")
    ex.step(0.0, quotes=0)
    for code in ("005930", "247540"):
        ex.place(code, "sell", 7, 0, "market")
    ex.step(0.0, quotes=0)
    fills = of(Fill, ex.drain())
    assert len(fills) == 4
    for f in fills:
        value = f.qty * f.price
        assert f.fee == krx.commission(value, 0.015) == (int(value * 0.00015) // 10) * 10
        rate = 0.0 if f.side == "buy" else (0.20 if f.code == "005930" else 0.15)
        assert f.tax == krx.sell_tax(value, rate)
        cash += -value - f.fee if f.side == "buy" else value - f.fee - f.tax
    assert ex.ledger.cash == cash
    account = ex.account()
    buys = {f.code: f for f in fills if f.side == "buy"}
    realized = sum(
        f.qty * f.price - f.fee - f.tax - buys[f.code].qty * buys[f.code].price
        for f in fills
        if f.side == "sell"
    )
    assert account.realized_pnl_today == realized
    assert account.cash == account.equity == account.orderable == cash  # all sold


def test_average_price_and_realized_pnl_of_a_position(clock) -> None:
    ex = make_exchange(clock, 3, codes=["035720"], slippage_ticks=0)
    ex.subscribe(["035720"])
    buys = []
    for qty in (10, 30):
        ex.place("035720", "buy", qty, 0, "market")
        ex.step(0.0, quotes=0)
        buys += of(Fill, ex.drain())
        ex.step(5.0)
        ex.drain()
    cost = sum(f.qty * f.price for f in buys)
    assert ex.ledger.holdings["035720"].avg_price == round(cost / 40)
    ex.place("035720", "sell", 25, 0, "market")
    ex.step(0.0, quotes=0)
    out = ex.drain()
    (sell,) = of(Fill, out)
    position = of(Position, out)[-1]
    basis = cost * 25 // 40
    assert position.qty == 15
    assert position.realized_pnl == sell.qty * sell.price - sell.fee - sell.tax - basis
    assert position.avg_price == round((cost - basis) / 15)


def test_no_selling_more_than_held_or_already_offered(clock) -> None:
    ex = make_exchange(clock, 4)
    ex.place("005930", "buy", 10, 0, "market")
    ex.step(0.0, quotes=0)
    assert ex.ledger.sellable("005930") == 10
    far = ex.market.states["005930"].upper
    first, reason = ex.place("005930", "sell", 6, far)
    assert reason == ""
    _, reason = ex.place("005930", "sell", 5, far)
    assert reason == "no short selling: 4 shares of 005930 sellable, order for 5"
    assert ex.cancel(first) == ""
    _, reason = ex.place("005930", "sell", 10, far)
    assert reason == ""


def test_cancel_and_modify(clock) -> None:
    ex = make_exchange(clock, 4)
    base = ex.base_price("005930")
    low = krx.limit_band(base)[0]
    order_id, _ = ex.place("005930", "buy", 10, low, cmd_id="c1")
    reserved = ex.ledger.reserved
    assert (
        reserved == ex.ledger.buy_need(10, low) and ex.ledger.orderable == ex.ledger.cash - reserved
    )
    ex.drain()
    new_id, reason = ex.modify(order_id, qty=4, price=krx.next_tick(low), cmd_id="c2")
    assert reason == "" and new_id != order_id
    old, new = of(Order, ex.drain())
    assert old.order_id == order_id and old.status == CANCELLED and new_id in old.reason
    assert new.order_id == new_id and new.orig_order_id == order_id and new.status == ACCEPTED
    assert (new.qty, new.price, new.cmd_id) == (4, krx.next_tick(low), "c2")
    assert ex.ledger.reserved == ex.ledger.buy_need(4, krx.next_tick(low))
    assert ex.modify(order_id, price=low)[1] == "order {} is cancelled, not open".format(order_id)
    assert "more than the remaining" in ex.modify(new_id, qty=5)[1]
    assert "not on the" in ex.modify(new_id, price=low + 1)[1]
    assert ex.modify("S999999")[1] == "unknown order S999999"
    assert [o.order_id for o in ex.open_orders()] == [new_id]
    assert ex.cancel(new_id, "c3") == ""
    (cancelled,) = of(Order, ex.drain())
    assert cancelled.status == CANCELLED and cancelled.remaining_qty == 0
    assert ex.ledger.reserved == 0 and ex.open_orders() == []
    assert ex.cancel(new_id) == "order {} is cancelled, not open".format(new_id)
    market_id, _ = ex.place("005930", "buy", 1, 0, "market")
    assert ex.modify(market_id, qty=1)[1] == "market orders cannot be modified"


def run_ops(seed: int, ops) -> list:
    clock = FakeClock(kst(2026, 3, 3, 10, 0))
    ex = make_exchange(clock, seed, codes=["005930", "032820"], volatility=10.0, quote_rate=300)
    ex.subscribe(["005930", "032820"])
    payloads: list = []
    for op, code, qty, ticks in ops:
        st_ = ex.market.states[code]
        if op == "cancel":
            opened = ex.open_orders()
            if opened:
                ex.cancel(opened[qty % len(opened)].order_id)
        elif op == "market":
            ex.place(code, "buy" if ticks >= 0 else "sell", qty, 0, "market")
        else:
            ex.place(code, op, qty, krx.next_tick(st_.price, ticks))
        ex.step(0.05)
        clock.advance(0.05)
        payloads += ex.drain()
        check_books(ex)
    return payloads


def check_books(ex) -> None:
    ledger = ex.ledger
    assert ledger.cash >= 0 and ledger.orderable >= 0
    opened = ex.open_orders()
    assert ledger.reserved == sum(ex.orders[o.order_id].reserved for o in opened if o.side == "buy")
    for code, h in ledger.holdings.items():
        offered = sum(o.remaining_qty for o in opened if o.code == code and o.side == "sell")
        assert h.qty >= 0 and h.reserved_sell == offered <= h.qty


OPS = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell", "market", "cancel"]),
        st.sampled_from(["005930", "032820"]),
        st.integers(1, 3000),
        st.integers(-4, 4),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(1, 1000), ops=OPS)
def test_random_order_flow_never_oversells_or_overspends(seed, ops) -> None:
    payloads = run_ops(seed, ops)
    held = {}
    for f in of(Fill, payloads):
        held[f.code] = held.get(f.code, 0) + (f.qty if f.side == "buy" else -f.qty)
        assert held[f.code] >= 0
    for o in of(Order, payloads):
        assert o.filled_qty <= o.qty and (o.status != FILLED or o.filled_qty == o.qty)


def test_the_same_seed_and_calls_give_the_same_fills() -> None:
    ops = [("buy", "005930", 500, 1), ("market", "032820", 2500, 1), ("sell", "005930", 100, 2)]
    ops += [("buy", "032820", 10, -1)] * 10 + [("market", "032820", 1000, -1)]
    a = [p for p in run_ops(77, ops) if isinstance(p, (Fill, Quote))]
    b = [p for p in run_ops(77, ops) if isinstance(p, (Fill, Quote))]
    assert of(Fill, a) and a == b
    assert of(Fill, run_ops(78, ops)) != of(Fill, a)


# -- sessions ---------------------------------------------------------------------------------


def krx_exchange(clock: FakeClock, seed: int = 6):
    ex = make_exchange(clock, seed, sessions="krx", codes=["005930", "000660"], quote_rate=200)
    ex.subscribe(["005930", "000660"])
    snapshots = of(Quote, ex.drain())  # prices even when closed, but no trade
    assert [q.code for q in snapshots] == ["005930", "000660"]
    assert all(q.trade_qty == 0 for q in snapshots)
    return ex


@pytest.mark.parametrize(
    "when",
    [
        kst(2026, 3, 3, 8, 29),
        kst(2026, 3, 3, 18, 0),  # after the single-price session (issue 12: KRX trades to 18:00)
        kst(2026, 3, 3, 20, 0),
        kst(2026, 3, 7, 11, 0),
    ],
)
def test_krx_closed_market_rejects_orders_and_sends_no_quotes(when) -> None:
    clock = FakeClock(when)
    ex = krx_exchange(clock)
    assert ex.step(0.5) == 0 and of(Quote, ex.drain()) == []
    _, reason = ex.place("005930", "buy", 1, ex.base_price("005930"))
    assert reason.startswith("KRX is closed")  # and says when it opens again
    assert ex.modify("S000001", qty=1)[1] == "order S000001 is rejected, not open"


def test_krx_opening_auction_collects_orders_and_matches_once_at_nine() -> None:
    clock = FakeClock(kst(2026, 3, 3, 8, 40))
    ex = krx_exchange(clock)
    base = ex.base_price("005930")
    upper = krx.limit_band(base)[1]
    low = krx.limit_band(base)[0]
    buy_id, _ = ex.place("005930", "buy", 10, upper)  # crosses whatever the open is
    mkt_id, _ = ex.place("005930", "buy", 5, 0, "market")
    rest_id, _ = ex.place("005930", "buy", 3, low)  # will not cross
    for _ in range(50):
        ex.step(0.1)
        clock.advance(1)
    out = ex.drain()
    assert of(Fill, out) == []  # nothing matches before 09:00
    quotes = of(Quote, out)
    assert quotes and all(q.trade_qty == 0 and q.volume == 0 for q in quotes)
    clock.set(kst(2026, 3, 3, 9, 0, 0))
    open_price = ex.market.states["005930"].price
    ex.step(0.0, quotes=0)
    fills = of(Fill, ex.drain())
    assert {(f.order_id, f.qty, f.price) for f in fills} == {
        (buy_id, 10, open_price),
        (mkt_id, 5, open_price),
    }
    assert [o.order_id for o in ex.open_orders()] == [rest_id]
    ex.step(1.0)
    assert any(q.trade_qty != 0 for q in of(Quote, ex.drain()))  # continuous trading now


def test_krx_closing_auction_then_expiry_at_the_close() -> None:
    clock = FakeClock(kst(2026, 3, 3, 15, 10))
    ex = krx_exchange(clock)
    ex.place("000660", "buy", 10, 0, "market")
    ex.step(0.0, quotes=0)
    assert ex.ledger.holdings["000660"].qty == 10
    clock.set(kst(2026, 3, 3, 15, 25))
    ex.step(0.1)
    ex.drain()
    sell_id, reason = ex.place("000660", "sell", 10, 0, "market")  # collected for the close
    base = ex.base_price("000660")
    low_id, _ = ex.place("000660", "buy", 1, krx.limit_band(base)[0])
    assert reason == ""
    for _ in range(10):
        ex.step(0.5)
    assert of(Fill, ex.drain()) == []
    clock.set(kst(2026, 3, 3, 15, 30, 1))
    close = ex.market.states["000660"].price
    assert ex.step(0.1) == 0
    out = ex.drain()
    (fill,) = of(Fill, out)
    assert (fill.order_id, fill.qty, fill.price) == (sell_id, 10, close)
    expired = [o for o in of(Order, out) if o.order_id == low_id]
    assert expired[-1].status == CANCELLED and expired[-1].reason == "expired at the close"
    assert ex.open_orders() == [] and ex.ledger.reserved == 0


def test_held_positions_are_revalued_as_the_price_moves(clock) -> None:
    ex = make_exchange(clock, 31, codes=["035720"], volatility=20.0)
    ex.place("035720", "buy", 10, 0, "market")
    ex.step(0.0, quotes=0)
    ex.drain()
    assert ex.active_codes == ["035720"]  # held, not subscribed: it still trades
    seen = run_until(ex, lambda seen: len(of(Position, seen)) >= 3, dt=0.1)
    assert of(Quote, seen) == []
    h = ex.ledger.holdings["035720"]
    for position in of(Position, seen):
        assert position.unrealized_pnl == 10 * position.last_price - h.cost
    assert len({p.last_price for p in of(Position, seen)}) == len(of(Position, seen))
    account = of(Account, seen)[-1]
    assert account.equity == ex.ledger.cash + 10 * of(Position, seen)[-1].last_price


def test_a_new_day_resets_realized_pnl_and_forgets_closed_positions(clock) -> None:
    clock.set(kst(2026, 3, 3, 23, 0))
    ex = make_exchange(clock, 5, codes=["005930", "000660"])
    for code in ("005930", "000660"):
        ex.place(code, "buy", 3, 0, "market")
    ex.step(0.0, quotes=0)
    ex.place("005930", "sell", 3, 0, "market")
    ex.step(0.0, quotes=0)
    assert ex.account().realized_pnl_today != 0
    clock.set(kst(2026, 3, 4, 0, 0, 1))
    ex.step(0.1)
    assert ex.account().realized_pnl_today == 0
    assert [p.code for p in ex.positions()] == ["000660"]
    assert ex.positions()[0].realized_pnl == 0 and ex.positions()[0].qty == 3


JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True),
    st.text(max_size=8), st.sampled_from(["005930", "buy", "sell", "limit", "market"]),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(code=JUNK, side=JUNK, qty=JUNK, price=JUNK, kind=JUNK, modify_qty=JUNK, modify_price=JUNK)
def test_junk_orders_are_rejected_in_words_never_raise(
    code, side, qty, price, kind, modify_qty, modify_price
) -> None:
    ex = make_exchange(FakeClock(kst(2026, 3, 3, 10, 0)), 1)
    order_id, reason = ex.place(code, side, qty, price, kind)
    (order,) = of(Order, ex.drain())
    assert order.order_id == order_id
    if reason:
        assert order.status == REJECTED and order.reason == reason
    else:  # only a valid order gets through
        assert code == "005930" and side == "buy" and kind in ("limit", "market")
        assert isinstance(qty, int) and qty > 0 and order.status == ACCEPTED
    new_id, why = ex.modify(order_id, modify_qty, modify_price)
    assert bool(new_id) != bool(why)
    check_books(ex)
