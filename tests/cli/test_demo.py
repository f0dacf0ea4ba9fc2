"""``kc demo``: everything starts on private ports, trades, and nothing is left running after."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open("/proc/{}/stat".format(pid)) as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "stop_signals",
    [
        [signal.SIGINT],
        [signal.SIGTERM],
        [signal.SIGHUP, signal.SIGTERM],  # a closing terminal: hang-up, then terminate
        [signal.SIGKILL],  # no clean-up at all: the children must still not outlive it
    ],
    ids=["SIGINT", "SIGTERM", "SIGHUP+SIGTERM", "SIGKILL"],
)
def test_demo_runs_the_whole_system_and_cleans_up(tmp_path: Path, stop_signals: list) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("KC_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "demo", "--no-tui", "--seed", "5",
         "--data-dir", str(tmp_path / "demo")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = []
    url = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.stdout is not None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"ready — Redis (redis://\S+),", line)
            if match:
                url = match.group(1)
                break
        assert url, "demo did not get ready:\n" + "".join(lines)
        client = redis.Redis.from_url(url, decode_responses=True)
        engine = client.hgetall("kc:engine")
        assert engine["state"] == "ready" and engine["broker"] == "sim"
        engine_pid = int(engine["pid"])
        port = int(url.rsplit(":", 1)[1].split("/")[0])

        client.rpush("kc:cmd", json.dumps({"id": "d1", "cmd": "buy", "code": "005930",
                                           "qty": 1, "type": "market"}))  # fmt: skip
        reply = json.loads(client.blpop(["kc:reply:d1"], 10)[1])
        assert reply["ok"], reply
        # the writer persists the run: its health hash appears and shows commits
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not client.hget("kc:writer", "last_commit_ts"):
            time.sleep(0.2)
        assert client.hget("kc:writer", "last_commit_ts"), client.hgetall("kc:writer")
        client.close()
    finally:
        for sig in stop_signals:
            proc.send_signal(sig)
            time.sleep(0.05)
        out, _ = proc.communicate(timeout=60)
        lines.append(out or "")
    text = "".join(lines)
    if stop_signals != [signal.SIGKILL]:
        assert proc.returncode in (0, 128 + stop_signals[0]), text
        assert "stopped everything" in text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (pid_alive(engine_pid) or port_open(port)):
        time.sleep(0.1)
    assert not pid_alive(engine_pid), "the engine outlived the demo"
    assert not port_open(port), "Redis outlived the demo"
