"""The ``[gateway]`` section (config.toml) and the Redis connection, as one object."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import Config


@dataclass
class GatewaySettings:
    redis_url: str  # with the ACL user and password in it: never log it
    prefix: str = "kc"
    host: str = "127.0.0.1"
    port: int = 8765
    tokens_file: str = ""
    trade: bool = False
    queue_max: int = 2000
    queue_max_kb: int = 4096
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    idle_timeout_s: float = 120.0
    max_connections: int = 200
    tls_cert: str = ""
    tls_key: str = ""
    stats_every_s: float = 1.0
    #: how long /ws/commands waits for the engine's reply
    reply_timeout_s: float = 10.0
    #: commands one /ws/commands connection may have waiting for their reply
    commands_in_flight: int = 8

    @classmethod
    def from_config(cls, cfg: Config, redis_url: str | None = None) -> GatewaySettings:
        g = cfg.gateway
        host, port = split_listen(g.listen)
        return cls(
            redis_url=redis_url or cfg.redis_url_with_auth(),
            prefix=cfg.redis.prefix,
            host=host,
            port=port,
            tokens_file=g.tokens_file,
            trade=g.trade,
            queue_max=g.queue_max,
            queue_max_kb=g.queue_max_kb,
            ping_interval_s=g.ping_interval_s,
            ping_timeout_s=g.ping_timeout_s,
            idle_timeout_s=g.idle_timeout_s,
            max_connections=g.max_connections,
            tls_cert=g.tls_cert,
            tls_key=g.tls_key,
        )


def split_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:8765`` → (``127.0.0.1``, 8765); ``[::1]:8765`` → (``::1``, 8765)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)
