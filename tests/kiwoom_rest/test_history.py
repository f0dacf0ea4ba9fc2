"""History over REST: ``ka10081`` (daily) / ``ka10080`` (minute) on the fake Kiwoom server.

The fake serves its past newest first, 600 (daily) / 900 (minute) rows a page, paged in the
response headers, daily prices unsigned and minute prices signed against the previous close,
today's forming candle included. The broker must page through the headers, stop when it has
enough, ride out a 429, and hand back complete candles oldest first.
"""

import datetime
import json
import subprocess
import threading
from typing import Any, Dict, List

import pytest

from core.protocol.errors import BROKER_ERROR, NOT_READY, RATE_LIMITED
from core.protocol.krx import KST
from engine32.brokers.kiwoom_rest import broker as rest_broker
from engine32.brokers.kiwoom_rest import chart
from tests.fakes.kiwoom_rest import FakeKiwoomRest
from tests.helpers.engine_process import EngineProcess

from .conftest import CREDS

#: A Wednesday, mid-session: today's daily candle and the 10:30 minute are still forming.
NOW = datetime.datetime(2026, 11, 25, 10, 30, 20, tzinfo=KST)
TODAY = "20261125"


def _rig(make_rig: Any, **fake: Any) -> Any:
    fake.setdefault("chart_now", NOW)
    rig = make_rig(fake_kwargs=fake)
    rig.broker.now_kst = lambda: NOW
    return rig


def _chart_calls(rig: Any, api_id: str) -> List[Dict[str, Any]]:
    return [c for c in rig.fake.calls if c["api_id"] == api_id]


def _ms(text: str, fmt: str) -> int:
    return int(datetime.datetime.strptime(text, fmt).replace(tzinfo=KST).timestamp() * 1000)


def test_daily_history_pages_through_the_headers_and_drops_todays_candle(make_rig: Any) -> None:
    rig = _rig(make_rig)
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1d", 1000, done))
    assert result.ok, result
    assert result.value["source"] == "kiwoom_rest"
    candles = result.value["candles"]
    calls = _chart_calls(rig, "ka10081")
    # 600 rows on the first page (one of them today's) are not enough: exactly one more page,
    # asked for with the response's cont-yn/next-key, the same body on both
    assert len(calls) == 2
    assert [(c["cont_yn"], c["next_key"]) for c in calls] == [("", ""), ("Y", "ka10081-600")]
    assert all(c["path"] == "/api/dostk/chart" for c in calls)
    assert [c["body"] for c in calls] == [
        {"stk_cd": "005930", "base_dt": TODAY, "upd_stkpc_tp": "1"}
    ] * 2
    first_rows = calls[0]["answer"]["stk_dt_pole_chart_qry"]
    assert len(first_rows) == 600 and first_rows[0]["dt"] == TODAY  # newest first, today on top
    # the candles: 1000, oldest first, ending yesterday (today's forming candle dropped), and
    # exactly the fake's past read from its strings
    assert len(candles) == 1000
    starts = [c[0] for c in candles]
    assert starts == sorted(set(starts))
    assert candles[-1][0] == _ms("20261124", "%Y%m%d")
    truth = rig.fake.chart_candles("005930", "1d")
    assert truth[-1][0] == _ms(TODAY, "%Y%m%d")  # the fake did serve today's candle
    assert candles == truth[-1001:-1]
    # the wire's strings, read independently: unsigned daily prices
    row = first_rows[1]
    assert not row["cur_prc"].startswith(("+", "-"))
    assert candles[-1][1:] == [int(row[k]) for k in
                               ("open_pric", "high_pric", "low_pric", "cur_prc", "trde_qty")]  # fmt: skip


def test_a_short_history_asks_for_one_page_only(make_rig: Any) -> None:
    rig = _rig(make_rig)
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("000660", "1d", 20, done))
    assert result.ok, result
    assert len(result.value["candles"]) == 20
    assert len(_chart_calls(rig, "ka10081")) == 1


def test_minute_history_takes_the_magnitude_of_signed_prices(make_rig: Any) -> None:
    rig = _rig(make_rig)
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1m", 1200, done))
    assert result.ok, result
    candles = result.value["candles"]
    calls = _chart_calls(rig, "ka10080")
    assert len(calls) == 2 and (calls[1]["cont_yn"], calls[1]["next_key"]) == ("Y", "ka10080-900")
    assert [c["body"] for c in calls] == [
        {"stk_cd": "005930", "tic_scope": "1", "upd_stkpc_tp": "1"}
    ] * 2
    rows = (
        calls[0]["answer"]["stk_min_pole_chart_qry"] + calls[1]["answer"]["stk_min_pole_chart_qry"]
    )
    assert len(calls[0]["answer"]["stk_min_pole_chart_qry"]) == 900
    # the fake really sent signed prices, both ways
    assert any(r["cur_prc"].startswith("-") for r in rows)
    assert any(r["cur_prc"].startswith("+") for r in rows)
    assert rows[0]["cntr_tm"] == "20261125103000"  # newest first: the forming minute on top
    assert len(candles) == 1200
    assert all(min(c[1:5]) > 0 and c[2] >= max(c[1], c[4]) and c[3] <= min(c[1], c[4])
               for c in candles)  # fmt: skip
    # oldest first, ending at 10:29 (the 10:30 minute is still forming)
    assert candles[-1][0] == _ms("20261125102900", "%Y%m%d%H%M%S")
    assert [c[0] for c in candles] == sorted({c[0] for c in candles})
    truth = rig.fake.chart_candles("005930", "1m")
    assert candles == truth[-1201:-1]
    # one row read by hand: "-71900" is a price of 71900
    by_time = {_ms(r["cntr_tm"], "%Y%m%d%H%M%S"): r for r in rows}
    down = next(c for c in candles if by_time[c[0]]["cur_prc"].startswith("-"))
    assert down[4] == int(by_time[down[0]]["cur_prc"][1:])


def test_a_429_is_waited_out_and_never_reaches_the_caller(make_rig: Any) -> None:
    # Kiwoom lets one ka10081 a second through here; the broker would send 50 a second
    rig = _rig(make_rig, rate_limits={"ka10081": 1})
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1d", 5000, done), timeout=40)
    assert result.ok, result
    calls = _chart_calls(rig, "ka10081")
    statuses = [c["status"] for c in calls]
    assert 429 in statuses and rig.fake.rate_refusals >= 1 and rig.broker.rest.rate_retries >= 1
    # every page arrived once: 1300 days, 600 a page → 3 accepted pages, then cont-yn N
    ok = [c for c in calls if c["status"] == 200]
    assert [c["next_key"] for c in ok] == ["", "ka10081-600", "ka10081-1200"]
    # all the fake has, minus today's forming candle
    assert result.value["candles"] == rig.fake.chart_candles("005930", "1d")[:-1]


def test_a_rate_limit_that_outlasts_the_budget_is_rate_limited_not_a_failure(
    make_rig: Any, monkeypatch: Any
) -> None:
    # a budget shorter than Kiwoom's one-second pause: the second page cannot be had in time
    monkeypatch.setattr(rest_broker, "HISTORY_BUDGET_S", 0.3)
    rig = _rig(make_rig, rate_limits={"ka10081": 1})
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1d", 1000, done))
    assert not result.ok and result.error_code == RATE_LIMITED
    assert "rate limit" in result.message and "005930" in result.message
    assert [c["status"] for c in _chart_calls(rig, "ka10081")] == [200, 429]
    # the limit passes: the same request then succeeds
    monkeypatch.setattr(rest_broker, "HISTORY_BUDGET_S", 30.0)
    again = rig.call(lambda done: rig.broker.history("005930", "1d", 1000, done), timeout=30)
    assert again.ok and len(again.value["candles"]) == 1000


def test_no_data_after_the_last_page_ends_the_history_not_the_command(make_rig: Any) -> None:
    rig = _rig(make_rig, chart_days=700, chart_end_no_data=True)
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1d", 5000, done))
    assert result.ok, result
    assert [c["return_code"] for c in _chart_calls(rig, "ka10081")] == [0, 0, 20]
    assert result.value["candles"] == rig.fake.chart_candles("005930", "1d")[:-1]
    # the same answer on the first page is a plain refusal (nothing to show)
    rig.fake.chart_days = 0
    empty = rig.call(lambda done: rig.broker.history("000660", "1d", 5, done))
    assert not empty.ok and "조회할 자료가 없습니다" in empty.message


def test_the_answer_arrives_on_the_qt_thread(make_rig: Any) -> None:
    rig = _rig(make_rig)
    rig.connect()
    threads: List[Any] = []

    def done(result: Any) -> None:
        threads.append(threading.current_thread())
        answers.append(result)

    answers: List[Any] = []
    rig.call(lambda d: rig.broker.history("005930", "1d", 5, lambda r: (done(r), d(r))))
    assert threads == [threading.main_thread()]
    assert answers[0].ok and len(answers[0].value["candles"]) == 5


def test_refusals_are_plain_words(make_rig: Any) -> None:
    rig = _rig(make_rig)
    early = rig.call(lambda done: rig.broker.history("005930", "1d", 5, done))
    assert not early.ok and early.error_code == NOT_READY
    rig.connect()
    unknown = rig.call(lambda done: rig.broker.history("999999", "1d", 5, done))
    assert not unknown.ok and unknown.error_code == BROKER_ERROR
    assert "999999" in unknown.message and "ka10081" in unknown.message
    assert rig.broker.ready  # a refused history costs nothing else


@pytest.mark.slow
def test_redis_cli_history_on_the_engine_publishes_candles(
    redis_server: Any, tmp_path: Any
) -> None:
    """``python -m engine32 --broker kiwoom_rest`` on the fake with a real Redis: a redis-cli
    ``history`` pages ka10081 and ends as one ``candles`` event marked ``kiwoom_rest``."""
    if redis_server.cli_binary is None:
        pytest.fail("redis-cli is needed for this test: make test installs redis-tools")
    with FakeKiwoomRest() as fake, EngineProcess(
        redis_server.url, broker="kiwoom_rest", env=dict(CREDS), log_dir=str(tmp_path),
        settings={"engine.kiwoom_rest.base_url": fake.base_url,
                  "engine.kiwoom_rest.ws_url": fake.ws_url},
    ) as eng:  # fmt: skip
        eng.wait_ready(timeout=30)
        cli = [redis_server.cli_binary, "-h", redis_server.host, "-p", str(redis_server.port)]
        command = '{"id":"cli-hist-1","cmd":"history","code":"005930","interval":"1d","count":700}'
        subprocess.run(cli + ["RPUSH", eng.keys.cmd, command], check=True, capture_output=True)
        out = subprocess.run(cli + ["BLPOP", eng.keys.reply("cli-hist-1"), "60"], check=True,
                             capture_output=True, text=True).stdout.splitlines()  # fmt: skip
        assert out, eng.stderr_text()[-3000:]
        reply = json.loads(out[-1])
        assert reply["ok"], reply
        assert (reply["result"]["count"], reply["result"]["source"]) == (700, "kiwoom_rest")
        events = [json.loads(f["e"]) for _id, f in eng.redis.xrange(eng.keys.events)]
        candles = [e["data"] for e in events if e["type"] == "candles"]
        assert len(candles) == 1 and candles[0]["source"] == "kiwoom_rest"
        assert (candles[0]["code"], candles[0]["interval"]) == ("005930", "1d")
        got = candles[0]["candles"]
        assert len(got) == 700 and got[0][0] == reply["result"]["first"]
        assert got[-1][0] == reply["result"]["last"]
        # the fake's own past (minus today's candle if it served one), read from its strings
        truth = fake.chart_candles("005930", "1d")
        today_ms = _ms(fake.chart_moment().strftime("%Y%m%d"), "%Y%m%d")
        complete = [c for c in truth if c[0] < today_ms]
        assert got == complete[-700:]
        pages = [c for c in fake.calls if c["api_id"] == "ka10081"]
        assert [p["cont_yn"] for p in pages if p["status"] == 200] == ["", "Y"]


def test_rows_that_are_not_candles_are_skipped_not_fatal() -> None:
    good = {"cntr_tm": "20261124152900", "cur_prc": "-70100", "open_pric": "+70300",
            "high_pric": "+70400", "low_pric": "-69900", "trde_qty": "1234"}  # fmt: skip
    rows: List[Any] = [
        "junk",
        None,
        dict(good, cur_prc="x"),  # not a number
        dict(good, cntr_tm="2026112415"),  # not a time
        dict(good, cur_prc="0"),  # no price
        dict(good, cur_prc="1e400"),  # not a finite number
        good,
    ]
    assert chart.read_rows(rows, "1m") == [
        [_ms("20261124152900", "%Y%m%d%H%M%S"), 70300, 70400, 69900, 70100, 1234]
    ]
    daily = {"dt": "20261124", "cur_prc": "70100", "open_pric": "70300", "high_pric": "70400",
             "low_pric": "69900", "trde_qty": "1234"}  # fmt: skip
    assert chart.read_rows([daily], "1d") == [
        [_ms("20261124", "%Y%m%d"), 70300, 70400, 69900, 70100, 1234]
    ]
