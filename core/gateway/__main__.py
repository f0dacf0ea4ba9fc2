"""``python -m core.gateway`` (also ``kc gateway``): serve the live feed over WebSocket.

Flags win over the environment (``KC_REDIS_URL``, ``KC_PREFIX``, ``KC_GATEWAY__LISTEN`` …), which
wins over ``config.toml``. Tokens: ``[gateway] tokens_file`` and ``KC_GATEWAY_TOKENS``
(docs/gateway.md). Neither tokens nor passwords are ever logged.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys

from core.config import ConfigError, load_config

from .auth import SCOPES, TokenError, TokenStore, hash_line, new_token
from .server import Gateway, RedactTokens
from .settings import GatewaySettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kc gateway",
        description="Serve quotes, orders, positions and surge alerts over WebSocket "
        "(/ws/market, /ws/orders, /ws/positions, /ws/surge, /ws/stats, /ws/commands).",
    )
    p.add_argument("--config", metavar="PATH", help="config file (default: config.toml)")
    p.add_argument("--redis", metavar="URL", help="Redis URL (default: [redis] url)")
    p.add_argument("--prefix", help="key prefix (default: [redis] prefix)")
    p.add_argument("--listen", metavar="HOST:PORT", help="default: [gateway] listen")
    p.add_argument("--tokens-file", metavar="PATH", help="default: [gateway] tokens_file")
    p.add_argument(
        "--trade",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="open /ws/commands for trade tokens (default: [gateway] trade)",
    )
    p.add_argument(
        "--new-token",
        metavar="NAME:SCOPE",
        help="print a fresh token and its hashed tokens-file line, then exit",
    )
    p.add_argument(
        "--hash-token",
        metavar="NAME:SCOPE",
        help="read a token (hidden) and print its hashed tokens-file line, then exit",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p.parse_args(argv)


def _name_scope(text: str) -> tuple[str, str]:
    name, _, scope = text.partition(":")
    if scope not in SCOPES or not name:
        raise SystemExit("kc gateway: expected NAME:SCOPE with scope read or trade")
    return name, scope


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.new_token:
        name, scope = _name_scope(args.new_token)
        token = new_token()
        print("token (give it to the client; it is not stored anywhere): " + token)
        print("tokens_file line: " + hash_line(name, scope, token))
        return 0
    if args.hash_token:
        name, scope = _name_scope(args.hash_token)
        token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
        print(hash_line(name, scope, token))
        return 0
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactTokens())
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    try:
        cfg = load_config(
            args.config,
            overrides={
                "redis.prefix": args.prefix,
                "gateway.listen": args.listen,
                "gateway.tokens_file": args.tokens_file,
                "gateway.trade": args.trade,
            },
        )
        settings = GatewaySettings.from_config(cfg, redis_url=args.redis)
        tokens = TokenStore.load(settings.tokens_file)
    except (ConfigError, TokenError) as exc:
        print(f"kc gateway: {exc}", file=sys.stderr)
        return 2
    if not len(tokens):
        print(
            "kc gateway: no tokens: set [gateway] tokens_file or KC_GATEWAY_TOKENS "
            "(make one with: kc gateway --new-token phone:read)",
            file=sys.stderr,
        )
        return 2
    gateway = Gateway(settings, tokens)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows
                pass
        await gateway.run(stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        print(f"kc gateway: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
