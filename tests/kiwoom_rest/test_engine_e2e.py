"""The whole system on Linux with Kiwoom's REST API: ``python -m engine32 --broker kiwoom_rest``
on the fake REST + WebSocket server and a real Redis, driven like ``redis-cli`` would."""

import json
import subprocess
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest

from tests.fakes.kiwoom_rest import FakeKiwoomRest
from tests.helpers.engine_process import EngineProcess

from .conftest import CREDS

pytestmark = pytest.mark.slow


def _events(eng: EngineProcess) -> List[Dict[str, Any]]:
    return [json.loads(fields["e"]) for _id, fields in eng.redis.xrange(eng.keys.events)]


def _wait(predicate: Callable[[], Any], what: str, eng: EngineProcess, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("no {}; engine log:\n{}".format(what, eng.stderr_text()[-3000:]))


def _event(
    eng: EngineProcess, predicate: Callable[[Dict[str, Any]], bool], what: str
) -> Dict[str, Any]:
    return _wait(lambda: next((e for e in _events(eng) if predicate(e)), None), what, eng)


@pytest.fixture
def fake() -> Iterator[FakeKiwoomRest]:
    with FakeKiwoomRest(tick_s=0.2) as server:
        yield server


def _engine(redis_url: str, fake: FakeKiwoomRest, tmp_path: Any, **settings: Any) -> EngineProcess:
    merged = {"engine.kiwoom_rest.base_url": fake.base_url, "engine.kiwoom_rest.ws_url": fake.ws_url,
              "engine.watchlist": ["005930", "000660"]}  # fmt: skip
    merged.update(settings)
    return EngineProcess(redis_url, broker="kiwoom_rest", env=dict(CREDS), log_dir=str(tmp_path),
                         settings=merged)  # fmt: skip


def test_redis_cli_buy_reaches_kt10000_once_with_the_exact_body(redis_server: Any, fake: FakeKiwoomRest,
                                                                 tmp_path: Any) -> None:  # fmt: skip
    if redis_server.cli_binary is None:
        pytest.fail("redis-cli is needed for this test: make test installs redis-tools")
    with _engine(redis_server.url, fake, tmp_path) as eng:
        info = eng.wait_ready(timeout=30)
        assert (info["broker"], info["mode"], info["account"]) == (
            "kiwoom_rest",
            "mock",
            "8012****11",
        )
        assert "mock-trading" in info.get("broker_message", "")
        cli = [redis_server.cli_binary, "-h", redis_server.host, "-p", str(redis_server.port)]
        command = '{"id":"cli-buy-1","cmd":"buy","code":"005930","qty":2,"price":72000}'
        subprocess.run(cli + ["RPUSH", eng.keys.cmd, command], check=True, capture_output=True)
        out = subprocess.run(cli + ["BLPOP", eng.keys.reply("cli-buy-1"), "10"], check=True,
                             capture_output=True, text=True).stdout.splitlines()  # fmt: skip
        reply = json.loads(out[-1])
        assert reply["ok"], reply
        order_id = reply["result"]["order_id"]
        sent = [c for c in fake.calls if c["api_id"] == "kt10000"]
        assert [c["body"] for c in sent] == [
            {
                "dmst_stex_tp": "KRX",
                "stk_cd": "005930",
                "ord_qty": "2",
                "ord_uv": "72000",
                "trde_tp": "0",
                "cond_uv": "",
            }
        ]
        assert sent[0]["path"] == "/api/dostk/ordr"
        _event(eng, lambda e: e["type"] == "order" and e["data"]["order_id"] == order_id
               and e["data"]["status"] == "filled" and e["data"]["cmd_id"] == "cli-buy-1", "filled order")  # fmt: skip
        _event(eng, lambda e: e["type"] == "fill" and e["data"]["order_id"] == order_id, "fill")
        _event(eng, lambda e: e["type"] == "position" and e["data"]["code"] == "005930"
               and e["data"]["qty"] == 22, "position")  # fmt: skip
        _event(
            eng,
            lambda e: e["type"] == "account" and e["data"]["cash"] == 100_000_000 - 144000,
            "account",
        )
        _event(eng, lambda e: e["type"] == "quotes" and any(q["code"] == "005930" for q in e["data"]["items"]),
               "quotes")  # fmt: skip
        assert json.loads(eng.redis.hget(eng.keys.state_orders, order_id))["status"] == "filled"
        assert json.loads(eng.redis.hget(eng.keys.state_positions, "005930"))["qty"] == 22
        assert len([c for c in fake.calls if c["api_id"] == "kt10000"]) == 1  # placed exactly once
        eng.stop()
    assert fake.revoked, "a clean stop revokes the token (au10002)"
    log_text = eng.stderr_text()
    for secret in list(CREDS.values()) + fake.revoked:
        assert secret not in log_text


def test_a_websocket_drop_mid_session_registers_again_and_reconciles(redis_url: str, fake: FakeKiwoomRest,
                                                                     tmp_path: Any) -> None:  # fmt: skip
    with _engine(redis_url, fake, tmp_path) as eng:
        eng.wait_ready(timeout=30)
        # the watchlist and the held codes (which stream whether watched or not)
        streamed = {"005930", "000660", "035420"}
        _wait(lambda: fake.live_sessions() and fake.live_sessions()[0].types.get("0B") == streamed,
              "the watchlist registered", eng)  # fmt: skip
        fake.holdings["005380"] = [7, 240000]  # bought elsewhere (HTS) while the socket was down
        fake.drop_ws()
        _wait(lambda: fake.logins == 2 and fake.live_sessions(), "a second LOGIN", eng)
        session = fake.live_sessions()[0]
        _wait(lambda: streamed <= session.types.get("0B", set()) and session.types.get("00") == {""},
              "everything registered again", eng)  # fmt: skip
        _event(eng, lambda e: e["type"] == "position" and e["data"]["code"] == "005380"
               and e["data"]["qty"] == 7, "the reconciled position")  # fmt: skip
        assert len([c for c in fake.calls if c["api_id"] == "ka00001"]) == 2
        eng.wait_ready(timeout=15)
        assert eng.send({"cmd": "buy", "code": "005930", "qty": 1, "price": 72000}, timeout=10)[
            "ok"
        ]
        eng.stop()


def test_a_token_expired_mid_session_is_renewed_and_the_next_order_works(redis_url: str, fake: FakeKiwoomRest,
                                                                         tmp_path: Any) -> None:  # fmt: skip
    with _engine(redis_url, fake, tmp_path) as eng:
        eng.wait_ready(timeout=30)
        # The engine reads the master list (ka10099, paged) once ready: let it finish, so that
        # the order is the first call to meet the expired token.
        _wait(lambda: int(eng.engine_hash().get("names") or 0), "master list read", eng)
        fake.expire_tokens()
        reply = eng.send({"cmd": "buy", "code": "005930", "qty": 1, "price": 72000}, timeout=10)
        assert reply["ok"], reply
        answers = [c["return_code"] for c in fake.calls if c["api_id"] == "kt10000"]
        assert answers == [3, 0]
        assert len([c for c in fake.calls if c["api_id"] == "au10001"]) == 2
        eng.stop()


def test_a_burst_of_8_orders_no_client_sees_1700_and_nothing_is_sent_twice(
    redis_url: str, tmp_path: Any
) -> None:
    with FakeKiwoomRest(rate_limits={"kt10000": 3}, fill_plan="none") as fake, _engine(
        redis_url, fake, tmp_path, **{"engine.kiwoom_rest.order_per_s": 10.0}
    ) as eng:
        eng.wait_ready(timeout=30)
        ids = [
            eng.push({"cmd": "buy", "code": "005930", "qty": 1, "price": 70000 + 100 * i})
            for i in range(8)
        ]
        replies = [eng.reply(i, timeout=15) for i in ids]
        assert all(r["ok"] for r in replies), [r for r in replies if not r["ok"]]
        accepted = [c for c in fake.calls if c["api_id"] == "kt10000" and c["return_code"] == 0]
        assert sorted(c["body"]["ord_uv"] for c in accepted) == [
            str(70000 + 100 * i) for i in range(8)
        ]
        assert fake.rate_refusals > 0  # Kiwoom said 1700 to the engine, never to a client
        assert len({r["result"]["order_id"] for r in replies}) == 8
        eng.stop()


def test_the_engine_writes_kiwoom_s_master_list_and_refuses_nxt_for_krx_only_codes(
    redis_url: str, fake: FakeKiwoomRest, tmp_path: Any
) -> None:
    """ka10099 (KOSPI and KOSDAQ, every page) becomes P:state:names; a code whose
    ``nxtEnable`` is "N" is refused on NXT before anything reaches kt10000 (issue 10)."""
    with _engine(redis_url, fake, tmp_path, **{"engine.watchlist": ["005930", "263750"]}) as eng:
        eng.wait_ready(timeout=30)
        names = _wait(lambda: eng.redis.hgetall(eng.keys.state_names), "P:state:names", eng)
        assert names == {code: row[0] for code, row in fake.master.items()}
        assert {c["body"]["mrkt_tp"] for c in fake.calls if c["api_id"] == "ka10099"} == {"0", "10"}
        _wait(lambda: eng.engine_hash().get("nxt_codes") == "005930", "nxt_codes from ka10099", eng)
        reply = eng.send({"cmd": "buy", "code": "263750", "qty": 1, "price": 50000,
                          "venue": "NXT"}, timeout=10)  # fmt: skip
        assert not reply["ok"] and reply["error"]["code"] == "RISK_REJECTED", reply
        assert "does not trade on NXT" in reply["error"]["message"]
        assert not [c for c in fake.calls if c["api_id"] == "kt10000"]
        eng.stop()
