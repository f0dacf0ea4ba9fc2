"""The command thread: takes commands from ``P:cmd`` and hands them to the Qt thread.

Commands are taken first in, first out (producers ``RPUSH``) into ``P:cmd:processing``, so a
command survives a crash there. The take and the at-most-once claim cost ONE round trip: one
pipeline of ``BLMOVE P:cmd P:cmd LEFT LEFT`` (waits for a command and leaves it where it is)
and :data:`TAKE_SCRIPT`, which moves the head of ``P:cmd`` to ``P:cmd:processing`` and, when
the command's id can be read, claims it (``SET P:seen:<id> running NX EX dedupe_ttl``) or
returns the first reply of an id already claimed. Where scripts are refused (an ACL without
``EVAL``) the thread takes with ``BLMOVE P:cmd P:cmd:processing LEFT RIGHT`` and claims with
its own ``SET NX``, a second round trip. Per command, in this order, all off the Qt thread:

1. parse and validate (:func:`core.protocol.parse_command`): a malformed one is answered
   with its error (addressed by the id when it could be read);
2. staleness by the Redis server's clock: ``ts + ttl_ms`` older than the server's now
   (``TIME``, re-read every :data:`CLOCK_EVERY_S`) is answered ``STALE``, never run;
3. the at-most-once claim ``SET P:seen:<id> running NX EX dedupe_ttl`` (made by the script,
   or here): a repeated id is answered ``DUPLICATE`` with the first reply (or "still
   running");
4. the command goes to the Qt thread, which runs it and has the publisher write the reply,
   store it in ``P:seen:<id>`` and remove the command from ``P:cmd:processing``.

Invalid and stale commands do not claim their id: they were never run, so a corrected
command may reuse it (a claim the script made for one is deleted before the next command is
taken). The Python checks decide; the script's claim only saves the round trip when it
claimed the very id :func:`parse_command` reads. Before taking anything new the thread applies the restart rule:
everything left in ``P:cmd:processing`` moves to ``P:cmd:dead`` and is answered
``ENGINE_RESTARTED`` (unless ``P:seen:<id>`` shows it was answered already).
"""

import collections
import json
import logging
import threading
import time
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import redis

from core.config import redact
from core.protocol import Command, Keys, ProtocolError, make_reply, parse_command
from core.protocol.commands import MAX_CLOCK_AHEAD_MS, MAX_RAW_BYTES, check_clock_ahead
from core.protocol.errors import DUPLICATE, ENGINE_RESTARTED, STALE

from .publisher import held_connection, send_packed

log = logging.getLogger("engine32.consumer")

#: How long one BLMOVE waits (seconds); bounds how quickly the thread notices a stop.
BLOCK_S = 0.5
#: How often the Redis server clock offset is measured again.
CLOCK_EVERY_S = 10.0
#: Value of ``P:seen:<id>`` while the command runs.
RUNNING = "running"

#: Take the head of P:cmd (KEYS[1]) into P:cmd:processing (KEYS[2]) and claim its id, if it
#: can be read, in P:seen:<id> (ARGV[1] is the P:seen: prefix, ARGV[2] the TTL in seconds,
#: ARGV[3] the largest command in bytes). Returns nil (nothing to take), {raw} (no readable
#: id, or too long), {raw, id, 1} (claimed) or {raw, id, 0[, first reply]} (claimed before).
#: Nothing after the LMOVE can raise, so a command is never moved without being returned.
#: The size is checked BEFORE cjson.decode (``#raw`` is O(1)): decoding a 400 MB entry held
#: Redis for 8 s; a command too long is refused by the Python side, addressed by its id.
TAKE_SCRIPT = """
local raw = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
if not raw then return false end
if #raw > tonumber(ARGV[3]) then return {raw} end
local ok, obj = pcall(cjson.decode, raw)
if not ok or type(obj) ~= 'table' then return {raw} end
local id = obj['id']
if type(id) ~= 'string' or #id > 64 or not string.match(id, '^[A-Za-z0-9_%.:%-]+$') then
  return {raw}
end
local key = ARGV[1] .. id
local set = redis.pcall('SET', key, 'running', 'NX', 'EX', ARGV[2])
if type(set) == 'table' and set['ok'] then return {raw, id, 1} end
if type(set) == 'table' and set['err'] then return {raw} end
local first = redis.pcall('GET', key)
if type(first) ~= 'string' then return {raw, id, 0} end
return {raw, id, 0, first}
"""


class Claim(NamedTuple):
    """What the take script did about the id of the command it took."""

    id: str
    claimed: bool  # True: it set P:seen:<id>; False: the id was claimed before
    first: Optional[bytes]  # the value of P:seen:<id> when claimed before


class Taken(NamedTuple):
    """A command handed to the Qt thread.

    Either ``command`` is set (run it), or ``reply`` is (answer with it as it is).
    ``raw`` is the entry to remove from ``P:cmd:processing`` once answered (None when it
    is no longer there); ``remember`` says whether the reply is stored in ``P:seen:<id>``.
    """

    raw: Optional[bytes]
    command: Optional[Command]
    reply: Optional[Dict[str, Any]]
    remember: bool
    taken_ms: int


def _now_ms() -> int:
    return int(time.time() * 1000)


class CommandConsumer:
    """One thread, one Redis connection. ``deliver`` is called from this thread (the engine
    passes a queued Qt signal's ``emit``)."""

    def __init__(
        self,
        redis_url: str,
        keys: Keys,
        deliver: Callable[[Taken], None],
        cmd_ttl_ms: int = 5000,
        dedupe_ttl_s: int = 172800,
        client_factory: Optional[Callable[[], "redis.Redis"]] = None,
        max_clock_ahead_ms: int = MAX_CLOCK_AHEAD_MS,
    ) -> None:
        self.keys = keys
        self.deliver = deliver
        self.max_clock_ahead_ms = max_clock_ahead_ms
        self.cmd_ttl_ms = cmd_ttl_ms
        self.dedupe_ttl_s = dedupe_ttl_s
        self._url = redis_url
        self._factory = client_factory or (
            lambda: redis.Redis.from_url(
                redis_url,
                socket_timeout=BLOCK_S + 5,
                socket_connect_timeout=2,
                health_check_interval=0,
            )
        )
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.clock_offset_ms = 0  # Redis server time minus local time
        self._clock_at = 0.0
        self.taken = 0
        self._unfinished: Optional[bytes] = None
        # Raw commands this run took into P:cmd:processing and has not yet removed; after a
        # reconnect, anything else there was taken by a BLMOVE whose answer was lost.
        self._held: "collections.Counter[bytes]" = collections.Counter()
        self._held_lock = threading.Lock()
        self.reconnects = 0
        #: take and claim in one round trip (False once Redis refuses the script)
        self.take_script = True
        self._unfinished_claim: Optional[Claim] = None
        self._take_conn: Any = None  # a connection of the current client, for the take
        self._take_packed: Any = None
        self.restart_rule_done = threading.Event()
        self.connected = False
        self.last_error = ""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="commands", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Take no more commands; the thread ends within :data:`BLOCK_S`."""
        self._stop.set()

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        client = None
        backoff = 0.1
        ever = False
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self._factory()
                    client.ping()
                    self._take_conn = None
                    self._sync_clock(client)
                    if ever:
                        self.reconnects += 1
                        log.warning("command thread reconnected to Redis at %s", redact(self._url))
                        self._sweep_orphans(client)
                    ever = True
                    self.connected = True
                if not self.restart_rule_done.is_set():
                    self._apply_restart_rule(client)
                    self.restart_rule_done.set()
                if time.monotonic() - self._clock_at > CLOCK_EVERY_S:
                    self._sync_clock(client)
                claim: Optional[Claim] = None
                if self._unfinished is not None:
                    # Taken before the connection broke, not yet handed over: finish it now
                    # (if its id was claimed just before the break, it is refused DUPLICATE).
                    raw: Optional[bytes] = self._unfinished
                    claim = self._unfinished_claim
                else:
                    raw, claim = self._take(client)
                    if raw is not None:
                        self.taken += 1
                        with self._held_lock:
                            self._held[raw] += 1
                backoff = 0.1
                if raw is not None:
                    self._unfinished, self._unfinished_claim = raw, claim
                    self._handle(client, raw, claim)
                    self._unfinished, self._unfinished_claim = None, None
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if self.connected:
                    log.warning("command thread lost Redis at %s: %s", redact(self._url), exc)
                self.connected = False
                self.last_error = "redis: {}".format(exc)
                if client is not None:
                    try:
                        client.close()
                    except Exception:  # noqa: BLE001
                        pass
                client = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:  # noqa: BLE001 - never let one command end the thread
                log.exception("command thread error; going on")
                self._stop.wait(0.1)
        if client is not None:
            client.close()

    def _sync_clock(self, client: "redis.Redis") -> None:
        before = time.time()
        seconds, micros = client.time()
        after = time.time()
        local_ms = (before + after) * 500.0
        self.clock_offset_ms = int(seconds * 1000 + micros // 1000 - local_ms)
        self._clock_at = time.monotonic()

    def server_now_ms(self) -> int:
        return _now_ms() + self.clock_offset_ms

    def removed(self, raw: bytes) -> None:
        """The publisher has removed ``raw`` from ``P:cmd:processing`` (any thread)."""
        with self._held_lock:
            if self._held[raw] <= 1:
                self._held.pop(raw, None)
            else:
                self._held[raw] -= 1

    def _apply_restart_rule(self, client: "redis.Redis") -> None:
        moved = 0
        while True:
            raw = client.lmove(self.keys.cmd_processing, self.keys.cmd_dead, "LEFT", "RIGHT")
            if raw is None:
                break
            moved += self._dead_letter(
                client,
                raw,
                "the engine restarted while this command was in flight; it was not run again "
                "(see P:cmd:dead) - check orders and positions before resending with a new id",
            )
        if moved:
            log.warning(
                "restart rule: %d command(s) moved to %s and answered ENGINE_RESTARTED",
                moved,
                self.keys.cmd_dead,
            )

    def _sweep_orphans(self, client: "redis.Redis") -> None:
        """After a reconnect: commands in ``P:cmd:processing`` that this run never saw (a
        BLMOVE whose answer the broken connection lost) are dead-lettered like rule 4."""
        present = collections.Counter(client.lrange(self.keys.cmd_processing, 0, -1))
        with self._held_lock:
            orphans = [raw for raw, n in present.items() for _ in range(n - self._held[raw])]
        for raw in orphans:
            pipe = client.pipeline(transaction=True)
            pipe.lrem(self.keys.cmd_processing, 1, raw)
            pipe.rpush(self.keys.cmd_dead, raw)
            if pipe.execute()[0] != 1:
                continue  # removed meanwhile: not an orphan after all
            self._dead_letter(
                client,
                raw,
                "the engine's Redis connection broke while it took this command; it was not run "
                "(see P:cmd:dead) - check orders and positions before resending with a new id",
            )
        if orphans:
            log.warning(
                "%d command(s) taken during a Redis outage moved to %s",
                len(orphans),
                self.keys.cmd_dead,
            )

    def _dead_letter(self, client: "redis.Redis", raw: bytes, message: str) -> int:
        """Answer a command now in ``P:cmd:dead`` ENGINE_RESTARTED (1), unless its reply was
        written before (0: it is dropped from the dead list, no second reply)."""
        cmd_id, cmd = _id_of(raw)
        if cmd_id:
            first = client.get(self.keys.seen(cmd_id))
            if first is not None and first != RUNNING.encode():
                client.lrem(self.keys.cmd_dead, -1, raw)
                return 0
        reply = make_reply(cmd_id, cmd, error=ProtocolError(ENGINE_RESTARTED, message))
        self.deliver(Taken(None, None, reply, bool(cmd_id), _now_ms()))
        return 1

    def _take(self, client: "redis.Redis") -> Tuple[Optional[bytes], Optional[Claim]]:
        """The next command (None after :data:`BLOCK_S` without one) and the script's claim."""
        if not self.take_script:
            raw = client.blmove(self.keys.cmd, self.keys.cmd_processing, BLOCK_S, "LEFT", "RIGHT")
            return raw, None
        if self._take_conn is None:
            self._take_conn = held_connection(client)
            self._take_packed = self._take_conn.pack_commands(
                [
                    # wait for a command, and leave it where it is
                    ("BLMOVE", self.keys.cmd, self.keys.cmd, "LEFT", "LEFT", BLOCK_S),
                    ("EVAL", TAKE_SCRIPT, 2, self.keys.cmd, self.keys.cmd_processing)
                    + (self.keys.seen(""), self.dedupe_ttl_s, MAX_RAW_BYTES),
                ]
            )
        waited, taken = send_packed(self._take_conn, self._take_packed, 2)
        refused = [r for r in (waited, taken) if isinstance(r, redis.ResponseError)]
        if refused:
            # e.g. NOPERM for EVAL: the script never ran, nothing was taken. (A script that
            # ran has taken what it returns, even when the BLMOVE before it was refused.)
            log.warning(
                "Redis refused the take-and-claim pipeline (%s); taking with BLMOVE and "
                "claiming with SET NX (one more round trip per command)",
                refused[0],
            )
            self.take_script = False
            if isinstance(taken, redis.ResponseError):
                return None, None
        if not taken:
            return None, None
        raw = taken[0]
        if len(taken) < 3:
            return raw, None
        cmd_id = taken[1].decode("utf-8") if isinstance(taken[1], bytes) else str(taken[1])
        return raw, Claim(cmd_id, taken[2] == 1, taken[3] if len(taken) > 3 else None)

    def _release(self, client: "redis.Redis", claim: Optional[Claim]) -> None:
        """Undo the script's claim of a command that is not run (invalid, stale, another id)."""
        if claim is not None and claim.claimed:
            client.delete(self.keys.seen(claim.id))

    def _handle(self, client: "redis.Redis", raw: bytes, claim: Optional[Claim] = None) -> None:
        taken_ms = _now_ms()
        try:
            command = parse_command(raw)
        except ProtocolError as exc:
            self._release(client, claim)
            reply = make_reply(exc.cmd_id, exc.cmd, error=exc)
            self.deliver(Taken(raw, None, reply, False, taken_ms))
            return

        if command.ts is not None:
            ttl = command.ttl_ms or self.cmd_ttl_ms
            server_now = taken_ms + self.clock_offset_ms
            if command.ts + ttl < server_now:
                self._release(client, claim)
                error = ProtocolError(
                    STALE,
                    "command is {:,} ms old by the Redis server's clock, older than its ttl_ms "
                    "{:,}; not run".format(server_now - command.ts, ttl),
                )
                self.deliver(
                    Taken(
                        raw, None, make_reply(command.id, command.cmd, error=error), False, taken_ms
                    )
                )
                return
            ahead = check_clock_ahead(command, server_now, self.max_clock_ahead_ms)
            if ahead is not None:
                self._release(client, claim)
                self.deliver(
                    Taken(
                        raw, None, make_reply(command.id, command.cmd, error=ahead), False, taken_ms
                    )
                )
                return

        if command.id:
            if claim is not None and claim.id == command.id:
                if not claim.claimed:
                    reply = duplicate_reply(command, claim.first)
                    self.deliver(Taken(raw, None, reply, False, taken_ms))
                    return
            else:
                self._release(client, claim)
                seen_key = self.keys.seen(command.id)
                if not client.set(seen_key, RUNNING, nx=True, ex=self.dedupe_ttl_s):
                    first_raw = client.get(seen_key)
                    reply = duplicate_reply(command, first_raw)
                    self.deliver(Taken(raw, None, reply, False, taken_ms))
                    return
        else:
            self._release(client, claim)
        self.deliver(Taken(raw, command, None, bool(command.id), taken_ms))


def duplicate_reply(command: Command, first_raw: Optional[bytes]) -> Dict[str, Any]:
    """The answer to a repeated id: the first reply again (under ``first``, its ``result``
    copied), with ``ok`` false and ``error.code`` DUPLICATE."""
    first: Optional[Dict[str, Any]] = None
    if first_raw is not None and first_raw != RUNNING.encode():
        try:
            first = json.loads(first_raw)
        except ValueError:
            first = None
    if first is None:
        message = "command id {} is already running; not run again".format(command.id)
    else:
        message = "command id {} was already executed (first reply attached); not run again".format(
            command.id
        )
    reply = make_reply(command.id, command.cmd, error=ProtocolError(DUPLICATE, message))
    if first is not None:
        if "result" in first:
            reply["result"] = first["result"]
        reply["first"] = first
    return reply


def _id_of(raw: bytes) -> Tuple[Optional[str], Optional[str]]:
    """The id and cmd that can still be read from a raw command (None when not)."""
    try:
        command = parse_command(raw)
        return command.id, command.cmd
    except ProtocolError as exc:
        return exc.cmd_id, exc.cmd
