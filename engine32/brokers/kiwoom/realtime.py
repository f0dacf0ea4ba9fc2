"""Real-time data (``OnReceiveRealData``): 주식체결 into :class:`Quote`.

Every value arrives as a signed string from ``GetCommRealData(code, fid)``: the sign of a
price says whether it is above or below the previous close, the sign of the trade quantity
(FID 15) says who took the other side (``+`` buy-initiated, ``-`` sell-initiated).
"""

from typing import Callable, Optional

from core.protocol.events import Quote

from .values import to_code, to_float, to_int, to_price

STOCK_TRADE = "주식체결"

FID_TIME = 20
FID_PRICE = 10
FID_CHANGE = 11
FID_CHANGE_PCT = 12
FID_TRADE_QTY = 15
FID_VOLUME = 13
FID_VALUE = 14
FID_OPEN = 16
FID_HIGH = 17
FID_LOW = 18
FID_ASK = 27
FID_BID = 28
FID_STRENGTH = 228

#: The FID list given to ``SetRealReg`` for quotes.
QUOTE_FIDS = ";".join(
    str(f)
    for f in (
        FID_TIME,
        FID_PRICE,
        FID_CHANGE,
        FID_CHANGE_PCT,
        FID_TRADE_QTY,
        FID_VOLUME,
        FID_VALUE,
        FID_OPEN,
        FID_HIGH,
        FID_LOW,
        FID_ASK,
        FID_BID,
        FID_STRENGTH,
    )
)


def parse_stock_trade(real_key: str, get: Callable[[int], str]) -> Optional[Quote]:
    """A quote from one 주식체결 event; ``get(fid)`` wraps ``GetCommRealData(real_key, fid)``.

    None when the event cannot be read (no price, or values that are not numbers).
    """
    code = to_code(real_key)
    try:
        price = to_price(get(FID_PRICE))
        if price <= 0:
            return None
        return Quote(
            code=code,
            price=price,
            change=to_int(get(FID_CHANGE)),
            change_pct=to_float(get(FID_CHANGE_PCT)),
            volume=abs(to_int(get(FID_VOLUME))),
            trade_qty=to_int(get(FID_TRADE_QTY)),
            open=to_price(get(FID_OPEN)),
            high=to_price(get(FID_HIGH)),
            low=to_price(get(FID_LOW)),
            ask=to_price(get(FID_ASK)),
            bid=to_price(get(FID_BID)),
            time=(get(FID_TIME) or "").strip()[:6],
        )
    except ValueError:
        return None
