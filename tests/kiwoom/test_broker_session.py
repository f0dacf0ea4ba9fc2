"""KiwoomBroker on the fake control under a real Qt loop: login, account, reconciliation, faults."""

from core.protocol.events import CANCELLED, PARTIALLY_FILLED
from engine32.brokers.base import OrderRequest
from tests.fakes.kiwoom_control import FakeKiwoomControl, FakeOrder

from .helpers import Recorder, spin, wait_until


def test_login_reconciles_every_page_before_saying_ready(make_rig, fake) -> None:
    rig = make_rig()
    rig.connect()
    # Three holdings at two a page: opw00018 asked twice (next 0, then 2), then deposit, then orders.
    balance = [(trcode, nxt) for trcode, _, nxt, _ in fake.tr_requests if trcode == "opw00018"]
    assert balance == [("opw00018", 0), ("opw00018", 2)]
    assert [t for t, *_ in fake.tr_requests][-2:] == ["opw00001", "opt10075"]
    held = {p.code: p for p in rig.rec.positions}
    assert set(held) == {"005930", "000660", "035420"}
    assert (held["005930"].qty, held["005930"].avg_price, held["005930"].name) == (
        20,
        68000,
        "삼성전자",
    )
    assert held["005930"].unrealized_pnl == (70000 - 68000) * 20
    account = rig.rec.accounts[-1]
    assert account.account == "8012****11"
    assert account.cash == fake.cash and account.orderable == fake.orderable()
    assert account.equity == fake.cash + 20 * 70000 + 5 * 180000 + 3 * 200000
    info = rig.broker.info()
    assert (info.broker, info.mode, info.account, info.connected) == (
        "kiwoom",
        "mock",
        "8012****11",
        True,
    )
    ok, words = rig.rec.connections[-1]
    assert ok and "mock-trading" in words and "8012****11" in words


def test_account_from_config_is_used_and_real_server_reported(make_rig) -> None:
    control = FakeKiwoomControl(server_gubun="")
    rig = make_rig(control, overrides={"engine.account": "8012345622"})
    rig.connect()
    assert rig.broker.info().mode == "real"
    assert rig.broker.info().account == "8012****22"
    assert all(args[0][:4] != "" for args in control.calls_of("SetInputValue"))
    accounts = [v for k, v in control.calls_of("SetInputValue") if k == "계좌번호"]
    assert accounts and set(accounts) == {"8012345622"}


def test_an_account_that_is_not_the_logins_is_a_clear_error_and_no_retry(make_rig, fake) -> None:
    rig = make_rig(overrides={"engine.account": "1234567890"})
    rig.broker.connect()
    wait_until(lambda: rig.rec.connections, 5, "a connection report")
    ok, words = rig.rec.connections[-1]
    assert not ok and "1234****90" in words and "not one of this login's accounts" in words
    spin(0.3)
    assert fake.login_attempts == 1 and rig.broker.state == "idle"


def test_login_that_never_completes_asks_for_a_new_process_not_a_second_commconnect(
    make_rig, fake
) -> None:
    fake.login_plan = ["never", 0]
    rig = make_rig(overrides={"engine.kiwoom.login_timeout_s": 1})
    rig.broker.connect()
    wait_until(lambda: rig.rec.connections, 5, "the timeout")
    ok, words = rig.rec.connections[0]
    assert not ok and "did not complete within 1 s" in words and "auto-login" in words
    wait_until(lambda: rig.rec.restarts, 5, "the restart request")
    assert "did not complete" in rig.rec.restarts[0]
    spin(0.3)  # relogin_delay_s is 0.05: a second CommConnect would have come by now
    assert fake.login_attempts == 1
    rig.broker._login()  # even when asked, this process does not log in again
    assert fake.login_attempts == 1


def test_login_error_is_said_in_words_and_retried_with_growing_pauses(make_rig, fake) -> None:
    fake.login_plan = [-101, -101, 0]
    rig = make_rig()  # relogin_delay_s 0.05
    rig.connect()
    assert (
        rig.rec.connections[:2]
        == [
            (False, "login failed: could not connect to the Kiwoom server (-101)"),
        ]
        * 2
    )
    assert fake.login_attempts == 3
    assert rig.broker._relogin_timer.interval() == 100  # the 2nd pause: twice the 1st


def test_orders_are_refused_until_reconciliation_is_done(make_rig, fake) -> None:
    answers = []

    class OrderingEarly(Recorder):
        def on_position(self, position) -> None:  # reconciliation is publishing positions
            super().on_position(position)
            rig.broker.place_order(OrderRequest("005930", "buy", 1, 70000), answers.append)

    rig = make_rig(listener=OrderingEarly())
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 70000), answers.append)
    assert answers[0].error_code == "NOT_READY" and "not connected" in answers[0].message
    rig.connect()
    assert len(answers) == 4  # one before connect, one per reconciled position
    assert all(a.error_code == "NOT_READY" and "reconciling" in a.message for a in answers[1:])
    assert fake.calls_of("SendOrder") == []


def test_reconciliation_finds_orders_of_an_earlier_session(make_rig) -> None:
    control = FakeKiwoomControl(holdings={"005930": (20, 68000)})
    resting = FakeOrder("0000501", "005930", "buy", 10, 65000, "00")
    resting.filled, resting.value = 4, 4 * 65000
    gone = FakeOrder("0000502", "000660", "buy", 5, 170000, "00")
    gone.removed = 5
    control.orders = {o.no: o for o in (resting, gone)}
    rig = make_rig(control)
    rig.connect()
    assert [o.order_id for o in rig.broker.open_orders()] == ["0000501"]
    o = rig.rec.order("0000501")
    assert (o.status, o.filled_qty, o.remaining_qty, o.avg_fill_price) == (
        PARTIALLY_FILLED,
        4,
        6,
        65000,
    )
    assert rig.rec.order("0000502").status == CANCELLED


def _restarts(rig, fault) -> str:
    """Connected with a resting order and one waiting for its number; then ``fault``: the
    waiting one is answered, the engine is asked for a new process, and no CommConnect follows
    in this one (after -106 it would not recover: koapy restarts its process)."""
    rig.connect()
    rig.broker.subscribe(["005930", "000660"])
    answers = []
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), answers.append)
    wait_until(lambda: answers, 5, "the order's answer")
    rig.fake._answer_order = lambda *a: None  # the next order's number never comes back ...
    rig.fake.mute_chejan = True  # ... nor any chejan that would carry it
    waiting = []
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), waiting.append)
    fault()
    wait_until(lambda: not rig.rec.connected, 5, "the loss to be noticed")
    wait_until(lambda: rig.rec.restarts, 5, "the restart request")
    lost_words = rig.rec.connections[-1][1]
    assert [a.error_code for a in waiting] == ["BROKER_ERROR"]
    assert "reconciliation will tell" in waiting[0].message
    refused = []
    rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000), refused.append)
    assert refused[0].error_code == "NOT_READY"
    spin(0.3)
    assert rig.fake.login_attempts == 1 and rig.rec.connections[-1][0] is False
    assert len(rig.rec.restarts) == 1
    return lost_words


def test_socket_closed_asks_for_a_new_process(make_rig, fake) -> None:
    words = _restarts(make_rig(), fake.close_socket)
    assert "socket closed" in words and "-106" in words and "restarts" in words


def test_a_silent_disconnect_is_found_by_the_watchdog(make_rig, fake) -> None:
    words = _restarts(make_rig(), lambda: fake.close_socket(notify=False))
    assert "socket closed" in words


def test_the_daily_reconnect_notice_asks_for_a_new_process(make_rig, fake) -> None:
    words = _restarts(make_rig(), fake.daily_notice)
    assert "daily" in words and "재접속" in words


def test_kiwoom_dialogs_are_dismissed_and_the_reconnect_ones_restart(make_rig, fake) -> None:
    from engine32.brokers.kiwoom.popups import DIALOGS, PopupWatcher, WindowSystem

    class Desktop(WindowSystem):
        def __init__(self) -> None:
            self.open = {}
            self.pressed = []

        def find(self, title):
            return self.open.get(title, 0)

        def press(self, handle):
            self.pressed.append(handle)
            self.open = {t: h for t, h in self.open.items() if h != handle}
            return True

    desktop = Desktop()
    rig = make_rig(popup_watcher=PopupWatcher(desktop, poll_ms=20))
    rig.connect()
    desktop.open["안녕하세요. 키움증권 입니다."] = 11  # the maintenance notice: only dismissed
    wait_until(lambda: desktop.pressed == [11], 5, "the notice to be dismissed")
    spin(0.1)
    assert rig.rec.restarts == [] and rig.rec.connected
    desktop.open["[HTS 재접속 안내]"] = 12  # 06:50: log in again
    wait_until(lambda: rig.rec.restarts, 5, "the restart request")
    assert desktop.pressed == [11, 12] and "HTS 재접속 안내" in rig.rec.restarts[0]
    assert [t for t, _ in DIALOGS] == [
        "안녕하세요. 키움증권 입니다.",
        "KHOpenAPI",
        "[HTS 재접속 안내]",
    ]


def test_query_rate_refusals_are_retried_not_lost(make_rig) -> None:
    control = FakeKiwoomControl(holdings={"005930": (20, 68000), "000660": (5, 170000), "035420": (3, 1000)},
                                tr_per_second=2)  # fmt: skip
    rig = make_rig(control, tr_windows=((1.0, 100),))
    rig.connect()
    requested = [t for t, *_ in control.tr_requests]
    assert requested == ["opw00018", "opw00018", "opw00001", "opt10075"]
    assert len(control.calls_of("CommRqData")) > len(requested)  # some were refused with -200 first


def test_condition_search_hits_reach_the_listener(make_rig, fake) -> None:
    rig = make_rig(overrides={"surge.condition": "거래량폭증"})
    rig.connect()
    wait_until(lambda: fake.active_condition is not None, 5, "SendCondition")
    assert fake.calls_of("SendCondition")[0][1:] == ("거래량폭증", 1, 1)
    fake.condition_hit("035720")
    wait_until(lambda: rig.rec.conditions, 5, "the condition hit")
    assert rig.rec.conditions == [("035720", "카카오", "거래량폭증")]


def test_queries_past_the_long_windows_wait_in_the_queue(make_rig, fake) -> None:
    import time as _time

    offset = [0.0]
    rig = make_rig(tr_windows=((1.0, 5), (18.0, 5)), clock=lambda: _time.monotonic() + offset[0])
    rig.connect()  # reconciliation used 4 queries (two balance pages, deposit, orders)
    rig.broker.query_account()  # the 5th goes out at once ...
    rig.broker.query_open_orders()  # ... the 6th must wait for the 18 s window
    rig.settle()
    spin(0.2)
    assert [t for t, *_ in fake.tr_requests][4:] == ["opw00001"]
    assert len(rig.broker.tr_queue) == 1
    assert rig.broker._tr_timer.remainingTime() > 16000  # its wake-up is set about 18 s out
    offset[0] += 18.0  # time passes, and the wake-up comes
    rig.broker.tr_queue.pump()
    wait_until(lambda: len(fake.tr_requests) == 6, 5, "the waiting query")
    assert fake.tr_requests[-1][0] == "opt10075"
