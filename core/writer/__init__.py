"""The writer: persists the ``P:events`` stream into PostgreSQL/TimescaleDB, exactly once.

``python -m core.writer --redis URL --dsn DSN`` or, in process::

    writer = Writer(WriterSettings.from_config(cfg))
    task = asyncio.create_task(writer.run())
    ...
    writer.stop(); await task
"""

from .consumer import GROUP, Writer, WriterSettings, WriterStats

__all__ = ["GROUP", "Writer", "WriterSettings", "WriterStats"]
