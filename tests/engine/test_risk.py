"""The pre-trade risk checks: each limit, its message, and the books' exposure."""

from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol.events import Account, Order, Position, Quote
from engine32.books import Books, Exposure
from engine32.risk import OrderIntent, RiskLimits, check_order, check_order_all

LIMITS = RiskLimits(
    max_order_value=50000000,
    max_order_qty=10000,
    max_position_value=200000000,
    max_open_orders=50,
    max_daily_loss=5000000,
    price_band_pct=10.0,
)
FLAT = Exposure(
    position_qty=0,
    open_buy_qty=0,
    open_sell_qty=0,
    open_orders=0,
    last_price=72000,
    realized_pnl_today=0,
)


def buy(qty, price, kind="limit", code="005930"):
    return OrderIntent(code, "buy", qty, price, kind)


def sell(qty, price, kind="limit", code="005930"):
    return OrderIntent(code, "sell", qty, price, kind)


def test_a_plain_order_passes():
    assert check_order(buy(10, 72000), FLAT, LIMITS) == ""
    assert check_order(sell(10, 0, "market"), FLAT._replace(position_qty=10), LIMITS) == ""


def test_order_value_limit_names_the_excess():
    reason = check_order(buy(1000, 72000), FLAT, LIMITS)
    assert reason == "order value 72,000,000 KRW exceeds the 50,000,000 KRW limit by 22,000,000 KRW"


def test_market_order_is_valued_at_the_last_price():
    assert "order value 72,000,000 KRW" in check_order(buy(1000, 0, "market"), FLAT, LIMITS)
    no_price = check_order(buy(1, 0, "market"), FLAT._replace(last_price=0), LIMITS)
    assert "no last price" in no_price


def test_quantity_limit():
    reason = check_order(buy(10500, 1000), FLAT._replace(last_price=1000), LIMITS)
    assert reason == "order quantity 10,500 exceeds the 10,000 share limit by 500"


def test_fat_finger_band_above_and_below():
    above = check_order(buy(1, 80000), FLAT, LIMITS)
    assert "11.11% above the last price 72,000 KRW" in above and "by 1.11 points" in above
    below = check_order(sell(1, 64000), FLAT._replace(position_qty=1), LIMITS)
    assert "below" in below and "fat-finger" in below
    assert check_order(buy(1, 79000), FLAT, LIMITS) == ""  # 9.7 %: inside


def test_open_orders_limit_only_for_new_orders():
    busy = FLAT._replace(open_orders=50)
    assert "one more exceeds the 50 open-order limit by 1" in check_order(
        buy(1, 72000), busy, LIMITS
    )
    assert check_order(buy(1, 72000), busy._replace(open_orders=49), LIMITS) == ""
    assert check_order(buy(1, 72000), busy, LIMITS, new_order=False) == ""


def test_position_value_counts_holdings_and_open_buys():
    held = FLAT._replace(position_qty=2000, open_buy_qty=600)
    reason = check_order(buy(300, 72000), held, LIMITS)
    # (2000 + 600 + 300) * 72,000 = 208,800,000
    assert "would be worth 208,800,000 KRW" in reason and "by 8,800,000 KRW" in reason
    assert check_order(sell(300, 72000), held, LIMITS) == ""


def test_daily_loss_limit_lets_only_reducing_orders_through():
    lost = FLAT._replace(realized_pnl_today=-5200000, position_qty=100, open_sell_qty=30)
    reason = check_order(buy(1, 72000), lost, LIMITS)
    assert "realised loss today 5,200,000 KRW" in reason and "by 200,000 KRW" in reason
    assert check_order(sell(70, 72000), lost, LIMITS) == ""
    assert "does not" in check_order(sell(71, 72000), lost, LIMITS)
    assert check_order(buy(1, 72000), lost._replace(realized_pnl_today=-4999999), LIMITS) == ""


def test_every_broken_limit_is_listed():
    reasons = check_order_all(buy(20000, 90000), FLAT._replace(open_orders=60), LIMITS)
    assert len(reasons) == 5  # qty, value, band, open orders, position value


@settings(max_examples=200, deadline=None)
@given(
    qty=st.integers(1, 30000),
    price=st.integers(1, 400).map(lambda n: n * 500),
    held=st.integers(0, 5000),
    open_orders=st.integers(0, 80),
)
def test_a_passing_order_is_within_every_limit(qty, price, held, open_orders):
    exposure = FLAT._replace(position_qty=held, open_orders=open_orders, last_price=price)
    reason = check_order(buy(qty, price), exposure, LIMITS)
    within = (
        qty <= LIMITS.max_order_qty
        and qty * price <= LIMITS.max_order_value
        and open_orders < LIMITS.max_open_orders
        and (held + qty) * price <= LIMITS.max_position_value
    )
    assert (reason == "") == within


def test_books_exposure_counts_open_orders_and_excludes_one():
    books = Books(["005930"])
    books.on_order(Order("A1", "005930", "buy", 10, 70000, status="accepted", remaining_qty=10))
    books.on_order(
        Order(
            "A2",
            "005930",
            "sell",
            5,
            71000,
            status="partially_filled",
            filled_qty=2,
            remaining_qty=3,
        )
    )
    books.on_order(Order("A3", "000660", "buy", 1, 200000, status="accepted", remaining_qty=1))
    books.on_order(Order("A4", "005930", "buy", 7, 70000, status="filled", filled_qty=7))
    books.on_position(Position("005930", 20, 69000, last_price=70500, realized_pnl=-1000))
    books.on_quote(Quote("005930", 71000))
    exp = books.exposure("005930")
    assert exp == Exposure(20, 10, 3, 3, 71000, -1000)
    assert books.exposure("005930", excluding="A1").open_buy_qty == 0
    books.on_account(Account(realized_pnl_today=-5000))
    assert books.exposure("005930").realized_pnl_today == -5000
    books.on_position(Position("005930", 0))
    assert "005930" not in books.positions
    assert books.exposure("035720", base_price=50000).last_price == 50000


def test_books_watchlist_keeps_order_and_reports_changes():
    books = Books(["005930", "000660"])
    assert books.watch(["000660", "035720", "035720"]) == ["035720"]
    assert books.unwatch(["005930", "999999"]) == ["005930"]
    assert books.watchlist == ["000660", "035720"]
