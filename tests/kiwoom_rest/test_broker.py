"""The kiwoom_rest broker on the fake Kiwoom REST + WebSocket server, in one process: its
network thread talks TCP to the fake, its answers reach the (test's) Qt loop as signals."""

import json
from typing import Any, List

import pytest

from core.config import ConfigError, load_config
from engine32.brokers.base import ModifyRequest, OrderRequest
from engine32.brokers.kiwoom_rest import KiwoomRestBroker
from tests.kiwoom.helpers import Recorder, spin, wait_until

from .conftest import CREDS


def _distinct_ids(rec: Recorder, code: str) -> List[str]:
    return sorted({o.order_id for o in rec.orders if o.code == code})


def test_reconciles_every_page_before_ready(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    info = rig.broker.info()
    assert (info.broker, info.mode, info.account, info.connected) == (
        "kiwoom_rest",
        "mock",
        "8012****11",
        True,
    )
    assert {p.code: p.qty for p in rig.rec.positions} == {"005930": 20, "000660": 5, "035420": 3}
    assert rig.rec.position("005930").avg_price == 68000  # "000000000068000" read as 68000
    assert rig.rec.accounts[-1].cash == 100_000_000
    pages = [c for c in rig.fake.calls if c["api_id"] == "kt00018"]
    assert len(pages) == 2 and pages[1]["cont_yn"] == "Y"  # paged through the response headers
    ids = [c["api_id"] for c in rig.fake.calls if c["api_id"] != "au10001"]
    assert ids[:5] == ["ka00001", "kt00018", "kt00018", "kt00001", "ka10075"]
    # the WebSocket logged in and registered the account streams before reconciling
    session = rig.fake.live_sessions()[0]
    assert session.types["00"] == {""} and session.types["04"] == {""}


def test_a_limit_buy_sends_the_exact_body_once_and_becomes_order_fill_position(
    make_rig: Any,
) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 3, 72000, "limit", "cmd-1"), done))  # fmt: skip
    assert result.ok, result
    order_id = result.value["order_id"]
    sent = rig.fake.sent_orders("kt10000")
    assert [c["body"] for c in sent] == [
        {
            "dmst_stex_tp": "KRX",
            "stk_cd": "005930",
            "ord_qty": "3",
            "ord_uv": "72000",
            "trde_tp": "0",
            "cond_uv": "",
        }
    ]
    wait_until(lambda: rig.rec.order(order_id).status == "filled", 10, "the fill")
    assert rig.rec.order(order_id).cmd_id == "cmd-1"
    assert [(f.qty, f.price) for f in rig.rec.fills_of(order_id)] == [(3, 72000)]
    wait_until(lambda: rig.rec.position("005930").qty == 23, 10, "the position")
    wait_until(lambda: rig.rec.accounts[-1].cash == 100_000_000 - 3 * 72000, 10, "the cash")


def test_a_market_sell_sends_trde_tp_3_with_an_empty_price(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("000660", "sell", 2, 0, "market", "cmd-m"), done))  # fmt: skip
    assert result.ok, result
    body = rig.fake.sent_orders("kt10001")[0]["body"]
    assert (body["trde_tp"], body["ord_uv"]) == ("3", "")


def test_the_receipt_before_the_http_answer_makes_one_order_not_two(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"ack_first": True, "fill_plan": "none"})
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 4, 70000, "limit", "cmd-race"), done))  # fmt: skip
    assert result.ok
    order_id = result.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).cmd_id == "cmd-race", 5, "the command id")
    assert _distinct_ids(rig.rec, "005930") == [order_id]
    first = [o for o in rig.rec.orders if o.order_id == order_id][0]
    assert first.status == "accepted"  # the 접수 came first, without a command id yet
    assert len(rig.fake.sent_orders("kt10000")) == 1
    assert [o.order_id for o in rig.broker.open_orders()] == [order_id]


def test_partial_fills_at_two_prices(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"fill_plan": "two_prices"})
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 10, 72100, "limit", "c2"), done))  # fmt: skip
    order_id = result.value["order_id"]
    wait_until(lambda: sum(f.qty for f in rig.rec.fills_of(order_id)) == 10, 10, "both fills")
    assert [(f.qty, f.price) for f in rig.rec.fills_of(order_id)] == [(5, 72000), (5, 72010)]
    wait_until(lambda: rig.rec.order(order_id).status == "filled", 5, "filled")


def test_cancel_sends_0_for_all_remaining(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"fill_plan": "none"})
    rig.connect()
    placed = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 5, 60000, "limit", "c3"), done))  # fmt: skip
    order_id = placed.value["order_id"]
    wait_until(lambda: rig.rec.order(order_id).status == "accepted", 5, "accepted")
    cancel = rig.call(lambda done: rig.broker.cancel_order(order_id, "c4", done))
    assert cancel.ok and cancel.value["order_id"] == order_id
    body = rig.fake.sent_orders("kt10003")[0]["body"]
    assert body == {
        "dmst_stex_tp": "KRX",
        "orig_ord_no": order_id,
        "stk_cd": "005930",
        "cncl_qty": "0",
    }
    wait_until(lambda: rig.rec.order(order_id).status == "cancelled", 5, "cancelled")
    assert rig.broker.open_orders() == []


def test_modify_moves_all_remaining_to_the_new_price(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"fill_plan": "none"})
    rig.connect()
    placed = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 5, 60000, "limit", "c5"), done))  # fmt: skip
    old = placed.value["order_id"]
    wait_until(lambda: rig.rec.order(old).status == "accepted", 5, "accepted")
    modified = rig.call(
        lambda done: rig.broker.modify_order(ModifyRequest(old, None, 61000, "c6"), done)
    )
    assert modified.ok, modified
    new = modified.value["order_id"]
    assert new != old
    body = rig.fake.sent_orders("kt10002")[0]["body"]
    assert (body["orig_ord_no"], body["mdfy_qty"], body["mdfy_uv"]) == (old, "0", "61000")
    wait_until(lambda: rig.rec.order(old).status == "cancelled", 5, "the original replaced")
    assert rig.rec.order(new).price == 61000 and rig.rec.order(new).remaining_qty == 5


def test_an_expired_token_is_renewed_and_the_next_order_works(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    issued = rig.broker.rest.tokens_issued
    rig.fake.expire_tokens()  # as a re-issue elsewhere does: 8005 with hours left on expires_dt
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 1, 72000, "limit", "c7"), done))  # fmt: skip
    assert result.ok, result
    assert rig.broker.rest.tokens_issued == issued + 1
    answers = [c["return_code"] for c in rig.fake.calls if c["api_id"] == "kt10000"]
    assert answers == [3, 0]  # refused unprocessed once (8005), then placed once
    assert rig.rec.connected


def test_a_token_near_expires_dt_is_renewed_before_use(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"token_ttl_s": 3600})
    rig.connect()
    issued = rig.broker.rest.tokens_issued
    rig.fake.advance(3600 - 300)  # 5 minutes left, under the 10-minute margin
    rig.broker.rest.wall_clock = rig.fake.now
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 1, 72000, "limit", "c8"), done))  # fmt: skip
    assert result.ok
    assert rig.broker.rest.tokens_issued == issued + 1
    assert [c["return_code"] for c in rig.fake.calls if c["api_id"] == "kt10000"] == [0]


def test_a_burst_of_8_orders_over_the_rate_limit_is_queued_not_failed(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"rate_limits": {"kt10000": 3}, "fill_plan": "none"},
                   settings={"engine.kiwoom_rest.order_per_s": 10.0})  # fmt: skip
    rig.connect()
    answers: List[Any] = []
    for i in range(8):
        rig.broker.place_order(OrderRequest("005930", "buy", 1, 60000 + i * 10, "limit", "b%d" % i),
                               answers.append)  # fmt: skip
    wait_until(lambda: len(answers) == 8, 20, "8 answers")
    assert all(a.ok for a in answers), [a for a in answers if not a.ok]
    accepted = rig.fake.sent_orders("kt10000")
    assert sorted(c["body"]["ord_uv"] for c in accepted) == [str(60000 + i * 10) for i in range(8)]
    assert rig.fake.rate_refusals > 0  # Kiwoom said 1700; nobody saw it
    assert len({a.value["order_id"] for a in answers}) == 8


def test_a_websocket_drop_registers_everything_again_and_reconciles(make_rig: Any) -> None:
    rig = make_rig()
    rig.broker.subscribe(["005930", "000660"])
    rig.connect()
    wait_until(lambda: rig.fake.live_sessions() and rig.fake.live_sessions()[0].types.get("0B")
               == {"005930", "000660"}, 5, "the quote registration")  # fmt: skip
    before = rig.broker.reconciles
    rig.fake.drop_ws()
    wait_until(lambda: not rig.rec.connected, 5, "the drop to be reported")
    wait_until(lambda: rig.rec.connected, 10, "the session to come back")
    session = rig.fake.live_sessions()[0]
    assert session.types["0B"] == {"005930", "000660"} and session.types["00"] == {""}
    assert rig.broker.reconciles == before + 1
    assert rig.fake.logins == 2


def test_a_kick_is_said_in_words_and_retried_slowly(make_rig: Any) -> None:
    rig = make_rig(settings={"engine.kiwoom_rest.kick_retry_s": 2})
    rig.connect()
    rig.fake.kick()
    wait_until(lambda: not rig.rec.connected, 5, "the kick")
    assert "same app key" in rig.rec.connections[-1][1]
    spin(1.0)
    assert rig.fake.logins == 1  # no reconnect storm
    wait_until(lambda: rig.rec.connected, 10, "the slow retry")
    assert rig.fake.logins == 2


def test_pings_are_echoed_verbatim_and_a_silent_session_counts_as_dead(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"ping_interval_s": 0.1, "ping_timeout_s": 1.0},
                   settings={"engine.kiwoom_rest.ws_idle_s": 1})  # fmt: skip
    rig.connect()
    wait_until(
        lambda: any("time" in p for p in rig.fake.live_sessions()[0].pongs),
        5,
        "a PING with a field",
    )
    assert rig.rec.connected and rig.fake.logins == 1
    rig.fake.zombie(True)
    wait_until(lambda: not rig.rec.connected, 5, "the idle session to be declared dead")
    assert "no frame" in rig.rec.connections[-1][1]
    rig.fake.zombie(False)
    wait_until(lambda: rig.rec.connected, 10, "a new session")


def test_quotes_names_and_the_1634_split(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"tick_s": 0.05, "max_codes": 40})
    rig.broker.subscribe(["005930"])
    rig.connect()
    wait_until(lambda: any(q.code == "005930" for q in rig.rec.quotes), 5, "a quote")
    q = [q for q in rig.rec.quotes if q.code == "005930"][-1]
    assert q.price in (71990, 72010) and q.low in (71990,)
    wait_until(lambda: rig.broker.base_price("005930") == 71000, 5, "the previous close")
    assert rig.rec.names["005930"] == "삼성전자"
    codes = ["{:06d}".format(100000 + i) for i in range(150)]
    rows = rig.broker.net.submit(rig.broker.multi_quote(codes)).result(20)
    assert sorted(r["stk_cd"] for r in rows) == codes
    answers = [c["return_code"] for c in rig.fake.calls if c["api_id"] == "ka10095"]
    assert 5 in answers  # 1634 came back and the batch was split, not retried as it was


def test_condition_search_hits(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"condition_hits": ["035720"]},
                   settings={"surge.condition": "거래량폭증"})  # fmt: skip
    rig.connect()
    wait_until(lambda: rig.rec.conditions, 5, "a condition hit")
    assert rig.rec.conditions[0][0] == "035720" and rig.rec.conditions[0][2] == "거래량폭증"
    frames = [f["trnm"] for f in rig.fake.sessions[0].frames_in if f["trnm"].startswith("CNSR")]
    assert frames == ["CNSRLST", "CNSRREQ"]
    req = [f for f in rig.fake.sessions[0].frames_in if f["trnm"] == "CNSRREQ"][0]
    assert req["search_type"] == "1" and req["seq"] == "0"


def test_no_key_secret_or_token_in_logs_or_events(make_rig: Any, secrets_log: Any) -> None:
    rig = make_rig()
    rig.connect()
    rig.fake.expire_tokens()
    rig.call(
        lambda done: rig.broker.place_order(
            OrderRequest("005930", "buy", 1, 72000, "limit", "s"), done
        )
    )
    rig.broker.disconnect()
    rig.broker.net.join(10)
    text = secrets_log.text + json.dumps([repr(x) for x in rig.rec.orders + rig.rec.accounts])
    text += " ".join(m for _c, m in rig.rec.connections) + repr(rig.broker.credentials)
    for secret in list(CREDS.values()) + list(rig.fake.revoked):
        assert secret not in text
    assert rig.fake.revoked, "the token was not revoked on a clean stop (au10002)"


def test_missing_credentials_are_a_clear_error() -> None:
    cfg = load_config(environ={})
    with pytest.raises(ConfigError, match="KC_KIWOOM_APPKEY"):
        KiwoomRestBroker(Recorder(), cfg, env={})


def test_the_example_keys_from_env_example_are_refused_in_words() -> None:
    cfg = load_config(environ={})
    env = {"KC_KIWOOM_APPKEY": "change-me-appkey", "KC_KIWOOM_SECRETKEY": "change-me-secretkey"}
    with pytest.raises(ConfigError, match="example value"):
        KiwoomRestBroker(Recorder(), cfg, env=env)


def test_keys_from_files(tmp_path: Any, qapp: Any) -> None:
    (tmp_path / "appkey").write_text("file-appkey\n")
    (tmp_path / "secret").write_text("file-secret\n")
    cfg = load_config(overrides={"engine.kiwoom_rest.appkey_file": str(tmp_path / "appkey"),
                                 "engine.kiwoom_rest.secretkey_file": str(tmp_path / "secret")},
                      environ={})  # fmt: skip
    broker = KiwoomRestBroker(Recorder(), cfg, env={})
    assert broker.credentials == ("file-appkey", "file-secret")
    assert "file-" not in repr(broker.credentials)


def test_a_token_refused_after_one_reissue_makes_the_broker_lost_then_it_recovers(
    make_rig: Any,
) -> None:
    rig = make_rig(recover_s=0.2)
    rig.connect()
    rig.fake.token_ttl_s = -10  # every token Kiwoom issues is already invalid
    rig.fake.expire_tokens()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 1, 72000, "limit", "t1"), done))  # fmt: skip
    assert (
        not result.ok
        and result.error_code == "BROKER_ERROR"
        and "token is not valid" in result.message
    )
    assert [c["return_code"] for c in rig.fake.calls if c["api_id"] == "kt10000"] == [
        3,
        3,
    ]  # one re-issue
    assert rig.fake.sent_orders("kt10000") == []
    wait_until(lambda: not rig.rec.connected, 5, "the broker to be lost")
    assert "token is not valid" in rig.rec.connections[-1][1]
    rig.fake.token_ttl_s = 86400
    wait_until(lambda: rig.rec.connected, 10, "the broker to recover")
    again = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 1, 72000, "limit", "t2"), done))  # fmt: skip
    assert again.ok


SCRIPT = """
import sys, time
from PyQt5.QtCore import QCoreApplication
from core.config import load_config
from engine32.brokers.kiwoom_rest import KiwoomRestBroker
from tests.kiwoom.helpers import Recorder, wait_until
app = QCoreApplication([])
cfg = load_config(overrides={"engine.kiwoom_rest.base_url": sys.argv[1],
                             "engine.kiwoom_rest.ws_url": sys.argv[2]}, environ={})
rec = Recorder()
broker = KiwoomRestBroker(rec, cfg)
broker.connect()
wait_until(lambda: rec.connected, 15, "ready")
print("ready", flush=True)
"""  # ends without disconnect(): the network thread must not keep the process alive


def test_a_program_that_ends_without_disconnect_is_not_held_by_the_network_thread(
    tmp_path: Any,
) -> None:
    import os
    import subprocess
    import sys

    from tests.fakes.kiwoom_rest import FakeKiwoomRest

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **CREDS)
    with FakeKiwoomRest() as fake:
        out = subprocess.run([sys.executable, "-c", SCRIPT, fake.base_url, fake.ws_url], env=env,
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        assert out.returncode == 0 and "ready" in out.stdout, out.stderr[-2000:]
        assert fake.revoked  # it still revoked its token on the way out


def test_an_unregistered_ip_is_said_in_plain_words_and_not_hammered(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"issue_refusal": 8050}, reconnect_base_s=0.5)
    rig.broker.connect()
    wait_until(lambda: rig.rec.connections, 10, "a word on the connection")
    assert not rig.rec.connected
    assert "IP is not registered" in rig.rec.connections[-1][1]
    spin(1.0)
    assert (
        len([c for c in rig.fake.calls if c["api_id"] == "au10001" or c["path"] == "/oauth2/token"])
        <= 3
    )


def test_at_most_200_items_per_connection(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    codes = ["{:06d}".format(200000 + i) for i in range(250)]
    rig.broker.subscribe(codes)
    session = rig.fake.live_sessions()[0]
    wait_until(lambda: len(session.types.get("0B", ())) == 199, 10, "199 codes registered")
    assert all(f.get("return_code") is None for f in session.frames_in)
    regs = [f for f in session.frames_in if f["trnm"] == "REG"]
    assert max(len(f["data"][0]["item"]) for f in regs) <= 100


def test_an_order_without_an_answer_is_never_sent_again(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"order_answer_delay_s": 1.5},
                   settings={"engine.kiwoom_rest.timeout_s": 0.5})  # fmt: skip
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 2, 72000, "limit", "lost-answer"), done))  # fmt: skip
    assert not result.ok and result.error_code == "BROKER_ERROR"
    assert "no answer" in result.message and "order list is being checked" in result.message
    # Kiwoom did place it: the order and its fill arrive on the WebSocket all the same
    wait_until(
        lambda: any(o.status == "filled" for o in rig.rec.orders if o.code == "005930"),
        10,
        "the fill",
    )
    spin(2.0)
    assert len(rig.fake.sent_orders("kt10000")) == 1  # sent once, never again


def test_a_refused_order_says_kiwooms_reason(make_rig: Any) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("035420", "sell", 50, 200000, "limit", "too-many"), done))  # fmt: skip
    assert not result.ok and result.error_code == "BROKER_ERROR"
    assert (
        result.message.startswith("Kiwoom rejected the order") and "매도가능수량" in result.message
    )
    assert rig.rec.connected


def test_junk_from_the_websocket_costs_nothing(make_rig: Any) -> None:
    rig = make_rig()
    rig.broker.subscribe(["005930"])
    rig.connect()
    for junk in ('{"trnm":"REAL","data":[{"type":"00","item":"","values":{"9203":"0000999","911":"abc","900":"x"}}]}',
                 '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":["not","a","dict"]}]}',
                 '{"trnm":"REAL","data":[{"type":"04","item":"","values":{"9001":"A005930","930":"1e9999"}}]}',
                 '{"trnm":"REAL","data":"nope"}', "not json", '["a list"]', '{"trnm":42}',
                 '{"trnm":"REAL","data":[{"type":"0B","item":"005930","values":{"10":"+7a"}}]}'):  # fmt: skip
        rig.fake.push_raw(junk)
    spin(0.5)
    assert rig.rec.connected
    result = rig.call(lambda done: rig.broker.place_order(
        OrderRequest("005930", "buy", 1, 72000, "limit", "after-junk"), done))  # fmt: skip
    assert result.ok


def test_the_token_is_renewed_before_expires_dt_even_when_idle(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"token_ttl_s": 3600}, renew_check_s=0.1)
    rig.connect()
    issued = rig.broker.rest.tokens_issued
    rig.broker.rest.wall_clock = lambda: rig.fake.now() + 3300  # 5 minutes before expires_dt
    wait_until(lambda: rig.broker.rest.tokens_issued > issued, 5, "a renewal")
    assert [c for c in rig.fake.calls if c["api_id"] not in ("au10001", "")][-1]["return_code"] == 0
