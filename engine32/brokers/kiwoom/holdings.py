"""Positions and the account as Kiwoom reports them, shared by the OCX and REST brokers.

Both read the same balance and deposit answers (``tr.read_balance``/``tr.read_deposit``, the
REST answers through ``RestPage``) and keep the same state: ``_positions`` (code → the last
position published), ``_realized`` (code → today's realised P&L from balance events) and
``_deposit``. A broker mixes this in and provides ``listener``, ``account`` and ``_learn_name``.
"""

from typing import Any, Dict, List, Optional

from core.protocol.events import Account, Position, mask_account

from . import tr


class KiwoomHoldings:
    """Publishes a position only when it changed, closes positions the balance no longer
    lists, and builds the account from the deposit and the held positions."""

    listener: Any
    account: str
    _positions: Dict[str, Position]
    _realized: Dict[str, int]
    _deposit: Optional[tr.Deposit]

    def _learn_name(self, code: str, name: str) -> None:  # pragma: no cover - brokers define it
        raise NotImplementedError

    def _apply_positions(self, positions: List[Position]) -> None:
        seen = set()
        for pos in positions:
            seen.add(pos.code)
            self._remember_position(pos)
        for code in list(self._positions):
            if code not in seen and self._positions[code].qty:
                self._remember_position(
                    self._positions[code].replace(qty=0, unrealized_pnl=0, unrealized_pnl_pct=0.0)
                )

    def _remember_position(self, pos: Position) -> None:
        realized = self._realized.get(pos.code, 0)
        if pos.realized_pnl == 0 and realized:
            pos = pos.replace(realized_pnl=realized)
        if not pos.name and pos.code in self._positions:
            pos = pos.replace(name=self._positions[pos.code].name)
        if self._positions.get(pos.code) == pos:
            return
        self._positions[pos.code] = pos
        if pos.name:
            self._learn_name(pos.code, pos.name)
        self.listener.on_position(pos)

    def _publish_account(self, summary: Optional[tr.BalanceSummary] = None) -> None:
        deposit = self._deposit or tr.Deposit(0, 0, 0)
        held = [p for p in self._positions.values() if p.qty]
        market_value = sum(p.qty * p.last_price for p in held)
        unrealized = sum(p.unrealized_pnl for p in held)
        cash = deposit.settled_d2 or deposit.cash
        self.listener.on_account(
            Account(
                account=mask_account(self.account),
                cash=cash,
                orderable=deposit.orderable,
                equity=cash + market_value,
                realized_pnl_today=sum(self._realized.values()),
                unrealized_pnl=summary.unrealized_pnl if summary and not held else unrealized,
            )
        )
