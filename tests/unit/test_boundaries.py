"""The architecture's rules: Python 3.8 for the engine side, import contracts, ruff."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(
            "{} is not installed: run make test (it installs the dev dependencies)".format(name)
        )
    return found


def test_engine_side_runs_on_python_38():
    result = subprocess.run(
        [
            tool("vermin"),
            "--target=3.8-",
            "--violations",
            "--no-tips",
            "--eval-annotations",
            "engine32",
            "core/protocol",
            "core/config.py",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vermin_would_catch_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(x: int | None) -> list[int]:\n    match x:\n        case _:\n            return []\n"
    )
    result = subprocess.run(
        [
            tool("vermin"),
            "--target=3.8-",
            "--violations",
            "--no-tips",
            "--eval-annotations",
            str(bad),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0


def test_import_contracts_are_kept():
    result = subprocess.run([tool("lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
