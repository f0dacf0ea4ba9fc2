"""REST TR bodies, and their answers read by the OCX adapter's parsers.

The REST account TRs answer with the same facts as the OCX's (``kt00018`` ↔ ``opw00018``,
``kt00001`` ↔ ``opw00001``, ``ka10075`` ↔ ``opt10075``), under English keys instead of Korean
item names. :class:`RestPage` puts a REST answer behind the OCX's ``tr.Page`` so that
``engine32.brokers.kiwoom.tr``'s readers parse both, once. The key names come from Kiwoom's
guide (the field tables of kiwoom_rest_trade's generated models, docs/kiwoom-rest.md §1.2).

Order bodies: ``trde_tp`` ``"0"`` limit, ``"3"`` market with an empty ``ord_uv`` (Kiwoom's
guide sample ``buy_domestic_stock.py``: "매매구분 0:보통 , 3:시장가 , …"; the 2-digit "00"/"03"
are the OCX's hoga codes and the overseas/gold TRs', see docs/kiwoom-rest.md).
"""

from typing import Any, Dict, List, Optional, Sequence

from ..kiwoom import tr

VENUE_KRX = "KRX"
#: ``dmst_stex_tp`` of kt10000..kt10003, exactly as Kiwoom's guide spells it ("국내거래소구분
#: KRX,NXT,SOR" in its kt10000-kt10003 samples; ../shared/design/kiwoom-rest.md §1.2, §4.2).
#: They equal the console's venue names (core.protocol.sessions), so an order's venue goes
#: to the wire as it is, once checked here.
ORDER_VENUES = ("KRX", "NXT", "SOR")
#: ka10075/ka10076 ``stex_tp`` ("1" KRX, "2" NXT) and chejan FID 2134 (same codes) → venue;
#: ``sor_yn`` / FID 2136 "Y" marks an SOR order (design note §4.2).
STEX_VENUES = {"1": "KRX", "2": "NXT"}
TRDE_LIMIT = "0"
TRDE_MARKET = "3"
#: cancel/modify quantity "0": all that remains, so nothing races a fill.
ALL_REMAINING = "0"

#: OCX item name → REST key, per TR (opw00018/kt00018, opw00001/kt00001, opt10075/ka10075).
BALANCE_KEYS = {
    "총매입금액": "tot_pur_amt",
    "총평가금액": "tot_evlt_amt",
    "총평가손익금액": "tot_evlt_pl",
    "추정예탁자산": "prsm_dpst_aset_amt",
    "종목번호": "stk_cd",
    "종목명": "stk_nm",
    "보유수량": "rmnd_qty",
    "매입가": "pur_pric",
    "현재가": "cur_prc",
}
BALANCE_ROWS = "acnt_evlt_remn_indv_tot"
DEPOSIT_KEYS = {"예수금": "entr", "주문가능금액": "ord_alow_amt", "d+2추정예수금": "d2_entra"}
ORDER_KEYS = {
    "주문번호": "ord_no",
    "종목코드": "stk_cd",
    "종목명": "stk_nm",
    "주문구분": "io_tp_nm",
    "주문수량": "ord_qty",
    "주문가격": "ord_pric",
    "미체결수량": "oso_qty",
    "체결량": "cntr_qty",
    "체결가": "cntr_pric",
    "주문상태": "ord_stt",
    "매매구분": "trde_tp",
    "원주문번호": "orig_ord_no",
}
ORDER_ROWS = "oso"
MULTI_QUOTE_ROWS = "atn_stk_infr"
MAX_CODES_PER_QUOTE = 100


class RestPage(tr.Page):
    """A REST answer read like an OCX TR page: single items from the body, rows from a list."""

    def __init__(
        self, trcode: str, body: Dict[str, Any], keys: Dict[str, str], rows_key: str = "",
        rows: Optional[List[Dict[str, Any]]] = None,
    ) -> None:  # fmt: skip
        self.body = body
        self.keys = keys
        if rows is None:
            got = body.get(rows_key) if rows_key else None
            rows = [r for r in got if isinstance(r, dict)] if isinstance(got, list) else []
        self.rows = rows
        super().__init__(trcode, trcode, self._value, lambda _t, _r: len(self.rows), False)

    def _value(self, _trcode: str, _rqname: str, index: int, item: str) -> str:
        key = self.keys.get(item, "")
        if not key:
            return ""
        if key in self.body and not isinstance(self.body[key], list):
            return str(self.body[key])
        if 0 <= index < len(self.rows):
            return str(self.rows[index].get(key, "") or "")
        return ""


# -- bodies --------------------------------------------------------------------------------
def balance_body() -> Dict[str, str]:
    return {"qry_tp": "1", "dmst_stex_tp": VENUE_KRX}


def deposit_body() -> Dict[str, str]:
    return {"qry_tp": "3"}


def open_orders_body() -> Dict[str, str]:
    return {"all_stk_tp": "0", "trde_tp": "0", "stk_cd": "", "stex_tp": "0"}


def order_venue(venue: str) -> str:
    """``dmst_stex_tp`` for ``venue``; anything but KRX/NXT/SOR raises ValueError, so an
    unknown venue never reaches Kiwoom."""
    if venue not in ORDER_VENUES:
        raise ValueError("venue must be KRX, NXT or SOR, got {!r}".format(venue))
    return venue


def venue_of(stex_tp: str, sor_yn: str = "") -> str:
    """The venue of a reconciled order or a chejan event: SOR when ``sor_yn`` is "Y", else
    from ``stex_tp`` (KRX when missing or unknown: what Kiwoom did before NXT)."""
    if str(sor_yn or "").strip().upper() == "Y":
        return "SOR"
    return STEX_VENUES.get(str(stex_tp or "").strip(), VENUE_KRX)


def order_body(
    code: str, qty: int, price: int, market: bool, venue: str = VENUE_KRX
) -> Dict[str, str]:
    """kt10000 (buy) / kt10001 (sell), routed to ``venue``."""
    return {
        "dmst_stex_tp": order_venue(venue),
        "stk_cd": code,
        "ord_qty": str(qty),
        "ord_uv": "" if market else str(price),
        "trde_tp": TRDE_MARKET if market else TRDE_LIMIT,
        "cond_uv": "",
    }


def modify_body(orig: str, code: str, qty: Optional[int], price: int,
                venue: str = VENUE_KRX) -> Dict[str, str]:  # fmt: skip
    """kt10002: ``qty`` None moves all that remains to the new price; ``venue`` is the
    original order's."""
    return {
        "dmst_stex_tp": order_venue(venue),
        "orig_ord_no": orig,
        "stk_cd": code,
        "mdfy_qty": ALL_REMAINING if qty is None else str(qty),
        "mdfy_uv": str(price),
        "mdfy_cond_uv": "",
    }


def cancel_body(orig: str, code: str, qty: Optional[int] = None,
                venue: str = VENUE_KRX) -> Dict[str, str]:  # fmt: skip
    """kt10003: ``qty`` None cancels all that remains; ``venue`` is the original order's."""
    return {
        "dmst_stex_tp": order_venue(venue),
        "orig_ord_no": orig,
        "stk_cd": code,
        "cncl_qty": ALL_REMAINING if qty is None else str(qty),
    }


def multi_quote_body(codes: Sequence[str]) -> Dict[str, str]:
    """ka10095: codes joined with ``|``, at most 100 (more: 1634)."""
    return {"stk_cd": "|".join(codes)}


def normalize_order_no(text: Any) -> str:
    """Order numbers are 7-digit zero-padded ("0000138"); the guide also shows "00024"."""
    digits = str(text or "").strip()
    if not digits.isdigit() or not digits.strip("0"):
        return ""
    return digits.zfill(7)


#: ka10099 종목정보 리스트 (``/api/dostk/stkinfo``): body ``mrkt_tp`` ("0" 코스피, "10" 코스닥;
#: "8" ETF, "50" KONEX … are not asked), rows ``list[]`` with **camelCase** keys unlike every
#: other TR: ``code``, ``name``, ``lastPrice``, ``marketCode``, ``marketName``, ``nxtEnable``
#: ("Y": trades on NXT), paged by the ``cont-yn``/``next-key`` response headers when Kiwoom
#: pages it (../shared/design/kiwoom-rest.md §1.2 and §4.2, from Kiwoom's guide and
#: kiwoom_rest_trade's generated Ka10099 models; docs/kiwoom-rest.md "Master list").
MASTER_ID = "ka10099"
MASTER_ROWS = "list"
MASTER_MARKETS = (("0", "KOSPI"), ("10", "KOSDAQ"))
#: Pages asked for at most per market (a page of 100 rows would still fit KOSDAQ's ~1,800).
MASTER_MAX_PAGES = 100


def master_body(mrkt_tp: str) -> Dict[str, str]:
    return {"mrkt_tp": mrkt_tp}
