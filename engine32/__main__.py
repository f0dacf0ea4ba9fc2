"""``python -m engine32``: run the headless engine.

Exit codes (engine32/exitcodes.py): 0 after SIGINT/SIGTERM (stopping cleanly), 1 when the
engine could not start, 2 for a bad configuration or flag, 3 when another engine is alive on
the same Redis prefix, 75 when the broker needs a new process (Kiwoom's -106 daily disconnect,
its re-login notice, a login that timed out): ``--supervise`` starts one.

``--supervise`` runs the engine as a child and restarts it (engine32/supervise.py);
``--check-trs`` checks the installed OpenAPI+'s TR definitions (engine32/brokers/kiwoom/trcheck.py).
"""

import argparse
import logging
import signal
import sys
import time
from typing import Any, Dict, List, Optional

from core.config import ConfigError, load_config, redact

from . import __version__

log = logging.getLogger("engine32")

#: How often Python gets control inside the Qt loop to run signal handlers (ms).
SIGNAL_POLL_MS = 100


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m engine32",
        description="The headless trading engine: runs a broker (the KRX simulator or Kiwoom "
        "OpenAPI+) and is controlled through Redis (docs/protocol.md, docs/scripting.md).",
    )
    parser.add_argument(
        "--broker",
        choices=("sim", "kiwoom", "kiwoom_rest"),
        help="broker adapter (config [engine] broker)",
    )
    parser.add_argument(
        "--config", help="config file (default $KC_CONFIG or the repository's config.toml)"
    )
    parser.add_argument(
        "--redis", metavar="URL", help="Redis URL without a password (config [redis] url)"
    )
    parser.add_argument("--prefix", help="key prefix (config [redis] prefix)")
    parser.add_argument(
        "--log-file", help="also write JSON-lines logs here (config [engine] log_file)"
    )
    parser.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="config [engine] log_level",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key, e.g. --set sim.seed=7 --set risk.max_order_qty=100",
    )
    parser.add_argument("--version", action="version", version="engine32 " + __version__)
    parser.add_argument(
        "--supervise",
        action="store_true",
        help="run the engine as a child process and start it again after Kiwoom's daily "
        "disconnect (past [engine.kiwoom] maintenance_windows) or a crash (with backoff)",
    )
    parser.add_argument(
        "--check-trs",
        action="store_true",
        help="check that this OpenAPI+ installation has every TR field the engine uses, and exit",
    )
    parser.add_argument(
        "--openapi-dir",
        default="C:/OpenAPI/data",
        help="where OpenAPI+ keeps its TR definitions (*.enc), for --check-trs",
    )
    return parser.parse_args(argv)


def overrides_of(args: argparse.Namespace) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "engine.broker": args.broker,
        "redis.url": args.redis,
        "redis.prefix": args.prefix,
        "engine.log_file": args.log_file,
        "engine.log_level": args.log_level,
    }
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError("--set {!r}: expected SECTION.KEY=VALUE".format(item))
        out[key.strip()] = value
    return out


def _other_engine_alive(client: Any, keys: Any, wait_s: float) -> bool:
    """True if another engine keeps refreshing the heartbeat for ``wait_s`` seconds (a killed
    one's key expires within 3 s: then we go on, and the restart rule applies)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not client.exists(keys.engine_alive):
            return False
        time.sleep(0.1)
    return bool(client.exists(keys.engine_alive))


def _initial_watchlist(config: Any, url: str) -> Optional[List[str]]:
    """The watchlist kept in Redis from the previous run, or None (use the config's); also
    refuses to start next to a live engine."""
    import redis

    from core.protocol import Keys

    keys = Keys(config.redis.prefix)
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            if _other_engine_alive(client, keys, 3.5):
                raise SystemExit(3)
            codes = [c.decode() for c in client.lrange(keys.state_watchlist, 0, -1)]
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning(
            "Redis at %s not reachable at start (%s); going on, will retry",
            redact(config.redis.url),
            exc,
        )
        return None
    return codes or None


def _kept_depth(config: Any, url: str) -> Any:
    """The book set and price alerts a previous run kept in Redis (None if unreachable)."""
    import redis

    from core.protocol import Keys

    from .depth import read_kept

    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return read_kept(client, Keys(config.redis.prefix))
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("book set and alerts not read back (%s)", exc)
        return None


def _kept_groups(config: Any, url: str, watchlist: Optional[List[str]]) -> Any:
    """The watchlist groups a previous run kept in ``P:state:watchgroups``; without them (or
    Redis) one group "관심종목 1" holding the watchlist (the previous run's or the config's)."""
    import redis

    from core.protocol import Keys

    from .watchgroups import WatchGroups, read_kept

    initial = config.engine.watchlist if watchlist is None else watchlist
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            groups, active = read_kept(client, Keys(config.redis.prefix))
        finally:
            client.close()
    except redis.RedisError as exc:
        log.warning("watchlist groups not read back (%s)", exc)
        return WatchGroups(initial=initial)
    if groups:
        log.info("kept from the last run: %d watchlist group(s), active %r", len(groups), active)
    return WatchGroups(groups, active, initial=initial)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.check_trs:
        from .brokers.kiwoom import trcheck

        return trcheck.main(args.openapi_dir)
    try:
        config = load_config(args.config, overrides=overrides_of(args))
    except ConfigError as exc:
        print("engine32: configuration error: {}".format(exc), file=sys.stderr)
        return 2
    if args.supervise:
        from . import supervise

        raw = sys.argv[1:] if argv is None else list(argv)
        return supervise.main([a for a in raw if a != "--supervise"], config)

    from .logsetup import setup_logging

    setup_logging(config.engine.log_level, config.engine.log_file)
    sys.setswitchinterval(0.001)  # hand the GIL over quickly between the loop and the workers

    url = config.redis_url_with_auth()
    try:
        watchlist = _initial_watchlist(config, url)
    except SystemExit:
        log.error(
            "another engine is alive on prefix %s (its %s:engine:alive keeps being refreshed); not starting",
            config.redis.prefix,
            config.redis.prefix,
        )
        return 3

    if config.engine.broker == "kiwoom":
        from PyQt5.QtWidgets import QApplication as AppClass
    else:
        from PyQt5.QtCore import QCoreApplication as AppClass  # type: ignore[assignment]
    from PyQt5.QtCore import QTimer

    from .app import Engine

    app = AppClass(sys.argv[:1])
    exit_code = {"code": 0}

    def stopped(code: int) -> None:
        exit_code["code"] = code
        app.exit(code)

    try:
        engine = Engine(
            config,
            url,
            watchlist=watchlist,
            on_stopped=stopped,
            kept=_kept_depth(config, url),
            groups=_kept_groups(config, url, watchlist),
        )
    except Exception as exc:  # noqa: BLE001 - a broker that cannot be built ends the run, in words
        log.exception("cannot start the engine: %s", exc)
        return 1

    stop_requested = {"signal": 0}

    def on_signal(signum: int, frame: Any) -> None:
        stop_requested["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def poll_signals() -> None:
        if stop_requested["signal"]:
            log.info("signal %d received", stop_requested["signal"])
            stop_requested["signal"] = 0
            engine.request_stop()

    signal_timer = QTimer()
    signal_timer.setInterval(SIGNAL_POLL_MS)
    signal_timer.timeout.connect(poll_signals)
    signal_timer.start()

    def unhandled(kind: Any, value: Any, tb: Any) -> None:
        # PyQt5 aborts the process on an exception that escapes a slot unless an excepthook is
        # set: log it and go on (every command is still answered: see engine32.dispatcher).
        log.critical("unhandled error in the Qt loop", exc_info=(kind, value, tb))

    sys.excepthook = unhandled

    def start() -> None:
        try:
            engine.start()
        except Exception as exc:  # noqa: BLE001 - e.g. a broker that cannot load
            log.exception("cannot start the engine: %s", exc)
            stopped(1)

    QTimer.singleShot(0, start)
    app.exec_()
    return exit_code["code"]


if __name__ == "__main__":
    sys.exit(main())
