"""Pieces of the kiwoom_rest broker on their own: error forms, expiry, config, readers."""

import asyncio
import datetime

import pytest

from core.config import ConfigError, load_config
from engine32.brokers.kiwoom import tr
from engine32.brokers.kiwoom_rest import trs
from engine32.brokers.kiwoom_rest.errors import detail_code, error_of
from engine32.brokers.kiwoom_rest.rest import KST, _Bucket, parse_expires_dt


def test_both_forms_of_the_token_error_are_a_token_problem() -> None:
    small = error_of(
        200,
        {"return_code": 3, "return_msg": "인증에 실패했습니다[8005:Token이 유효하지 않습니다]"},
        "ka00001",
    )
    big = error_of(200, {"return_code": 8005, "return_msg": "Token이 유효하지 않습니다"}, "ka00001")
    for err in (small, big):
        assert err is not None and err.code == 8005 and err.token_problem and not err.sent
        assert "token is not valid" in str(err)


def test_rate_and_batch_limits_are_told_apart() -> None:
    rate = error_of(
        429,
        {
            "return_code": 5,
            "return_msg": "허용된 요청 개수를 초과하였습니다[1700:… API ID=kt10000]",
        },
        "kt10000",
    )
    batch = error_of(
        200,
        {
            "return_code": 5,
            "return_msg": "허용된 요청 개수를 초과하였습니다[1634:… API ID=ka10095]",
        },
        "ka10095",
    )
    assert rate is not None and rate.rate_limited and not rate.sent
    assert batch is not None and not batch.rate_limited and batch.code == 1634
    bare = error_of(429, {}, "kt10000")
    assert bare is not None and bare.rate_limited


def test_plain_words_for_ip_and_terminal_problems() -> None:
    err = error_of(
        200,
        {"return_code": 2, "return_msg": "단말기 인증 실패[8050:지정단말기 인증에 실패했습니다]"},
        "au10001",
    )
    assert err is not None and err.fatal and "IP is not registered" in str(err)
    assert "another IP" in str(error_of(200, {"return_code": 8010, "return_msg": ""}, "ka00001"))
    assert "not served on this URL" in str(
        error_of(200, {"return_code": 2, "return_msg": "[1504:x]"}, "kt00018")
    )
    assert error_of(200, {"return_code": 0, "return_msg": "ok"}, "ka00001") is None
    assert detail_code(1, "… CODE=8031 …") == 8031


def test_an_order_refused_for_a_business_reason_may_have_been_processed_is_not_assumed() -> None:
    err = error_of(200, {"return_code": 2, "return_msg": "매도가능수량이 부족합니다"}, "kt10001")
    assert (
        err is not None
        and "매도가능수량" in str(err)
        and not err.token_problem
        and not err.rate_limited
    )


def test_expires_dt_is_kst() -> None:
    when = parse_expires_dt("20260107083713")
    assert datetime.datetime.fromtimestamp(when, KST).strftime("%Y%m%d%H%M%S") == "20260107083713"
    assert datetime.datetime.fromtimestamp(when, datetime.timezone.utc).hour == 23
    assert parse_expires_dt("garbage") == 0.0


def test_a_1700_lowers_the_pace_to_what_kiwoom_let_through() -> None:
    now = [100.0]
    bucket = _Bucket(10.0, clock=lambda: now[0])
    for _ in range(3):
        bucket.succeeded()
    next_at = bucket.refused()
    assert bucket.per_s == 3.0 and next_at == 101.0
    now[0] = 100.5
    assert bucket.refused() == 102.5  # a second refusal in a row waits longer
    assert bucket.per_s == 2.0
    asyncio.run(asyncio.wait_for(_Bucket(5.0).take(), 1))


def test_config_section_from_the_environment_and_its_checks() -> None:
    cfg = load_config(environ={"KC_ENGINE_KIWOOM_REST__SERVER": "real"})
    assert cfg.engine_kiwoom_rest.server == "real" and cfg.engine_kiwoom_rest.base_url == ""
    with pytest.raises(ConfigError, match="mock or real"):
        load_config(overrides={"engine.kiwoom_rest.server": "paper"}, environ={})
    with pytest.raises(ConfigError, match="ws"):
        load_config(overrides={"engine.kiwoom_rest.ws_url": "http://x"}, environ={})
    assert (
        load_config(overrides={"engine.broker": "kiwoom_rest"}, environ={}).engine.broker
        == "kiwoom_rest"
    )


def test_keys_in_the_config_file_are_refused(tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[engine.kiwoom_rest]\nappkey = "x"\n')
    with pytest.raises(ConfigError, match="secrets do not belong"):
        load_config(path, environ={})


def test_rest_answers_read_by_the_ocx_readers() -> None:
    body = {"tot_evlt_pl": "-00000000196888", "acnt_evlt_remn_indv_tot": []}
    rows = [{"stk_cd": "A005930", "stk_nm": "삼성전자", "rmnd_qty": "000000000000020",
             "pur_pric": "000000000068000", "cur_prc": "000000000072000"}]  # fmt: skip
    summary, positions = tr.read_balance(trs.RestPage("kt00018", body, trs.BALANCE_KEYS, rows=rows))
    assert summary.unrealized_pnl == -196888
    assert (
        positions[0].code,
        positions[0].qty,
        positions[0].avg_price,
        positions[0].unrealized_pnl,
    ) == ("005930", 20, 68000, 80000)
    orders = tr.read_orders(trs.RestPage("ka10075", {}, trs.ORDER_KEYS, rows=[
        {"ord_no": "0000139", "stk_cd": "005930", "io_tp_nm": "-매도", "ord_qty": "000000000010",
         "oso_qty": "000000000004", "cntr_qty": "000000000006", "ord_pric": "000000072000",
         "trde_tp": "보통", "orig_ord_no": "0000000", "ord_stt": "접수"}]))  # fmt: skip
    assert (orders[0].side, orders[0].remaining_qty, orders[0].status, orders[0].orig_order_id) == (
        "sell",
        4,
        "partially_filled",
        "",
    )
    assert trs.normalize_order_no("00024") == "0000024" and trs.normalize_order_no("0000000") == ""
    assert trs.order_body("005930", 1, 0, market=True)["ord_uv"] == ""
