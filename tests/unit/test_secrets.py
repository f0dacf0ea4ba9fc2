"""Secrets in every URL form: one redaction function, one refusing function, one credential merge
(issue 9, defects 3 and 4). Each form is refused in the file, the environment and the flags
alike, with the password never in the message, and redacted wherever it is written."""

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from core.config import ConfigError, holds_password, load_config, redact, with_credentials

ROOT = Path(__file__).resolve().parents[2]

PW = "Hx7-secret"

#: (key, value holding PW in some form): every form a URL or DSN can carry a password in.
FORMS = [
    ("redis.url", "redis://engine:Hx7-secret@vm:6379/0"),
    ("redis.url", "redis://:Hx7-secret@vm:6379/0"),
    ("redis.url", "redis://vm:6379/0?password=Hx7-secret"),
    ("redis.url", "redis://vm:6379/0?db=0&password=Hx7-secret&x=1"),
    ("redis.url", "rediss://engine:Hx7-secret@vm:6380/0"),
    ("redis.url", "unix://engine:Hx7-secret@/run/redis.sock?db=0"),
    ("redis.url", "unix:///run/redis.sock?db=0&password=Hx7-secret"),
    ("redis.url", "redis://engine:Hx7%2Fsecret%40x@vm:6379/0"),  # percent-encoded / @
    ("redis.url", "redis://engine:Hx7/sec@ret:x@vm:6379/0"),  # raw / @ : in the password
    ("redis.url", "redis://engine:Hx7-secret/@vm:6379/0"),  # kc status crashed on this one
    ("database.url", "postgresql://kc:Hx7-secret@db:5432/kc"),
    ("database.url", "postgres://kc:Hx7/sec@ret@db:5432/kc?sslmode=disable"),
    ("database.url", "postgresql://kc@db:5432/kc?password=Hx7-secret"),
    ("database.url", "postgresql://kc@db:5432/kc?sslmode=require&PASSWORD=Hx7-secret"),
    ("database.url", "host=db dbname=kc user=kc password=Hx7-secret"),
    ("database.url", "host=db password = 'Hx7 sec\\'ret' dbname=kc"),
]

#: Values without a password: left alone by redaction and accepted.
CLEAN = [
    "redis://127.0.0.1:6379/0",
    "redis://engine@vm:6379/0",
    "rediss://vm:6380/0?ssl_cert_reqs=required",
    "unix:///run/redis.sock?db=0",
    "postgresql://kc@db:5432/kc?sslmode=disable",
]


def _secret_part(value: str) -> str:
    """The password as it appears in ``value`` (raw, percent-encoded or quoted)."""
    if "Hx7%2F" in value:
        return "Hx7%2Fsecret"
    if "sec\\'ret" in value:
        return "sec\\'ret"
    if "Hx7/sec@ret" in value:
        return "sec@ret"
    return PW


@pytest.mark.parametrize("key, value", FORMS)
def test_every_form_is_redacted(key, value):
    text = "connecting to {} failed: refused".format(value)
    out = redact(text)
    assert _secret_part(value) not in out and "Hx7" not in out, out
    assert "***" in out and out.startswith("connecting to ") and out.endswith(" failed: refused")
    assert holds_password(value)


@pytest.mark.parametrize("value", CLEAN)
def test_values_without_a_password_are_left_alone(value):
    assert redact(value) == value and not holds_password(value)
    key = "redis.url" if value.startswith(("redis", "unix")) else "database.url"
    assert load_config(None, environ={}, overrides={key: value}).get(*key.split(".")) == value


@pytest.mark.parametrize("key, value", FORMS)
@pytest.mark.parametrize("origin", ["file", "env", "flag"])
def test_every_form_is_refused_from_file_env_and_flags(tmp_path, key, value, origin):
    section, name = key.split(".")
    path = tmp_path / "c.toml"
    path.write_text("")
    env = {}
    overrides = {}
    if origin == "file":
        path.write_text('[{}]\n{} = """{}"""\n'.format(section, name, value.replace("\\", "\\\\")))
    elif origin == "env":
        env["KC_{}_URL".format(section.upper())] = value
    else:
        overrides[key] = value
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env, overrides=overrides)
    message = str(info.value)
    assert "holds a password" in message
    assert "Hx7" not in message, message
    assert "KC_{}_PASSWORD".format(section.upper()) in message


@pytest.mark.parametrize(
    "url, user, password",
    [
        ("redis://vm:6379/0", "engine", "p/w@x:y%z"),
        ("rediss://vm:6380/2", "", "a b"),
        ("unix:///run/redis.sock?db=0", "engine", "s/@:"),
        ("redis://[::1]:6379/0", "engine", "pw"),
        ("redis://engine@vm:6379/0", "", "pw/1"),
    ],
)
def test_credential_merge_keeps_odd_passwords_whole(url, user, password):
    merged = with_credentials(url, user, password)
    kwargs = redis.connection.parse_url(merged)
    assert kwargs["password"] == password
    assert kwargs.get("username") == (user or urlsplit(url).username)
    assert password not in redact(merged) or password == "pw"
    assert redact(merged).count("***") == 1


def test_password_with_slash_in_the_environment_is_merged_not_crashed(tmp_path):
    """Before: a password with ``/`` made ``kc status`` crash with ``Port could not be cast``."""
    cfg = load_config(
        None,
        environ={"KC_REDIS_PASSWORD": "a/b@c", "KC_REDIS__USERNAME": "tui"},
    )
    url = cfg.redis_url_with_auth()
    assert redis.connection.parse_url(url)["password"] == "a/b@c"
    assert redis.connection.parse_url(url)["username"] == "tui"


def _run(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("-m", "core.status", "--redis", "redis://kc:Hx7-secret@127.0.0.1:1/0"),
        ("-m", "core.status", "--redis", "redis://127.0.0.1:1/0?password=Hx7-secret"),
        ("-m", "core.writer", "--dsn", "host=db password=Hx7-secret"),
        ("-m", "core.writer", "--redis", "unix://:Hx7-secret@/tmp/r.sock"),
        ("-m", "engine32", "--redis", "rediss://e:Hx7/secret@127.0.0.1:1/0"),
    ],
)
def test_entry_points_refuse_passwords_in_flags(argv):
    """A password in a flag would show in ``ps`` to every user of the machine: refused at
    once (exit 2), the message redacted."""
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    done = _run(*argv, env=env)
    assert done.returncode == 2, done.stderr
    assert "holds a password" in done.stderr
    assert "Hx7" not in done.stderr + done.stdout


def test_writer_flags_get_the_environment_credentials():
    """Defect 4: ``kc writer --redis URL --dsn DSN`` merges KC_REDIS_PASSWORD,
    KC_REDIS__USERNAME and KC_DATABASE_PASSWORD like the engine and ``kc status`` do."""
    from core.writer.__main__ import parse_args, settings_of

    environ = {
        "KC_REDIS_PASSWORD": "r/pw",
        "KC_REDIS__USERNAME": "writer",
        "KC_DATABASE_PASSWORD": "d@pw",
    }
    args = parse_args(["--redis", "redis://vm:6379/0", "--dsn", "postgresql://kc@db/kc"])
    s = settings_of(args, environ)
    r = redis.connection.parse_url(s.redis_url)
    assert (r["username"], r["password"]) == ("writer", "r/pw")
    assert urlsplit(s.dsn).password == "d%40pw" and "kc:" in s.dsn


def test_kc_status_with_odd_passwords_says_why_without_them(tmp_path):
    """Before: a password with ``/`` in the file crashed ``kc status`` (``Port could not be
    cast``); now the file's URL is refused, and the same password from the environment is
    merged and used, the error redacted."""
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cfg = tmp_path / "c.toml"
    cfg.write_text('[redis]\nurl = "redis://kc:Hx7/secret@127.0.0.1:1/0"\n')
    done = _run("-m", "core.status", "--config", str(cfg), env=env)
    assert done.returncode == 2 and "holds a password" in done.stderr
    assert "Hx7" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    cfg.write_text('[redis]\nurl = "redis://127.0.0.1:1/0"\nusername = "kc"\n')
    env["KC_REDIS_PASSWORD"] = "Hx7/secret@x"
    done = _run("-m", "core.status", "--config", str(cfg), env=env)
    assert done.returncode == 3 and "unreachable" in done.stderr, done.stderr
    assert "Hx7" not in done.stderr + done.stdout and "Traceback" not in done.stderr
