"""The kiwoom_rest broker keeps engine32's Python 3.8 promise, run for real: Python 3.8 with only
``engine32/requirements-win32.txt`` (httpx < 0.29, websockets 13.x there) runs
``python -m engine32 --broker kiwoom_rest`` against the fake server, places an order and
fetches a history."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.fakes.kiwoom_rest import FakeKiwoomRest
from tests.integration.test_py38_engine import REPO, engine_venv

from .conftest import CREDS

pytestmark = pytest.mark.slow


def test_the_rest_broker_trades_on_python_38(redis_url: str, tmp_path: Path) -> None:
    python = engine_venv()
    versions = subprocess.run([str(python), "-c", "import sys, httpx, websockets; print(sys.version_info[:2], "
                               "websockets.__version__)"], capture_output=True, text=True, check=True)  # fmt: skip
    assert versions.stdout.startswith("(3, 8) 13."), versions.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO), **CREDS)
    prefix = "py38r-" + os.urandom(3).hex()
    with FakeKiwoomRest() as fake:
        log = open(tmp_path / "engine.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [str(python), "-m", "engine32", "--broker", "kiwoom_rest", "--redis", redis_url, "--prefix", prefix,
             "--set", "engine.kiwoom_rest.base_url=" + fake.base_url,
             "--set", "engine.kiwoom_rest.ws_url=" + fake.ws_url],
            cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline and client.hget(prefix + ":engine", "state") != "ready"
            ):
                assert proc.poll() is None, (tmp_path / "engine.log").read_text()
                time.sleep(0.1)
            assert client.hget(prefix + ":engine", "broker") == "kiwoom_rest"
            command = {"id": "p38r", "cmd": "buy", "code": "005930", "qty": 1, "price": 72000}
            client.rpush(prefix + ":cmd", json.dumps(command))
            got = client.blpop([prefix + ":reply:p38r"], 10)
            assert got is not None, (tmp_path / "engine.log").read_text()
            assert json.loads(got[1])["ok"], got
            assert len(fake.sent_orders("kt10000")) == 1
            # history (ka10080 paged through the headers) on 3.8 as well
            history = {"id": "p38h", "cmd": "history", "code": "005930", "interval": "1m",
                       "count": 1000}  # fmt: skip
            client.rpush(prefix + ":cmd", json.dumps(history))
            got = client.blpop([prefix + ":reply:p38h"], 60)
            assert got is not None, (tmp_path / "engine.log").read_text()
            reply = json.loads(got[1])
            assert reply["ok"] and reply["result"]["source"] == "kiwoom_rest", reply
            assert len([c for c in fake.calls if c["api_id"] == "ka10080"]) >= 1
        finally:
            proc.terminate()
            code = proc.wait(20)
            log.close()
            client.close()
        assert code == 0, (tmp_path / "engine.log").read_text()
        assert fake.revoked  # the clean stop revoked the token on 3.8 too
