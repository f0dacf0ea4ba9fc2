"""``kc status``: is the engine alive, what is it doing, is the writer keeping up.

Exit status: 0 engine alive, 1 engine down (no heartbeat), 3 Redis unreachable.
"""

import argparse
import json
import sys
import time
from typing import Any, Dict, List, Optional

import redis

from core.config import ConfigError, load_config, redact
from core.protocol import Keys


def _text(mapping: Dict[bytes, bytes]) -> Dict[str, str]:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in mapping.items()}


def collect(client: "redis.Redis[bytes]", keys: Keys) -> Dict[str, Any]:
    """Everything ``kc status`` reports, as a dict (also used by ``--json``)."""
    started = time.perf_counter()
    client.ping()
    rtt_ms = (time.perf_counter() - started) * 1000
    alive = client.get(keys.engine_alive)
    seconds, micros = client.time()
    server_ms = int(seconds) * 1000 + int(micros) // 1000
    heartbeat_age_ms: Optional[int] = None
    if alive is not None:
        try:
            heartbeat_age_ms = max(0, server_ms - int(alive))
        except ValueError:
            heartbeat_age_ms = None
    return {
        "redis_rtt_ms": round(rtt_ms, 3),
        "engine_alive": alive is not None,
        "heartbeat_age_ms": heartbeat_age_ms,
        "engine": _text(client.hgetall(keys.engine)),
        "writer": _text(client.hgetall(keys.writer)),
        "queued_commands": client.llen(keys.cmd),
        "in_flight_commands": client.llen(keys.cmd_processing),
        "dead_commands": client.llen(keys.cmd_dead),
    }


def render(info: Dict[str, Any]) -> List[str]:
    eng = info["engine"]
    if info["engine_alive"]:
        head = "engine: {} ({} {}), run {}, seq {}, heartbeat {} ms ago".format(
            eng.get("state", "?"),
            eng.get("broker", "?"),
            eng.get("mode", "?"),
            eng.get("run_id", "?"),
            eng.get("seq", "?"),
            info["heartbeat_age_ms"],
        )
    else:
        head = "engine: DOWN (no heartbeat){}".format(
            "; last state {}".format(eng["state"]) if eng.get("state") else ""
        )
    lines = [head]
    if info["engine_alive"] and eng.get("session"):  # issue 12: both venues' phases
        from core.protocol.sessions import PHASE_WORDS

        def words(name: str) -> str:
            return "{} ({})".format(PHASE_WORDS.get(name, (name,))[0], name)

        market = eng.get("session_note") or "KRX {}{}".format(
            words(eng["session"]),
            " | NXT {}".format(words(eng["session_nxt"])) if eng.get("session_nxt") else "",
        )
        lines.append("market: " + market)
    if eng.get("watchgroup"):  # issue 10: the group streamed, and the broker's master list
        names = eng.get("names", "0")
        lines.append(
            "watchlist: group {}; master list {}".format(
                eng["watchgroup"],
                "{:,} names".format(int(names)) if names.isdigit() and int(names) else "not read",
            )
        )
    writer = info["writer"]
    if writer:
        lines.append(
            "writer: {} lag {} entries / {} s, last error: {}".format(
                writer.get("state", "?"),
                writer.get("lag_entries", "?"),
                writer.get("lag_s", "?"),
                writer.get("last_error") or "none",
            )
        )
    else:
        lines.append("writer: not running (no status)")
    lines.append(
        "commands: {} queued, {} in flight, {} dead-lettered".format(
            info["queued_commands"], info["in_flight_commands"], info["dead_commands"]
        )
    )
    lines.append("redis: round trip {:.2f} ms".format(info["redis_rtt_ms"]))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="kc status", description=__doc__)
    parser.add_argument("--config", help="config file (default: $KC_CONFIG or config.toml)")
    parser.add_argument("--redis", help="Redis URL (overrides [redis] url)")
    parser.add_argument("--prefix", help="key prefix (overrides [redis] prefix)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(
            args.config, overrides={"redis.url": args.redis, "redis.prefix": args.prefix}
        )
    except ConfigError as exc:
        print(redact("kc status: {}".format(exc)), file=sys.stderr)
        return 2
    try:
        client = redis.Redis.from_url(cfg.redis_url_with_auth(), socket_timeout=5)
    except ValueError as exc:  # a URL redis-py cannot read: say so, never a traceback
        print(redact("kc status: [redis] url {}: {}".format(cfg.redis.url, exc)), file=sys.stderr)
        return 2
    try:
        info = collect(client, Keys(cfg.redis.prefix))
    except redis.RedisError as exc:
        print(
            redact("kc status: Redis at {} is unreachable: {}".format(cfg.redis.url, exc)),
            file=sys.stderr,
        )
        return 3
    finally:
        client.close()
    print(json.dumps(info, ensure_ascii=False) if args.json else "\n".join(render(info)))
    return 0 if info["engine_alive"] else 1


if __name__ == "__main__":
    sys.exit(main())
