"""The surge detector: which codes are moving on unusual volume right now.

A code *surges* when, on one quote,

- its change from the previous close is at least ``min_change_pct`` (either way: a crash on
  heavy volume is as worth seeing as a spike; the sign tells them apart), and
- the volume it traded in the last ``window_s`` seconds is at least ``min_volume_ratio``
  times its usual volume for such a window, the usual being the average over the
  ``baseline_s`` seconds *before* that window,

and it has not alerted in the last ``cooldown_s`` seconds.

Volume comes from the deltas of the quotes' cumulative volume, summed into buckets of
``bucket_s`` seconds kept in a ring per code, with running sums for the window and the
baseline, so a quote costs O(1): a bucket rollover moves one bucket from the window into the
baseline and one out of the baseline; a gap longer than the ring resets the sums at once
(each slot carries the bucket number it holds, so stale slots read as empty without being
cleared). Until a code has been seen for one window plus one window of baseline it cannot
alert (there is nothing to compare with). Volume that arrives after the code was silent for
more than a window is not counted: when it traded is unknown. Pure Python, for the engine.
"""

import time
from typing import Callable, Dict, List, Optional, Tuple

from core.protocol.events import Quote, Surge


class _CodeVolume:
    """Per-code ring of volume buckets with running window and baseline sums."""

    __slots__ = (
        "ring",
        "stamps",
        "bucket",
        "first_bucket",
        "window_sum",
        "baseline_sum",
        "last_volume",
        "last_seen",
        "last_alert",
    )

    def __init__(self, size: int, bucket: int, volume: int, now: float) -> None:
        self.ring: List[int] = [0] * size
        self.stamps: List[int] = [-1] * size
        self.ring[bucket % size] = 0
        self.stamps[bucket % size] = bucket
        self.bucket = bucket
        self.first_bucket = bucket
        self.window_sum = 0
        self.baseline_sum = 0
        self.last_volume = volume
        self.last_seen = now
        self.last_alert: Optional[float] = None


class SurgeDetector:
    """Feed it every quote (:meth:`update`); it returns a :class:`Surge` when one fires."""

    def __init__(
        self,
        window_s: int = 60,
        baseline_s: int = 1200,
        min_change_pct: float = 3.0,
        min_volume_ratio: float = 5.0,
        cooldown_s: float = 300,
        bucket_s: Optional[int] = None,
        name_of: Optional[Callable[[str], str]] = None,
    ) -> None:
        if window_s <= 0 or baseline_s < window_s:
            raise ValueError(
                "need 0 < window_s <= baseline_s, got {} and {}".format(window_s, baseline_s)
            )
        self.window_s = int(window_s)
        self.baseline_s = int(baseline_s)
        self.min_change_pct = float(min_change_pct)
        self.min_volume_ratio = float(min_volume_ratio)
        self.cooldown_s = float(cooldown_s)
        self.bucket_s = int(bucket_s) if bucket_s else max(1, self.window_s // 15)
        self.window_buckets = -(-self.window_s // self.bucket_s)
        self.baseline_buckets = -(-self.baseline_s // self.bucket_s)
        self.ring_size = self.window_buckets + self.baseline_buckets
        self.name_of = name_of
        self._codes: Dict[str, _CodeVolume] = {}

    @classmethod
    def from_config(cls, config: object) -> "SurgeDetector":
        """From a :class:`core.config.Config` (its ``[surge]`` section)."""
        s = config.surge  # type: ignore[attr-defined]
        return cls(s.window_s, s.baseline_s, s.min_change_pct, s.min_volume_ratio, s.cooldown_s)

    # -- the ring ---------------------------------------------------------------------------
    def _get(self, cv: _CodeVolume, bucket: int) -> int:
        slot = bucket % self.ring_size
        return cv.ring[slot] if cv.stamps[slot] == bucket else 0

    def _roll(self, cv: _CodeVolume, bucket: int) -> None:
        """Move ``cv`` forward to ``bucket``: O(buckets passed), at most O(ring size)."""
        steps = bucket - cv.bucket
        if steps <= 0:
            return
        size = self.ring_size
        if steps >= size:
            cv.window_sum = 0
            cv.baseline_sum = 0
        else:
            w = self.window_buckets
            for b in range(cv.bucket + 1, bucket + 1):
                moving = self._get(cv, b - w)  # leaves the window, joins the baseline
                cv.window_sum -= moving
                cv.baseline_sum += moving - self._get(cv, b - size)  # and one leaves it
                slot = b % size
                cv.ring[slot] = 0
                cv.stamps[slot] = b
        slot = bucket % size
        if cv.stamps[slot] != bucket:
            cv.ring[slot] = 0
            cv.stamps[slot] = bucket
        cv.bucket = bucket

    # -- per quote --------------------------------------------------------------------------
    def volumes(self, code: str, now: float) -> Optional[Tuple[int, Optional[float]]]:
        """``(window volume, usual volume per window or None while warming up)`` at ``now``."""
        cv = self._codes.get(code)
        if cv is None:
            return None
        self._roll(cv, int(now // self.bucket_s))
        return cv.window_sum, self._usual(cv)

    def _usual(self, cv: _CodeVolume) -> Optional[float]:
        seen = cv.bucket - self.window_buckets - cv.first_bucket + 1
        span = min(self.baseline_buckets, seen)
        if span < self.window_buckets:
            return None
        return cv.baseline_sum * self.window_buckets / float(span)

    def update(
        self, quote: Quote, now: Optional[float] = None, base: int = 0, name: str = ""
    ) -> Optional[Surge]:
        """Account for one quote at ``now`` (seconds, any monotonic origin; default: wall
        clock); ``base`` is the previous close (0: use the quote's ``change_pct``)."""
        if now is None:
            now = time.time()
        bucket = int(now // self.bucket_s)
        cv = self._codes.get(quote.code)
        if cv is None:
            self._codes[quote.code] = _CodeVolume(self.ring_size, bucket, quote.volume, now)
            return None
        if bucket - cv.bucket >= self.ring_size:
            cv.first_bucket = bucket  # silent longer than the ring holds: warm up again
        self._roll(cv, bucket)
        delta = quote.volume - cv.last_volume
        if delta < 0:  # a new day: the cumulative volume started again
            delta = quote.volume
        quiet_for = now - cv.last_seen
        cv.last_volume = quote.volume
        cv.last_seen = now
        if delta and quiet_for <= self.window_s:
            cv.ring[cv.bucket % self.ring_size] += delta  # (a clock that steps back: the latest)
            cv.window_sum += delta

        if base > 0:
            change_pct = (quote.price - base) * 100.0 / base
        else:
            change_pct = quote.change_pct
        if abs(change_pct) < self.min_change_pct:
            return None
        if cv.last_alert is not None and now - cv.last_alert < self.cooldown_s:
            return None
        usual = self._usual(cv)
        if usual is None:
            return None
        ratio = cv.window_sum / max(usual, 1.0)
        if ratio < self.min_volume_ratio:
            return None
        cv.last_alert = now
        if not name and self.name_of is not None:
            name = self.name_of(quote.code)
        return Surge(
            code=quote.code,
            price=quote.price,
            change_pct=round(change_pct, 2),
            volume_ratio=round(ratio, 1),
            window_s=self.window_s,
            reason="{:+.1f}% and {:.1f}× usual volume in {} s".format(
                change_pct, ratio, self.window_s
            ),
            name=name,
        )

    def forget(self, code: str) -> None:
        """Drop what is known about ``code`` (e.g. when it is unsubscribed)."""
        self._codes.pop(code, None)
