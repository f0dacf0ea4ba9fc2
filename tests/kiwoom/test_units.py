"""Unit tests of the Kiwoom adapter's parts: rate limits, screens, parsers, error words, seam."""

from typing import Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol.events import CANCELLED, FILLED, PARTIALLY_FILLED
from engine32.brokers.kiwoom import chejan, tr
from engine32.brokers.kiwoom.control import Control, load_factory
from engine32.brokers.kiwoom.errors import describe
from engine32.brokers.kiwoom.ratelimit import TR_WINDOWS, RateQueue, SlidingWindows
from engine32.brokers.kiwoom.realtime import parse_stock_trade
from engine32.brokers.kiwoom.screens import RealScreens, ScreenError, ScreenNumbers, check_screen
from engine32.brokers.kiwoom.values import to_code, to_int, to_price
from tests.fakes.kiwoom_control import FakeControlError, FakeKiwoomControl


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- rate limits -------------------------------------------------------------------------------


def test_five_queries_then_the_long_windows_hold_the_sixth() -> None:
    clock = Clock()
    limits = SlidingWindows(TR_WINDOWS, clock)
    for _ in range(5):
        assert limits.delay() == 0
        limits.record()
    assert limits.delay() == pytest.approx(18.0)  # not 1 s: 5 per 18 s holds too
    clock.t += 18.0
    assert limits.delay() == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=80))
def test_calls_made_when_allowed_never_break_any_window(gaps: List[float]) -> None:
    clock = Clock()
    windows = ((1.0, 5), (18.0, 5), (90.0, 25))
    limits = SlidingWindows(windows, clock)
    made: List[float] = []
    for gap in gaps:
        clock.t += gap
        clock.t += limits.delay()
        limits.record()
        made.append(clock.t)
    for period, count in windows:
        for i, start in enumerate(made):
            inside = [t for t in made[i:] if t - start < period - 1e-9]
            assert len(inside) <= count


def test_the_queue_waits_instead_of_failing_and_refuses_when_full() -> None:
    clock = Clock()
    wakeups: List[int] = []
    ran: List[int] = []
    queue = RateQueue("order", ((1.0, 5),), wakeups.append, max_pending=3, clock=clock)
    for i in range(5):
        assert queue.submit(lambda i=i: ran.append(i))
    assert ran == [0, 1, 2, 3, 4] and wakeups == []
    assert queue.submit(lambda: ran.append(5)) and queue.submit(lambda: ran.append(6))
    assert ran == [0, 1, 2, 3, 4] and wakeups[-1] == 1000
    assert queue.submit(lambda: ran.append(7))
    assert not queue.submit(lambda: ran.append(8))  # three already wait: RATE_LIMITED
    clock.t += 0.5
    assert queue.pump() == 0
    clock.t += 0.5
    assert queue.pump() == 3 and ran == list(range(8))


def test_a_refused_request_goes_back_to_the_front_after_a_backoff() -> None:
    clock = Clock()
    wakeups: List[int] = []
    ran: List[str] = []
    queue = RateQueue("tr", ((1.0, 100),), wakeups.append, clock=clock)
    tries = {"n": 0}

    def flaky() -> None:
        tries["n"] += 1
        if tries["n"] == 1:
            queue.retry_front(flaky, 1.0)
        else:
            ran.append("flaky")

    queue.submit(flaky)
    queue.submit(lambda: ran.append("next"))
    assert ran == [] and wakeups[-1] == 1000
    clock.t += 1.0
    queue.pump()
    assert ran == ["flaky", "next"]


# -- screens -----------------------------------------------------------------------------------


def test_screens_hold_at_most_100_codes_first_call_replaces_later_ones_add() -> None:
    screens = RealScreens(ScreenNumbers(5000))
    codes = ["{:06d}".format(n) for n in range(250)]
    calls = screens.add(codes + codes[:5])
    assert [(c.screen, len(c.codes), c.opt) for c in calls] == [
        ("5000", 100, "0"),
        ("5001", 100, "0"),
        ("5002", 50, "0"),
    ]
    more = screens.add(["{:06d}".format(n) for n in range(250, 310)])
    assert [(c.screen, len(c.codes), c.opt) for c in more] == [("5002", 50, "1"), ("5003", 10, "0")]
    removals, emptied = screens.remove(["{:06d}".format(n) for n in range(300, 310)] + ["999999"])
    assert len(removals) == 10 and emptied == ["5003"]
    assert screens.add(["777777"])[0][::2] == ("5003", "0")  # the freed number comes back
    assert all(len(c) <= 100 for c in screens.screens().values())
    assert [r.opt for r in screens.all_registrations()] == ["0"] * len(screens.screens())


def test_screen_numbers_run_out_and_come_back() -> None:
    numbers = ScreenNumbers(9998, limit=200)
    assert [numbers.take(), numbers.take()] == ["9998", "9999"]
    with pytest.raises(ScreenError):
        numbers.take()
    numbers.give_back("9998")
    assert numbers.take() == "9998"
    small = ScreenNumbers(1, limit=2)
    small.take(), small.take()
    with pytest.raises(ScreenError):
        small.take()
    for bad in ("0000", "123", "12a4", "12345"):
        with pytest.raises(ScreenError):
            check_screen(bad)
    assert check_screen("0001") == "0001"


# -- values and real-time ----------------------------------------------------------------------


def test_values_read_kiwoom_strings() -> None:
    assert (
        to_int("+65000") == 65000 and to_int("-1200") == -1200 and to_int(" 000000070000 ") == 70000
    )
    assert to_int("") == 0 and to_int("-000000012345") == -12345
    assert to_price("-68900") == 68900
    assert (
        to_code("A005930") == "005930"
        and to_code("005930_AL") == "005930"
        and to_code(" 0001A0") == "0001A0"
    )


@settings(max_examples=80, deadline=None)
@given(
    base=st.integers(1000, 900000),
    move=st.integers(-29, 29),
    qty=st.integers(-100000, 100000).filter(lambda q: q != 0),
)
def test_stock_trade_parsing_keeps_signs_where_they_mean_something(
    base: int, move: int, qty: int
) -> None:
    price = max(1, base + base * move // 100)
    sign = "+" if price >= base else "-"
    fields: Dict[int, str] = {
        10: sign + str(price), 11: "{:+d}".format(price - base), 12: "{:+.2f}".format((price - base) * 100.0 / base),
        15: "{:+d}".format(qty), 13: str(abs(qty)), 16: sign + str(base), 17: "+" + str(max(base, price)),
        18: "-" + str(min(base, price)), 27: sign + str(price + 1), 28: sign + str(price), 20: "093015",
    }  # fmt: skip
    quote = parse_stock_trade("A005930", lambda fid: fields.get(fid, ""))
    assert quote is not None
    assert (quote.code, quote.price, quote.change, quote.trade_qty) == (
        "005930",
        price,
        price - base,
        qty,
    )
    assert (
        quote.low == min(base, price) and quote.high == max(base, price) and quote.ask == price + 1
    )
    assert quote.time == "093015"


def test_a_trade_without_price_is_no_quote() -> None:
    assert parse_stock_trade("005930", lambda fid: "") is None
    assert parse_stock_trade("005930", lambda fid: "abc") is None


# -- chejan ------------------------------------------------------------------------------------


def _event(no: str, status: str, qty: int = 10, cum: int = 0, cum_amount: int = 0, this_qty: int = 0,
           this_price: int = 0, kind: str = "+매수", orig: str = "0000000", price: int = 65000,
           reason: str = "", unfilled: Optional[int] = None) -> Dict[int, str]:  # fmt: skip
    """One gubun-0 event as the real control sends it (koapy's recorded events): 903 the
    cumulative amount, 910 the latest fill's price, 911 the cumulative quantity, 914/915 this
    fill, 902 what is still unfilled."""
    return {
        chejan.FID_ORDER_NO: no, chejan.FID_CODE: "A005930", chejan.FID_NAME: "삼성전자 ", chejan.FID_STATUS: status,
        chejan.FID_ORDER_QTY: str(qty), chejan.FID_ORDER_PRICE: str(price), chejan.FID_ORIG_ORDER_NO: orig,
        chejan.FID_ORDER_KIND: kind, chejan.FID_SIDE: "1" if "매도" in kind else "2", chejan.FID_HOGA_KIND: "보통",
        chejan.FID_CUM_QTY: str(cum) if cum else "", chejan.FID_CUM_AMOUNT: str(cum_amount) if cum else "0",
        chejan.FID_LAST_FILL_PRICE: str(this_price) if this_qty else "",
        chejan.FID_FILL_QTY: str(this_qty) if this_qty else "", chejan.FID_FILL_PRICE: str(this_price) if this_qty else "",
        chejan.FID_FEE: str(cum * 10), chejan.FID_TAX: "0", chejan.FID_REJECT_REASON: reason,
        chejan.FID_UNFILLED: str(qty - cum if unfilled is None else unfilled),
    }  # fmt: skip


@st.composite
def lifecycles(draw):  # type: ignore[no-untyped-def]
    """The chejan events of one buy order: received, fills, maybe a cancel of the rest."""
    qty = draw(st.integers(1, 40))
    filled = draw(st.integers(0, qty))
    parts = draw(st.lists(st.integers(1, 10), min_size=0, max_size=5)) if filled else []
    sizes: List[int] = []
    left = filled
    for p in parts:
        if left <= 0:
            break
        sizes.append(min(p, left))
        left -= sizes[-1]
    if left:
        sizes.append(left)
    events = [_event("0001001", "접수", qty)]
    if draw(st.booleans()):
        events.insert(0, _event("", "접수", qty))  # the number-less first event
    cum = value = 0
    for size in sizes:
        price = draw(st.sampled_from([64900, 65000, 65100]))
        cum += size
        value += size * price
        events.append(_event("0001001", "체결", qty, cum, value, size, price))
    cancel = filled < qty and draw(st.booleans())
    modified = 0
    if cancel:
        rest = qty - filled
        if draw(st.booleans()):
            events.append(_event("0001002", "접수", rest, kind="매수취소", orig="0001001", price=0))
            events.append(_event("0001002", "확인", rest, kind="매수취소", orig="0001001", price=0))
        else:  # a modify moves the rest to a new order, which may fill in turn
            events.append(
                _event("0001003", "접수", rest, kind="+매수정정", orig="0001001", price=66000)
            )
            events.append(
                _event("0001003", "확인", rest, kind="+매수정정", orig="0001001", price=66000)
            )
            modified = draw(st.integers(0, rest))
            if modified:
                events.append(_event("0001003", "체결", rest, modified, 66000 * modified, modified, 66000, kind="+매수정정",
                                     orig="0001001", price=66000))  # fmt: skip
    return events, qty, filled, cancel, modified


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_arrival_order_gives_the_same_final_order(data) -> None:  # type: ignore[no-untyped-def]
    events, qty, filled, cancel, modified = data.draw(lifecycles())
    shuffled = data.draw(st.permutations(events))
    finals = []
    for sequence in (events, shuffled):
        book = chejan.OrderBook(clock_ms=lambda: 1)
        fills = []
        for fields in sequence:
            fills.extend(book.on_order_event(fields).fills)
        order = book.order("0001001")
        assert order is not None
        assert sum(f.qty for f in fills if f.order_id == "0001001") == order.filled_qty == filled
        assert sum(f.qty for f in fills if f.order_id == "0001003") == modified
        assert len({f.fill_id for f in fills}) == len(fills)
        assert book.order("0001002") is None  # a cancel leg is not an order of its own
        finals.append((order, book.order("0001003")))
    assert finals[0] == finals[1]
    final, child = finals[0]
    if child is not None:
        assert final.reason == "replaced by 0001003" and child.orig_order_id == "0001001"
        assert child.filled_qty == modified and child.status == (FILLED if modified == child.qty else
                                                                  PARTIALLY_FILLED if modified else "accepted")  # fmt: skip
    expected = (
        FILLED
        if filled == qty
        else CANCELLED
        if cancel
        else PARTIALLY_FILLED
        if filled
        else "accepted"
    )
    assert final.status == expected
    assert final.remaining_qty == (0 if expected in (FILLED, CANCELLED) else qty - filled)
    assert (final.code, final.name, final.side) == ("005930", "삼성전자", "buy")


def test_skipped_fill_events_are_priced_from_the_cumulative_amount() -> None:
    book = chejan.OrderBook()
    book.on_order_event(_event("0000007", "접수"))
    first = book.on_order_event(_event("0000007", "체결", 10, 4, 4 * 65000, 4, 65000)).fills
    # the 2nd fill (3 @ 65,100) is lost; the 3rd (3 @ 65,200) arrives with 903 = all so far
    amount = 4 * 65000 + 3 * 65100 + 3 * 65200
    late = book.on_order_event(_event("0000007", "체결", 10, 10, amount, 3, 65200)).fills
    assert [f.qty for f in first + late] == [4, 6]
    assert late[0].price == round((amount - 65000 * 4) / 6.0)
    assert book.order("0000007").avg_fill_price == round(amount / 10.0)
    stale = _event("0000007", "체결", 10, 7, 4 * 65000 + 3 * 65100, 3, 65100)
    assert book.on_order_event(stale).fills == []


def test_the_average_is_903_over_911_not_the_last_fill_price() -> None:
    book = chejan.OrderBook()
    book.on_order_event(_event("0000020", "접수"))
    book.on_order_event(_event("0000020", "체결", 10, 4, 4 * 65000, 4, 65000))
    update = book.on_order_event(_event("0000020", "체결", 10, 10, 4 * 65000 + 6 * 64900, 6, 64900))
    (order,) = update.orders
    assert order.avg_fill_price == round((4 * 65000 + 6 * 64900) / 10.0) == 64940
    assert [f.price for f in update.fills] == [64900]


@pytest.mark.parametrize("mode", ["cumulative", "per_fill"])
def test_fees_are_read_whether_938_is_a_running_total_or_per_fill(mode) -> None:  # type: ignore[no-untyped-def]
    book = chejan.OrderBook()
    book.on_order_event(_event("0000030", "접수", 30))
    fees = [100, 150, 50]  # 0.015 % of 666,667 / 1,000,000 / 333,333 (rounded down to 10 won)
    sizes = [10, 15, 5]
    cum = amount = total_fee = 0
    got = []
    for size, fee in zip(sizes, fees):
        cum += size
        amount += size * 66666
        total_fee += fee
        fields = _event("0000030", "체결", 30, cum, amount, size, 66666)
        fields[chejan.FID_FEE] = str(total_fee if mode == "cumulative" else fee)
        got.extend(f.fee for f in book.on_order_event(fields).fills)
    assert got == fees


def test_a_refused_cancel_leaves_the_order_as_it_was() -> None:
    book = chejan.OrderBook()
    book.on_order_event(_event("0000040", "접수"))
    book.on_order_event(_event("0000041", "접수", 10, kind="매수취소", orig="0000040", price=0))
    update = book.on_order_event(
        _event(
            "0000041",
            "확인",
            10,
            kind="매수취소",
            orig="0000040",
            price=0,
            reason="RC4033 취소가능수량 없음",
        )
    )
    assert book.order("0000040").status == "accepted" and book.order("0000040").remaining_qty == 10
    assert all(o.order_id != "0000040" or o.status == "accepted" for o in update.orders)
    assert book.leg_outcome("0000041") == "RC4033 취소가능수량 없음"
    book.on_order_event(
        _event("0000042", "확인", 10, kind="매수취소", orig="0000040", price=0, reason="0")
    )
    assert book.leg_outcome("0000042") == "" and book.order("0000040").status == CANCELLED


def test_902_unfilled_zero_closes_an_order_no_reduction_explains() -> None:
    book = chejan.OrderBook()
    book.on_order_event(_event("0000050", "접수"))
    book.on_order_event(_event("0000050", "체결", 10, 4, 4 * 65000, 4, 65000, unfilled=6))
    assert book.order("0000050").is_open
    book.on_order_event(_event("0000050", "확인", 10, 4, 4 * 65000, unfilled=0))
    order = book.order("0000050")
    assert (order.status, order.filled_qty, order.remaining_qty) == (CANCELLED, 4, 0)


def test_credit_and_cash_lots_of_one_code_are_summed() -> None:
    cash = chejan.make_position("005930", "삼성전자", 10, 68000, 70000)
    credit = chejan.make_position("005930", "삼성전자", 5, 71000, 70000)
    other = chejan.make_position("000660", "SK하이닉스", 1, 170000, 180000)
    merged = {p.code: p for p in chejan.merge_lots([cash, credit, other])}
    assert merged["005930"].qty == 15 and merged["005930"].avg_price == 69000
    assert merged["000660"] == other
    fields = {
        chejan.FID_REALIZED_TODAY: "999",
        chejan.FID_REALIZED_CASH: "100",
        chejan.FID_REALIZED_CREDIT: "-30",
    }
    assert chejan.realized_of(fields) == 70
    assert chejan.realized_of({chejan.FID_REALIZED_TODAY: "999"}) == 999
    assert chejan.credit_of({chejan.FID_CREDIT: "03"}) == "03" and chejan.credit_of({}) == "00"


def test_modify_closes_the_original_and_rejection_keeps_its_reason() -> None:
    book = chejan.OrderBook()
    book.on_order_event(_event("0000010", "접수"))
    update = book.on_order_event(
        _event("0000011", "확인", 10, kind="+매수정정", orig="0000010", price=66000)
    )
    by_id = {o.order_id: o for o in update.orders}
    assert by_id["0000010"].status == CANCELLED and by_id["0000010"].reason == "replaced by 0000011"
    assert by_id["0000011"].orig_order_id == "0000010" and by_id["0000011"].price == 66000
    rejected = book.on_order_event(_event("0000012", "거부", reason="증거금 부족")).orders[0]
    assert rejected.status == "rejected" and rejected.reason == "증거금 부족"


def test_balance_event_into_a_position() -> None:
    fields = {chejan.FID_CODE: "A005930", chejan.FID_NAME: "삼성전자", chejan.FID_HELD_QTY: "30",
              chejan.FID_AVG_PRICE: "68666", chejan.FID_CURRENT_PRICE: "-69000", chejan.FID_REALIZED_TODAY: "-1500"}  # fmt: skip
    pos = chejan.parse_balance(fields)
    assert pos is not None
    assert (pos.code, pos.qty, pos.avg_price, pos.last_price, pos.realized_pnl) == (
        "005930",
        30,
        68666,
        69000,
        -1500,
    )
    assert pos.unrealized_pnl == (69000 - 68666) * 30


# -- TR readers --------------------------------------------------------------------------------


def _page(single: Dict[str, str], rows: List[Dict[str, str]], trcode: str = "opw00018") -> tr.Page:
    def get(_tr: str, _rq: str, index: int, item: str) -> str:
        return single.get(item) or (rows[index].get(item, "") if index < len(rows) else "")

    return tr.Page(trcode, "rq", get, lambda _t, _r: len(rows), False)


def test_tr_readers_handle_padding_and_prefixes() -> None:
    summary, positions = tr.read_balance(_page(
        {"총평가손익금액": "-000000001234", "추정예탁자산": "000000100000000"},
        [{"종목번호": "A005930", "종목명": " 삼성전자  ", "보유수량": "000000000020", "매입가": "000000068000",
          "현재가": "000000070000"}],
    ))  # fmt: skip
    assert summary.unrealized_pnl == -1234 and summary.estimated_assets == 100000000
    assert (positions[0].code, positions[0].name, positions[0].qty) == ("005930", "삼성전자", 20)
    orders = tr.read_orders(_page({}, [
        {"주문번호": "0000501", "종목코드": "005930", "주문수량": "10", "주문가격": "65000", "미체결수량": "6",
         "체결량": "4", "주문구분": "+매수", "원주문번호": "0000000", "매매구분": "보통"},
        {"주문번호": "0000502", "종목코드": "005930", "주문수량": "6", "미체결수량": "0", "체결량": "0",
         "주문구분": "매수취소", "원주문번호": "0000501"},
        {"주문번호": "0000503", "종목코드": "000660", "주문수량": "3", "미체결수량": "0", "체결량": "0",
         "주문구분": "-매도", "주문상태": "거부"},
    ], "opt10075"))  # fmt: skip
    assert [(o.order_id, o.status, o.remaining_qty, o.side) for o in orders] == [
        ("0000501", PARTIALLY_FILLED, 6, "buy"),
        ("0000503", "rejected", 0, "sell"),
    ]


# -- errors and the control seam ---------------------------------------------------------------


def test_return_codes_in_plain_words() -> None:
    assert describe(-308) == "order rate exceeded (-308)"
    assert describe(-200) == "query rate exceeded (-200)"
    assert "socket closed" in describe(-106)
    assert "account information missing" in describe(-340)
    assert describe(-9999) == "Kiwoom error -9999"
    for code in (-100, -101, -102):
        assert describe(code).startswith("login failed")
    for code in range(-311, -299):
        assert describe(code) != "Kiwoom error {}".format(code)


def test_the_fake_takes_exactly_the_real_signatures(qapp) -> None:  # type: ignore[no-untyped-def]
    fake = FakeKiwoomControl()
    control = Control(fake)
    assert control.get_connect_state() == 0
    assert fake.dynamicCall("GetMasterCodeName(QString)", "005930") == "삼성전자"
    assert fake.dynamicCall("GetMasterCodeName(QString)", ["005930"]) == "삼성전자"
    with pytest.raises(FakeControlError):
        fake.dynamicCall("GetMasterCodeName(QString, QString)", "005930", "x")
    with pytest.raises(FakeControlError):
        fake.dynamicCall("GetChejanData(int)", "9203")  # an int, not a string
    with pytest.raises(FakeControlError):
        fake.dynamicCall("SendOrder(QString, QString, QString, int, QString, int, int, QString, QString)",
                         "rq", "0201", "8012345611", 1, "005930", 1, 70000, "00", "")  # fmt: skip
    assert fake.violations  # and the wrong calls were recorded
    fake.connected = True
    ret = control.send_order("rq", "0201", "8012345611", 1, "005930", 1, 70000, "00", "")
    assert ret == 0  # nine arguments go as one list, as QAxBase.dynamicCall needs


def test_the_factory_spec_is_loaded_or_explained() -> None:
    assert (
        load_factory("tests.fakes.kiwoom_control:create_fake_control").__name__
        == "create_fake_control"
    )
    with pytest.raises(ValueError):
        load_factory("no_colon_here")
    with pytest.raises(ValueError):
        load_factory("tests.fakes.kiwoom_control:nothing")
