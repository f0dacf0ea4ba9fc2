"""The app key and secret key: from the environment or from files, never from config.toml."""

import os
from pathlib import Path
from typing import Mapping, Optional

from core.config import ConfigError

from .rest import Credentials

APPKEY_VAR = "KC_KIWOOM_APPKEY"
SECRETKEY_VAR = "KC_KIWOOM_SECRETKEY"


def _one(env: Mapping[str, str], var: str, file_name: str, key: str) -> str:
    value = (env.get(var) or "").strip()
    if value.startswith("change-me"):
        raise ConfigError(
            "{} still holds the example value from .env.example: put your app key and secret "
            "key from openapi.kiwoom.com in .env".format(var)
        )
    if value:
        return value
    if file_name:
        try:
            value = Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                "[engine.kiwoom_rest] {}: cannot read the file ({})".format(key, exc.strerror)
            ) from None
        if value:
            return value
        raise ConfigError("[engine.kiwoom_rest] {}: the file is empty".format(key))
    raise ConfigError(
        "the kiwoom_rest broker needs Kiwoom's app key and secret key: set {} and {} "
        "(or [engine.kiwoom_rest] appkey_file / secretkey_file); see docs/kiwoom-rest.md".format(
            APPKEY_VAR, SECRETKEY_VAR
        )
    )


def load_credentials(section: object, env: Optional[Mapping[str, str]] = None) -> Credentials:
    environ = os.environ if env is None else env
    return Credentials(
        _one(environ, APPKEY_VAR, str(getattr(section, "appkey_file", "") or ""), "appkey_file"),
        _one(
            environ,
            SECRETKEY_VAR,
            str(getattr(section, "secretkey_file", "") or ""),
            "secretkey_file",
        ),  # fmt: skip
    )
