"""Logging for the engine: readable lines on stderr, optional JSON lines in a file, and a hook
that turns engine log records into ``log`` events. Passwords in URLs never reach a log."""

import json
import logging
import sys
import time
from typing import Callable, Optional

from core.config import redact


class RedactFilter(logging.Filter):
    """Hides every password form :func:`core.config.redact` knows (``user:pw@``, ``:pw@``,
    ``?password=``, a DSN's ``password=``) in every message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ms), level, logger, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": int(record.created * 1000),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class EventHandler(logging.Handler):
    """Passes records to ``sink`` (a queued Qt signal's emit: any thread may log)."""

    def __init__(
        self, sink: Callable[[logging.LogRecord], None], level: int = logging.INFO
    ) -> None:
        super().__init__(level)
        self.sink = sink
        self.addFilter(RedactFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.getMessage()  # format now, on the logging thread
            self.sink(record)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(level: str = "INFO", log_file: str = "") -> None:
    """Configure the root logger: stderr text lines, plus JSON lines to ``log_file``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    redact_filter = RedactFilter()

    stderr = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter(
        "%(asctime)s.%(msecs)03d %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"
    )
    formatter.converter = time.localtime
    stderr.setFormatter(formatter)
    stderr.addFilter(redact_filter)
    root.addHandler(stderr)

    if log_file:
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(JsonFormatter())
        to_file.addFilter(redact_filter)
        root.addHandler(to_file)


def attach_event_handler(
    sink: Callable[[logging.LogRecord], None], level: Optional[int] = None
) -> EventHandler:
    """Publish records of the ``engine32`` loggers (INFO and up by default) as ``log`` events."""
    handler = EventHandler(sink, level if level is not None else logging.INFO)
    logging.getLogger("engine32").addHandler(handler)
    return handler
