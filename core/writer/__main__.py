"""``python -m core.writer`` (also ``kc writer``): persist ``P:events`` into the database.

Flags win over the environment (``KC_REDIS_URL``, ``KC_DATABASE_URL``, ``KC_PREFIX`` …), which
wins over ``config.toml``. Passwords come from ``KC_REDIS_PASSWORD`` / ``KC_DATABASE_PASSWORD``
(or the ``password_file`` keys), merged into ``--redis`` / ``--dsn`` as into the configured
URLs; a URL holding a password is refused (it would show in ``ps``). They are never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Mapping

from core.config import ConfigError, load_config

from .consumer import Writer, WriterSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kc writer",
        description="Persist the engine's event stream (P:events, consumer group 'writer') "
        "into PostgreSQL/TimescaleDB, exactly once.",
    )
    p.add_argument("--redis", metavar="URL", help="Redis URL (default: [redis] url)")
    p.add_argument("--dsn", metavar="DSN", help="PostgreSQL DSN (default: [database] url)")
    p.add_argument("--config", metavar="PATH", help="config file (default: config.toml)")
    p.add_argument("--prefix", help="key prefix (default: [redis] prefix)")
    p.add_argument("--consumer", help="consumer name in group 'writer' (default: host-pid)")
    p.add_argument("--batch-rows", type=int, metavar="N", help="rows per batch at most")
    p.add_argument("--batch-ms", type=int, metavar="MS", help="age of a batch at most")
    p.add_argument("--schema", default="public", help="database schema for the tables")
    p.add_argument(
        "--sink",
        choices=("auto", "copy", "unnest"),
        default="auto",
        help="insert method: auto (probe the server), copy or unnest",
    )
    p.add_argument("--claim-idle-ms", type=int, metavar="MS", help="XAUTOCLAIM idle time")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p.parse_args(argv)


def settings_of(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> WriterSettings:
    """The writer's settings from the flags, the environment and the file (one credential
    merge for every entry point: :meth:`core.config.Config.redis_url_with_auth`)."""
    cfg = load_config(
        args.config,
        environ=environ,
        overrides={
            # URLs go through the config like every entry point's, so the credentials
            # from the environment (KC_REDIS_PASSWORD, KC_REDIS__USERNAME,
            # KC_DATABASE_PASSWORD) are merged in and a password in a flag is refused.
            "redis.url": args.redis,
            "database.url": args.dsn,
            "redis.prefix": args.prefix,
            "writer.consumer": args.consumer,
            "writer.batch_rows": args.batch_rows,
            "writer.batch_ms": args.batch_ms,
        },
    )
    return WriterSettings.from_config(
        cfg,
        db_schema=args.schema,
        sink=args.sink,
        claim_idle_ms=args.claim_idle_ms,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = settings_of(args)
    except ConfigError as exc:
        print(f"kc writer: {exc}", file=sys.stderr)
        return 2
    if not settings.dsn:
        print("kc writer: no database: give --dsn or set [database] url", file=sys.stderr)
        return 2
    writer = Writer(settings)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, writer.stop)
        await writer.run()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
