"""SimBroker under a real QCoreApplication event loop: quotes, orders and the account arrive
through the listener, on the Qt thread, driven by the QTimer."""

import threading
from typing import Dict, List

from PyQt5.QtCore import QEventLoop, QTimer

from core.protocol.events import FILLED, Account, Fill, Order, Position, Quote
from engine32.brokers.base import BrokerListener, ModifyRequest, OrderRequest, Result
from engine32.brokers.sim import SimBroker


class Recorder(BrokerListener):
    def __init__(self) -> None:
        self.quotes: List[Quote] = []
        self.orders: List[Order] = []
        self.fills: List[Fill] = []
        self.positions: List[Position] = []
        self.accounts: List[Account] = []
        self.connections: List[tuple] = []
        self.names: Dict[str, str] = {}
        self.threads = set()

    def _mark(self) -> None:
        self.threads.add(threading.get_ident())

    def on_quote(self, quote: Quote) -> None:
        self._mark()
        self.quotes.append(quote)

    def on_order(self, order: Order) -> None:
        self._mark()
        self.orders.append(order)

    def on_fill(self, fill: Fill) -> None:
        self._mark()
        self.fills.append(fill)

    def on_position(self, position: Position) -> None:
        self.positions.append(position)

    def on_account(self, account: Account) -> None:
        self.accounts.append(account)

    def on_connection(self, connected: bool, message: str) -> None:
        self.connections.append((connected, message))

    def on_names(self, names: Dict[str, str]) -> None:
        self.names.update(names)


def spin_until(predicate, timeout_ms: int = 10000) -> bool:
    """Run the Qt event loop until ``predicate()`` or the timeout."""
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: predicate() and loop.quit())
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    poll.start()
    deadline.start(timeout_ms)
    if not predicate():
        loop.exec_()
    poll.stop()
    deadline.stop()
    return predicate()


def test_quotes_orders_and_account_flow_through_the_qt_loop(qapp) -> None:
    rec = Recorder()
    broker = SimBroker(rec, {"seed": 11, "quote_rate": 2000, "burst_every_s": 0.0})
    results: List[Result] = []
    broker.place_order(OrderRequest("005930", "buy", 1, 0, "market"), results.append)
    assert results[0].error_code == "NOT_READY"  # nothing before connect

    broker.connect()
    # reconciliation (account) comes before the "connected" report, all synchronously
    assert rec.accounts and rec.accounts[0].cash == 100000000
    assert rec.connections == [(True, rec.connections[0][1])] and rec.connections[0][0]
    assert rec.names["005930"] == "삼성전자" and len(rec.names) >= 40
    assert broker.name_of("000660") == "SK하이닉스" and broker.base_price("005930") > 0
    assert broker.info().account == "SIM0****01"

    broker.subscribe(["005930", "035720"])
    assert spin_until(lambda: len(rec.quotes) >= 50)
    assert {q.code for q in rec.quotes} <= {"005930", "035720"}

    broker.place_order(OrderRequest("005930", "buy", 10, 0, "market", "c1"), results.append)
    assert results[1].ok and results[1].value["order_id"].startswith("S")
    order_id = results[1].value["order_id"]
    assert spin_until(
        lambda: any(o.order_id == order_id and o.status == FILLED for o in rec.orders)
    )
    assert sum(f.qty for f in rec.fills if f.order_id == order_id) == 10
    assert any(p.code == "005930" and p.qty == 10 for p in rec.positions)
    assert rec.accounts[-1].cash < 100000000

    # a resting limit order far below the market: accepted, then modified and cancelled
    base = broker.base_price("005930")
    low = broker.exchange.market.states["005930"].lower
    broker.place_order(OrderRequest("005930", "buy", 5, low, "limit"), results.append)
    rest_id = results[2].value["order_id"]
    assert [o.order_id for o in broker.open_orders()] == [rest_id]
    broker.modify_order(ModifyRequest(rest_id, qty=3), results.append)
    new_id = results[3].value["order_id"]
    assert new_id != rest_id
    broker.cancel_order(new_id, "c9", results.append)
    assert results[4].ok and broker.open_orders() == []
    broker.cancel_order(new_id, "c10", results.append)
    assert not results[5].ok and "not open" in results[5].message
    broker.place_order(OrderRequest("005930", "buy", 1, base + 1, "limit"), results.append)
    assert results[6].error_code == "INVALID_ARGUMENT" and "tick" in results[6].message

    broker.disconnect()
    assert rec.connections[-1][0] is False
    count = len(rec.quotes)
    spin_until(lambda: False, timeout_ms=100)
    assert len(rec.quotes) == count  # the timer stopped
    assert len(rec.threads) == 1 and threading.get_ident() in rec.threads


class Reentrant(Recorder):
    """Places an order from inside ``on_quote`` and raises on every 10th quote."""

    def __init__(self) -> None:
        super().__init__()
        self.broker = None
        self.results: List[Result] = []
        self.log: List[str] = []

    def on_quote(self, quote: Quote) -> None:
        super().on_quote(quote)
        self.log.append("quote")
        if len(self.quotes) == 5:
            self.broker.place_order(
                OrderRequest(quote.code, "buy", 1, 0, "market"), self.results.append
            )
            self.log.append("placed")
        if len(self.quotes) % 10 == 0:
            raise RuntimeError("a listener bug")

    def on_order(self, order: Order) -> None:
        super().on_order(order)
        self.log.append("order")


def test_listener_reentry_and_listener_errors_do_not_break_the_broker(qapp, caplog) -> None:
    rec = Reentrant()
    broker = SimBroker(rec, {"seed": 3, "quote_rate": 1000, "burst_every_s": 0.0})
    rec.broker = broker
    broker.connect()
    broker.subscribe(["005930"])
    assert spin_until(lambda: len(rec.quotes) >= 60 and rec.fills)
    assert rec.results and rec.results[0].ok
    # the order's event came after the quote being delivered, not in the middle of it
    placed = rec.log.index("placed")
    # (a tick at 1,000 quotes/s delivers 20 quotes; the 5th is not the last of its batch)
    assert rec.log[placed - 1] == "quote" and rec.log[placed + 1] == "quote"
    assert "order" in rec.log[placed:]
    assert "broker listener failed" in caplog.text  # logged, and the quotes kept coming
    broker.disconnect()


def test_a_stalled_loop_catches_up_a_few_ticks_and_drops_the_rest(qapp) -> None:
    import time

    rec = Recorder()
    broker = SimBroker(rec, {"seed": 4, "quote_rate": 500, "burst_every_s": 0.0}, tick_ms=20)
    broker.connect()
    broker.subscribe(["005930"])
    broker._timer.stop()  # drive the timer callback by hand
    before = len(rec.quotes)
    broker._started = time.monotonic() - 1.0  # as if the loop had been stuck for a second
    broker._ticks_done = 0
    broker._on_timer()
    # 50 ticks were due: 5 ran (10 quotes each), the rest were dropped, not run late
    assert len(rec.quotes) - before == 5 * 10
    assert 45 <= broker.dropped_ticks <= 46 and broker._ticks_done >= 50
    broker._on_timer()  # nothing more is due straight away
    assert len(rec.quotes) - before <= 5 * 10 + 10
    broker.disconnect()


def test_under_qt_the_market_is_the_seeded_one_whatever_the_timer_jitter(qapp) -> None:
    from engine32.brokers.sim.broker import exchange_from_settings, sim_settings

    settings = {"seed": 99, "quote_rate": 1500, "burst_every_s": 2.0}
    rec = Recorder()
    broker = SimBroker(rec, settings)
    broker.connect()
    broker.subscribe(["005930", "000660", "086520"])
    assert spin_until(lambda: len(rec.quotes) >= 600)
    broker.disconnect()

    ex = exchange_from_settings(sim_settings(settings))  # the same core, stepped by hand
    ex.subscribe(["005930", "000660", "086520"])
    expected: List[Quote] = []
    while len(expected) < len(rec.quotes):
        ex.step(0.02)
        expected += [p for p in ex.drain() if isinstance(p, Quote)]

    def strip(qs: List[Quote]) -> List[Quote]:
        return [q.replace(time="") for q in qs]

    assert strip(rec.quotes) == strip(expected[: len(rec.quotes)])
