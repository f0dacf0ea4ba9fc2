"""``python -m tui``: help, and configuration errors in plain words."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )


def test_help_lists_the_options() -> None:
    out = run("--help")
    assert out.returncode == 0
    for flag in ("--config", "--redis", "--prefix"):
        assert flag in out.stdout


def test_bad_config_is_refused_with_key_and_reason(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[tui]\nrefresh_hz = 500\n[tui.keymap]\nbuy = "b"\n')
    out = run("--config", str(cfg))
    assert out.returncode == 2
    assert "refresh_hz" in out.stderr and str(cfg) in out.stderr
    cfg.write_text('[tui.keymap]\nby = "b"\n')
    out = run("--config", str(cfg))
    assert out.returncode == 2 and "by: no such action" in out.stderr


def test_password_in_url_is_refused_without_echoing_it() -> None:
    out = run("--redis", "redis://u:hunter2@127.0.0.1:1/0")
    assert out.returncode == 2
    assert "hunter2" not in out.stderr
