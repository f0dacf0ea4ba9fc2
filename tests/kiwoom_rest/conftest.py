"""Fixtures for the kiwoom_rest broker: the fake REST + WebSocket server, a Qt core
application, and a broker wired to both (its network thread talks to the fake over TCP)."""

import logging
import os
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5.QtCore import QCoreApplication  # noqa: E402

from core.config import load_config  # noqa: E402
from engine32.brokers.base import Result  # noqa: E402
from engine32.brokers.kiwoom_rest import KiwoomRestBroker  # noqa: E402
from tests.fakes.kiwoom_rest import FakeKiwoomRest  # noqa: E402
from tests.kiwoom.helpers import Recorder, wait_until  # noqa: E402

CREDS = {"KC_KIWOOM_APPKEY": "fake-appkey-0123456789",
         "KC_KIWOOM_SECRETKEY": "fake-secretkey-0123456789"}  # fmt: skip


@pytest.fixture(scope="session")
def qapp() -> Iterator[QCoreApplication]:
    app = QCoreApplication.instance() or QCoreApplication([])
    yield app


class Rig:
    def __init__(self, fake: FakeKiwoomRest, broker: KiwoomRestBroker, rec: Recorder) -> None:
        self.fake = fake
        self.broker = broker
        self.rec = rec

    def connect(self, timeout: float = 15.0) -> None:
        self.broker.connect()
        wait_until(lambda: self.rec.connected, timeout, "the broker to be ready")

    def call(
        self, start: Callable[[Callable[[Result], None]], None], timeout: float = 15.0
    ) -> Result:
        answers: List[Result] = []
        start(answers.append)
        wait_until(lambda: answers, timeout, "the request's answer")
        return answers[0]


@pytest.fixture
def make_rig(qapp: QCoreApplication) -> Iterator[Callable[..., Rig]]:
    made: List[Rig] = []

    def make(fake_kwargs: Optional[Dict[str, Any]] = None,
             settings: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Rig:  # fmt: skip
        fake = FakeKiwoomRest(**(fake_kwargs or {})).start()
        overrides = {"engine.kiwoom_rest.base_url": fake.base_url,
                     "engine.kiwoom_rest.ws_url": fake.ws_url,
                     "engine.kiwoom_rest.query_per_s": 50.0,
                     "engine.kiwoom_rest.order_per_s": 50.0}  # fmt: skip
        overrides.update(settings or {})
        cfg = load_config(overrides=overrides, environ={})
        kwargs.setdefault("reconnect_base_s", 0.05)
        kwargs.setdefault("refresh_ms", 50)
        rec = Recorder()
        broker = KiwoomRestBroker(rec, cfg, env=dict(CREDS), **kwargs)
        rig = Rig(fake, broker, rec)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.broker.disconnect()
        rig.broker.net.join(10)
        rig.fake.stop()
        assert not rig.broker.net.running, "the network thread did not stop"


@pytest.fixture
def secrets_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
