"""Fixtures of the console tests: a config pointing at the rig's Redis and the real sim engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from tui_helpers import ENGINE_SETTINGS, EngineProcess, make_config

from core.config import Config


@pytest.fixture
def prefix() -> str:
    return "tt" + uuid.uuid4().hex[:8]


@pytest.fixture
def tui_config(redis_url: str, prefix: str) -> Config:
    return make_config(redis_url, prefix)


@pytest.fixture
def engine(redis_url: str, prefix: str) -> Iterator[EngineProcess]:
    eng = EngineProcess(redis_url, prefix=prefix, settings=ENGINE_SETTINGS)
    eng.start()
    try:
        eng.wait_ready(timeout=30)
        yield eng
    finally:
        eng.close()
