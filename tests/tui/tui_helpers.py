"""Helpers shared by the console tests (imported by name: tests/tui is on sys.path)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from core.config import Config, load_config

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests" / "helpers") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "helpers"))


from engine_process import EngineError, EngineProcess  # noqa: E402

__all__ = ["ENGINE_SETTINGS", "EngineError", "EngineProcess", "make_config", "until"]

#: A small, calm, reproducible market for functional tests.
ENGINE_SETTINGS = {"sim.seed": 7, "sim.quote_rate": 40, "sim.burst_every_s": 0}


def make_config(redis_url: str, prefix: str, **extra: object) -> Config:
    overrides = {"redis.url": redis_url, "redis.prefix": prefix, "database.url": ""}
    overrides.update({k.replace("__", "."): v for k, v in extra.items()})
    return load_config(overrides=overrides, environ={})


async def until(
    pause: Callable[[float], Awaitable[None]],
    check: Callable[[], object],
    timeout: float = 10.0,
    what: str = "condition",
) -> object:
    """Poll ``check`` (letting the app run between polls) until it is truthy or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pause(0.05)
