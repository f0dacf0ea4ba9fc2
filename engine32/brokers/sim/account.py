"""The paper account: cash, what open orders reserve, positions, realised P&L, costs.

Conventions (close to Kiwoom's screens):

- a buy costs ``value + commission``; a sell brings ``value - commission - tax``;
- the average price is the cost basis per share *without* fees;
- realised P&L of a sell = proceeds after its commission and tax − cost basis of the shares
  sold (the buy commission was paid in cash when bought and is not counted again);
- ``orderable`` = cash − what open buy orders reserve (their remaining quantity at the limit
  price, or at the upper limit for market orders, plus commission);
- no short selling: the sellable quantity is the holding minus open sell orders.
"""

from typing import Dict, Tuple

from core.protocol import krx
from core.protocol.events import BUY, Account, Position, mask_account

from .universe import KOSDAQ


class Holding:
    """One code's position (mutable)."""

    __slots__ = ("code", "name", "qty", "cost", "realized", "last_price", "reserved_sell")

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name
        self.qty = 0
        self.cost = 0  # cost basis of the shares held, KRW, without fees
        self.realized = 0
        self.last_price = 0
        self.reserved_sell = 0

    @property
    def avg_price(self) -> int:
        return int(round(self.cost / self.qty)) if self.qty else 0

    def position(self) -> Position:
        unrealized = self.qty * self.last_price - self.cost if self.qty and self.last_price else 0
        pct = round(unrealized * 100.0 / self.cost, 2) if self.cost else 0.0
        return Position(
            code=self.code,
            qty=self.qty,
            avg_price=self.avg_price,
            name=self.name,
            last_price=self.last_price,
            unrealized_pnl=unrealized,
            unrealized_pnl_pct=pct,
            realized_pnl=self.realized,
        )


class Ledger:
    """Cash and holdings of the simulated account."""

    def __init__(
        self,
        cash: int,
        commission_pct: float,
        tax_kospi_pct: float,
        tax_kosdaq_pct: float,
        account_no: str = "SIM0000001",
    ) -> None:
        self.cash = cash
        self.commission_pct = commission_pct
        self.tax_kospi_pct = tax_kospi_pct
        self.tax_kosdaq_pct = tax_kosdaq_pct
        self.account_no = account_no
        self.reserved = 0  # KRW held back for open buy orders
        self.realized_today = 0
        self.holdings: Dict[str, Holding] = {}

    # -- costs ------------------------------------------------------------------------------
    def fee(self, value: int) -> int:
        return krx.commission(value, self.commission_pct)

    def tax(self, value: int, market: str) -> int:
        rate = self.tax_kosdaq_pct if market == KOSDAQ else self.tax_kospi_pct
        return krx.sell_tax(value, rate)

    def buy_need(self, qty: int, price: int) -> int:
        """What a buy of ``qty`` at ``price`` needs in orderable cash (value + commission)."""
        value = qty * price
        return value + self.fee(value)

    # -- reservations -----------------------------------------------------------------------
    @property
    def orderable(self) -> int:
        return self.cash - self.reserved

    def holding(self, code: str, name: str = "") -> Holding:
        h = self.holdings.get(code)
        if h is None:
            h = self.holdings[code] = Holding(code, name)
        return h

    def sellable(self, code: str) -> int:
        h = self.holdings.get(code)
        return h.qty - h.reserved_sell if h else 0

    def new_day(self) -> None:
        """Today's realised P&L starts again; closed positions are forgotten."""
        self.realized_today = 0
        for code in [c for c, h in self.holdings.items() if not h.qty and not h.reserved_sell]:
            del self.holdings[code]
        for h in self.holdings.values():
            h.realized = 0

    # -- fills ------------------------------------------------------------------------------
    def apply_fill(
        self, code: str, name: str, market: str, side: str, qty: int, price: int
    ) -> Tuple[int, int]:
        """Book one fill; returns ``(fee, tax)``."""
        value = qty * price
        fee = self.fee(value)
        h = self.holding(code, name)
        h.last_price = price
        if side == BUY:
            self.cash -= value + fee
            h.qty += qty
            h.cost += value
            return fee, 0
        tax = self.tax(value, market)
        basis = h.cost * qty // h.qty if h.qty else 0
        h.cost -= basis
        h.qty -= qty
        h.reserved_sell -= qty
        self.cash += value - fee - tax
        pnl = value - fee - tax - basis
        h.realized += pnl
        self.realized_today += pnl
        return fee, tax

    # -- snapshots --------------------------------------------------------------------------
    def account(self) -> Account:
        market_value = 0
        unrealized = 0
        for h in self.holdings.values():
            if h.qty:
                last = h.last_price or h.avg_price
                market_value += h.qty * last
                unrealized += h.qty * last - h.cost
        return Account(
            account=mask_account(self.account_no),
            cash=self.cash,
            orderable=self.orderable,
            equity=self.cash + market_value,
            realized_pnl_today=self.realized_today,
            unrealized_pnl=unrealized,
        )
