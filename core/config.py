"""Configuration: ``config.toml`` → environment (``KC_*``) → command-line flags.

Runs on Python 3.8 inside the engine (``tomli`` there, ``tomllib`` on 3.11+). Every value is
checked against :data:`SCHEMA`; a wrong one fails at start with a :class:`ConfigError` naming
the key, the file and what was expected. Secrets never come from the checked-in file:
``KC_REDIS_PASSWORD`` / ``KC_DATABASE_PASSWORD`` or the ``password_file`` keys.

Usage::

    cfg = load_config("config.toml", overrides={"redis.url": "redis://127.0.0.1:7000/0"})
    cfg.redis.url, cfg.risk.max_order_value, cfg.get("sim", "seed")
"""

import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import quote, unquote, urlsplit, urlunsplit

try:
    import tomllib as _toml  # novermin - Python 3.11+; the engine on 3.8 uses tomli below
except ImportError:  # pragma: no cover - exercised on the Windows engine
    import tomli as _toml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says where and why."""


class Field:
    """One key: its type, default, an optional extra check and a description for messages."""

    def __init__(
        self,
        kind: type,
        default: Any,
        what: str,
        check: Optional[Callable[[Any], bool]] = None,
        item: Optional[type] = None,
    ) -> None:
        self.kind = kind
        self.default = default
        self.what = what
        self.check = check
        self.item = item


def _positive(v: Any) -> bool:
    return v > 0


def _non_negative(v: Any) -> bool:
    return v >= 0


def _one_of(*choices: str) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _start_at(v: Any) -> bool:
    """``[sim] start_at``: empty, or what core.protocol.sessions.parse_start_at reads."""
    if v == "":
        return True
    from core.protocol import krx, sessions

    try:
        sessions.parse_start_at(v, krx.now_kst())
    except ValueError:
        return False
    return True


_CODE = re.compile(r"^[0-9A-Z]{6}$")


def _codes(v: Any) -> bool:
    return all(isinstance(c, str) and _CODE.fullmatch(c) for c in v)


_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_WINDOW = re.compile(
    r"^{d}(-{d})?\s+([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$".format(d=_DAY)
)


def _maintenance_windows(v: Any) -> bool:
    """``[engine.kiwoom] maintenance_windows``: "none", or entries like "mon-sat 05:00-06:55"
    (KST; engine32.supervise reads them)."""
    text = str(v).strip().lower()
    return text == "none" or all(_WINDOW.match(" ".join(e.split())) for e in text.split(","))


SCHEMA: Dict[str, Dict[str, Field]] = {
    "redis": {
        "url": Field(
            str,
            "redis://127.0.0.1:6379/0",
            "a redis:// or rediss:// URL without a password",
            lambda v: v.startswith(("redis://", "rediss://", "unix://")),
        ),
        "prefix": Field(
            str,
            "kc",
            "a short name without spaces or glob characters",
            lambda v: bool(re.match(r"^[A-Za-z0-9_.-]{1,32}$", v)),
        ),
        "username": Field(str, "", "an ACL user name, or empty"),
        "password_file": Field(str, "", "the path of a file holding the Redis password, or empty"),
    },
    "database": {
        "url": Field(
            str,
            "",
            "a postgresql:// DSN without a password, or empty for no database",
            lambda v: v == "" or v.startswith(("postgres://", "postgresql://")),
        ),
        "password_file": Field(
            str, "", "the path of a file holding the database password, or empty"
        ),
    },
    "engine": {
        "broker": Field(
            str,
            "sim",
            "sim or kiwoom (OpenAPI+), or kiwoom_rest",
            _one_of("sim", "kiwoom", "kiwoom_rest"),
        ),
        "account": Field(
            str,
            "",
            "a Kiwoom account number (digits), or empty for the first one",
            lambda v: v == "" or v.replace("-", "").isdigit(),
        ),
        "watchlist": Field(list, [], "a list of 6-character stock codes", _codes, item=str),
        "cmd_ttl_ms": Field(int, 5000, "a positive number of milliseconds", _positive),
        "dedupe_ttl_s": Field(int, 172800, "at least 86400 seconds (24 h)", lambda v: v >= 86400),
        "quote_flush_ms": Field(int, 50, "1 to 50 milliseconds", lambda v: 1 <= v <= 50),
        "stream_maxlen": Field(int, 2000000, "a positive number of entries", _positive),
        "heartbeat_ms": Field(int, 1000, "100 to 1000 milliseconds", lambda v: 100 <= v <= 1000),
        "publish_buffer": Field(int, 100000, "a positive number of events", _positive),
        "log_level": Field(
            str,
            "INFO",
            "DEBUG, INFO, WARNING or ERROR",
            _one_of("DEBUG", "INFO", "WARNING", "ERROR"),
        ),
        "log_file": Field(str, "", "a path for JSON-lines logs, or empty"),
        "max_clock_ahead_ms": Field(int, 60000, "a positive number of milliseconds", _positive),
        "stream_budget_mb": Field(
            int,
            64,
            "megabytes of Redis memory for P:events (0: only stream_maxlen)",
            _non_negative,
        ),
    },
    "engine.kiwoom": {
        "control": Field(
            str,
            "engine32.brokers.kiwoom.control:create_control",
            "package.module:factory",
            lambda v: bool(re.match(r"^[\w.]+:\w+$", v)),
        ),
        "login_timeout_s": Field(int, 120, "a positive number of seconds", _positive),
        "real_screens_from": Field(
            int, 5000, "a 4-digit screen number", lambda v: 1000 <= v <= 9799
        ),
        "maintenance_windows": Field(
            str,
            "mon-sat 05:00-06:55, sun 03:55-06:55",
            'DAY[-DAY] HH:MM-HH:MM entries in KST separated by commas, or "none"',
            _maintenance_windows,
        ),
    },
    "engine.kiwoom_rest": {
        "server": Field(str, "mock", "mock or real", _one_of("mock", "real")),
        "base_url": Field(
            str,
            "",
            "an http(s):// URL, or empty for Kiwoom's host of the server",
            lambda v: v == "" or v.startswith(("http://", "https://")),
        ),
        "ws_url": Field(
            str,
            "",
            "a ws(s):// URL, or empty for Kiwoom's WebSocket of the server",
            lambda v: v == "" or v.startswith(("ws://", "wss://")),
        ),
        "appkey_file": Field(str, "", "the path of a file holding the app key, or empty"),
        "secretkey_file": Field(str, "", "the path of a file holding the secret key, or empty"),
        "query_per_s": Field(float, 5.0, "queries a second per api-id (positive)", _positive),
        "order_per_s": Field(float, 5.0, "orders a second (positive)", _positive),
        "token_margin_s": Field(
            int, 600, "seconds before expires_dt to renew the token", _non_negative
        ),
        "ws_idle_s": Field(
            int, 300, "seconds without any frame before the WebSocket counts as dead", _positive
        ),
        "kick_retry_s": Field(
            int, 60, "seconds to wait after another session took the app key", _positive
        ),
        "timeout_s": Field(float, 10.0, "HTTP timeout in seconds", _positive),
    },
    "risk": {
        "max_order_value": Field(int, 50000000, "a positive KRW amount", _positive),
        "max_order_qty": Field(int, 10000, "a positive number of shares", _positive),
        "max_position_value": Field(int, 200000000, "a positive KRW amount", _positive),
        "max_open_orders": Field(int, 50, "a positive number of orders", _positive),
        "max_daily_loss": Field(int, 5000000, "a positive KRW amount", _positive),
        "price_band_pct": Field(
            float, 10.0, "a percentage between 0 and 30", lambda v: 0 < v <= 30
        ),
    },
    "surge": {
        "window_s": Field(int, 60, "a positive number of seconds", _positive),
        "baseline_s": Field(int, 1200, "a number of seconds longer than window_s", _positive),
        "min_change_pct": Field(float, 3.0, "a percentage", _non_negative),
        "min_volume_ratio": Field(float, 5.0, "a ratio of at least 1", lambda v: v >= 1),
        "cooldown_s": Field(int, 300, "a number of seconds", _non_negative),
        "condition": Field(str, "", "the name of a Kiwoom condition, or empty"),
    },
    "sim": {
        "seed": Field(int, 0, "an integer (0 picks a random seed)", _non_negative),
        "sessions": Field(
            str, "always", "always, krx or krx+nxt", _one_of("always", "krx", "krx+nxt")
        ),
        "quote_rate": Field(int, 200, "quotes per second across the universe", _positive),
        "universe": Field(
            list, [], "a list of 6-character codes (empty: the built-in 40)", _codes, item=str
        ),
        "extra_codes": Field(
            int, 0, "a number of synthetic codes to add (for benchmarks)", _non_negative
        ),
        "cash": Field(int, 100000000, "a positive KRW amount", _positive),
        "commission_pct": Field(float, 0.015, "a percentage", _non_negative),
        "tax_kospi_pct": Field(float, 0.20, "a percentage", _non_negative),
        "tax_kosdaq_pct": Field(float, 0.20, "a percentage", _non_negative),
        "slippage_ticks": Field(int, 1, "a number of ticks", _non_negative),
        "volatility": Field(float, 1.0, "a multiplier", _positive),
        "burst_every_s": Field(
            float, 30.0, "seconds between bursts on average (0 for none)", _non_negative
        ),
        "start_at": Field(
            str,
            "",
            "a KST time such as 17:30 or a date-time such as 2026-12-24 17:30 (empty: now)",
            _start_at,
        ),
        "speed": Field(
            float, 1.0, "sim seconds per real second (1 to 3600)", lambda v: 0 < v <= 3600
        ),
    },
    "triggers": {
        "price_source": Field(str, "last", "last or quote_side", _one_of("last", "quote_side")),
        "max_quote_age_ms": Field(int, 5000, "a positive number of milliseconds", _positive),
        "auction": Field(str, "limit", "limit or wait", _one_of("limit", "wait")),
        "marketable_ticks": Field(int, 5, "0 to 100 ticks", lambda v: 0 <= v <= 100),
        "on_resume": Field(str, "ask", "ask or fire", _one_of("ask", "fire")),
        "flush_ms": Field(int, 1000, "100 to 10000 milliseconds", lambda v: 100 <= v <= 10000),
        "order_ttl_ms": Field(int, 60000, "a positive number of milliseconds", _positive),
        "keep_final_s": Field(int, 86400, "a number of seconds", _non_negative),
    },
    "tui": {
        "refresh_hz": Field(float, 10.0, "1 to 30 refreshes a second", lambda v: 1 <= v <= 30),
        "theme": Field(str, "textual-dark", "a Textual theme name"),
        "bell": Field(bool, True, "true or false"),
        "sparkline_s": Field(int, 300, "a positive number of seconds", _positive),
        "keymap": Field(dict, {}, "a table of action id = key(s)", item=str),
        "korean_units": Field(bool, False, "true or false"),
        "ladder_direct": Field(bool, False, "true or false"),
        "ladder_qty": Field(int, 1, "a positive number of shares", _positive),
        "tape_large_qty": Field(int, 1000, "a positive number of shares", _positive),
    },
    "writer": {
        "batch_rows": Field(int, 5000, "a positive number of rows", _positive),
        "batch_ms": Field(int, 100, "a positive number of milliseconds", _positive),
        "consumer": Field(str, "", "a consumer name (empty: host and pid)"),
        "quotes_retention_days": Field(
            int, 365, "a number of days (0 keeps forever)", _non_negative
        ),
        "compress_after_days": Field(int, 7, "a positive number of days", _positive),
    },
    "gateway": {
        "listen": Field(
            str,
            "127.0.0.1:8765",
            "HOST:PORT to listen on (port 0: any free port)",
            lambda v: (
                bool(re.match(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$", v))
                and int(v.rsplit(":", 1)[1]) < 65536
            ),
        ),
        "tokens_file": Field(str, "", "the path of a file of name:scope:token lines, or empty"),
        "trade": Field(bool, False, "true or false"),
        "queue_max": Field(int, 2000, "a positive number of messages", _positive),
        "queue_max_kb": Field(int, 4096, "a positive number of KiB", _positive),
        "ping_interval_s": Field(float, 20.0, "a positive number of seconds", _positive),
        "ping_timeout_s": Field(float, 20.0, "a positive number of seconds", _positive),
        "idle_timeout_s": Field(float, 120.0, "a positive number of seconds", _positive),
        "max_connections": Field(int, 200, "a positive number of connections", _positive),
        "tls_cert": Field(str, "", "the path of a PEM certificate chain, or empty"),
        "tls_key": Field(str, "", "the path of the PEM private key, or empty"),
    },
}

#: Environment variables that override one key each (besides the generic KC_SECTION__KEY).
ENV_KEYS = {
    "KC_REDIS_URL": "redis.url",
    "KC_PREFIX": "redis.prefix",
    "KC_DATABASE_URL": "database.url",
    "KC_BROKER": "engine.broker",
    "KC_ACCOUNT": "engine.account",
}


class Section:
    """Attribute access to one section's values (``cfg.risk.max_order_qty``)."""

    def __init__(self, name: str, values: Dict[str, Any]) -> None:
        self._name = name
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["_values"][key]
        except KeyError:
            raise AttributeError("[{}] has no key {!r}".format(self._name, key)) from None

    def as_dict(self) -> Dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return "Section({!r}, {!r})".format(self._name, self._values)


class Config:
    """Validated configuration. Secrets are held apart and never appear in ``repr``."""

    def __init__(
        self, values: Dict[str, Dict[str, Any]], path: Optional[Path], secrets: Dict[str, str]
    ) -> None:
        self._values = values
        self.path = path
        self._secrets = secrets
        for section in values:
            if "." not in section:
                setattr(self, section, Section(section, values[section]))
        self.engine_kiwoom = Section("engine.kiwoom", values["engine.kiwoom"])
        self.engine_kiwoom_rest = Section("engine.kiwoom_rest", values["engine.kiwoom_rest"])

    def get(self, section: str, key: str) -> Any:
        return self._values[section][key]

    def section(self, name: str) -> Dict[str, Any]:
        return dict(self._values[name])

    @property
    def redis_password(self) -> Optional[str]:
        return self._secrets.get("redis") or None

    @property
    def database_password(self) -> Optional[str]:
        return self._secrets.get("database") or None

    def redis_url_with_auth(self) -> str:
        """The Redis URL with the ACL user and password (from the environment) put in
        (:func:`with_credentials`). Never log it."""
        return with_credentials(
            self._values["redis"]["url"], self._values["redis"]["username"], self.redis_password
        )

    def database_url_with_auth(self) -> str:
        """The database DSN with its password put in ('' when no database). Never log it."""
        url = self._values["database"]["url"]
        return with_credentials(url, None, self.database_password) if url else ""

    def __repr__(self) -> str:
        return "Config(path={!r})".format(str(self.path) if self.path else None)


def with_credentials(url: str, username: Optional[str], password: Optional[str]) -> str:
    """The one credential merge of every entry point (engine, writer, ``kc status``, ``kc send``,
    the TUI): ``url`` (from the file, the environment or a flag, never holding a password)
    with the ACL user and the password put in, percent-encoded so that ``/ @ : %`` and spaces
    in them survive. The result holds the password: never log it."""
    if not password and not username:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    user = username or (unquote(parts.username) if parts.username else "")
    cred = quote(user, safe="")
    if password:
        cred += ":" + quote(password, safe="")
    return urlunsplit((parts.scheme, cred + "@" + host, parts.path, parts.query, parts.fragment))


# The password part of ``scheme://user:PASSWORD@host``: up to the LAST ``@`` of the word, so that
# an unencoded ``/ @ :`` inside the password is covered too (``redis://u:a/b@c@h`` → all of
# ``a/b@c``). ``scheme://:PASSWORD@`` (no user) and ``unix://`` are the same form.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s]*@")
# ``password=`` as a URL query parameter (``?password=PW&db=0``, redis-py and libpq both read
# it) or as a libpq ``key=value`` DSN word (``host=db password='p w'``), quoted or not.
_KEY_PASSWORD = re.compile(
    r"(?i)(\b(?:ssl)?(?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|[^\s&;]*)"
)


def redact(text: str) -> str:
    """Every password in ``text`` (a URL, a DSN, a log line, an error message) replaced by
    ``***``: ``redis://engine:***@host``, ``...?password=***``, ``host=db password=***``.
    The one redaction function: logs, events, errors and ``kc status`` all go through it."""
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _KEY_PASSWORD.sub(r"\1***", text)


def holds_password(text: str) -> bool:
    """True when :func:`redact` would hide something in ``text``."""
    return redact(text) != text


def refuse_password(value: Any, where: str, var: str) -> None:
    """The one refusing function: a value holding a password in any form (``user:pw@``,
    ``:pw@``, ``?password=``, ``password=`` DSN words) is refused, wherever it came from (the
    file, the environment or a flag; a flag would also show it to everyone in ``ps``). The
    message shows the value redacted and says where the password goes instead."""
    if isinstance(value, str) and holds_password(value):
        raise ConfigError(
            "{}: {} holds a password; give the URL without it and put the password in {} "
            "or the password_file key instead".format(where, redact(value), var)
        )


def _type_name(kind: type) -> str:
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }[kind]


def _coerce(raw: Any, field: Field, where: str) -> Any:
    """Check (and for env/flag strings, convert) one value; ``where`` names key and origin."""
    value = raw
    if isinstance(raw, str) and field.kind is not str:
        value = _from_text(raw, field, where)
    if field.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok_type = isinstance(value, field.kind) and not (field.kind is int and isinstance(value, bool))
    if not ok_type:
        raise ConfigError(
            "{}: expected {} ({}), got {!r}".format(where, _type_name(field.kind), field.what, raw)
        )
    if field.item is not None:
        items = value.values() if isinstance(value, dict) else value
        for item in items:
            if not isinstance(item, field.item):
                raise ConfigError(
                    "{}: expected {}, got an entry {!r}".format(where, field.what, item)
                )
    if field.check is not None and not field.check(value):
        raise ConfigError("{}: expected {}, got {!r}".format(where, field.what, raw))
    return value


def _from_text(text: str, field: Field, where: str) -> Any:
    try:
        if field.kind is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if field.kind is int:
            return int(text.replace("_", ""))
        if field.kind is float:
            return float(text)
        if field.kind is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    except ValueError:
        pass
    if field.kind is dict:
        raise ConfigError("{}: a table cannot be set from the environment or a flag".format(where))
    raise ConfigError(
        "{}: expected {} ({}), got {!r}".format(where, _type_name(field.kind), field.what, text)
    )


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        with open(str(path), "rb") as fh:
            return _toml.load(fh)
    except FileNotFoundError:
        raise ConfigError("{}: config file not found".format(path)) from None
    except _toml.TOMLDecodeError as exc:
        raise ConfigError("{}: not valid TOML: {}".format(path, exc)) from None


def _flatten_file(doc: Dict[str, Any], path: Path) -> List[Tuple[str, str, Any]]:
    """(section, key, value) from the TOML document, refusing unknown sections and keys."""
    out: List[Tuple[str, str, Any]] = []
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise ConfigError(
                "{}: {} must be a [section], not a top-level value".format(path, section)
            )
        if section == "engine" and isinstance(table.get("kiwoom"), dict):
            for key, value in table["kiwoom"].items():
                out.append(("engine.kiwoom", key, value))
            table = {k: v for k, v in table.items() if k != "kiwoom"}
        if section == "engine" and isinstance(table.get("kiwoom_rest"), dict):
            for key, value in table["kiwoom_rest"].items():
                out.append(("engine.kiwoom_rest", key, value))
            table = {k: v for k, v in table.items() if k != "kiwoom_rest"}
        if section not in SCHEMA:
            raise ConfigError(
                "{}: unknown section [{}] (known: {})".format(path, section, ", ".join(SCHEMA))
            )
        for key, value in table.items():
            out.append((section, key, value))
    return out


def _split_key(dotted: str) -> Tuple[str, str]:
    section, _, key = dotted.rpartition(".")
    return section, key


def load_config(
    path: Optional[Any] = None,
    overrides: Optional[Mapping[str, Any]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Config:
    """Read the file (default ``$KC_CONFIG`` or the repository's ``config.toml``), then the
    environment, then ``overrides`` (``{"section.key": value}`` from flags; ``None`` values skipped)."""
    env = os.environ if environ is None else environ
    if path is None:
        path = env.get("KC_CONFIG") or DEFAULT_PATH
    cfg_path = Path(path)
    values: Dict[str, Dict[str, Any]] = {
        section: {key: _copy(field.default) for key, field in fields.items()}
        for section, fields in SCHEMA.items()
    }

    def put(section: str, key: str, raw: Any, origin: str) -> None:
        where = "[{}] {} (from {})".format(section, key, origin)
        if section not in SCHEMA:
            raise ConfigError("{}: unknown section [{}]".format(origin, section))
        var = "KC_{}_PASSWORD".format(section.upper().replace(".", "_"))
        refuse_password(raw, where, var)
        field = SCHEMA[section].get(key)
        if field is None:
            known = ", ".join(SCHEMA[section])
            raise ConfigError(
                "{}: unknown key (known keys of [{}]: {})".format(where, section, known)
            )
        values[section][key] = _coerce(raw, field, where)

    doc = _read_toml(cfg_path) if (cfg_path.exists() or path != DEFAULT_PATH) else {}
    for section, key, value in _flatten_file(doc, cfg_path):
        if key in ("password", "api_key", "secret", "appkey", "secretkey"):
            raise ConfigError(
                "[{}] {} (from {}): secrets do not belong in config.toml; use the environment".format(
                    section, key, cfg_path
                )
            )
        put(section, key, value, str(cfg_path))

    for name, dotted in ENV_KEYS.items():
        if env.get(name):
            put(*_split_key(dotted), env[name], "environment " + name)
    for name, text in env.items():
        if name.startswith("KC_") and "__" in name:
            section, _, key = name[3:].lower().partition("__")
            put(section.replace("_kiwoom", ".kiwoom"), key, text, "environment " + name)

    for dotted, value in (overrides or {}).items():
        if value is not None:
            put(*_split_key(dotted), value, "command line")

    if values["surge"]["baseline_s"] <= values["surge"]["window_s"]:
        raise ConfigError(
            "[surge] baseline_s (from {}): expected more than window_s ({}), got {}".format(
                cfg_path, values["surge"]["window_s"], values["surge"]["baseline_s"]
            )
        )

    secrets = {
        "redis": _secret(
            env, "KC_REDIS_PASSWORD", values["redis"]["password_file"], "redis.password_file"
        ),
        "database": _secret(
            env,
            "KC_DATABASE_PASSWORD",
            values["database"]["password_file"],
            "database.password_file",
        ),
    }
    return Config(values, cfg_path, secrets)


def _copy(value: Any) -> Any:
    return (
        list(value)
        if isinstance(value, list)
        else dict(value)
        if isinstance(value, dict)
        else value
    )


def _secret(env: Mapping[str, str], var: str, file_name: str, key: str) -> str:
    if env.get(var):
        return env[var]
    if file_name:
        try:
            return Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                "[{}] {}: cannot read the password file ({})".format(
                    key.split(".")[0], key.split(".")[1], exc.strerror
                )
            ) from None
    return ""
