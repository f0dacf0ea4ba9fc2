"""Rate limits of the OpenAPI+ as sliding windows, and a queue that waits instead of failing.

Kiwoom refuses a query with -200 past 5 a second, and blocks an account that keeps querying
at that pace (17 s after one burst of 5, 90 s after 5 bursts, 180 s after 10); koapy keeps all
of these windows at once, and so does :data:`TR_WINDOWS`. Orders: 5 a second, else -308.

:class:`RateQueue` holds requests until every window allows them. It does not own a timer:
it asks for a wake-up through ``schedule(delay_ms)`` (a ``QTimer`` in the broker, a list in the
unit tests) and runs what is due when ``pump()`` is called, reading time from ``clock``.
"""

import collections
import time
from typing import Callable, Deque, List, Optional, Sequence, Tuple

#: (seconds, most calls) pairs that must all hold.
Windows = Sequence[Tuple[float, int]]

TR_WINDOWS: Windows = ((1.0, 5), (18.0, 5), (90.0, 25), (180.0, 50), (3600.0, 1000))
#: 5 orders a second (KOA: "주문은 1초당 5회로 제한"; koapy's SendOrder limiter is (1 s, 5)),
#: kept with a margin: the 6th order leaves at least 1.1 s after the 1st, whatever the timer
#: and clock jitter on the PC (Qt timers fire up to a few ms early or late).
ORDER_MARGIN_S = 0.1
ORDER_WINDOWS: Windows = ((1.0 + ORDER_MARGIN_S, 5),)
#: The clock of the windows. ``time.monotonic`` on Windows before Python 3.13 is
#: GetTickCount64, 15.6 ms steps; ``time.perf_counter`` is QueryPerformanceCounter, better than
#: 1 us (CPython gh-88494, "Use QueryPerformanceCounter() for time.monotonic()", which made the
#: two the same clock in 3.13; trio issue #33 "Which clock should we use on Windows?").
CLOCK = time.perf_counter
#: Condition searches: once a minute per condition (on top of the TR windows).
CONDITION_WINDOWS: Windows = ((60.0, 1),)


class SlidingWindows:
    """Call history checked against several (period, count) windows at once."""

    def __init__(self, windows: Windows, clock: Callable[[], float] = CLOCK) -> None:
        if not windows:
            raise ValueError("at least one window is needed")
        for period, count in windows:
            if period <= 0 or count <= 0:
                raise ValueError(
                    "windows need a positive period and count, got {!r}".format((period, count))
                )
        self.windows: List[Tuple[float, int]] = [(float(p), int(c)) for p, c in windows]
        self.clock = clock
        self._longest = max(p for p, _ in self.windows)
        self._keep = max(c for _, c in self.windows)
        self._history: Deque[float] = collections.deque()

    def delay(self, now: Optional[float] = None) -> float:
        """Seconds to wait before the next call is allowed (0 when it may go now)."""
        now = self.clock() if now is None else now
        self._forget(now)
        wait = 0.0
        history = self._history
        for period, count in self.windows:
            if len(history) >= count:
                # The count-th most recent call must have left the window.
                oldest_in_way = history[-count]
                wait = max(wait, oldest_in_way + period - now)
        return max(wait, 0.0)

    def record(self, now: Optional[float] = None) -> None:
        now = self.clock() if now is None else now
        self._history.append(now)
        self._forget(now)

    def _forget(self, now: float) -> None:
        history = self._history
        while history and (now - history[0] >= self._longest or len(history) > self._keep):
            history.popleft()


class RateQueue:
    """Requests run in order, each when :class:`SlidingWindows` allows it.

    ``submit`` returns False (the caller answers ``RATE_LIMITED``) when ``max_pending``
    requests already wait. ``retry_front`` puts a request back at the head after the broker
    refused it for its rate (-200), with ``backoff_s`` before the next try.
    """

    def __init__(
        self,
        name: str,
        windows: Windows,
        schedule: Callable[[int], None],
        max_pending: int = 50,
        clock: Callable[[], float] = CLOCK,
    ) -> None:
        self.name = name
        self.limits = SlidingWindows(windows, clock)
        self.clock = clock
        self.max_pending = max_pending
        self._schedule = schedule
        self._pending: Deque[Callable[[], None]] = collections.deque()
        self._not_before = 0.0
        self._pumping = False

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, request: Callable[[], None]) -> bool:
        """Queue ``request`` (run later, on ``pump``); False if the queue is full."""
        if len(self._pending) >= self.max_pending:
            return False
        self._pending.append(request)
        self.pump()
        return True

    def retry_front(self, request: Callable[[], None], backoff_s: float = 1.0) -> None:
        self._pending.appendleft(request)
        self._not_before = self.clock() + backoff_s
        self._wake_in(backoff_s)

    def clear(self) -> List[Callable[[], None]]:
        """Drop everything waiting (on disconnect) and return it, so callers can answer."""
        dropped = list(self._pending)
        self._pending.clear()
        return dropped

    def next_delay(self) -> float:
        """Seconds until the head of the queue may run (0 if now, or nothing waits)."""
        if not self._pending:
            return 0.0
        now = self.clock()
        return max(self.limits.delay(now), self._not_before - now, 0.0)

    def pump(self) -> int:
        """Run every request that is due now; ask for a wake-up for the rest. Returns how many ran."""
        if self._pumping:  # a request that submits another: the outer loop picks it up
            return 0
        self._pumping = True
        ran = 0
        try:
            while self._pending:
                wait = self.next_delay()
                if wait > 0:
                    self._wake_in(wait)
                    break
                request = self._pending.popleft()
                self.limits.record()
                ran += 1
                request()
        finally:
            self._pumping = False
        return ran

    def _wake_in(self, seconds: float) -> None:
        self._schedule(max(1, int(seconds * 1000.0 + 0.999)))
