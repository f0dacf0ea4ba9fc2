"""The broker's network thread: one asyncio loop, and the way back to the Qt thread.

The broker contract (``engine32/brokers/base.py``) wants every broker method to return at once
on the Qt thread. So the REST calls and the WebSocket run here, on a loop of their own, and
whatever they produce is handed to the Qt thread as a queued signal (:class:`QtPost`): the Qt
thread never waits on the network.
"""

import asyncio
import concurrent.futures
import logging
import threading
from typing import Any, Callable, Coroutine, Optional

from PyQt5.QtCore import QObject, Qt, pyqtSignal

log = logging.getLogger("engine32.brokers.kiwoom_rest")


class QtPost(QObject):
    """``post(fn)`` from any thread runs ``fn()`` later on the thread this object lives on."""

    posted = pyqtSignal(object)

    def __init__(self) -> None:
        super().__init__()
        self.posted.connect(self._run, Qt.QueuedConnection)

    def post(self, fn: Callable[[], Any]) -> None:
        self.posted.emit(fn)

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - one bad event must not take the engine down
            log.exception("kiwoom_rest: error on the Qt thread")


class NetThread:
    """An asyncio loop on its own (non-daemon) thread: at exit, Python lets it finish its
    clean stop (the token is revoked) without the Qt thread waiting for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kiwoom-rest-net")
            self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> "concurrent.futures.Future[Any]":
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop_soon(self) -> None:
        """Stop the loop once what was submitted before has been started."""
        if self.running:
            self.loop.call_soon_threadsafe(self.loop.stop)

    def join(self, timeout: float) -> None:
        """For tests and shutdown paths that may wait (never the Qt thread in the engine)."""
        if self._thread is not None:
            self._thread.join(timeout)
