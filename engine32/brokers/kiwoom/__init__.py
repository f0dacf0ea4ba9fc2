"""The Kiwoom OpenAPI+ broker (Windows, 32-bit Python): see :mod:`.broker` and docs/windows.md."""

from .broker import KiwoomBroker

__all__ = ["KiwoomBroker"]
