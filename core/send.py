"""``kc send``: send one command to the engine and print its reply (for scripts and people).

    kc send ping
    kc send buy code=005930 qty=10 price=70000
    kc send '{"cmd":"cancel","order_id":"S000001"}'

Exit status: 0 the engine said ok, 1 it refused (the error is printed), 2 the command is
malformed (nothing was sent), 3 no reply in time.
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional

import redis

from core.config import ConfigError, load_config, redact
from core.protocol import Keys, ProtocolError, make_command
from core.protocol.commands import decode_reply


def parse_args_to_command(words: List[str]) -> Dict[str, Any]:
    """``["buy", "code=005930", "qty=10"]`` or one JSON object → a command dict."""
    if len(words) == 1 and words[0].lstrip().startswith("{"):
        obj = json.loads(words[0])
        if not isinstance(obj, dict):
            raise ValueError("a command must be a JSON object")
        return obj
    if not words:
        raise ValueError("name a command, e.g. kc send ping")
    obj: Dict[str, Any] = {"cmd": words[0]}
    for word in words[1:]:
        key, sep, text = word.partition("=")
        if not sep:
            raise ValueError("arguments are key=value, got {!r}".format(word))
        if key == "codes":
            obj[key] = [c for c in text.split(",") if c]
            continue
        try:
            obj[key] = json.loads(text)
        except ValueError:
            obj[key] = text
        if key in ("code", "order_id", "id", "group"):
            obj[key] = text  # keep leading zeros: 005930 is a code, not a number; group=1 a name
    return obj


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kc send", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", nargs="+", help="command name and key=value arguments, or one JSON object"
    )
    parser.add_argument("--config", help="config file (default: $KC_CONFIG or config.toml)")
    parser.add_argument("--redis", help="Redis URL (overrides [redis] url)")
    parser.add_argument("--prefix", help="key prefix (overrides [redis] prefix)")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the reply (default 5)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_config(
            args.config, overrides={"redis.url": args.redis, "redis.prefix": args.prefix}
        )
    except ConfigError as exc:
        print("kc send: {}".format(exc), file=sys.stderr)
        return 2
    try:
        obj = parse_args_to_command(args.command)
        obj.setdefault("id", "cli-" + os.urandom(6).hex())
        cmd_name = obj.pop("cmd", None)
        cmd_id = obj.pop("id")
        command = make_command(str(cmd_name), id=cmd_id, **obj)
    except (ValueError, ProtocolError) as exc:
        print("kc send: {}".format(getattr(exc, "message", exc)), file=sys.stderr)
        return 2
    keys = Keys(cfg.redis.prefix)
    client = redis.Redis.from_url(cfg.redis_url_with_auth(), socket_timeout=args.timeout + 5)
    try:
        if not client.exists(keys.engine_alive):
            print(
                "kc send: warning: no engine heartbeat at {} — the command waits in {} and expires".format(
                    redact(cfg.redis.url), keys.cmd
                ),
                file=sys.stderr,
            )
        client.rpush(keys.cmd, command.encode())
        got = client.blpop([keys.reply(command.id or "")], timeout=args.timeout)
    except redis.RedisError as exc:
        print("kc send: Redis at {}: {}".format(redact(cfg.redis.url), exc), file=sys.stderr)
        return 3
    finally:
        client.close()
    if got is None:
        print("kc send: no reply within {:g} s".format(args.timeout), file=sys.stderr)
        return 3
    reply = decode_reply(got[1])
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
