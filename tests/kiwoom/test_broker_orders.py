"""Orders through KiwoomBroker and the fake control: SendOrder arguments, chejan flows, limits."""

import pytest

from core.protocol.events import ACCEPTED, CANCELLED, FILLED, PARTIALLY_FILLED, REJECTED
from engine32.brokers.base import ModifyRequest, OrderRequest
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


def test_limit_buy_sends_the_exact_arguments_and_fills(make_rig) -> None:
    rig = _ready(make_rig)
    result = _place(rig, "005930", "buy", 10, 70000, cmd_id="c1")
    assert result.ok, result
    order_id = result.value["order_id"]
    (args,) = rig.fake.calls_of("SendOrder")
    rqname, screen, account, order_type, code, qty, price, hoga, orig = args
    assert (account, order_type, code, qty, price, hoga, orig) == (
        "8012345611",
        1,
        "005930",
        10,
        70000,
        "00",
        "",
    )
    assert len(screen) == 4 and screen != "0000" and rqname
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the fill")
    order = rig.rec.order(order_id)
    assert (order.filled_qty, order.avg_fill_price, order.remaining_qty, order.cmd_id) == (
        10,
        70000,
        0,
        "c1",
    )
    assert (order.code, order.name, order.side, order.kind) == (
        "005930",
        "삼성전자",
        "buy",
        "limit",
    )
    (fill,) = rig.rec.fills_of(order_id)
    assert (fill.qty, fill.price, fill.side, fill.fee, fill.tax) == (10, 70000, "buy", 100, 0)
    wait_until(lambda: rig.rec.position("005930").qty == 30, 5, "the position")
    assert rig.rec.position("005930").avg_price == (20 * 68000 + 10 * 70000) // 30
    wait_until(lambda: rig.rec.accounts[-1].cash == rig.fake.cash, 5, "the account refresh")
    assert rig.fake.cash == 100000000 - 700000 - 100


def test_market_sell_sends_hoga_03_with_price_0(make_rig) -> None:
    rig = _ready(make_rig)
    result = _place(rig, "005930", "sell", 5, 0, kind="market")
    assert result.ok, result
    args = rig.fake.calls_of("SendOrder")[0]
    assert args[3:8] == (2, "005930", 5, 0, "03")
    order_id = result.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the fill")
    assert rig.rec.order(order_id).kind == "market"
    (fill,) = rig.rec.fills_of(order_id)
    assert fill.tax == 700 and fill.side == "sell"  # 0.20 % of 350,000
    wait_until(lambda: rig.rec.position("005930").qty == 15, 5, "the position")
    assert rig.rec.position("005930").realized_pnl == (70000 - 68000) * 5 - 50 - 700


def test_partial_fills_use_cumulative_quantities(make_rig) -> None:
    rig = _ready(make_rig, fill_parts=3)
    order_id = _place(rig, "005930", "buy", 10, 70000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the last fill")
    statuses = [o.status for o in rig.rec.orders if o.order_id == order_id]
    assert PARTIALLY_FILLED in statuses
    fills = rig.rec.fills_of(order_id)
    assert [f.qty for f in fills] == [3, 3, 4]
    assert len({f.fill_id for f in fills}) == 3


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_out_of_order_chejan_gives_the_same_order(make_rig, order) -> None:
    rig = _ready(make_rig, fill_parts=4, chejan_order=order)
    order_id = _place(rig, "005930", "buy", 10, 70000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == FILLED, 5, "the fill")
    rig.settle()
    final = rig.rec.order(order_id)
    assert (final.status, final.filled_qty, final.avg_fill_price, final.remaining_qty) == (
        FILLED,
        10,
        70000,
        0,
    )
    assert sum(f.qty for f in rig.rec.fills_of(order_id)) == 10
    # Balance events came out of order too; the refresh after the fills puts the position right.
    wait_until(lambda: rig.rec.position("005930").qty == 30, 5, "the refreshed position")
    # The first chejan had no order number: it was matched or dropped, never an order of its own.
    assert all(o.order_id for o in rig.rec.orders)


def test_cancel_a_resting_order(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _place(rig, "005930", "buy", 10, 65000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    result = rig.call(lambda done: rig.broker.cancel_order(order_id, "c9", done))
    assert result.ok and result.value["order_id"] == order_id
    args = rig.fake.calls_of("SendOrder")[-1]
    assert args[3:9] == (3, "005930", 10, 0, "00", order_id)
    wait_until(lambda: rig.rec.order(order_id).status == CANCELLED, 5, "the cancel")
    assert rig.rec.order(order_id).remaining_qty == 0
    assert rig.broker.open_orders() == []
    again = rig.call(lambda done: rig.broker.cancel_order(order_id, "c10", done))
    assert again.error_code == "INVALID_ARGUMENT" and "already cancelled" in again.message


def test_cancel_after_a_partial_fill_keeps_the_fill(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _place(rig, "005930", "buy", 10, 65000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    rig.fake.fill_parts = 1
    order = rig.fake.orders[order_id]
    rig.fake._emit_chejan(rig.fake._fill(order, 4, 65000))  # the exchange fills 4 at 65,000
    wait_until(lambda: rig.rec.order(order_id).filled_qty == 4, 5, "the partial fill")
    assert rig.call(lambda done: rig.broker.cancel_order(order_id, "", done)).ok
    assert rig.fake.calls_of("SendOrder")[-1][5] == 6  # the unfilled rest
    wait_until(lambda: rig.rec.order(order_id).status == CANCELLED, 5, "the cancel")
    assert rig.rec.order(order_id).filled_qty == 4


def test_modify_price_gives_a_new_order_and_closes_the_original(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _place(rig, "005930", "buy", 10, 65000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    result = rig.call(
        lambda done: rig.broker.modify_order(
            ModifyRequest(order_id, price=66000, cmd_id="m1"), done
        )
    )
    assert result.ok, result
    new_id = result.value["order_id"]
    assert new_id != order_id
    assert rig.fake.calls_of("SendOrder")[-1][3:9] == (5, "005930", 10, 66000, "00", order_id)
    wait_until(lambda: rig.rec.order(order_id).status == CANCELLED, 5, "the original to close")
    assert rig.rec.order(order_id).reason == "replaced by " + new_id
    new = rig.rec.order(new_id)
    assert (new.status, new.qty, new.price, new.orig_order_id) == (ACCEPTED, 10, 66000, order_id)
    rig.fake.trade("005930", 66000)
    wait_until(lambda: rig.rec.order(new_id).status == FILLED, 5, "the modified order to fill")


def test_modify_to_fewer_shares_cancels_the_difference(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _place(rig, "005930", "buy", 10, 65000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    result = rig.call(lambda done: rig.broker.modify_order(ModifyRequest(order_id, qty=6), done))
    assert result.ok and result.value["order_id"] == order_id
    assert rig.fake.calls_of("SendOrder")[-1][3:9] == (3, "005930", 4, 0, "00", order_id)
    wait_until(lambda: rig.rec.order(order_id).remaining_qty == 6, 5, "the smaller order")
    assert rig.rec.order(order_id).status == ACCEPTED
    more = rig.call(lambda done: rig.broker.modify_order(ModifyRequest(order_id, qty=20), done))
    assert more.error_code == "INVALID_ARGUMENT" and "lower" in more.message


def test_modify_price_and_qty_moves_some_and_cancels_the_rest(make_rig) -> None:
    rig = _ready(make_rig)
    order_id = _place(rig, "005930", "buy", 10, 65000).value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == ACCEPTED, 5, "acceptance")
    new_id = rig.call(
        lambda done: rig.broker.modify_order(ModifyRequest(order_id, qty=4, price=64000), done)
    )
    new_id = new_id.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == CANCELLED, 5, "the rest to be cancelled")
    assert [a[3:6] for a in rig.fake.calls_of("SendOrder")[1:]] == [
        (5, "005930", 4),
        (3, "005930", 6),
    ]
    assert rig.rec.order(new_id).qty == 4 and rig.rec.order(new_id).price == 64000


def test_exchange_rejection_carries_its_reason(make_rig) -> None:
    rig = _ready(make_rig)
    result = _place(rig, "005930", "buy", 1, 95000)  # above the daily upper limit (91,000)
    assert result.ok  # Kiwoom took it and gave it a number ...
    order_id = result.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == REJECTED, 5, "the rejection")
    assert "상하한가" in rig.rec.order(order_id).reason  # ... then the exchange refused it (919)


def test_server_refusal_is_a_broker_error_in_its_words(make_rig) -> None:
    rig = _ready(make_rig, cash=1000000)
    result = _place(rig, "005930", "buy", 100, 70000)
    assert not result.ok and result.error_code == "BROKER_ERROR"
    assert "주문가능금액이 부족" in result.message
    sell = _place(rig, "000660", "sell", 1, 180000)
    assert sell.error_code == "BROKER_ERROR" and "매도가능수량" in sell.message


def test_the_reason_of_a_refusal_may_come_after_the_empty_order_number(make_rig) -> None:
    rig = _ready(make_rig, cash=1000000)
    rig.fake.reason_after_answer = True
    result = _place(rig, "005930", "buy", 100, 70000)
    assert result.error_code == "BROKER_ERROR" and "주문가능금액이 부족" in result.message


def test_requests_that_make_no_sense_are_invalid_arguments(make_rig) -> None:
    rig = _ready(make_rig)
    assert _place(rig, "5930", "buy", 1, 70000).error_code == "INVALID_ARGUMENT"
    assert _place(rig, "005930", "buy", 0, 70000).error_code == "INVALID_ARGUMENT"
    assert _place(rig, "005930", "buy", 1, 0).error_code == "INVALID_ARGUMENT"
    assert _place(rig, "005930", "hold", 1, 70000).error_code == "INVALID_ARGUMENT"
    cancel = rig.call(lambda done: rig.broker.cancel_order("9999999", "", done))
    assert cancel.error_code == "INVALID_ARGUMENT"
    assert rig.fake.calls_of("SendOrder") == []


def test_orders_past_five_a_second_wait_their_turn(make_rig) -> None:
    rig = _ready(make_rig)
    answers = []
    for _ in range(7):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    assert len(rig.fake.calls_of("SendOrder")) == 5  # two wait in the queue
    wait_until(lambda: len(answers) == 7, 10, "all seven answers")
    assert all(a.ok for a in answers), answers
    assert len({a.value["order_id"] for a in answers}) == 7


def test_a_full_order_queue_answers_rate_limited(make_rig) -> None:
    rig = _ready(make_rig, broker_kwargs={"order_windows": ((60.0, 1),), "max_waiting_orders": 2})
    answers = []
    for _ in range(4):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    assert [a.error_code for a in answers] == ["RATE_LIMITED"]
    assert "waiting" in answers[0].message
    assert len(rig.fake.calls_of("SendOrder")) == 1


def test_kiwoom_refusing_the_rate_queues_the_order_again(make_rig) -> None:
    # Our own windows let a 6th order through within the second: Kiwoom says -308, and the
    # order waits at the head of the queue and goes again instead of failing.
    rig = _ready(make_rig, broker_kwargs={"order_windows": ((1.0, 100),)})
    answers = []
    for _ in range(6):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    wait_until(lambda: len(answers) == 6, 10, "six answers")
    assert all(a.ok for a in answers), answers
    assert len({a.value["order_id"] for a in answers}) == 6
    assert len(rig.fake.calls_of("SendOrder")) == 7  # one was refused (-308) and sent again


def test_the_order_window_keeps_a_margin_on_a_fine_clock() -> None:
    import time

    from engine32.brokers.kiwoom.ratelimit import CLOCK, ORDER_WINDOWS

    assert CLOCK is time.perf_counter  # fine-grained on Windows too (QueryPerformanceCounter)
    ((period, count),) = ORDER_WINDOWS
    assert count == 5 and period >= 1.05


def test_an_unconfirmed_order_times_out_with_words(make_rig) -> None:
    rig = _ready(make_rig, broker_kwargs={"order_timeout_s": 0.2})
    rig.fake._answer_order = lambda *a: None  # the order number never comes back
    rig.fake.empty_first_order_no = True
    rig.fake.calls.clear()
    answers = []
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    wait_until(lambda: answers, 5, "the answer")
    spin(0.1)
    assert len(answers) == 1
    assert answers[0].error_code == "BROKER_ERROR" and "did not confirm" in answers[0].message


def test_disconnect_answers_queued_orders_and_sends_none(make_rig) -> None:
    rig = _ready(make_rig, broker_kwargs={"order_windows": ((60.0, 1),)})
    answers = []
    for _ in range(3):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    rig.broker.disconnect()
    spin(0.2)
    assert len(rig.fake.calls_of("SendOrder")) == 1
    assert len(answers) == 3 and all(not a.ok for a in answers)
    assert [a.error_code for a in answers[1:]] == ["NOT_READY", "NOT_READY"]
    assert rig.rec.connections[-1] == (False, "disconnected from Kiwoom")
