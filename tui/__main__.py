"""``python -m tui [--config PATH] [--redis URL] [--prefix P]``: open the trading console."""

from __future__ import annotations

import argparse
import os
import re
import sys

from core.config import ConfigError, load_config, redact

from .keymap import KeymapError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kc tui",
        description="The Kiwoom terminal trading console. Connects to the engine through Redis; "
        "press ? inside for every key, Ctrl+P for every action by name.",
    )
    p.add_argument(
        "--config",
        metavar="PATH",
        help="config.toml to read (default: $KC_CONFIG or the repository's)",
    )
    p.add_argument(
        "--redis", metavar="URL", help="Redis URL, without a password (overrides [redis] url)"
    )
    p.add_argument("--prefix", metavar="P", help="key prefix (overrides [redis] prefix)")
    p.add_argument(
        "--database", metavar="DSN", help="PostgreSQL DSN for charts (overrides [database] url)"
    )
    p.add_argument(
        "--refresh-hz",
        type=float,
        metavar="N",
        help="repaints per second at most (overrides [tui] refresh_hz)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.__stdout__ is not None and sys.__stdout__.isatty():
        # shutil.get_terminal_size prefers these over the real size: a stale export would pin
        # the layout and ignore window resizes.
        os.environ.pop("COLUMNS", None)
        os.environ.pop("LINES", None)
    for flag, url in (("--redis", args.redis), ("--database", args.database)):
        if url and re.search(r"://[^/@]*:[^/@]*@", url):
            var = "KC_REDIS_PASSWORD" if flag == "--redis" else "KC_DATABASE_PASSWORD"
            print(
                f"kc tui: {flag} {redact(url)}: holds a password; put it in {var} instead",
                file=sys.stderr,
            )
            return 2
    try:
        cfg = load_config(
            args.config,
            overrides={
                "redis.url": args.redis,
                "redis.prefix": args.prefix,
                "database.url": args.database,
                "tui.refresh_hz": args.refresh_hz,
            },
        )
        from .app import KiwoomConsole

        app = KiwoomConsole(cfg)
    except (ConfigError, KeymapError) as exc:
        print(f"kc tui: {redact(str(exc))}", file=sys.stderr)
        return 2
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
