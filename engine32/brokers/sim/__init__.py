"""The KRX market simulator broker (``[engine] broker = "sim"``).

:class:`SimBroker` (Qt timer, broker contract) wraps :class:`SimExchange` (pure Python:
market, matching, account), which tests drive directly. ``SimBroker`` is imported lazily so
the core stays importable without Qt.
"""

from typing import Any

from .exchange import SimExchange
from .universe import DEFAULT_UNIVERSE, Instrument, build_universe

__all__ = ["DEFAULT_UNIVERSE", "Instrument", "SimBroker", "SimExchange", "build_universe"]


def __getattr__(name: str) -> Any:
    if name == "SimBroker":
        from .broker import SimBroker

        return SimBroker
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
