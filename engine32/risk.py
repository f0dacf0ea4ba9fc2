"""Pre-trade risk checks (config ``[risk]``): every order passes them before the broker sees it.

Pure functions of the order, the exposure the books report and the limits. A rejection
says which limit was hit and by how much, in words a trader reads in a reply.
The halt/resume kill switch is engine state (:mod:`engine32.dispatcher`), not a limit here.
"""

from typing import Any, List, NamedTuple

from core.protocol.events import BUY, MARKET

from .books import Exposure


class RiskLimits(NamedTuple):
    max_order_value: int
    max_order_qty: int
    max_position_value: int
    max_open_orders: int
    max_daily_loss: int
    price_band_pct: float

    @classmethod
    def from_config(cls, config: Any) -> "RiskLimits":
        risk = config.risk
        return cls(
            max_order_value=risk.max_order_value,
            max_order_qty=risk.max_order_qty,
            max_position_value=risk.max_position_value,
            max_open_orders=risk.max_open_orders,
            max_daily_loss=risk.max_daily_loss,
            price_band_pct=risk.price_band_pct,
        )


class OrderIntent(NamedTuple):
    """The order as it would reach the broker (``price`` 0 for market orders)."""

    code: str
    side: str
    qty: int
    price: int
    kind: str


def _krw(amount: int) -> str:
    return "{:,} KRW".format(amount)


def check_order(
    intent: OrderIntent, exposure: Exposure, limits: RiskLimits, new_order: bool = True
) -> str:
    """Why the order must not go out ('' when it passes every limit).

    ``new_order`` is False for a modify: the order is already counted among the open ones,
    and ``exposure`` must then exclude it (:meth:`Books.exposure` ``excluding``).
    """
    reasons = check_order_all(intent, exposure, limits, new_order)
    return reasons[0] if reasons else ""


def check_order_all(
    intent: OrderIntent, exposure: Exposure, limits: RiskLimits, new_order: bool = True
) -> List[str]:
    """Every limit the order breaks, most basic first."""
    out: List[str] = []
    qty = intent.qty
    if qty > limits.max_order_qty:
        out.append(
            "order quantity {:,} exceeds the {:,} share limit by {:,}".format(
                qty, limits.max_order_qty, qty - limits.max_order_qty
            )
        )

    # Market orders are valued at the last price: no price, no check, no order.
    price = intent.price if intent.kind != MARKET else exposure.last_price
    if price <= 0:
        out.append(
            "cannot value a market order for {}: no last price known yet "
            "(subscribe to it or send a limit order)".format(intent.code)
        )
        return out

    value = qty * price
    if value > limits.max_order_value:
        out.append(
            "order value {} exceeds the {} limit by {}".format(
                _krw(value), _krw(limits.max_order_value), _krw(value - limits.max_order_value)
            )
        )

    if intent.kind != MARKET and exposure.last_price > 0:
        last = exposure.last_price
        away_pct = abs(intent.price - last) * 100.0 / last
        if away_pct > limits.price_band_pct:
            out.append(
                "limit price {} is {:.2f}% {} the last price {}, beyond the {:.2f}% fat-finger "
                "band by {:.2f} points".format(
                    _krw(intent.price),
                    away_pct,
                    "above" if intent.price > last else "below",
                    _krw(last),
                    limits.price_band_pct,
                    away_pct - limits.price_band_pct,
                )
            )

    if new_order and exposure.open_orders >= limits.max_open_orders:
        out.append(
            "{} open orders already; one more exceeds the {} open-order limit by {}".format(
                exposure.open_orders,
                limits.max_open_orders,
                exposure.open_orders + 1 - limits.max_open_orders,
            )
        )

    if intent.side == BUY:
        after = (exposure.position_qty + exposure.open_buy_qty + qty) * price
        if after > limits.max_position_value:
            out.append(
                "position in {} would be worth {} (held {:,} + open buys {:,} + this {:,} "
                "shares at {}), exceeding the {} per-code limit by {}".format(
                    intent.code,
                    _krw(after),
                    exposure.position_qty,
                    exposure.open_buy_qty,
                    qty,
                    _krw(price),
                    _krw(limits.max_position_value),
                    _krw(after - limits.max_position_value),
                )
            )

    loss = -exposure.realized_pnl_today
    if loss >= limits.max_daily_loss and not _reduces(intent, exposure):
        out.append(
            "realised loss today {} has reached the {} daily limit (by {}): only orders that "
            "reduce a position pass; {} {:,} of {} does not (held {:,}, open sells {:,})".format(
                _krw(loss),
                _krw(limits.max_daily_loss),
                _krw(loss - limits.max_daily_loss),
                intent.side,
                qty,
                intent.code,
                exposure.position_qty,
                exposure.open_sell_qty,
            )
        )
    return out


def _reduces(intent: OrderIntent, exposure: Exposure) -> bool:
    """A sell of no more than what is held and not already offered."""
    if intent.side == BUY:
        return False
    return intent.qty <= exposure.position_qty - exposure.open_sell_qty
