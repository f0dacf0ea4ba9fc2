"""The ``kc`` command: every subcommand has --help; ``kc send`` and ``kc status`` against the
real sim engine on the rig's Redis, as a person at a shell would use them."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

from core.cli import SUBCOMMANDS
from core.send import parse_args_to_command
from tests.helpers.engine_process import EngineProcess

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def kc(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_kc_lists_its_commands():
    out = kc("--help")
    assert out.returncode == 0
    for name in SUBCOMMANDS:
        assert name in out.stdout
    bad = kc("launch")
    assert bad.returncode == 2 and "unknown command 'launch'" in bad.stderr


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name):
    out = kc(name, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout.lower()


def test_send_reads_key_value_arguments_keeping_codes_as_text():
    cmd = parse_args_to_command(["buy", "code=005930", "qty=10", "price=70000"])
    assert cmd == {"cmd": "buy", "code": "005930", "qty": 10, "price": 70000}
    cmd = parse_args_to_command(["subscribe", "codes=005930,000660"])
    assert cmd["codes"] == ["005930", "000660"]
    assert parse_args_to_command(['{"cmd":"ping"}']) == {"cmd": "ping"}
    # a watchlist group is a name, even one that reads as a number; codes= is an empty list
    cmd = parse_args_to_command(["watchgroup_save", "group=2", "codes="])
    assert cmd == {"cmd": "watchgroup_save", "group": "2", "codes": []}
    with pytest.raises(ValueError):
        parse_args_to_command(["buy", "qty"])


@pytest.fixture
def engine(redis_url: str, tmp_path: Path) -> Iterator[EngineProcess]:
    with EngineProcess(redis_url, settings={"sim.seed": 3, "sim.burst_every_s": 0},
                       log_dir=str(tmp_path)) as eng:  # fmt: skip
        eng.wait_ready()
        yield eng


def target(engine: EngineProcess) -> List[str]:
    return ["--redis", engine.redis_url, "--prefix", engine.keys.prefix]


def test_send_trades_and_reports_refusals(engine):
    out = kc("send", "buy", "code=005930", "qty=1", "type=market", *target(engine))
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["ok"] and reply["result"]["order_id"]
    assert engine.redis.hget(engine.keys.state_orders, reply["result"]["order_id"])

    refused = kc("send", "buy", "code=005930", "qty=999999", "price=70000", *target(engine))
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "RISK_REJECTED"

    malformed = kc("send", "buy", "code=5930", "qty=1", "price=70000", *target(engine))
    assert malformed.returncode == 2 and "6-character" in malformed.stderr
    assert engine.redis.llen(engine.keys.cmd) == 0  # nothing was sent


def test_status_reports_the_engine_and_fails_when_it_is_down(engine):
    out = kc("status", *target(engine))
    assert out.returncode == 0, out.stderr
    assert "engine: ready (sim sim)" in out.stdout
    assert "watchlist: group 관심종목 1; master list " in out.stdout
    info = json.loads(kc("status", "--json", *target(engine)).stdout)
    assert info["engine_alive"] and info["engine"]["run_id"]
    engine.kill()
    engine.redis.delete(engine.keys.engine_alive)  # the 3 s expiry, without waiting for it
    down = kc("status", *target(engine))
    assert down.returncode == 1 and "engine: DOWN" in down.stdout


def test_status_says_when_redis_is_unreachable():
    out = kc("status", "--redis", "redis://127.0.0.1:1/0")
    assert out.returncode == 3 and "unreachable" in out.stderr
