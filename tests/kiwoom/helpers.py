"""A listener that records what the broker says, and a wait that runs the Qt loop."""

import time
from typing import Callable, Dict, List, Tuple

from PyQt5.QtCore import QCoreApplication, QEventLoop

from core.protocol.events import Account, Fill, Order, Position, Quote
from engine32.brokers.base import BrokerListener


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, what: str = "a condition"
) -> None:
    """Run the Qt event loop until ``predicate()`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.002)


def spin(seconds: float) -> None:
    """Run the Qt event loop for a while (to show that something does NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.AllEvents, 20)
        time.sleep(0.002)


class Recorder(BrokerListener):
    def __init__(self) -> None:
        self.quotes: List[Quote] = []
        self.orders: List[Order] = []
        self.fills: List[Fill] = []
        self.positions: List[Position] = []
        self.accounts: List[Account] = []
        self.connections: List[Tuple[bool, str]] = []
        self.names: Dict[str, str] = {}
        self.conditions: List[Tuple[str, str, str]] = []
        self.restarts: List[str] = []

    @property
    def connected(self) -> bool:
        return bool(self.connections) and self.connections[-1][0]

    def on_quote(self, quote: Quote) -> None:
        self.quotes.append(quote)

    def on_order(self, order: Order) -> None:
        self.orders.append(order)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)

    def on_position(self, position: Position) -> None:
        self.positions.append(position)

    def on_account(self, account: Account) -> None:
        self.accounts.append(account)

    def on_connection(self, connected: bool, message: str) -> None:
        self.connections.append((connected, message))

    def on_names(self, names: Dict[str, str]) -> None:
        self.names.update(names)

    def on_condition(self, code: str, name: str, condition: str) -> None:
        self.conditions.append((code, name, condition))

    def on_restart_needed(self, words: str) -> None:
        self.restarts.append(words)

    def order(self, order_id: str) -> Order:
        """The latest state of one order."""
        matching = [o for o in self.orders if o.order_id == order_id]
        assert matching, "no event for order {}".format(order_id)
        return matching[-1]

    def position(self, code: str) -> Position:
        matching = [p for p in self.positions if p.code == code]
        assert matching, "no position event for {}".format(code)
        return matching[-1]

    def fills_of(self, order_id: str) -> List[Fill]:
        return [f for f in self.fills if f.order_id == order_id]
