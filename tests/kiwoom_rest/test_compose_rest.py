"""docker-compose.yml's "rest" profile: the engine on the VM with the kiwoom_rest broker.

No Docker engine here: the file is checked as a file, and the service's command line is run
for real up to the point where it needs Kiwoom (the keys are checked before anything else)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]


def _engine() -> dict:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose["services"]["engine"]


def test_the_engine_service_is_only_in_the_rest_profile() -> None:
    engine = _engine()
    assert engine["profiles"] == ["rest"]
    assert engine["command"][:4] == ["kc", "engine", "--broker", "kiwoom_rest"]
    assert engine["restart"] == "unless-stopped"  # until `kc engine --supervise` exists
    assert engine["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "ports" not in engine  # the engine only talks out (Redis, Kiwoom)
    assert (REPO / engine["build"]["dockerfile"]).exists()


def test_the_engine_uses_its_own_acl_user_and_keys_from_env() -> None:
    env = _engine()["environment"]
    assert env["KC_REDIS__USERNAME"] == "engine"
    assert env["KC_REDIS_PASSWORD"].startswith("${REDIS_ENGINE_PASSWORD:?")
    assert env["KC_KIWOOM_APPKEY"].startswith("${KC_KIWOOM_APPKEY:?")
    assert env["KC_KIWOOM_SECRETKEY"].startswith("${KC_KIWOOM_SECRETKEY:?")
    assert env["KC_ENGINE_KIWOOM_REST__SERVER"] == "${KC_KIWOOM_SERVER:-mock}"
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert "KC_KIWOOM_APPKEY=change-me" in example and "KC_KIWOOM_SECRETKEY=change-me" in example


def test_the_example_keys_stop_the_engine_with_words(redis_url: str) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", KC_KIWOOM_APPKEY="change-me-appkey",
               KC_KIWOOM_SECRETKEY="change-me-secretkey", PYTHONPATH=str(REPO))  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "engine32", "--broker", "kiwoom_rest", "--redis", redis_url,
                          "--prefix", "composetest"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=str(REPO))  # fmt: skip
    assert out.returncode != 0
    assert "example value" in out.stderr and "change-me" not in out.stderr.replace("KC_KIWOOM", "")
