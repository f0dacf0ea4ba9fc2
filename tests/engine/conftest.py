"""Engine fixtures: a real engine process (``python -m engine32 --broker sim``) on the session
Redis, each test under its own key prefix, and a tap on its ``P:ev:*`` events."""

import json
import os
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import redis

from tests.helpers.engine_process import EngineProcess

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

#: A reproducible market with no random bursts; everything else as shipped.
BASE_SETTINGS: Dict[str, Any] = {"sim.seed": 7, "sim.burst_every_s": 0, "sim.quote_rate": 200}


class EventTap:
    """Collects every envelope published on ``P:ev:*`` (a Pub/Sub reader thread)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.events: List[Dict[str, Any]] = []
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(**{prefix + ":ev:*": self._on_message})
        self._thread = self.pubsub.run_in_thread(sleep_time=0.01, daemon=True)

    def _on_message(self, message: Dict[str, Any]) -> None:
        self.events.append(json.loads(message["data"]))

    def of_type(self, etype: str) -> List[Dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == etype]

    def wait_for(
        self, predicate: Callable[[Dict[str, Any]], bool], timeout: float = 5.0, what: str = ""
    ) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            events = list(self.events)
            for event in events[seen:]:
                if predicate(event):
                    return event
            seen = len(events)
            time.sleep(0.01)
        types = [e["type"] for e in self.events][-30:]
        raise AssertionError(
            "no event {} within {} s (last types: {})".format(what, timeout, types)
        )

    def close(self) -> None:
        self._thread.stop()
        self._thread.join(2)
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def engine_factory(redis_url: str, tmp_path: Any) -> Iterator[Callable[..., EngineProcess]]:
    """``engine_factory(settings=..., prefix=..., start=True)`` → a started EngineProcess."""
    made: List[EngineProcess] = []

    def make(
        settings: Optional[Dict[str, Any]] = None,
        prefix: Optional[str] = None,
        url: Optional[str] = None,
        start: bool = True,
        **kwargs: Any,
    ) -> EngineProcess:
        merged = dict(BASE_SETTINGS)
        merged.update(settings or {})
        eng = EngineProcess(
            url or redis_url, prefix=prefix, settings=merged, log_dir=str(tmp_path), **kwargs
        )
        made.append(eng)
        if start:
            eng.start()
        return eng

    yield make
    for eng in made:
        eng.close()


@pytest.fixture
def engine(engine_factory: Callable[..., EngineProcess]) -> EngineProcess:
    """A ready sim engine with the default settings under a fresh prefix."""
    eng = engine_factory()
    eng.wait_ready()
    return eng


@pytest.fixture
def tap(engine: EngineProcess) -> Iterator[EventTap]:
    t = EventTap(engine.redis_url, engine.prefix)
    time.sleep(0.05)  # the subscription is in place before the test sends anything
    yield t
    t.close()
