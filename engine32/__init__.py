"""The headless engine: the only process that talks to the broker (Kiwoom OpenAPI+ or the simulator).

Runs on 32-bit Python 3.8+ on Windows with only ``requirements-win32.txt`` installed.
"""

__version__ = "0.1.0"
