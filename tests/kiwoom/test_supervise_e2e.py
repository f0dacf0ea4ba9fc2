"""Issue 17 end to end: the overnight -106 recovered by ``--supervise``, and twenty open orders
cancelled in one ``cancel_all`` - ``python -m engine32`` on the fake control through real Redis."""

import json
import signal
import time
from typing import Any, Dict, List

import pytest

from tests.helpers.engine_process import EngineProcess

FAKE = "tests.fakes.kiwoom_control:create_fake_control"

pytestmark = pytest.mark.slow


def _runs_ready(eng: EngineProcess, count: int, timeout: float) -> List[str]:
    """Wait until ``count`` different engine runs have each said ready; their run ids."""
    seen: List[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert eng.proc is not None and eng.proc.poll() is None, eng.tail()
        fields = eng.engine_hash()
        run = fields.get("run_id", "")
        if fields.get("state") == "ready" and run and run not in seen:
            seen.append(run)
            if len(seen) >= count:
                return seen
        time.sleep(0.05)
    raise AssertionError("only {} ready runs: {}\n{}".format(len(seen), seen, eng.tail(80)))


def test_an_overnight_of_daily_disconnects_recovers_through_supervise(
    redis_url: str, tmp_path: Any
) -> None:
    """Each login is dropped with -106 after 4 s (Kiwoom's 05:05 disconnect, compressed); the
    engine answers what it holds, exits 75, and the supervisor starts a fresh one, three nights
    running. Afterwards a buy still goes through, and SIGTERM stops everything with 0."""
    env = {
        "KC_ENGINE_KIWOOM__CONTROL": FAKE,
        "KC_FAKE_KIWOOM_TICK_MS": "0",
        "KC_FAKE_KIWOOM_DROP_AFTER_MS": "4000",
        "KC_SUPERVISE_BACKOFF_S": "0.2",
    }
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path), extra_args=["--supervise"],
                       settings={"engine.kiwoom.maintenance_windows": "none"}) as eng:  # fmt: skip
        runs = _runs_ready(eng, 1, 60)
        reply = eng.send({"cmd": "buy", "code": "005930", "qty": 1, "price": 65000}, timeout=10)
        assert reply["ok"], reply  # a resting order of the first night
        runs = _runs_ready(eng, 4, 120)
        assert len(set(runs)) == 4
        log = eng.stderr_text()
        assert log.count("exit 75") >= 3 or log.count("asked for a new process") >= 3, log[-3000:]
        # (Each run makes a fresh fake control, so the first night's order is not there to be
        # reconciled again: the fake keeps no server-side state across processes.)
        # A new run still trades (a few seconds before its own drop: send at once).
        _runs_ready(eng, 1, 60)
        buy = eng.send({"cmd": "buy", "code": "005930", "qty": 1, "price": 70000}, timeout=10)
        assert buy["ok"] or buy["error"]["code"] == "NOT_READY", buy
        assert eng.proc is not None
        eng.proc.send_signal(signal.SIGTERM)
        assert eng.proc.wait(30) == 0


@pytest.mark.parametrize("count", [20, 50])  # 50: every order [risk] max_open_orders allows
def test_open_orders_cancel_in_one_cancel_all(redis_url: str, tmp_path: Any, count: int) -> None:
    env = {"KC_ENGINE_KIWOOM__CONTROL": FAKE, "KC_FAKE_KIWOOM_TICK_MS": "0"}
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path)) as eng:
        eng.wait_ready(timeout=30)
        ids = [eng.push({"cmd": "buy", "code": "005930", "qty": 1, "price": 64000 + 100 * (i % 5)})
               for i in range(count)]  # fmt: skip
        replies: Dict[str, Any] = {i: eng.reply(i, timeout=40) for i in ids}
        assert all(r["ok"] for r in replies.values()), replies
        # At 5 orders per 1.1 s, 50 cancels take ~11 s: longer than the dispatcher's 10 s
        # broker timeout, which each answered cancel now pushes back.
        reply = eng.send({"cmd": "cancel_all"}, timeout=40)
        assert reply["ok"], reply
        assert reply["result"]["count"] == count and reply["result"]["errors"] == [], reply
        assert "BROKER_ERROR" not in json.dumps(reply)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            orders = [json.loads(v) for v in eng.redis.hgetall(eng.keys.state_orders).values()]
            if len(orders) == count and all(o["status"] == "cancelled" for o in orders):
                break
            time.sleep(0.05)
        assert sorted({o["status"] for o in orders}) == ["cancelled"], orders
        eng.stop()


def test_on_minus_106_the_engine_answers_flushes_and_exits_75(
    redis_url: str, tmp_path: Any
) -> None:
    env = {
        "KC_ENGINE_KIWOOM__CONTROL": FAKE,
        "KC_FAKE_KIWOOM_TICK_MS": "0",
        "KC_FAKE_KIWOOM_DROP_AFTER_MS": "3000",
    }
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path)) as eng:
        eng.wait_ready(timeout=30)
        assert eng.proc is not None
        code = eng.proc.wait(30)
        assert code == 75, eng.tail()
        assert not eng.redis.exists(eng.keys.engine_alive)  # its last writes were flushed
        fields = eng.engine_hash()
        assert "-106" in fields.get("broker_message", ""), fields
        # A command sent now waits for the next engine (the supervisor starts it): none lost.
        cmd_id = eng.push({"cmd": "ping"})
        assert eng.redis.llen(eng.keys.cmd) == 1 and cmd_id
