"""Real-time order books: real type 주식호가잔량 into :class:`Book`, on screens of their own.

FIDs (koapy's metadata of the control, ``koapy/backend/kiwoom_open_api_plus/data/metadata/
realtype_by_desc.json`` entry 주식호가잔량, gidc ``0D``, and ``fid.csv``; KOA Studio's
실시간목록 lists the same): 41-50 매도호가1-10, 51-60 매수호가1-10, 61-70 매도호가수량1-10,
71-80 매수호가수량1-10, 121 매도호가총잔량, 125 매수호가총잔량, 21 호가시간 (HHMMSS). Prices
carry a sign (above/below the previous close) as in 주식체결; a level the book does not have
reads ``0`` or empty. The REST API's ``0D`` item carries the same FIDs.

Book registrations use their own screens (``BOOK_SCREENS_FROM`` upwards, at most
``BOOK_SCREENS``), so a ``SetRealReg(..., "0")`` for books never replaces a quote screen's
codes and the other way round; ``SetRealReg`` is given only the FIDs below.
"""

from typing import Callable, List, Optional

from core.protocol.events import BOOK_LEVELS, Book

from .values import to_code, to_int, to_price

STOCK_HOGA = "주식호가잔량"

FID_HOGA_TIME = 21
FID_ASK_PRICES = tuple(range(41, 51))
FID_BID_PRICES = tuple(range(51, 61))
FID_ASK_QTYS = tuple(range(61, 71))
FID_BID_QTYS = tuple(range(71, 81))
FID_TOTAL_ASK = 121
FID_TOTAL_BID = 125

#: The FID list given to ``SetRealReg`` for books.
BOOK_FIDS = ";".join(
    str(f)
    for f in (FID_HOGA_TIME,)
    + FID_ASK_PRICES
    + FID_BID_PRICES
    + FID_ASK_QTYS
    + FID_BID_QTYS
    + (FID_TOTAL_ASK, FID_TOTAL_BID)
)

#: First screen number of the book registrations, and how many screens they may take.
BOOK_SCREENS_FROM = 9001
BOOK_SCREENS = 5


def parse_stock_hoga(real_key: str, get: Callable[[int], str], now_ms: int = 0) -> Optional[Book]:
    """A book from one 주식호가잔량 event; ``get(fid)`` wraps ``GetCommRealData(real_key, fid)``.

    None when the event cannot be read (values that are not numbers, or no level at all).
    """
    code = to_code(real_key)
    try:
        asks: List[List[int]] = []
        bids: List[List[int]] = []
        for fids, qtys, rows in (
            (FID_ASK_PRICES, FID_ASK_QTYS, asks),
            (FID_BID_PRICES, FID_BID_QTYS, bids),
        ):
            for pf, qf in zip(fids, qtys):
                price = to_price(get(pf))
                qty = abs(to_int(get(qf)))
                rows.append([price, qty] if price > 0 else [0, 0])
        total_ask = abs(to_int(get(FID_TOTAL_ASK)))
        total_bid = abs(to_int(get(FID_TOTAL_BID)))
        hhmmss = (get(FID_HOGA_TIME) or "").strip()[:6]
    except ValueError:
        return None
    if not any(p for p, _ in asks) and not any(p for p, _ in bids):
        return None
    asks = asks[:BOOK_LEVELS]
    bids = bids[:BOOK_LEVELS]
    return Book(
        code=code,
        ts=now_ms,
        time=hhmmss,
        asks=asks,
        bids=bids,
        total_ask=total_ask,
        total_bid=total_bid,
    )
