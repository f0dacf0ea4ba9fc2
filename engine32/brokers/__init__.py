"""Broker adapters behind one contract (:mod:`engine32.brokers.base`).

:func:`create_broker` imports the chosen adapter lazily, so the simulator never loads the
Kiwoom adapter (whose control exists only on 32-bit Windows) and vice versa.
"""

import importlib
from typing import Any

from .base import Broker, BrokerListener

BROKERS = ("sim", "kiwoom", "kiwoom_rest")


def load_factory(spec: str) -> Any:
    """``package.module:function`` → the function."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError("expected package.module:function, got {!r}".format(spec))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError("{} has no {!r}".format(module_name, attr)) from None


def create_broker(config: Any, listener: BrokerListener, name: str = "") -> Broker:
    """The broker named by ``name`` (default ``config.engine.broker``), built for ``listener``."""
    name = name or config.engine.broker
    if name == "sim":
        from .sim import SimBroker

        return SimBroker(listener, config)
    if name == "kiwoom":
        from .kiwoom import KiwoomBroker

        control = load_factory(config.engine_kiwoom.control)()
        return KiwoomBroker(listener, config, control)
    if name == "kiwoom_rest":
        from .kiwoom_rest import KiwoomRestBroker

        return KiwoomRestBroker(listener, config)
    raise ValueError("unknown broker {!r} (known: {})".format(name, ", ".join(BROKERS)))
