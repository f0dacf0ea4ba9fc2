"""End to end, as a person would: the console in tmux at 120×40 against the real sim engine.

Keys go in with ``send-keys``; what is on screen comes back with ``capture-pane``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]
REPO = Path(__file__).resolve().parents[2]


class Tmux:
    """A private tmux server (its own socket), so tests never touch a user's sessions."""

    def __init__(self) -> None:
        self.socket = "kct" + uuid.uuid4().hex[:8]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=check
        )

    def start(self, name: str, command: str) -> None:
        env = {"PYTHONPATH": str(REPO), "TERM": "xterm-256color"}
        args = ["new-session", "-d", "-s", name, "-x", "120", "-y", "40"]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        self.run(*args, command)
        self.run("resize-window", "-t", name, "-x", "120", "-y", "40", check=False)

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name).stdout

    def keys(self, name: str, *keys: str) -> None:
        for key in keys:
            self.run("send-keys", "-t", name, key)
            time.sleep(0.15)

    def alive(self, name: str) -> bool:
        return self.run("has-session", "-t", name, check=False).returncode == 0

    def pane_pid(self, name: str) -> int:
        return int(self.run("display-message", "-p", "-t", name, "#{pane_pid}").stdout.strip())

    def wait(
        self, name: str, check: Callable[[str], bool], timeout: float = 15.0, what: str = ""
    ) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen(name) if self.alive(name) else ""
            if check(text):
                return text
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or 'the screen'}; screen was:\n{text}")

    def kill_server(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    try:
        yield t
    finally:
        t.kill_server()


def console_command(redis_url: str, prefix: str) -> str:
    return f"{sys.executable} -m tui --redis {redis_url} --prefix {prefix}"


def test_trade_in_tmux_like_a_person(tmux, redis_url, prefix, engine) -> None:
    tmux.start("kc", console_command(redis_url, prefix))
    screen = tmux.wait(
        "kc", lambda s: "READY" in s and ("▲" in s or "▼" in s), what="prices and READY"
    )
    for title in ("Watchlist", "Positions", "Orders", "Surge"):
        assert title in screen
    assert "sim paper" in screen and "KST" in screen
    assert "장중" in screen  # the simulator's market is always open, whatever the hour in Seoul
    first_row = next(
        line for line in screen.splitlines() if line.startswith("│0") or line.startswith("│3")
    )
    code = first_row[1:7]
    tmux.keys("kc", "b")
    screen = tmux.wait(
        "kc", lambda s: "Send" not in s and " BUY " in s and "order value" in s, what="the ticket"
    )
    assert code in screen
    tmux.keys("kc", "Up", "Up", "Enter")
    tmux.wait("kc", lambda s: "Enter send" in s, what="the review step")
    tmux.keys("kc", "Enter")
    screen = tmux.wait("kc", lambda s: "Order accepted" in s, what="the accepted notification")
    assert f"BUY {code} 1 @" in screen
    screen = tmux.wait(
        "kc", lambda s: "filled" in s and "1 held" in s, what="the fill and the position"
    )
    positions = [
        line for line in screen.splitlines() if line.startswith(f"│{code}") and "│" in line[1:]
    ]
    assert positions, screen
    tmux.keys("kc", "q")
    deadline = time.monotonic() + 10
    while tmux.alive("kc") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive("kc"), "q did not quit the console"


def test_console_exits_when_the_terminal_goes_away(tmux, redis_url, prefix) -> None:
    tmux.start("gone", console_command(redis_url, prefix))
    tmux.wait("gone", lambda s: "Watchlist" in s, what="the console")
    pid = tmux.pane_pid("gone")
    tmux.run("kill-session", "-t", "gone")  # the terminal closes: SIGHUP
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, 9)
    raise AssertionError("the console kept running after its terminal closed")
