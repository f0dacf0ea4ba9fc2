"""Run the real engine (``python -m engine32``) as a subprocess in tests.

    with EngineProcess(redis_url, prefix="t1", settings={"sim.seed": 7}) as eng:
        eng.wait_ready()
        reply = eng.send({"cmd": "ping"})
        assert reply["ok"]

API (kept small on purpose):

- ``EngineProcess(redis_url, prefix=None, broker="sim", config=None, settings=None,
  extra_args=(), env=None, log_dir=None)`` - ``prefix`` defaults to a fresh unique one;
  ``settings`` become ``--set section.key=value`` flags.
- ``start()`` → self (the context manager calls it).
- ``wait_ready(timeout=20)`` → the ``P:engine`` hash (str → str) once ``state`` is ``ready``
  and the heartbeat key exists; raises ``EngineError`` with the stderr tail otherwise.
- ``send(cmd, timeout=5)`` → the reply dict: fills in ``id`` (unique) and ``ts`` if missing,
  ``RPUSH P:cmd``, ``BLPOP P:reply:<id>``; raises ``EngineError`` on timeout.
- ``push(cmd)`` → id: RPUSH without waiting; ``reply(id, timeout)`` waits for it.
- ``kill(sig=SIGKILL)``, ``stop(timeout=15, check=True)`` → exit code (SIGTERM, wait; with
  ``check`` an exit code other than 0 raises).
- ``stderr_text()``: what the engine logged (also kept in ``stderr_path``).
- ``keys`` (:class:`core.protocol.Keys`) and ``redis`` (a redis-py client, ``decode_responses``).
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import redis

from core.protocol import Keys

REPO = Path(__file__).resolve().parents[2]
_ids = itertools.count(1)


class EngineError(AssertionError):
    """The engine did not do what the test waited for; the message has its stderr tail."""


class EngineProcess:
    def __init__(
        self,
        redis_url: str,
        prefix: Optional[str] = None,
        broker: str = "sim",
        config: Optional[str] = None,
        settings: Optional[Mapping[str, Any]] = None,
        extra_args: Iterable[str] = (),
        env: Optional[Mapping[str, str]] = None,
        log_dir: Optional[str] = None,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix or "e{}x{}".format(os.getpid(), next(_ids))
        self.keys = Keys(self.prefix)
        self.broker = broker
        self.config = config
        self.settings = dict(settings or {})
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="engine-"))
        self.stderr_path = self.log_dir / "engine-{}.stderr".format(self.prefix)
        self.proc: Optional[subprocess.Popen] = None
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=30)
        self._stderr_file: Any = None

    # -- lifecycle ---------------------------------------------------------------------------
    def command_line(self) -> list:
        args = [sys.executable, "-m", "engine32", "--broker", self.broker]
        args += ["--redis", self.redis_url, "--prefix", self.prefix]
        if self.config:
            args += ["--config", str(self.config)]
        for key, value in self.settings.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            args += ["--set", "{}={}".format(key, value)]
        return args + self.extra_args

    def start(self) -> "EngineProcess":
        env = dict(os.environ)
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        # A run starts again where it was (same prefix): append to the same stderr file.
        self._stderr_file = open(str(self.stderr_path), "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            self.command_line(),
            cwd=str(REPO),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr_file,
            stderr=self._stderr_file,
        )
        return self

    def __enter__(self) -> "EngineProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop if running (SIGTERM, then SIGKILL), without checking the exit code."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(check=False)
            except Exception:  # noqa: BLE001
                self.kill()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        self.redis.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0, check: bool = True) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise EngineError(
                "engine did not stop within {} s\n{}".format(timeout, self.tail())
            ) from None
        if check and code != 0:
            raise EngineError("engine exited with {}\n{}".format(code, self.tail()))
        return code

    # -- waiting -----------------------------------------------------------------------------
    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "--- engine stderr (tail) ---\n" + "\n".join(
            self.stderr_text().splitlines()[-lines:]
        )

    def engine_hash(self) -> Dict[str, str]:
        return self.redis.hgetall(self.keys.engine)

    def wait_ready(self, timeout: float = 20.0, state: str = "ready") -> Dict[str, str]:
        """Wait until ``P:engine`` ``state`` is ``state`` (and the heartbeat is there)."""
        deadline = time.monotonic() + timeout
        fields: Dict[str, str] = {}
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise EngineError(
                    "engine exited with {}\n{}".format(self.proc.returncode, self.tail())
                )
            fields = self.engine_hash()
            if fields.get("state") == state and self.redis.exists(self.keys.engine_alive):
                return fields
            time.sleep(0.05)
        raise EngineError(
            "engine not {} after {} s (P:engine {})\n{}".format(state, timeout, fields, self.tail())
        )

    # -- commands ----------------------------------------------------------------------------
    def push(self, cmd: Mapping[str, Any], stamp: bool = True) -> str:
        """RPUSH one command (``id`` and ``ts`` added unless given); returns its id."""
        body = dict(cmd)
        body.setdefault("id", "{}-{}".format(self.prefix, next(_ids)))
        if stamp:
            body.setdefault("ts", int(time.time() * 1000))
        self.redis.rpush(self.keys.cmd, json.dumps(body, ensure_ascii=False))
        return body["id"]

    def reply(self, cmd_id: str, timeout: float = 5.0) -> Dict[str, Any]:
        got = self.redis.blpop([self.keys.reply(cmd_id)], timeout=timeout)
        if got is None:
            state = "running" if self.alive() else "exited"
            raise EngineError(
                "no reply to {} within {} s (engine {})\n{}".format(
                    cmd_id, timeout, state, self.tail()
                )
            )
        return json.loads(got[1])

    def send(self, cmd: Mapping[str, Any], timeout: float = 5.0) -> Dict[str, Any]:
        """Send one command and wait for its reply."""
        return self.reply(self.push(cmd), timeout)
