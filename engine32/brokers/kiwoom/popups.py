"""Kiwoom's pop-ups on Windows: dismiss them, and ask for a restart when they say to.

The OpenAPI+ control opens modal dialogs that nobody is there to press on an unattended PC
(koapy's KiwoomOpenApiPlusDialogHandler lists them and clicks their button):

- "안녕하세요. 키움증권 입니다." (about 04:45): the daily maintenance notice (월~토 05:05~05:10,
  일 04:00~04:30). Dismissed.
- "KHOpenAPI" (about 05:05): "통신 연결이 끊겼습니다. 프로그램 종료후 재접속 해주시기 바랍니다."
  Dismissed, and the engine restarts (the -106 that comes with it does the same).
- "[HTS 재접속 안내]" (06:50): sessions logged in before 06:50 should log in again, or balances
  miss the day's settlement. Dismissed, and the engine restarts (koapy: RESTART_AND_RESTORE).

This uses ``ctypes`` and user32 only (FindWindowW, FindWindowExW, SendMessageW BM_CLICK), so
the engine needs no pywin32. Elsewhere (the fake control on Linux) it does nothing unless a test
hands it a window system of its own.
"""

import logging
import sys
from typing import Any, Callable, List, Optional, Sequence, Tuple

from PyQt5.QtCore import QTimer

log = logging.getLogger("engine32.brokers.kiwoom")

#: (window title, restart after dismissing it)
DIALOGS: Tuple[Tuple[str, bool], ...] = (
    ("안녕하세요. 키움증권 입니다.", False),
    ("KHOpenAPI", True),
    ("[HTS 재접속 안내]", True),
)
POLL_MS = 1000


class WindowSystem:
    """What the watcher needs from the desktop: find a top-level window by title, press its
    button. ``find`` returns a handle or 0; ``press`` returns True when a button was pressed."""

    def find(self, title: str) -> Any:
        raise NotImplementedError

    def press(self, handle: Any) -> bool:
        raise NotImplementedError


class User32Windows(WindowSystem):
    """The real desktop on Windows, through ctypes."""

    BM_CLICK = 0x00F5
    WM_CLOSE = 0x0010

    def __init__(self) -> None:
        import ctypes

        self.user32 = ctypes.windll.user32  # type: ignore[attr-defined]

    def find(self, title: str) -> Any:
        return self.user32.FindWindowW(None, title) or 0

    def press(self, handle: Any) -> bool:
        button = self.user32.FindWindowExW(handle, None, "Button", None)
        if button:
            self.user32.SendMessageW(button, self.BM_CLICK, 0, 0)
            return True
        self.user32.PostMessageW(handle, self.WM_CLOSE, 0, 0)
        return False


class PopupWatcher:
    """Every ``POLL_MS`` while started: dismiss the known dialogs; for those that say to log in
    again, call ``on_restart(words)``."""

    def __init__(
        self,
        windows: Optional[WindowSystem],
        dialogs: Sequence[Tuple[str, bool]] = DIALOGS,
        poll_ms: int = POLL_MS,
    ) -> None:
        self.windows = windows
        self.dialogs = list(dialogs)
        self.on_restart: Callable[[str], None] = lambda words: None
        self.dismissed: List[str] = []
        self._timer = QTimer()
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)

    @classmethod
    def for_platform(cls) -> "PopupWatcher":
        windows: Optional[WindowSystem] = None
        if sys.platform == "win32":
            try:
                windows = User32Windows()
            except (ImportError, AttributeError, OSError) as exc:  # pragma: no cover - Windows
                log.warning("cannot watch Kiwoom's pop-ups: %s", exc)
        return cls(windows)

    @property
    def active(self) -> bool:
        return self.windows is not None

    def start(self) -> None:
        if self.windows is not None and not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _poll(self) -> None:
        windows = self.windows
        if windows is None:
            return
        for title, restart in self.dialogs:
            try:
                handle = windows.find(title)
                if not handle:
                    continue
                windows.press(handle)
            except Exception:  # noqa: BLE001 - a desktop call that fails must not stop the engine
                log.exception("could not dismiss the Kiwoom dialog %r", title)
                continue
            self.dismissed.append(title)
            log.warning("dismissed Kiwoom's dialog %r", title)
            if restart:
                self.on_restart("Kiwoom's dialog {!r} asks to log in again".format(title))
