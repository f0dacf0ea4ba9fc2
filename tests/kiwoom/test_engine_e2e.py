"""The whole path on Linux: ``python -m engine32 --broker kiwoom`` on the fake control, driven
through the real Redis like ``redis-cli`` would: ping, buy → reply, order/fill/position/account
events in ``P:events`` and snapshots in ``P:state:*``."""

import json
import time
from typing import Any, Callable, Dict, List

import pytest

from tests.helpers.engine_process import EngineProcess

FAKE = "tests.fakes.kiwoom_control:create_fake_control"

pytestmark = pytest.mark.slow


def _events(eng: EngineProcess) -> List[Dict[str, Any]]:
    return [json.loads(fields["e"]) for _id, fields in eng.redis.xrange(eng.keys.events)]


def _wait_event(
    eng: EngineProcess, predicate: Callable[[Dict[str, Any]], bool], what: str
) -> Dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for event in _events(eng):
            if predicate(event):
                return event
        time.sleep(0.05)
    raise AssertionError("no {} event; engine log:\n{}".format(what, eng.stderr_text()[-3000:]))


def test_engine_trades_through_the_kiwoom_adapter_on_the_fake_control(
    redis_url: str, tmp_path: Any
) -> None:
    env = {"KC_ENGINE_KIWOOM__CONTROL": FAKE, "KC_FAKE_KIWOOM_TICK_MS": "100"}
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path),
                       settings={"engine.watchlist": ["005930", "000660"]}) as eng:  # fmt: skip
        info = eng.wait_ready(timeout=30)
        assert (info["broker"], info["mode"], info["account"]) == ("kiwoom", "mock", "8012****11")
        assert "mock-trading" in info.get("broker_message", "")

        assert eng.send({"cmd": "ping"})["ok"]
        reply = eng.send({"cmd": "buy", "code": "005930", "qty": 3, "price": 72000}, timeout=10)
        assert reply["ok"], reply
        order_id = reply["result"]["order_id"]
        assert order_id.isdigit() and len(order_id) == 7

        order = _wait_event(eng, lambda e: e["type"] == "order" and e["data"]["order_id"] == order_id
                            and e["data"]["status"] == "filled", "filled order")  # fmt: skip
        assert order["data"]["filled_qty"] == 3 and order["data"]["cmd_id"] == reply["id"]
        fill = _wait_event(
            eng, lambda e: e["type"] == "fill" and e["data"]["order_id"] == order_id, "fill"
        )
        assert fill["data"]["qty"] == 3 and fill["data"]["side"] == "buy"
        _wait_event(eng, lambda e: e["type"] == "position" and e["data"]["code"] == "005930"
                    and e["data"]["qty"] == 3, "position")  # fmt: skip
        _wait_event(
            eng,
            lambda e: e["type"] == "account" and e["data"]["cash"] < 100000000,
            "account after the fill",
        )
        _wait_event(eng, lambda e: e["type"] == "quotes" and any(q["code"] == "005930" for q in e["data"]["items"]),
                    "quotes")  # fmt: skip

        snapshot = json.loads(eng.redis.hget(eng.keys.state_orders, order_id))
        assert snapshot["status"] == "filled"
        assert json.loads(eng.redis.hget(eng.keys.state_positions, "005930"))["qty"] == 3

        cancel = eng.send({"cmd": "cancel", "order_id": order_id})
        assert not cancel["ok"] and cancel["error"]["code"] in ("INVALID_ARGUMENT", "BROKER_ERROR")
        eng.stop()


def test_condition_search_hits_become_surge_alerts(redis_url: str, tmp_path: Any) -> None:
    env = {
        "KC_ENGINE_KIWOOM__CONTROL": FAKE,
        "KC_FAKE_KIWOOM_TICK_MS": "100",
        "KC_FAKE_KIWOOM_CONDITION_HITS": "035720",
    }
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path),
                       settings={"surge.condition": "거래량폭증"}) as eng:  # fmt: skip
        eng.wait_ready(timeout=30)
        alert = _wait_event(eng, lambda e: e["type"] == "surge", "surge")
        assert alert["data"]["code"] == "035720"
        assert "거래량폭증" in alert["data"]["reason"]
        assert json.loads(eng.redis.lindex(eng.keys.state_surge, 0))["code"] == "035720"
        eng.stop()


def test_redis_cli_buy_reaches_send_order_with_the_exact_arguments(
    redis_server: Any, tmp_path: Any
) -> None:
    """The whole path the issue names: ``redis-cli`` buy → command consumer → ``SendOrder``
    with the exact arguments → chejan → order, fill, position and account in Redis."""
    import subprocess

    if redis_server.cli_binary is None:
        pytest.fail("redis-cli is needed for this test: make test installs redis-tools")
    call_log = tmp_path / "calls.jsonl"
    env = {
        "KC_ENGINE_KIWOOM__CONTROL": FAKE,
        "KC_FAKE_KIWOOM_TICK_MS": "100",
        "KC_FAKE_KIWOOM_CALL_LOG": str(call_log),
    }
    with EngineProcess(redis_server.url, broker="kiwoom", env=env, log_dir=str(tmp_path)) as eng:
        eng.wait_ready(timeout=30)
        cli = [redis_server.cli_binary, "-h", redis_server.host, "-p", str(redis_server.port)]
        command = '{"id":"cli-buy-1","cmd":"buy","code":"005930","qty":2,"price":72000}'
        subprocess.run(cli + ["RPUSH", eng.keys.cmd, command], check=True, capture_output=True)
        out = subprocess.run(
            cli + ["BLPOP", eng.keys.reply("cli-buy-1"), "10"],
            check=True, capture_output=True, text=True,
        ).stdout.splitlines()  # fmt: skip
        reply = json.loads(out[-1])
        assert reply["ok"], reply
        order_id = reply["result"]["order_id"]

        sends = [
            args
            for sig, args in (json.loads(line) for line in call_log.read_text().splitlines())
            if sig.startswith("SendOrder(")
        ]
        assert len(sends) == 1, sends  # placed exactly once
        rqname, screen, account, order_type, code, qty, price, hoga, orig = sends[0]
        assert (account, order_type, code, qty, price, hoga, orig) == (
            "8012345611",
            1,
            "005930",
            2,
            72000,
            "00",
            "",
        )
        assert len(screen) == 4 and screen.isdigit() and screen != "0000" and rqname

        _wait_event(eng, lambda e: e["type"] == "order" and e["data"]["order_id"] == order_id
                    and e["data"]["status"] == "filled", "filled order")  # fmt: skip
        _wait_event(
            eng, lambda e: e["type"] == "fill" and e["data"]["order_id"] == order_id, "fill"
        )
        _wait_event(eng, lambda e: e["type"] == "position" and e["data"]["qty"] == 2, "position")
        _wait_event(eng, lambda e: e["type"] == "account", "account")
        assert json.loads(eng.redis.hget(eng.keys.state_positions, "005930"))["qty"] == 2
        assert eng.redis.hget(eng.keys.state_account, "cash") is not None
        eng.stop()
