"""The engine's own view of the world: orders, positions, last quotes, account and watchlist.

Fed only on the Qt thread, from the broker's listener events. The risk checks and the
``P:state:*`` snapshots read it; nothing here touches Redis or the broker.
"""

from typing import Dict, Iterable, List, NamedTuple, Optional

from core.protocol.events import BUY, SELL, Account, Order, Position, Quote

from .watchgroups import WatchGroups


class Exposure(NamedTuple):
    """What the books say about one code when an order is checked."""

    position_qty: int
    open_buy_qty: int  # remaining shares of open buy orders
    open_sell_qty: int  # remaining shares of open sell orders
    open_orders: int  # open orders across all codes
    last_price: int  # last traded price, or the base price when no quote came yet; 0 unknown
    realized_pnl_today: int


class Books:
    """Latest known state, keyed as the ``P:state:*`` hashes are."""

    def __init__(self, watchlist: Iterable[str] = (), groups: Optional[WatchGroups] = None) -> None:
        self.orders: Dict[str, Order] = {}
        self.positions: Dict[str, Position] = {}
        self.quotes: Dict[str, Quote] = {}
        self.account: Optional[Account] = None
        self.names: Dict[str, str] = {}
        #: The named watchlist groups; the active one is the watchlist (engine32.watchgroups).
        self.groups = groups if groups is not None else WatchGroups(initial=list(watchlist))

    # -- updates from the broker -------------------------------------------------------------
    def on_order(self, order: Order) -> None:
        self.orders[order.order_id] = order

    def on_position(self, position: Position) -> None:
        """Store a position; one with ``qty`` 0 is closed and leaves the book."""
        if position.qty == 0:
            self.positions.pop(position.code, None)
        else:
            self.positions[position.code] = position

    def on_account(self, account: Account) -> None:
        self.account = account

    def on_quote(self, quote: Quote) -> None:
        self.quotes[quote.code] = quote

    # -- watchlist -------------------------------------------------------------------------
    @property
    def watchlist(self) -> List[str]:
        """The codes streamed for the watchlist: the active group's (read only)."""
        return self.groups.active_codes

    def watch(self, codes: Iterable[str], strict: bool = False) -> List[str]:
        """Add codes to the watchlist (the active group); returns those that were not on it.
        ``strict``: refuse past the group's size limit (``GroupError``)."""
        return self.groups.add(self.groups.active, list(codes), strict=strict)

    def unwatch(self, codes: Iterable[str]) -> List[str]:
        """Remove codes from the watchlist; returns those that were on it."""
        return self.groups.remove(self.groups.active, list(codes))

    # -- queries ---------------------------------------------------------------------------
    def traded_codes(self) -> List[str]:
        """Codes held or with open orders: their quotes stream whether watched or not."""
        codes = dict.fromkeys(c for c, p in self.positions.items() if p.qty)
        codes.update(dict.fromkeys(o.code for o in self.orders.values() if o.is_open))
        return list(codes)

    def open_orders(self, code: Optional[str] = None) -> List[Order]:
        return [o for o in self.orders.values() if o.is_open and (code is None or o.code == code)]

    def last_price(self, code: str) -> int:
        quote = self.quotes.get(code)
        if quote is not None and quote.price > 0:
            return quote.price
        position = self.positions.get(code)
        if position is not None and position.last_price > 0:
            return position.last_price
        return 0

    def realized_pnl_today(self) -> int:
        """Today's realised P&L: the account's figure, else the sum over positions."""
        if self.account is not None and self.account.realized_pnl_today:
            return self.account.realized_pnl_today
        return sum(p.realized_pnl for p in self.positions.values())

    def exposure(self, code: str, base_price: int = 0, excluding: str = "") -> Exposure:
        """Exposure of ``code``; ``excluding`` leaves out one order (the one being modified)."""
        open_buy = open_sell = count = 0
        for order in self.orders.values():
            if not order.is_open or order.order_id == excluding:
                continue
            count += 1
            if order.code != code:
                continue
            remaining = order.remaining_qty or max(order.qty - order.filled_qty, 0)
            if order.side == BUY:
                open_buy += remaining
            elif order.side == SELL:
                open_sell += remaining
        position = self.positions.get(code)
        return Exposure(
            position_qty=position.qty if position is not None else 0,
            open_buy_qty=open_buy,
            open_sell_qty=open_sell,
            open_orders=count,
            last_price=self.last_price(code) or base_price,
            realized_pnl_today=self.realized_pnl_today(),
        )
