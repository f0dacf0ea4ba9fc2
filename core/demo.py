"""``kc demo``: the whole console on one machine — Redis, the simulated market, the writer with
PostgreSQL, and the TUI — on private ports under a data directory.

Quitting the console stops everything it started; nothing is left running.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Dict, List, Optional

import redis

from core.config import ConfigError, load_config
from core.devservers import PostgresServer, RedisServer, pdeathsig_hook
from core.protocol import Keys, krx, sessions

READY_TIMEOUT_S = 30.0

#: A demo is watched for minutes, not a trading day: shorter surge windows so the first alerts
#: come within a minute or two (the product defaults in config.toml need 2 minutes of history
#: and fire a few times an hour). Your own environment or flags still win.
DEMO_SETTINGS: Dict[str, str] = {
    "KC_SURGE__WINDOW_S": "30",
    "KC_SURGE__BASELINE_S": "300",
    "KC_SURGE__MIN_VOLUME_RATIO": "4",
    "KC_SURGE__COOLDOWN_S": "120",
}


class Child:
    """A child process whose output goes to a log file; stopped politely, then firmly."""

    def __init__(self, name: str, argv: List[str], log_path: Path, env: Dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - lives as long as the child
        # SIGTERM reaches the child if the demo dies without cleaning up (kill -9), on Linux.
        hook = pdeathsig_hook(signal.SIGTERM)
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=hook,  # noqa: PLW1509 - only prctl, safe after fork
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(
                self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return ""


def say(text: str) -> None:
    """Print a progress line; a terminal that has gone away (SSH dropped) is not an error."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def wait_engine_ready(url: str, keys: Keys, engine: Child, timeout: float) -> None:
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not engine.alive():
                raise RuntimeError("the engine exited at start:\n" + engine.tail())
            state = client.hget(keys.engine, "state")
            if state == b"ready" and client.exists(keys.engine_alive):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(
        "the engine did not become ready within {:g} s:\n{}".format(timeout, engine.tail())
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kc demo", description=__doc__)
    parser.add_argument(
        "--data-dir", default=".demo", help="where servers keep data and logs (default .demo)"
    )
    parser.add_argument(
        "--no-db", action="store_true", help="no database and no writer (charts from live quotes)"
    )
    parser.add_argument(
        "--no-tui", action="store_true", help="start everything but the console; Ctrl-C stops it"
    )
    parser.add_argument("--config", help="config file (default: $KC_CONFIG or config.toml)")
    parser.add_argument("--seed", type=int, help="simulator seed (same seed, same market)")
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="start the market clock at this KST time (17:30: today, or the next trading day) "
        "or date-time (2026-12-24 17:30), trading KRX and NXT by their real hours",
    )
    parser.add_argument(
        "--speed", type=float, help="sim seconds per real second (60: an hour a minute)"
    )
    args = parser.parse_args(argv)
    if args.at is not None:
        try:
            sessions.parse_start_at(args.at, krx.now_kst())
        except ValueError as exc:
            print("kc demo: --at: {}".format(exc), file=sys.stderr)
            return 2
    if args.speed is not None and not 0 < args.speed <= 3600:
        print("kc demo: --speed must be between 0 and 3600 sim seconds a second", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print("kc demo: {}".format(exc), file=sys.stderr)
        return 2

    def stop_on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the clean-up below

    # SIGTERM (kill, a service manager) and SIGHUP (the SSH terminal went away) clean up too.
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, stop_on_signal)

    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    prefix = cfg.redis.prefix
    keys = Keys(prefix)
    children: List[Child] = []
    servers: list = []
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for name, value in DEMO_SETTINGS.items():
        env.setdefault(name, value)
    env.pop("KC_REDIS_PASSWORD", None)
    try:
        say("kc demo: starting Redis ...")
        redis_server = RedisServer(data / "redis")
        redis_server.start()
        servers.append(redis_server)
        env["KC_REDIS_URL"] = redis_server.url
        env["KC_PREFIX"] = prefix

        dsn = ""
        if not args.no_db:
            say("kc demo: starting PostgreSQL ...")
            pg = PostgresServer(data / "postgres")
            pg.start()
            servers.append(pg)
            dsn = pg.dsn
            env["KC_DATABASE_URL"] = dsn

        engine_argv = [
            sys.executable,
            "-m",
            "engine32",
            "--broker",
            "sim",
            "--redis",
            redis_server.url,
            "--prefix",
            prefix,
        ]
        if args.config:
            engine_argv += ["--config", args.config]
        if args.seed is not None:
            env["KC_SIM__SEED"] = str(args.seed)
        if args.at is not None:  # the whole day of both venues, from that time (issue 12)
            env["KC_SIM__START_AT"] = args.at
            env["KC_SIM__SESSIONS"] = "krx+nxt"
        if args.speed is not None:
            env["KC_SIM__SPEED"] = str(args.speed)
        say("kc demo: starting the simulated market engine ...")
        engine = Child("engine", engine_argv, data / "engine.log", env)
        children.append(engine)
        if dsn:
            writer_argv = [
                sys.executable,
                "-m",
                "core.writer",
                "--redis",
                redis_server.url,
                "--dsn",
                dsn,
                "--prefix",
                prefix,
            ]
            children.append(Child("writer", writer_argv, data / "writer.log", env))
        wait_engine_ready(redis_server.url, keys, engine, READY_TIMEOUT_S)
        say("kc demo: ready — Redis {}, logs in {}".format(redis_server.url, data))

        if args.no_tui:
            say("kc demo: running without the console; Ctrl-C stops everything")
            try:
                while all(c.alive() for c in children):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
            return 0
        tui_argv = [sys.executable, "-m", "tui", "--redis", redis_server.url, "--prefix", prefix]
        if args.config:
            tui_argv += ["--config", args.config]
        return subprocess.call(tui_argv, env=env)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # show why, then clean up
        print("kc demo: {}".format(exc), file=sys.stderr)
        return 1
    finally:
        # A closing terminal may send more than one signal: nothing may cut the clean-up short.
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                signal.signal(sig, signal.SIG_IGN)
        for child in reversed(children):
            child.stop()
        for server in reversed(servers):
            server.stop()
        say("kc demo: stopped everything")


if __name__ == "__main__":
    sys.exit(main())
