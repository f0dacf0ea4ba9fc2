"""``python -m engine32 --supervise``: run the engine as a child process and start it again.

Kiwoom's OpenAPI+ control drops every session once a day (-106 around 05:05-05:10, Sunday
04:00-04:30; koapy's KiwoomOpenApiPlusDialogHandler quotes the notice) and wants the program
restarted: ``CommConnect`` again in the same process does not recover. The engine then exits
with :data:`engine32.exitcodes.RESTART` after answering what it held; this supervisor waits
until Kiwoom's maintenance window is over (``[engine.kiwoom] maintenance_windows``, in KST)
and starts a fresh engine, which applies the protocol's restart rule before taking commands.
A crash is restarted too, after 10 s, 20 s, 40 s … (at most 5 minutes; back to 10 s once a
run lasted 10 minutes). Exit 0 (the engine was stopped on purpose) and 2 (bad configuration)
end the supervisor with the same code.
"""

import datetime
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence

from . import exitcodes

log = logging.getLogger("engine32.supervise")

KST = datetime.timezone(datetime.timedelta(hours=9), "KST")  # Korea has no daylight saving
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A clean run this long resets the crash backoff.
STABLE_RUN_S = 600.0
MAX_BACKOFF_S = 300.0
#: How long a stopping engine may take before it is killed (its own stop limit is 15 s).
STOP_GRACE_S = 30.0


class Window(NamedTuple):
    days: frozenset  # weekday numbers, Monday 0
    start: int  # minutes after midnight, KST
    end: int  # minutes after midnight, KST (after start)


_ENTRY = re.compile(r"^({d})(?:-({d}))?\s+(\d\d):(\d\d)-(\d\d):(\d\d)$".format(d="|".join(DAYS)))


def parse_windows(text: str) -> List[Window]:
    """``"mon-sat 05:00-06:55, sun 03:55-06:55"`` → windows; ``"none"`` → no window."""
    text = text.strip().lower()
    if text == "none":
        return []
    windows = []
    for entry in text.split(","):
        match = _ENTRY.match(" ".join(entry.split()))
        if match is None:
            raise ValueError(
                "a maintenance window is DAY[-DAY] HH:MM-HH:MM (KST), got {!r}".format(entry)
            )
        first, last, h1, m1, h2, m2 = match.groups()
        a, b = DAYS.index(first), DAYS.index(last or first)
        days = (
            frozenset(range(a, b + 1))
            if a <= b
            else frozenset(list(range(a, 7)) + list(range(0, b + 1)))
        )
        start, end = int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)
        if not (start < end <= 24 * 60 and int(m1) < 60 and int(m2) < 60):
            raise ValueError("a maintenance window must end after it starts: {!r}".format(entry))
        windows.append(Window(days, start, end))
    return windows


def seconds_until_open(windows: Sequence[Window], now: datetime.datetime) -> float:
    """0 when ``now`` (aware) is outside every window, else the seconds until it is."""
    wait = 0.0
    moment = now.astimezone(KST)
    for _ in range(len(windows) + 1):  # windows may follow one another
        minute = moment.hour * 60 + moment.minute + moment.second / 60.0
        inside = [w for w in windows if moment.weekday() in w.days and w.start <= minute < w.end]
        if not inside:
            return wait
        step = (max(w.end for w in inside) - minute) * 60.0
        wait += step
        moment += datetime.timedelta(seconds=step)
    return wait


class Supervisor:
    """Starts ``command`` again and again; see the module docstring."""

    def __init__(
        self,
        command: List[str],
        windows: Sequence[Window],
        first_backoff_s: float = 10.0,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(KST),
    ) -> None:
        self.command = command
        self.windows = list(windows)
        self.first_backoff_s = first_backoff_s
        self.now = now
        self.starts = 0
        self._stop = threading.Event()
        self._child: Optional["subprocess.Popen[Any]"] = None

    def stop(self) -> None:
        """Stop once the child has stopped cleanly (see :meth:`_wait_child`)."""
        self._stop.set()

    def run(self) -> int:
        failures = 0
        while not self._stop.is_set():
            wait = seconds_until_open(self.windows, self.now())
            if wait > 0:
                log.warning(
                    "inside Kiwoom's maintenance window: starting the engine in %.0f s", wait
                )
                if self._stop.wait(wait):
                    break
            self.starts += 1
            started = time.monotonic()
            log.info("starting the engine (start %d): %s", self.starts, " ".join(self.command))
            self._child = subprocess.Popen(self.command)
            code = self._wait_child()
            ran = time.monotonic() - started
            if self._stop.is_set():
                return exitcodes.OK
            if code == exitcodes.OK:
                log.info("the engine stopped cleanly; the supervisor stops too")
                return exitcodes.OK
            if code == exitcodes.CONFIG:
                log.error("the engine refused its configuration (exit 2); not restarting")
                return exitcodes.CONFIG
            if code == exitcodes.RESTART:
                failures = 0
                delay = self.first_backoff_s
                log.warning("the engine asked for a new process (Kiwoom's session ended); "
                            "restarting after Kiwoom's maintenance window")  # fmt: skip
            else:
                failures = 1 if ran >= STABLE_RUN_S else failures + 1
                delay = min(MAX_BACKOFF_S, self.first_backoff_s * 2 ** (failures - 1))
                log.error(
                    "the engine exited with %s after %.0f s; restarting in %.0f s", code, ran, delay
                )
            if self._stop.wait(delay):
                break
        return exitcodes.OK

    def _wait_child(self) -> int:
        """The child's exit code. When the supervisor is asked to stop, the child gets SIGTERM
        (POSIX) and stops cleanly: it answers what it took and flushes. On Windows, Ctrl+C
        already reached the child in the same console, and TerminateProcess would cut that
        short: it is the last resort, after ``STOP_GRACE_S``."""
        child = self._child
        assert child is not None
        asked = 0.0
        while True:
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if not self._stop.is_set():
                    continue
                if not asked:
                    asked = time.monotonic()
                    if os.name != "nt":
                        child.send_signal(signal.SIGTERM)
                elif time.monotonic() - asked > STOP_GRACE_S:
                    log.error("the engine did not stop within %.0f s; ending it", STOP_GRACE_S)
                    child.kill()


def main(argv: List[str], config: Any) -> int:
    """``argv``: the engine's own flags (without ``--supervise``)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s supervise: %(message)s"
    )
    try:
        windows = parse_windows(str(config.engine_kiwoom.maintenance_windows))
    except ValueError as exc:
        print("engine32: configuration error: {}".format(exc), file=sys.stderr)
        return exitcodes.CONFIG
    if str(config.engine.broker) != "kiwoom":
        windows = []  # only Kiwoom has a maintenance window
    backoff = float(os.environ.get("KC_SUPERVISE_BACKOFF_S", "10") or 10)
    supervisor = Supervisor([sys.executable, "-m", "engine32"] + list(argv), windows, backoff)

    def on_signal(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping the engine, then the supervisor", signum)
        supervisor.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return supervisor.run()
