"""Fixtures for the Kiwoom broker tests: a Qt core application, the fake control, a recorder."""

import os
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5.QtCore import QCoreApplication  # noqa: E402

from core.config import load_config  # noqa: E402
from engine32.brokers.base import BrokerListener, Result  # noqa: E402
from engine32.brokers.kiwoom import KiwoomBroker  # noqa: E402
from tests.fakes.kiwoom_control import FakeKiwoomControl  # noqa: E402

from .helpers import Recorder, wait_until  # noqa: E402


@pytest.fixture(scope="session")
def qapp() -> Iterator[QCoreApplication]:
    app = QCoreApplication.instance() or QCoreApplication([])
    yield app


@pytest.fixture
def fake(qapp: QCoreApplication) -> Iterator[FakeKiwoomControl]:
    control = FakeKiwoomControl(
        holdings={"005930": (20, 68000), "000660": (5, 170000), "035420": (3, 210000)}
    )
    yield control
    assert control.violations == [], "the broker broke the control's rules: {}".format(
        control.violations
    )


class Rig:
    """A broker on the fake control, with what it told its listener."""

    def __init__(self, fake: FakeKiwoomControl, broker: KiwoomBroker, rec: Recorder) -> None:
        self.fake = fake
        self.broker = broker
        self.rec = rec

    def connect(self, timeout: float = 10.0) -> None:
        self.broker.connect()
        wait_until(lambda: self.rec.connected, timeout, "the broker to connect")

    def call(
        self, start: Callable[[Callable[[Result], None]], None], timeout: float = 10.0
    ) -> Result:
        """Run a request with a ``done`` callback and wait for its one answer."""
        answers: List[Result] = []
        start(answers.append)
        wait_until(lambda: answers, timeout, "the request's answer")
        return answers[0]

    def settle(self) -> None:
        """Wait until the fake has nothing left to deliver."""
        wait_until(self.fake.idle, 10.0, "the fake control to go idle")
        wait_until(self.fake.idle, 10.0, "the fake control to go idle")


@pytest.fixture
def make_rig(fake: FakeKiwoomControl) -> Iterator[Callable[..., Rig]]:
    made: List[KiwoomBroker] = []

    def make(
        control: Optional[FakeKiwoomControl] = None,
        overrides: Optional[Dict[str, Any]] = None,
        listener: Optional[BrokerListener] = None,
        **kwargs: Any,
    ) -> Rig:
        settings = {"engine_kiwoom.login_timeout_s": 5}
        settings.update(overrides or {})
        cfg = load_config(
            overrides={
                k.replace("engine_kiwoom.", "engine.kiwoom."): v for k, v in settings.items()
            },
            environ={},
        )
        kwargs.setdefault("tr_windows", ((1.0, 5),))
        kwargs.setdefault("relogin_delay_s", 0.05)
        kwargs.setdefault("account_refresh_ms", 20)
        kwargs.setdefault("watchdog_ms", 100)
        rec = listener or Recorder()
        broker = KiwoomBroker(rec, cfg, control or fake, **kwargs)
        made.append(broker)
        return Rig(control or fake, broker, rec)  # type: ignore[arg-type]

    yield make
    for broker in made:
        if broker.state != "idle":
            broker.disconnect()
    for rig_control in {id(b.control.ocx): b.control.ocx for b in made}.values():
        assert rig_control.violations == [], "the broker broke the control's rules: {}".format(
            rig_control.violations
        )
