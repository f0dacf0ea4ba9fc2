"""The simulator's exchange clock: ``[sim] start_at`` and ``[sim] speed``.

The clock starts at ``start_at`` (KST) and runs ``speed`` sim seconds per real second, so a
demo can open at 17:30 and trade the NXT after-market, or a whole day can pass in minutes.
It returns ms since the epoch, like the wall clock it replaces (``exchange.Clock``).
"""

import time
from typing import Callable, Optional


class SimClock:
    """``start_ms + (wall() - wall at creation) × speed``, in ms since the epoch."""

    def __init__(
        self,
        start_ms: Optional[int] = None,
        speed: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive number of sim seconds per second")
        self.wall = wall
        self.speed = float(speed)
        self.wall0 = wall()
        self.start_ms = int(self.wall0 * 1000) if start_ms is None else int(start_ms)

    def __call__(self) -> int:
        return self.start_ms + int((self.wall() - self.wall0) * 1000.0 * self.speed)
