"""Configuration: file → environment → flags, errors that name key, file and expectation."""

from pathlib import Path

import pytest

from core.config import DEFAULT_PATH, SCHEMA, ConfigError, load_config, redact


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_checked_in_file_is_valid_and_documents_every_key():
    cfg = load_config(DEFAULT_PATH, environ={})
    assert cfg.redis.prefix == "kc" and cfg.engine.broker == "sim"
    text = DEFAULT_PATH.read_text(encoding="utf-8")
    for section, fields in SCHEMA.items():
        header = "[{}]".format(section)
        assert header in text, header
        for key in fields:
            if key == "keymap":
                assert "[tui.keymap]" in text
                continue
            assert "\n{} = ".format(key) in text, "{} {} is not documented in config.toml".format(
                section, key
            )


def test_precedence_file_then_env_then_flags(tmp_path):
    path = write(
        tmp_path, '[redis]\nurl = "redis://10.0.0.1:6379/0"\n[risk]\nmax_order_qty = 100\n'
    )
    cfg = load_config(path, environ={})
    assert cfg.redis.url == "redis://10.0.0.1:6379/0" and cfg.risk.max_order_qty == 100
    env = {"KC_REDIS_URL": "redis://10.0.0.2:6379/0", "KC_RISK__MAX_ORDER_QTY": "200"}
    cfg = load_config(path, environ=env)
    assert cfg.redis.url == "redis://10.0.0.2:6379/0" and cfg.risk.max_order_qty == 200
    cfg = load_config(
        path,
        environ=env,
        overrides={"redis.url": "redis://10.0.0.3:1/0", "risk.max_order_qty": None},
    )
    assert cfg.redis.url == "redis://10.0.0.3:1/0" and cfg.risk.max_order_qty == 200


def test_kiwoom_subsection_from_file_and_env(tmp_path):
    path = write(tmp_path, '[engine.kiwoom]\ncontrol = "pkg.mod:make"\n')
    assert load_config(path, environ={}).engine_kiwoom.control == "pkg.mod:make"
    env = {"KC_ENGINE_KIWOOM__CONTROL": "tests.fakes.kiwoom_control:create_fake_control"}
    assert load_config(path, environ=env).engine_kiwoom.control.startswith("tests.fakes")


@pytest.mark.parametrize(
    "text, words",
    [
        ("[risk]\nmax_order_qty = -5\n", "[risk] max_order_qty"),
        ('[risk]\nmax_order_qty = "many"\n', "expected an integer"),
        ('[engine]\nbroker = "ib"\n', "sim or kiwoom"),
        ('[engine]\nwatchlist = ["5930"]\n', "6-character"),
        ("[nope]\nx = 1\n", "unknown section [nope]"),
        ('[redis]\nurll = "x"\n', "unknown key"),
        ('[redis]\nurl = "redis://u:hunter2@h:6379/0"\n', "holds a password"),
        ('[database]\npassword = "hunter2"\n', "secrets do not belong"),
        ("[surge]\nwindow_s = 600\nbaseline_s = 60\n", "more than window_s"),
        ("[risk\n", "not valid TOML"),
    ],
)
def test_bad_values_fail_with_key_file_and_expectation(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    message = str(info.value)
    assert words in message
    assert "hunter2" not in message
    if "TOML" not in words and "section" not in words:
        assert str(path) in message


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, ""), environ={"KC_RISK__MAX_ORDER_QTY": "lots"})
    assert "KC_RISK__MAX_ORDER_QTY" in str(info.value) and "integer" in str(info.value)


def test_missing_file_is_an_error_when_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_secrets_come_from_environment_or_file_and_never_show(tmp_path):
    secret = tmp_path / "redis.pass"
    secret.write_text("s3cr3t\n")
    path = write(tmp_path, '[redis]\nusername = "engine"\npassword_file = "{}"\n'.format(secret))
    cfg = load_config(path, environ={})
    assert cfg.redis_password == "s3cr3t"
    assert cfg.redis_url_with_auth() == "redis://engine:s3cr3t@127.0.0.1:6379/0"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in repr(cfg.redis)
    assert redact(cfg.redis_url_with_auth()) == "redis://engine:***@127.0.0.1:6379/0"
    cfg = load_config(path, environ={"KC_REDIS_PASSWORD": "from-env"})
    assert cfg.redis_password == "from-env"


def test_unreadable_password_file_is_a_clear_error(tmp_path):
    path = write(tmp_path, '[database]\npassword_file = "{}"\n'.format(tmp_path / "none"))
    with pytest.raises(ConfigError, match="cannot read the password file"):
        load_config(path, environ={})


def test_integers_become_floats_where_a_number_is_expected(tmp_path):
    cfg = load_config(write(tmp_path, "[risk]\nprice_band_pct = 5\n"), environ={})
    assert cfg.risk.price_band_pct == 5.0 and isinstance(cfg.risk.price_band_pct, float)
