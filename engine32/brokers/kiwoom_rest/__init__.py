"""The Kiwoom REST + WebSocket broker (``--broker kiwoom_rest``): docs/kiwoom-rest.md."""

from .broker import KiwoomRestBroker

__all__ = ["KiwoomRestBroker"]
