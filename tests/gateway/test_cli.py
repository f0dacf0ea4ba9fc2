"""``kc gateway`` from the shell: token helpers and refusing to start without tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.gateway.auth import TokenStore

REPO = Path(__file__).resolve().parents[2]


def kc_gateway(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KC_")}
    full.update(env or {}, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "core.cli", "gateway", *args],
        input=stdin, env=full, cwd=str(REPO), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_new_token_prints_a_token_and_its_hashed_line():
    done = kc_gateway("--new-token", "phone:read")
    assert done.returncode == 0, done.stderr
    token = done.stdout.split("token (give it to the client; it is not stored anywhere): ")[1]
    token = token.splitlines()[0].strip()
    line = done.stdout.split("tokens_file line: ")[1].strip()
    assert token not in line and line.startswith("phone:read:sha256:")
    assert TokenStore.parse(line, "printed").check(token).name == "phone"


def test_hash_token_reads_the_token_from_stdin():
    done = kc_gateway("--hash-token", "bot:trade", stdin="bot-token-0123456789abcdef\n")
    assert done.returncode == 0, done.stderr
    store = TokenStore.parse(done.stdout.strip(), "printed")
    assert store.check("bot-token-0123456789abcdef").can_trade


def test_no_tokens_or_bad_tokens_stop_it_with_a_clear_message(tmp_path):
    done = kc_gateway("--redis", "redis://127.0.0.1:1/0")
    assert done.returncode == 2 and "no tokens" in done.stderr
    done = kc_gateway(env={"KC_GATEWAY_TOKENS": "phone:admin:secret-token-0123456789"})
    assert done.returncode == 2 and "scope must be read or trade" in done.stderr
    assert "secret-token" not in done.stderr
    done = kc_gateway("--listen", "nowhere")
    assert done.returncode == 2 and "[gateway] listen" in done.stderr
