"""Async Redis helpers for the 64-bit side (TUI, scripts, tests): the client end of protocol.md.

Usage::

    bus = Bus.from_config(cfg)            # or Bus(url, prefix)
    snap = await bus.read_snapshot()      # P:state:* and P:engine in one round trip
    reply = await bus.send_command(make_command("buy", code="005930", qty=1, price=70000))
    rtt_ms = await bus.rtt_ms()
    await bus.close()
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.config import Config, redact
from core.protocol import Command, Keys, decode_reply, make_command, watchgroups
from core.protocol.errors import ProtocolError

#: The engine's heartbeat key is written with ``PX 3000`` and refreshed every second.
HEARTBEAT_PX = 3000


class ReplyTimeout(TimeoutError):
    """No reply arrived in time: the engine is down, busy or the command was lost."""


@dataclass
class Snapshot:
    """Everything a late client needs to rebuild its view (protocol.md, ``P:state:*``)."""

    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    account: dict[str, Any] = field(default_factory=dict)
    surge: list[dict[str, Any]] = field(default_factory=list)  # newest first
    watchlist: list[str] = field(default_factory=list)
    engine: dict[str, str] = field(default_factory=dict)
    alive: bool = False
    #: ``P:state:watchgroups``: (name, codes) in order, and the active group ('' none kept)
    groups: list[tuple[str, list[str]]] = field(default_factory=list)
    active_group: str = ""

    @property
    def run(self) -> str:
        return self.engine.get("run_id", "")

    @property
    def last_seq(self) -> int:
        """The engine's last published seq as of this snapshot (``-1`` when unknown)."""
        for name in ("seq", "last_seq"):
            try:
                return int(self.engine[name])
            except (KeyError, ValueError):
                continue
        return -1


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _json_values(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        try:
            obj = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(obj, dict):
            out[_text(key)] = obj
    return out


def _account(raw: dict[Any, Any]) -> dict[str, Any]:
    """``P:state:account`` is a hash; fields are numbers as text (or one JSON blob under ``data``)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name, text = _text(key), _text(value)
        try:
            obj = json.loads(text)
        except ValueError:
            out[name] = text
            continue
        if isinstance(obj, dict):
            out.update(obj)
        else:
            out[name] = obj
    return out


class Bus:
    """One Redis connection pool and the key names of one prefix."""

    def __init__(
        self, url: str, prefix: str = "kc", *, client: aioredis.Redis | None = None
    ) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.redis: aioredis.Redis = client or aioredis.from_url(
            url, socket_connect_timeout=2.0, health_check_interval=10
        )

    @classmethod
    def from_config(cls, cfg: Config) -> Bus:
        return cls(cfg.redis_url_with_auth(), cfg.redis.prefix)

    def __repr__(self) -> str:
        return f"Bus({redact(self.url)!r}, {self.keys.prefix!r})"

    async def close(self) -> None:
        await self.redis.aclose()

    # --- reading state ------------------------------------------------------------------------

    async def read_snapshot(self) -> Snapshot:
        """All ``P:state:*`` keys, ``P:engine`` and the heartbeat, in one MULTI round trip."""
        k = self.keys
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.engine)
            pipe.hgetall(k.state_quotes)
            pipe.hgetall(k.state_positions)
            pipe.hgetall(k.state_orders)
            pipe.hgetall(k.state_account)
            pipe.lrange(k.state_surge, 0, -1)
            pipe.lrange(k.state_watchlist, 0, -1)
            pipe.exists(k.engine_alive)
            pipe.hgetall(k.state_watchgroups)
            (
                engine,
                quotes,
                positions,
                orders,
                account,
                surge,
                watch,
                alive,
                groups_raw,
            ) = await pipe.execute()
        groups, active = watchgroups.decode(groups_raw)
        surge_items = []
        for raw in surge:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                surge_items.append(obj)
        return Snapshot(
            quotes=_json_values(quotes),
            positions=_json_values(positions),
            orders=_json_values(orders),
            account=_account(account),
            surge=surge_items,
            watchlist=[_text(c) for c in watch],
            engine={_text(a): _text(b) for a, b in engine.items()},
            alive=bool(alive),
            groups=[(g.name, list(g.codes)) for g in groups],
            active_group=active or "",
        )

    async def read_names(self) -> dict[str, str]:
        """``P:state:names``: the broker's master list, code → Korean name (one HGETALL of
        about 2,700 short fields; read at start and when the engine says it changed)."""
        raw = await self.redis.hgetall(self.keys.state_names)
        return {_text(code): _text(name) for code, name in raw.items()}

    async def engine_info(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.engine)
        return {_text(a): _text(b) for a, b in raw.items()}

    async def heartbeat_age_ms(self) -> int | None:
        """Milliseconds since the engine's last heartbeat, or ``None`` when it is absent (down).

        Read from the key's remaining TTL, so it needs no shared clock with the engine.
        """
        pttl = await self.redis.pttl(self.keys.engine_alive)
        if pttl is None or pttl < 0:
            return None
        return max(0, HEARTBEAT_PX - int(pttl))

    async def writer_info(self) -> dict[str, str]:
        raw = await self.redis.hgetall(self.keys.writer)
        return {_text(a): _text(b) for a, b in raw.items()}

    async def rtt_ms(self) -> float:
        """One PING round trip, in milliseconds."""
        start = time.perf_counter()
        await self.redis.ping()
        return (time.perf_counter() - start) * 1000.0

    async def server_time_ms(self) -> int:
        sec, usec = await self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000

    # --- commands -----------------------------------------------------------------------------

    async def send_command(
        self, cmd: Command | dict[str, Any], timeout: float = 5.0
    ) -> dict[str, Any]:
        """RPUSH the command onto ``P:cmd`` and wait for its reply on ``P:reply:<id>``.

        A command without an id gets one. Raises :class:`ReplyTimeout` when no reply comes within
        ``timeout`` seconds, :class:`ProtocolError` when what comes back is not a reply.
        """
        if isinstance(cmd, dict):
            args = {k: v for k, v in cmd.items() if k not in ("cmd", "id")}
            cmd = make_command(cmd["cmd"], id=cmd.get("id") or new_command_id(), **args)
        elif not cmd.id:
            cmd = dataclasses.replace(cmd, id=new_command_id())
        await self.redis.rpush(self.keys.cmd, cmd.encode())
        try:
            got = await self.redis.blpop([self.keys.reply(cmd.id)], timeout=timeout)
        except RedisTimeoutError:
            # The connection's read timeout (5 s by default) can fire together with BLPOP's
            # own: the command was pushed, so this is a missing reply, not a Redis failure.
            got = None
        if got is None:
            raise ReplyTimeout(f"no reply to {cmd.cmd} {cmd.id} within {timeout:g} s")
        return decode_reply(got[1])

    async def send(self, name: str, timeout: float = 5.0, **args: Any) -> dict[str, Any]:
        """``await bus.send("buy", code="005930", qty=1, price=70000)``."""
        return await self.send_command(make_command(name, id=new_command_id(), **args), timeout)


def new_command_id(tag: str = "tui") -> str:
    """A fresh command id that satisfies the protocol's id pattern."""
    return f"{tag}-{uuid.uuid4().hex[:16]}"


__all__ = ["Bus", "ProtocolError", "ReplyTimeout", "Snapshot", "new_command_id"]
