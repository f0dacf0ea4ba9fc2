"""The WebSocket side of the gateway: handshake and auth, channels, ``/ws/commands``, stats.

Close codes the gateway uses (with a reason in words):

- 4401 no token or a wrong one; 4403 a ``read`` token on ``/ws/commands``;
- 4404 no such channel (``/ws/commands`` too while ``[gateway] trade`` is off);
- 4008 the client cannot keep up with orders, fills and replies (its queue is full of them);
- 1013 too many connections; 1001 idle or the gateway is stopping;
- 1011 keep-alive: no pong within ``ping_timeout_s``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import ssl
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from core.protocol import Keys, ProtocolError, make_reply, parse_command
from core.protocol.commands import ID_RE
from core.protocol.errors import BROKER_ERROR, INVALID_ARGUMENT, RATE_LIMITED
from core.protocol.krx import is_valid_code

from .auth import Principal, TokenStore
from .hub import Hub, Live, notice
from .outbox import Item, Outbox
from .routes import FEED_CHANNELS, channel_of_path
from .settings import GatewaySettings

log = logging.getLogger("kc.gateway")
#: The websockets library's own messages; at DEBUG it would print request lines and headers,
#: so it is kept at INFO and filtered: no token reaches a log in either form.
ws_log = logging.getLogger("kc.gateway.websockets")
ws_log.setLevel(logging.INFO)

_SECRET_IN_TEXT = re.compile(r"((?:token=)|(?:bearer\s+))[^&\s\"']+", re.I)


class RedactTokens(logging.Filter):
    """Replaces ``token=...`` and ``Bearer ...`` values in a record by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_IN_TEXT.search(message):
            record.msg = _SECRET_IN_TEXT.sub(r"\1***", message)
            record.args = None
        return True


ws_log.addFilter(RedactTokens())
log.addFilter(RedactTokens())

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4008
CLOSE_TRY_LATER = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_KEEPALIVE = 1011
MAX_CLIENT_MESSAGE = 65536
MAX_FILTER_CODES = 5000
#: Snapshots a client may ask for (op snapshot/subscribe/unsubscribe): a burst, then one a second.
SNAPSHOT_BURST = 5
SNAPSHOT_EVERY_S = 1.0


def token_of(connection: ServerConnection) -> str | None:
    """The token from ``Authorization: Bearer`` or the ``token`` query parameter."""
    header = connection.request.headers.get("Authorization", "") if connection.request else ""
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    query = parse_qs(urlsplit(connection.request.path).query) if connection.request else {}
    values = query.get("token")
    return values[0] if values else None


def parse_codes(raw: Any) -> set[str] | None:
    """``"*"`` → ``None`` (every code); a list or comma-separated text → the set; else ValueError."""
    if raw == "*" or raw == ["*"]:
        return None
    if isinstance(raw, str):
        raw = [c for c in raw.split(",") if c.strip()]
    if not isinstance(raw, list) or len(raw) > MAX_FILTER_CODES:
        raise ValueError(
            'codes must be "*" or a list of at most {} stock codes'.format(MAX_FILTER_CODES)
        )
    bad = [c for c in raw if not is_valid_code(c)]
    if bad:
        raise ValueError(
            "not a 6-character stock code: {}".format(", ".join(repr(c) for c in bad[:5]))
        )
    return set(raw)


class Client:
    """One WebSocket connection on one channel."""

    def __init__(self, gw: Gateway, ws: ServerConnection, channel: str, who: Principal) -> None:
        self.gw = gw
        self.ws = ws
        self.channel = channel
        self.who = who
        self.outbox = Outbox(gw.settings.queue_max, gw.settings.queue_max_kb * 1024)
        #: market filter: None = every code, else the set (empty until a subscribe)
        self.codes: set[str] | None = set()
        self.floor: tuple[str, int] = ("", -1)  # (run, seq) of the last snapshot sent
        self.closing = False
        self.started = False
        self.last_heard = time.monotonic()
        self._snapshot_credit = float(SNAPSHOT_BURST)
        self._credit_at = time.monotonic()
        self.sent = 0
        self.peer = "{}:{}".format(*ws.remote_address[:2]) if ws.remote_address else "?"

    # -- feeding ---------------------------------------------------------------------------
    def offer(self, live: Live) -> None:
        if self.closing:
            return
        text, count = live.text, 1
        if live.droppable and self.channel == "market":
            if self.codes is None:
                count = live.count
            else:
                if not self.codes:
                    return
                text, count = live.for_codes(self.codes)
                if text is None:
                    return
        self.put(Item(text, live.droppable, live.run, live.seq, count))

    def put(self, item: Item, front: bool = False) -> None:
        if self.closing:
            return
        if not self.outbox.put(item, front=front):
            self.gw.shed(
                self,
                CLOSE_TOO_SLOW,
                "too slow: {} undelivered order, fill or reply messages".format(len(self.outbox)),
            )

    async def pump(self) -> None:
        """Send the outbox in order: snapshots set the floor below which live events are old."""
        while True:
            item = await self.outbox.get()
            if item.snapshot:
                self.floor = (item.run, item.seq)
            elif item.seq >= 0 and item.run == self.floor[0] and item.seq <= self.floor[1]:
                continue  # already in the snapshot sent before it
            seqs = self.outbox.dropped_seqs
            messages, quotes = self.outbox.take_drop_report()
            if messages:
                self.outbox.dropped_seqs = None
                self.gw.stats["dropped_reports"] += 1
                await self.ws.send(
                    notice(
                        "dropped",
                        messages=messages,
                        quotes=quotes,
                        first_seq=seqs[0] if seqs else None,
                        last_seq=seqs[1] if seqs else None,
                        total_quotes=self.outbox.total_dropped_quotes,
                    )
                )
            await self.ws.send(item.text)
            self.sent += 1
            self.gw.sent[self.channel] += 1

    async def send_snapshot(self, front: bool = False) -> None:
        for attempt in range(3):  # a pooled connection may be a dead one from before an outage
            try:
                text = await self.gw.hub.snapshot(self.channel, self.codes)
                break
            except (RedisError, OSError) as exc:
                if attempt == 2:
                    self.put(Item(notice("gateway", redis="down", error=type(exc).__name__), False))
                    return
                await asyncio.sleep(0.1 * (attempt + 1))
        head = json.loads(text[: text.index(',"ts":')] + "}")
        self.put(Item(text, False, head["run"], head["seq"], snapshot=True), front=front)

    def _may_snapshot(self) -> bool:
        """A snapshot reads every P:state key: one client must not make Redis do it in a loop."""
        now = time.monotonic()
        self._snapshot_credit = min(
            float(SNAPSHOT_BURST),
            self._snapshot_credit + (now - self._credit_at) / SNAPSHOT_EVERY_S,
        )
        self._credit_at = now
        if self._snapshot_credit < 1.0:
            return False
        self._snapshot_credit -= 1.0
        return True

    # -- what the client says --------------------------------------------------------------
    async def on_message(self, raw: str | bytes) -> None:
        self.last_heard = time.monotonic()
        if self.channel == "commands":
            await self.gw.relay(self, raw)
            return
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("a message must be a JSON object")
            op = msg.get("op")
            if op == "ping":
                self.put(Item(notice("pong"), False))
            elif op in ("snapshot", "subscribe", "unsubscribe") and not self._may_snapshot():
                raise ValueError(
                    "too many snapshots asked for: at most {} at once, then one a second; "
                    "{} ignored".format(SNAPSHOT_BURST, op)
                )
            elif op == "snapshot":
                await self.send_snapshot()
            elif op in ("subscribe", "unsubscribe") and self.channel == "market":
                codes = parse_codes(msg.get("codes"))
                if op == "subscribe":
                    if codes is None or self.codes is None:
                        self.codes = None if codes is None else self.codes
                    else:
                        self.codes |= codes
                elif codes is None:
                    self.codes = set()
                elif self.codes is not None:
                    self.codes -= codes
                await self.send_snapshot()
            else:
                raise ValueError(
                    'unknown op {!r}: this channel takes "ping" and "snapshot"{}'.format(
                        op, ', "subscribe", "unsubscribe"' if self.channel == "market" else ""
                    )
                )
        except ValueError as exc:
            self.put(Item(notice("error", message=str(exc)), False))


class Gateway:
    def __init__(self, settings: GatewaySettings, tokens: TokenStore) -> None:
        self.settings = settings
        self.tokens = tokens
        self.keys = Keys(settings.prefix)
        self.hub = Hub(settings.redis_url, settings.prefix, self.on_event, self.on_redis)
        # Commands wait on BLPOP: their own pool, so a wait never holds the hub's connection.
        self.cmd_redis = aioredis.from_url(
            settings.redis_url, socket_connect_timeout=2.0, max_connections=256
        )
        self.clients: dict[str, set[Client]] = {ch: set() for ch in FEED_CHANNELS}
        self.clients.update(stats=set(), commands=set())
        self.sent: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        self.address: tuple[str, int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- Redis events ----------------------------------------------------------------------
    def on_event(self, channel: str, live: Live) -> None:
        for client in tuple(self.clients[channel]):
            client.offer(live)

    def on_redis(self, up: bool, error: str) -> None:
        text = notice("gateway", redis="up" if up else "down", error=error)
        for channel in FEED_CHANNELS + ("commands",):
            for client in tuple(self.clients[channel]):
                client.put(Item(text, False))
                if up and client.started and channel != "commands":
                    self._spawn(client.send_snapshot())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- shedding ---------------------------------------------------------------------------
    def shed(self, client: Client, code: int, reason: str) -> None:
        """Drop a client that cannot keep up: it stops getting anything, then is closed."""
        if client.closing:
            return
        client.closing = True
        self.clients[client.channel].discard(client)
        self.stats["slow_disconnects"] += 1
        log.warning("disconnecting %s on /ws/%s (%s): %s", client.who.name, client.channel,
                    client.peer, reason)  # fmt: skip
        self._spawn(self._close(client, code, reason))

    async def _close(self, client: Client, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(client.ws.close(code, reason), 2.0)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass
        finally:
            if client.ws.transport is not None:
                client.ws.transport.abort()

    # -- connections ------------------------------------------------------------------------
    async def handler(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path).path if ws.request else ""
        peer = "{}:{}".format(*ws.remote_address[:2]) if ws.remote_address else "?"
        who = self.tokens.check(token_of(ws))
        channel = channel_of_path(path)
        refusal: tuple[int, str] | None = None
        if who is None:
            refusal = (CLOSE_UNAUTHORIZED, "unauthorized: no valid token")
        elif channel is None or (channel == "commands" and not self.settings.trade):
            refusal = (CLOSE_NOT_FOUND, "no such channel: {}".format(path[:80]))
        elif channel == "commands" and not who.can_trade:
            refusal = (CLOSE_FORBIDDEN, "forbidden: token {!r} has scope read".format(who.name))
        elif sum(len(s) for s in self.clients.values()) >= self.settings.max_connections:
            refusal = (CLOSE_TRY_LATER, "too many connections; try again later")
        if refusal is not None:
            self.stats["refused"] += 1
            # The path only: the query may hold the token.
            log.warning("refused %s on %s (%s): %s",
                        who.name if who else "unknown client", path[:80], peer, refusal[1])  # fmt: skip
            await ws.close(*refusal)
            return
        assert who is not None and channel is not None
        client = Client(self, ws, channel, who)
        log.info("%s connected to /ws/%s from %s", who.name, channel, peer)
        if channel == "stats":
            await self._serve_stats(client)
            return
        if channel == "market":
            query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
            if "codes" in query:
                try:
                    client.codes = parse_codes(query["codes"][0])
                except ValueError as exc:
                    await ws.close(1008, str(exc)[:120])
                    return
        self.clients[channel].add(client)
        tasks: list[asyncio.Task[Any]] = []
        try:
            if channel != "commands":
                # Tried even while the hub reconnects: a failure is answered with a
                # {"type": "gateway", "data": {"redis": "down"}} notice, and the snapshot
                # follows when Redis is back.
                await client.send_snapshot(front=True)
            client.started = True
            tasks = [
                asyncio.ensure_future(client.pump()),
                asyncio.ensure_future(self._keepalive(client)),
            ]
            reader = asyncio.ensure_future(self._read(client))
            done, _ = await asyncio.wait([reader, *tasks], return_when=asyncio.FIRST_COMPLETED)
            tasks.append(reader)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, ConnectionClosed):
                        log.warning("/ws/%s %s: %r", channel, peer, exc)
        finally:
            for task in tasks:
                task.cancel()
            self.clients[channel].discard(client)
            client.closing = True
            self.stats["dropped_quotes_closed"] += client.outbox.total_dropped_quotes
            self.stats["dropped_messages_closed"] += client.outbox.total_dropped_messages
            log.info("%s left /ws/%s (%s)", who.name, channel, peer)

    async def _read(self, client: Client) -> None:
        async for raw in client.ws:
            await client.on_message(raw)

    async def _keepalive(self, client: Client) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval_s)
            if time.monotonic() - client.last_heard > s.idle_timeout_s:
                await client.ws.close(CLOSE_GOING_AWAY, "idle")
                return
            try:
                waiter = await client.ws.ping()
                await asyncio.wait_for(waiter, s.ping_timeout_s)
            except asyncio.TimeoutError:
                self.gw_close(client, CLOSE_KEEPALIVE, "keepalive ping timeout")
                return
            client.last_heard = time.monotonic()

    def gw_close(self, client: Client, code: int, reason: str) -> None:
        client.closing = True
        self._spawn(self._close(client, code, reason))

    async def _serve_stats(self, client: Client) -> None:
        self.clients["stats"].add(client)
        try:
            while True:
                await client.ws.send(notice("stats", **self.snapshot_stats()))
                try:
                    msg = await asyncio.wait_for(client.ws.recv(), self.settings.stats_every_s)
                    client.last_heard = time.monotonic()
                    del msg  # any message asks for the next figures now
                except asyncio.TimeoutError:
                    pass
        except ConnectionClosed:
            pass
        finally:
            self.clients["stats"].discard(client)

    def snapshot_stats(self) -> dict[str, Any]:
        slow = []
        for channel in FEED_CHANNELS:
            for c in self.clients[channel]:
                if len(c.outbox) > self.settings.queue_max // 2 or c.outbox.total_dropped_quotes:
                    slow.append(
                        {
                            "name": c.who.name,
                            "channel": channel,
                            "queued": len(c.outbox),
                            "dropped_quotes": c.outbox.total_dropped_quotes,
                        }
                    )
        dropped_quotes = sum(
            c.outbox.total_dropped_quotes for s in self.clients.values() for c in s
        )
        dropped_messages = sum(
            c.outbox.total_dropped_messages for s in self.clients.values() for c in s
        )
        return {
            "connections": {ch: len(s) for ch, s in self.clients.items()},
            "sent": dict(self.sent),
            "dropped_quotes": dropped_quotes + self.stats["dropped_quotes_closed"],
            "dropped_messages": dropped_messages + self.stats["dropped_messages_closed"],
            "slow_clients": slow,
            "slow_disconnects": self.stats["slow_disconnects"],
            "refused": self.stats["refused"],
            "redis": "up" if self.hub.up else "down",
            "redis_reconnects": self.hub.reconnects,
            "events": self.hub.events,
        }

    # -- /ws/commands -----------------------------------------------------------------------
    async def relay(self, client: Client, raw: str | bytes) -> None:
        """Parse like the engine, namespace the id by token, RPUSH, wait and send the reply."""
        inflight = client.__dict__.setdefault("inflight", [0])
        try:
            cmd = parse_command(raw)
        except ProtocolError as exc:
            client.put(Item(json.dumps(make_reply(exc.cmd_id, exc.cmd, error=exc)), False))
            return
        cid = cmd.id or "gw-" + uuid.uuid4().hex[:16]
        wire = "gw.{}.{}".format(client.who.name, cid)
        if not ID_RE.match(wire):
            room = 64 - len(wire) + len(cid)
            err = ProtocolError(
                INVALID_ARGUMENT,
                "id: at most {} characters through the gateway (it is prefixed with gw.{}.)".format(
                    room, client.who.name
                ),
            )
            client.put(Item(json.dumps(make_reply(cid, cmd.cmd, error=err)), False))
            return
        if inflight[0] >= self.settings.commands_in_flight:
            err = ProtocolError(
                RATE_LIMITED,
                "{} commands already wait for their reply on this connection; wait for one".format(
                    inflight[0]
                ),
            )
            client.put(Item(json.dumps(make_reply(cid, cmd.cmd, error=err)), False))
            return
        inflight[0] += 1
        self._spawn(self._relay_one(client, cmd, cid, wire, inflight))

    async def _relay_one(self, client: Client, cmd: Any, cid: str, wire: str, inflight: list[int]):
        try:
            sent = dataclasses.replace(cmd, id=wire, client=client.who.name)
            try:
                await self.cmd_redis.rpush(self.keys.cmd, sent.encode())
            except (RedisError, OSError):
                err = ProtocolError(
                    BROKER_ERROR,
                    "Redis is unreachable: the command may not have been sent. Resending the same "
                    "id is safe (it never runs twice).",
                )
                client.put(Item(json.dumps(make_reply(cid, cmd.cmd, error=err)), False))
                return
            try:
                got = await self.cmd_redis.blpop(
                    [self.keys.reply(wire)], timeout=self.settings.reply_timeout_s
                )
            except (RedisError, OSError):
                got = None
            if got is None:
                err = ProtocolError(
                    BROKER_ERROR,
                    "no reply from the engine within {:g} s; the command may still run. Check "
                    "orders before sending again; resending the same id is safe.".format(
                        self.settings.reply_timeout_s
                    ),
                )
                client.put(Item(json.dumps(make_reply(cid, cmd.cmd, error=err)), False))
                return
            client.put(Item(_unwire(got[1], wire, cid), False))
        finally:
            inflight[0] -= 1

    # -- running ----------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.settings.tls_cert:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.settings.tls_cert, self.settings.tls_key or None)
        return ctx

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        s = self.settings
        hub_task = asyncio.ensure_future(self.hub.run())
        try:
            async with serve(
                self.handler,
                s.host,
                s.port,
                ssl=self.ssl_context(),
                ping_interval=None,  # our own keep-alive, which also tracks idleness
                close_timeout=2.0,
                max_size=MAX_CLIENT_MESSAGE,
                compression=None,  # deflate costs CPU per client; quotes are mostly numbers
                server_header=None,
                logger=ws_log,
            ) as server:
                sock = next(iter(server.sockets))
                self.address = sock.getsockname()[:2]
                log.info(
                    "listening on %s://%s:%s (prefix %s, %d tokens, trade %s)",
                    "wss" if s.tls_cert else "ws",
                    *self.address,
                    s.prefix,
                    len(self.tokens),
                    "on" if s.trade else "off",
                )
                if ready is not None:
                    ready.set()
                await stop.wait()
                for clients in self.clients.values():
                    for client in tuple(clients):
                        client.closing = True
                        self._spawn(self._close(client, CLOSE_GOING_AWAY, "gateway stopping"))
                if self._tasks:
                    await asyncio.wait(tuple(self._tasks), timeout=3.0)
        finally:
            hub_task.cancel()
            try:
                await hub_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            await self.hub.close()
            await self.cmd_redis.aclose()


def _unwire(raw: bytes | str, wire: str, cid: str) -> str:
    """The engine's reply with the client's own id (and in a DUPLICATE's ``first``) back."""
    try:
        reply = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if isinstance(reply, dict):
        if reply.get("id") == wire:
            reply["id"] = cid
        first = reply.get("first")
        if isinstance(first, dict) and first.get("id") == wire:
            first["id"] = cid
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":"))
