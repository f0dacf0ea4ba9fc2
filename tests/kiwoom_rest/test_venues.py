"""Venue routing in the kiwoom_rest broker (issue 12): an order's venue goes to Kiwoom as
``dmst_stex_tp`` ("KRX" | "NXT" | "SOR", Kiwoom's samples: "국내거래소구분 KRX,NXT,SOR"), its
cancel and modify legs carry the original order's venue, and orders, fills and reconciled
orders say where they went."""

from typing import Any

from engine32.brokers.base import ModifyRequest, OrderRequest
from engine32.brokers.kiwoom_rest import trs
from tests.fakes.kiwoom_rest import _Order
from tests.kiwoom.helpers import wait_until

ORDER_APIS = ("kt10000", "kt10001", "kt10002", "kt10003")


def _order_calls(rig: Any) -> list:
    return [c for c in rig.fake.calls if c["api_id"] in ORDER_APIS]


def test_the_rest_broker_declares_krx_nxt_and_sor(make_rig: Any) -> None:
    rig = make_rig()
    assert tuple(rig.broker.venues) == ("KRX", "NXT", "SOR")
    assert rig.broker.check_venue("005930", "NXT", "limit") == ""
    assert rig.broker.check_venue("005930", "SOR", "market") == ""
    assert "KRX/NXT/SOR" in rig.broker.check_venue("005930", "NYSE", "limit")


def test_an_nxt_limit_buy_sends_dmst_stex_tp_nxt_once_and_is_an_nxt_order(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 3, 72000, "limit", "cmd-nxt", "NXT"), done))  # fmt: skip
    assert result.ok, result
    order_id = result.value["order_id"]
    assert [(c["api_id"], c["body"]) for c in _order_calls(rig)] == [
        (
            "kt10000",
            {
                "dmst_stex_tp": "NXT",
                "stk_cd": "005930",
                "ord_qty": "3",
                "ord_uv": "72000",
                "trde_tp": "0",
                "cond_uv": "",
            },
        )
    ]
    assert rig.fake.order_venues == [("kt10000", "NXT")]
    wait_until(lambda: rig.rec.order(order_id).status == "filled", 10, "the fill")
    assert {o.venue for o in rig.rec.orders if o.order_id == order_id} == {"NXT"}
    assert [(f.qty, f.price, f.venue) for f in rig.rec.fills_of(order_id)] == [(3, 72000, "NXT")]


def test_an_sor_market_sell_sends_dmst_stex_tp_sor_once(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("000660", "sell", 2, 0, "market", "cmd-sor", "SOR"), done))  # fmt: skip
    assert result.ok, result
    order_id = result.value["order_id"]
    assert [(c["api_id"], c["body"]) for c in _order_calls(rig)] == [
        (
            "kt10001",
            {
                "dmst_stex_tp": "SOR",
                "stk_cd": "000660",
                "ord_qty": "2",
                "ord_uv": "",
                "trde_tp": "3",
                "cond_uv": "",
            },
        )
    ]
    wait_until(lambda: rig.rec.order(order_id).status == "filled", 10, "the fill")
    assert rig.rec.order(order_id).venue == "SOR"
    # the fake's 00 frames say 2134 "1" (KRX) for where the SOR order traded
    assert [f.venue for f in rig.rec.fills_of(order_id)] == ["KRX"]


def test_cancel_and_modify_of_an_nxt_order_carry_nxt(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"fill_plan": "none"})
    rig.connect()
    placed = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 5, 60000, "limit", "c1", "NXT"), done))  # fmt: skip
    order_id = placed.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == "accepted", 5, "accepted")
    moved = rig.call(lambda done: rig.broker.modify_order(
        ModifyRequest(order_id, None, 60100, "c2"), done))  # fmt: skip
    assert moved.ok, moved
    new_id = moved.value["order_id"]
    assert rig.fake.sent_orders("kt10002")[0]["body"]["dmst_stex_tp"] == "NXT"
    wait_until(lambda: rig.rec.order(new_id).status == "accepted", 5, "the modified order")
    assert rig.rec.order(new_id).venue == "NXT"
    other = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("000660", "buy", 2, 170000, "limit", "c3", "NXT"), done))  # fmt: skip
    other_id = other.value["order_id"]
    wait_until(lambda: rig.rec.order(other_id).status == "accepted", 5, "accepted")
    cancel = rig.call(lambda done: rig.broker.cancel_order(other_id, "c4", done))
    assert cancel.ok, cancel
    assert rig.fake.sent_orders("kt10003")[0]["body"] == {
        "dmst_stex_tp": "NXT",
        "orig_ord_no": other_id,
        "stk_cd": "000660",
        "cncl_qty": "0",
    }
    assert rig.fake.order_venues == [
        ("kt10000", "NXT"), ("kt10002", "NXT"), ("kt10000", "NXT"), ("kt10003", "NXT"),
    ]  # fmt: skip
    wait_until(lambda: rig.rec.order(other_id).status == "cancelled", 5, "cancelled")
    assert rig.rec.order(other_id).venue == "NXT"


def test_an_unknown_venue_never_reaches_the_wire(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    for venue in ("NYSE", "nxt", "", "KRX "):
        result = rig.call(lambda done, v=venue: rig.broker.place_order(
            OrderRequest("005930", "buy", 1, 72000, "limit", "cmd-x", v), done))  # fmt: skip
        assert not result.ok and result.error_code == "INVALID_ARGUMENT", result
        assert "venue must be KRX, NXT or SOR" in result.message
    assert _order_calls(rig) == [] and rig.fake.order_venues == []
    try:
        trs.order_body("005930", 1, 72000, False, "NYSE")
    except ValueError as exc:
        assert "NYSE" in str(exc)
    else:
        raise AssertionError("order_body built a body for venue NYSE")


def test_the_fake_refuses_what_kiwoom_refuses(make_rig: Any) -> None:
    """The fake, asked directly: an unknown dmst_stex_tp is refused; the mock server takes
    KRX only; a cancel naming another venue than the order's does not find it."""
    rig = make_rig(fake_kwargs={"mock_krx_only": True})
    fake = rig.fake
    code, answer, _h = fake._new_order({"dmst_stex_tp": "XKRX", "stk_cd": "005930",
                                        "ord_qty": "1", "ord_uv": "72000", "trde_tp": "0"}, "buy")  # fmt: skip
    assert answer["return_code"] != 0 and "dmst_stex_tp" in answer["return_msg"]
    _c, answer, _h = fake._new_order({"dmst_stex_tp": "NXT", "stk_cd": "005930",
                                      "ord_qty": "1", "ord_uv": "72000", "trde_tp": "0"}, "buy")  # fmt: skip
    assert answer["return_code"] != 0 and "모의투자" in answer["return_msg"]
    fake.mock_krx_only = False
    _c, answer, _h = fake._new_order({"dmst_stex_tp": "NXT", "stk_cd": "005930",
                                      "ord_qty": "1", "ord_uv": "72000", "trde_tp": "0"}, "buy")  # fmt: skip
    assert answer["return_code"] == 0 and answer["dmst_stex_tp"] == "NXT"
    _c, answer, _h = fake._tr_kt10003({"dmst_stex_tp": "KRX", "orig_ord_no": answer["ord_no"],
                                       "stk_cd": "005930", "cncl_qty": "0"}, {})  # fmt: skip
    assert answer["return_code"] != 0 and "원주문번호" in answer["return_msg"]
    assert [v for _a, v in fake.order_venues] == ["XKRX", "NXT", "NXT", "KRX"]


def test_reconciled_orders_carry_their_venue(make_rig: Any) -> None:
    rig = make_rig()
    rig.fake.orders["0000500"] = _Order("0000500", "005930", "buy", 4, 60000, False, venue="NXT")
    rig.fake.orders["0000501"] = _Order("0000501", "000660", "sell", 1, 190000, False, venue="SOR")
    rig.fake.orders["0000502"] = _Order("0000502", "035420", "buy", 2, 190000, False)
    rig.connect()
    venues = {o.order_id: o.venue for o in rig.broker.open_orders()}
    assert venues == {"0000500": "NXT", "0000501": "SOR", "0000502": "KRX"}
    assert {o.order_id: o.venue for o in rig.rec.orders} == venues
    # and a cancel of the reconciled NXT order goes to NXT
    cancel = rig.call(lambda done: rig.broker.cancel_order("0000500", "c9", done))
    assert cancel.ok, cancel
    assert rig.fake.sent_orders("kt10003")[0]["body"]["dmst_stex_tp"] == "NXT"


def test_the_master_list_pages_ka10099_and_gives_nxt_eligibility(make_rig: Any) -> None:
    """ka10099 for "0" (KOSPI) and "10" (KOSDAQ), every page (cont-yn/next-key), camelCase
    rows; ``nxtEnable`` "N" makes an NXT order for that code refused before anything is sent;
    a code the list does not hold (an ETF) is left to Kiwoom."""
    rig = make_rig(fake_kwargs={"master_page_size": 2})
    before = rig.call(rig.broker.master_list)
    assert not before.ok and before.error_code == "NOT_READY"
    assert rig.broker.check_venue("263750", "NXT", "limit") == ""  # not known yet
    rig.connect()
    result = rig.call(rig.broker.master_list)
    assert result.ok, result
    listings = result.value["listings"]
    assert listings["005930"].name == "삼성전자" and listings["005930"].market == "KOSPI"
    assert listings["263750"].market == "KOSDAQ" and listings["263750"].nxt is False
    assert len(listings) == len(rig.fake.master)
    calls = [c for c in rig.fake.calls if c["api_id"] == "ka10099"]
    assert {c["body"]["mrkt_tp"] for c in calls} == {"0", "10"}
    assert any(c["cont_yn"] == "Y" for c in calls), "the later pages were not asked for"
    assert "does not trade on NXT" in rig.broker.check_venue("263750", "NXT", "limit")
    assert rig.broker.check_venue("263750", "KRX", "limit") == ""
    assert rig.broker.check_venue("263750", "SOR", "limit") == ""
    assert rig.broker.check_venue("005930", "NXT", "limit") == ""
    assert rig.broker.nxt_eligible("069500")  # not in the KOSPI/KOSDAQ lists: Kiwoom decides
    assert rig.broker.name_of("086520") == "에코프로"
