"""Fixtures for the simulator and surge tests: a fixed exchange clock and a Qt core app."""

import os
from typing import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from .helpers import FakeClock, kst  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    """Tuesday 2026-03-03 10:00 KST: continuous trading."""
    return FakeClock(kst(2026, 3, 3, 10, 0))


@pytest.fixture
def qapp() -> Iterator[object]:
    from PyQt5.QtCore import QCoreApplication

    app = QCoreApplication.instance() or QCoreApplication([])
    yield app
