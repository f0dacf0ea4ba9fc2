"""The Windows engine's promise, checked on this machine: with Python 3.8 and nothing but
``engine32/requirements-win32.txt`` installed (less pykiwoom, which needs pywin32), the engine
starts, answers commands and trades on the simulator.

vermin checks the syntax; this runs the code. The 3.8 interpreter comes from pyenv or PATH;
its virtual environment is kept in ``.venv-py38`` and rebuilt when the requirements change.
"""

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "engine32" / "requirements-win32.txt"
VENV = REPO / ".venv-py38"

pytestmark = pytest.mark.slow


def find_python38() -> Optional[str]:
    candidates = [shutil.which("python3.8")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.8*/bin/python3.8"))]
    for path in candidates:
        if not path:
            continue
        try:
            out = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 8)":
            return path
    return None


def engine_venv() -> Path:
    """A Python 3.8 venv with the Windows requirements (pykiwoom left out: it needs pywin32)."""
    python38 = find_python38()
    if python38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine (pyenv install 3.8 to run this)")
    wanted = [line for line in REQUIREMENTS.read_text().splitlines()
              if line.strip() and not line.startswith("#") and not line.startswith("pykiwoom")]  # fmt: skip
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    python = VENV / "bin" / "python"
    if not (stamp.exists() and stamp.read_text() == digest and python.exists()):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([python38, "-m", "venv", str(VENV)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.fail("pip could not install the Windows requirements on 3.8:\n" + install.stderr)
        stamp.write_text(digest)
    return python


def test_engine_runs_on_python_38_with_only_its_requirements(redis_url: str, tmp_path: Path):
    python = engine_venv()
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert version == "(3, 8)"
    # nothing of the 64-bit side is importable there
    probe = subprocess.run([str(python), "-c", "import textual"], capture_output=True)
    assert probe.returncode != 0

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO))
    prefix = "py38-" + os.urandom(3).hex()
    log = open(tmp_path / "engine.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(python), "-m", "engine32", "--broker", "sim", "--redis", redis_url, "--prefix", prefix],
        cwd=str(tmp_path), env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.hget(prefix + ":engine", "state") != "ready":
            assert proc.poll() is None, (tmp_path / "engine.log").read_text()
            time.sleep(0.1)
        assert client.hget(prefix + ":engine", "state") == "ready", (
            tmp_path / "engine.log"
        ).read_text()
        command = {"id": "p38", "cmd": "buy", "code": "005930", "qty": 1, "type": "market"}
        client.rpush(prefix + ":cmd", json.dumps(command))
        got = client.blpop([prefix + ":reply:p38"], 10)
        assert got is not None, (tmp_path / "engine.log").read_text()
        reply = json.loads(got[1])
        assert reply["ok"], reply
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not client.hget(
            prefix + ":state:positions", "005930"
        ):
            time.sleep(0.05)
        assert json.loads(client.hget(prefix + ":state:positions", "005930"))["qty"] == 1
    finally:
        proc.terminate()
        code = proc.wait(20)
        log.close()
        client.close()
    assert code == 0, (tmp_path / "engine.log").read_text()
