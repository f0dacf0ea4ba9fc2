"""Issue 17: what a real Windows PC does to the adapter, on the fake control under a real Qt loop.

Each test names the item of the issue it covers. The fake's behaviour follows koapy's test
against the real control and KOA's guide (see tests/fakes/kiwoom_control.py).
"""

import pytest

from core.protocol.events import ACCEPTED, CANCELLED, FILLED
from engine32.brokers.base import ModifyRequest, OrderRequest
from engine32.brokers.kiwoom import errors, tr
from tests.fakes.kiwoom_control import FakeKiwoomControl

from .helpers import spin, wait_until

HOLDINGS = {"005930": (20, 68000)}


def _ready(make_rig, **fake_kwargs):
    fake_kwargs.setdefault("holdings", HOLDINGS)
    broker_kwargs = fake_kwargs.pop("broker_kwargs", {})
    control = FakeKiwoomControl(**fake_kwargs)
    rig = make_rig(control, **broker_kwargs)
    rig.connect()
    return rig


def _place(rig, *args, **kwargs):
    return rig.call(lambda done: rig.broker.place_order(OrderRequest(*args, **kwargs), done))


def _resting(rig, qty=10, price=65000):
    order_id = _place(rig, "005930", "buy", qty, price).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    return order_id


# -- 1. an empty order number means refused; only a refusal message is a reason ---------------


def test_1_the_fake_sends_the_real_order_of_events(make_rig) -> None:
    rig = _ready(make_rig)
    seen = []
    for name in ("OnReceiveMsg", "OnReceiveTrData", "OnReceiveChejanData"):
        getattr(rig.fake, name).connect(lambda *a, n=name: seen.append((n, a)))
    order_id = _place(rig, "005930", "buy", 1, 70000).value["order_id"]
    rig.settle()
    names = [n for n, _ in seen]
    assert names[:5] == ["OnReceiveMsg", "OnReceiveTrData"] + ["OnReceiveChejanData"] * 3
    assert "주문완료" in seen[0][1][3] and not errors.is_refusal(seen[0][1][3])
    gubuns = [a[0] for n, a in seen if n == "OnReceiveChejanData"]
    assert gubuns == ["0", "0", "1"]  # 접수, 체결, 잔고
    assert rig.rec.order(order_id).status == FILLED


def test_1_a_success_message_is_never_taken_as_the_rejection_reason(make_rig) -> None:
    rig = _ready(make_rig, broker_kwargs={"order_timeout_s": 0.5})
    # An empty number after a success notice: the order is kept, not "rejected: 정상처리".
    real_answer = rig.fake._answer_order
    rig.fake._answer_order = lambda screen, rqname, trcode, no: real_answer(
        screen, rqname, trcode, ""
    )
    answers = []
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    wait_until(lambda: answers, 5, "the answer")
    # The 접수 that followed carried the number: the request was still there to match it.
    assert answers[0].ok, answers[0]
    assert answers[0].value["order_id"] in rig.fake.orders
    assert "정상처리" not in str(answers) and "주문완료" not in answers[0].message


def test_1_a_refusal_message_before_or_after_the_empty_number_is_the_reason(make_rig) -> None:
    for after in (False, True):
        rig = _ready(make_rig, cash=1000000)
        rig.fake.reason_after_answer = after
        result = _place(rig, "005930", "buy", 100, 70000)
        assert result.error_code == "BROKER_ERROR" and "주문가능금액이 부족" in result.message
        assert "주문완료" not in result.message and "정상처리" not in result.message
    assert errors.is_refusal("[800033] 모의투자 주문가능금액이 부족합니다")
    assert not errors.is_refusal("[00Z112] 모의투자 정상처리 되었습니다")
    assert not errors.is_refusal("[100000] 모의투자 매도주문완료")


def test_1_chejan_before_the_order_number_still_binds(make_rig) -> None:
    rig = _ready(make_rig, empty_first_order_no=True)
    rig.fake.chejan_before_answer = True  # KOA's 역전현상
    result = _place(rig, "005930", "buy", 2, 70000, cmd_id="odd")
    assert result.ok
    wait_until(lambda: rig.rec.order(result.value["order_id"]).status == FILLED, 5, "the fill")
    assert rig.rec.order(result.value["order_id"]).cmd_id == "odd"


# -- 3. order rate: queue for every order the risk limits allow to be open --------------------


def test_3_fifty_open_orders_cancel_with_each_cancel_answered_once(make_rig) -> None:
    rig = _ready(make_rig, cash=10**10, broker_kwargs={"order_windows": ((0.2, 5),)})
    assert rig.broker.order_queue.max_pending >= 2 * 50  # risk.max_open_orders is 50
    placed = []
    for _ in range(50):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), placed.append)
    wait_until(lambda: len(placed) == 50, 30, "fifty answers")
    assert all(a.ok for a in placed)
    cancels = {}
    for order in rig.broker.open_orders():
        rig.broker.cancel_order(
            order.order_id, "ca", lambda r, o=order.order_id: cancels.setdefault(o, []).append(r)
        )
    wait_until(lambda: sum(len(v) for v in cancels.values()) == 50, 30, "fifty cancels")
    spin(0.2)
    assert len(cancels) == 50 and all(len(v) == 1 and v[0].ok for v in cancels.values())
    assert rig.broker.open_orders() == []


@pytest.mark.parametrize("code", [-308, -311])
def test_3_an_order_refused_for_the_rate_waits_and_goes_again(make_rig, code) -> None:
    rig = _ready(make_rig, broker_kwargs={"order_windows": ((1.0, 100),)})
    rig.fake.order_rate_code = code
    answers = []
    for _ in range(7):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    wait_until(lambda: len(answers) == 7, 15, "seven answers")
    assert all(a.ok for a in answers), answers
    assert len(rig.fake.calls_of("SendOrder")) > 7


def test_3_the_sixth_order_leaves_at_least_1_1_s_after_the_first() -> None:
    from engine32.brokers.kiwoom.ratelimit import ORDER_WINDOWS, SlidingWindows

    windows = SlidingWindows(ORDER_WINDOWS, clock=lambda: 0.0)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        windows.record(t)
    assert windows.delay(0.994) > 0.1  # where a bare 1.0 s window on a 15.6 ms clock let it go
    assert windows.delay(1.1) == 0.0


# -- 4. a cancel that races a fill --------------------------------------------------------------


def test_4_a_cancel_that_a_fill_overtook_reads_the_order_again_and_cancels_the_rest(
    make_rig,
) -> None:
    rig = _ready(make_rig)
    order_id = _resting(rig)
    order = rig.fake.orders[order_id]
    rig.fake.mute_chejan = True
    rig.fake._fill(order, 4, 65000)  # the exchange fills 4; the chejan is still on its way
    rig.fake.mute_chejan = False
    result = rig.call(lambda done: rig.broker.cancel_order(order_id, "c", done))
    assert result.ok, result
    sent = [a[5] for a in rig.fake.calls_of("SendOrder")[1:]]
    assert sent == [10, 6]  # refused for 10 ([00Z924] …초과), re-read, 6 cancelled
    wait_until(lambda: rig.rec.order(order_id).status == CANCELLED, 5, "the cancel")
    assert rig.rec.order(order_id).filled_qty == 4


def test_4_a_modify_that_a_fill_overtook_moves_what_is_left(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _resting(rig)
    rig.fake.mute_chejan = True
    rig.fake._fill(rig.fake.orders[order_id], 7, 65000)
    rig.fake.mute_chejan = False
    result = rig.call(
        lambda done: rig.broker.modify_order(ModifyRequest(order_id, price=64000), done)
    )
    assert result.ok, result
    assert [a[3:6] for a in rig.fake.calls_of("SendOrder")[1:]] == [
        (5, "005930", 10),
        (5, "005930", 3),
    ]
    assert rig.fake.orders[result.value["order_id"]].qty == 3


def test_4_a_cancel_of_an_order_that_filled_meanwhile_says_so(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _resting(rig)
    rig.fake.mute_chejan = True
    rig.fake._fill(rig.fake.orders[order_id], 10, 65000)
    rig.fake.mute_chejan = False
    result = rig.call(lambda done: rig.broker.cancel_order(order_id, "c", done))
    assert result.error_code == "INVALID_ARGUMENT" and "already filled" in result.message


# -- 5. multi-price fills -------------------------------------------------------------------------


@pytest.mark.parametrize("fee_mode", ["cumulative", "per_fill"])
def test_5_an_order_filled_at_several_prices_reports_903_over_911(make_rig, fee_mode) -> None:
    rig = _ready(make_rig, fee_mode=fee_mode)
    order_id = _resting(rig, 10, 65000)
    order = rig.fake.orders[order_id]
    rig.fake._emit_chejan(rig.fake._fill(order, 4, 65000))
    rig.fake._emit_chejan(rig.fake._fill(order, 6, 64900))
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the fills")
    assert rig.rec.order(order_id).avg_fill_price == 64940
    fills = rig.rec.fills_of(order_id)
    assert [(f.qty, f.price) for f in fills] == [(4, 65000), (6, 64900)]
    assert [f.fee for f in fills] == [30, 50]  # 0.015 % of 260,000 and 389,400, in 10 won


# -- 6. a refused cancel or modify ------------------------------------------------------------------


def test_6_a_refused_cancel_leaves_the_order_and_says_why(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _resting(rig)
    rig.fake.leg_refusal = "[RC4007] 모의투자 매매금지 종목"
    result = rig.call(lambda done: rig.broker.cancel_order(order_id, "c", done))
    assert result.error_code == "BROKER_ERROR"
    assert (
        "RC4007" in result.message and order_id in result.message and "unchanged" in result.message
    )
    rig.settle()
    assert (
        rig.rec.order(order_id).status == ACCEPTED and rig.rec.order(order_id).remaining_qty == 10
    )
    assert [o.order_id for o in rig.broker.open_orders()] == [order_id]
    again = rig.call(lambda done: rig.broker.cancel_order(order_id, "c2", done))
    assert again.ok


def test_6_a_refused_modify_leaves_the_order_and_says_why(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _resting(rig)
    rig.fake.leg_refusal = "[RC4007] 모의투자 매매금지 종목"
    result = rig.call(
        lambda done: rig.broker.modify_order(ModifyRequest(order_id, price=64000), done)
    )
    assert result.error_code == "BROKER_ERROR" and "modify of order " + order_id in result.message
    rig.settle()
    order = rig.rec.order(order_id)
    assert (order.status, order.remaining_qty, order.price) == (ACCEPTED, 10, 65000)


# -- 7. orders that opt10075 no longer lists --------------------------------------------------------


def test_7_an_order_gone_from_opt10075_gets_its_final_state_from_the_history(make_rig) -> None:
    rig = _ready(make_rig)
    filled_id = _resting(rig)
    cancelled_id = _resting(rig, 5, 64000)
    rig.fake.mute_chejan = True  # events lost
    target = rig.fake.orders[filled_id]
    rig.fake._fill(target, 10, 65000)
    rig.fake.orders[cancelled_id].removed = 5
    rig.fake.unfilled_only = True  # opt10075 lists only what is unfilled
    rig.broker.query_open_orders()
    wait_until(lambda: rig.rec.order(filled_id).status == FILLED, 5, "the history")
    wait_until(lambda: rig.rec.order(cancelled_id).status == CANCELLED, 5, "the history")
    assert [t for t, *_ in rig.fake.tr_requests][-2:] == ["opt10075", "opt10076"]
    assert rig.broker.open_orders() == []


# -- 8. credit lots ----------------------------------------------------------------------------------


def test_8_a_code_held_in_cash_and_on_credit_shows_both_lots(make_rig) -> None:
    rig = _ready(make_rig, holdings={"005930": (10, 68000)}, credit_holdings={"005930": (5, 71000)})
    pos = rig.rec.position("005930")
    assert (pos.qty, pos.avg_price) == (15, 69000)
    # A balance event about the credit lot changes that lot only.
    rig.fake.credit_holdings["005930"] = [3, 71000]
    rig.fake.credit_balance_event("005930")
    wait_until(lambda: rig.rec.position("005930").qty == 13, 5, "the credit lot's event")
    assert rig.rec.position("005930").avg_price == round((10 * 68000 + 3 * 71000) / 13.0)


# -- 9. TR screens ------------------------------------------------------------------------------------


def test_9_queries_in_flight_each_have_their_own_screen(make_rig) -> None:
    rig = _ready(make_rig, tr_per_second=100, broker_kwargs={"tr_windows": ((1.0, 100),)})
    rig.fake._later = lambda event: None  # hold every answer: all queries stay in flight
    before = len(rig.fake.tr_requests)
    rig.broker.query_account()
    rig.broker.query_positions()
    rig.broker.query_open_orders()
    screens = [screen for *_, screen in rig.fake.tr_requests[before:]]
    assert len(screens) == 3 and len(set(screens)) == 3
    assert all("0101" <= s <= "0120" for s in screens)


def test_9_screens_go_back_to_the_pool(make_rig) -> None:
    rig = _ready(make_rig)
    for _ in range(3):
        rig.broker.query_account()
    rig.settle()
    wait_until(lambda: len(rig.broker._free_tr_screens) == 20, 5, "the screens back")
    assert rig.fake.calls_of("DisconnectRealData")


# -- 10. small items ------------------------------------------------------------------------------------


def test_10_minus_22_has_words_and_realised_pnl_is_990(make_rig) -> None:
    assert "TR failed" in errors.describe(-22)
    rig = _ready(make_rig)
    _place(rig, "005930", "sell", 5, 0, kind="market")
    wait_until(lambda: rig.rec.position("005930").qty == 15, 5, "the sale")
    assert rig.rec.position("005930").realized_pnl == (70000 - 68000) * 5 - 50 - 700


# -- 11. the TR fields the adapter uses ---------------------------------------------------------------


def test_11_used_fields_cover_every_input_and_output_the_adapter_touches(make_rig) -> None:
    rig = _ready(make_rig, holdings={"005930": (10, 68000)}, credit_holdings={"005930": (5, 71000)})
    rig.fake.unfilled_only = True
    order_id = _resting(rig)
    rig.fake.mute_chejan = True
    rig.fake._fill(rig.fake.orders[order_id], 10, 65000)
    rig.broker.query_open_orders()  # opt10075, then opt10076 for the order it lost
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the history")
    used_inputs = {k for k, _ in rig.fake.calls_of("SetInputValue")}
    declared_inputs = {i for inputs, _ in tr.USED_FIELDS.values() for i in inputs}
    assert used_inputs <= declared_inputs
    for trcode, _record, _, item in rig.fake.calls_of("GetCommData"):
        if trcode in tr.USED_FIELDS:
            assert item in tr.USED_FIELDS[trcode][1], (trcode, item)
    assert {t for t, *_ in rig.fake.tr_requests} == set(tr.USED_FIELDS)
