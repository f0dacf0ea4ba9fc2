"""The surge detector on synthetic quote streams."""

from typing import List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol.events import Quote, Surge
from engine32.surge import SurgeDetector

BASE = 10000


class Stream:
    """A code's quotes: cumulative volume and price, one quote per call."""

    def __init__(self, det: SurgeDetector, code: str = "005930") -> None:
        self.det = det
        self.code = code
        self.volume = 0
        self.alerts: List[Tuple[float, Surge]] = []

    def quote(self, now: float, qty: int, price: int = BASE) -> Optional[Surge]:
        self.volume += qty
        change = price - BASE
        q = Quote(self.code, price, change, round(change * 100.0 / BASE, 2), self.volume, qty)
        alert = self.det.update(q, now, BASE, "삼성전자")
        if alert is not None:
            self.alerts.append((now, alert))
        return alert

    def run(self, start: float, seconds: int, qty: int, price: int = BASE) -> float:
        """One quote a second for ``seconds``; returns the next time."""
        for i in range(seconds):
            self.quote(start + i, qty, price)
        return start + seconds


def detector(**kw) -> SurgeDetector:
    args = dict(
        window_s=60, baseline_s=600, min_change_pct=3.0, min_volume_ratio=5.0, cooldown_s=300
    )
    args.update(kw)
    return SurgeDetector(**args)


def test_fires_on_a_big_move_with_heavy_volume_and_says_why() -> None:
    s = Stream(detector())
    t = s.run(1000.0, 900, qty=100)
    assert s.alerts == []
    assert s.det.volumes("005930", t - 1) == (6000, 6000.0)  # 100/s: 6,000 per window
    t = s.run(t, 30, qty=100, price=10600)  # +6 % on usual volume: not yet
    assert s.alerts == []
    s.run(t, 60, qty=1000, price=10600)  # then 10× the volume
    assert len(s.alerts) == 1
    when, alert = s.alerts[0]
    assert alert.code == "005930" and alert.name == "삼성전자" and alert.price == 10600
    assert alert.change_pct == 6.0 and alert.window_s == 60
    assert 5.0 <= alert.volume_ratio < 10.5
    assert alert.reason == "+6.0% and {:.1f}× usual volume in 60 s".format(alert.volume_ratio)
    # it fires as soon as the window holds 5× the usual: 30,000 = 30 s × 100 + 27 s × 1,000
    assert t + 25 <= when <= t + 28


def test_falls_on_heavy_volume_fire_too_with_a_minus_sign() -> None:
    s = Stream(detector())
    t = s.run(0.0, 700, qty=50)
    s.run(t, 60, qty=2000, price=9300)
    assert len(s.alerts) == 1 and s.alerts[0][1].reason.startswith("-7.0% and ")


def test_below_either_threshold_nothing_fires() -> None:
    s = Stream(detector())
    t = s.run(0.0, 700, qty=100)
    t = s.run(t, 120, qty=5000, price=10200)  # 50× volume but only +2 %
    assert s.alerts == []
    s2 = Stream(detector())
    t = s2.run(0.0, 700, qty=100)
    s2.run(t, 120, qty=300, price=11000)  # +10 % but only 3× volume
    assert s2.alerts == []


def test_no_alert_while_warming_up() -> None:
    s = Stream(detector())
    s.run(0.0, 100, qty=10)  # less than a window of baseline behind the window
    s.run(100.0, 15, qty=100000, price=12000)
    assert s.alerts == []
    s.run(115.0, 30, qty=100000, price=12000)  # now the baseline covers a window: fires
    assert len(s.alerts) == 1


def test_cooldown_holds_back_repeats_then_lets_one_through() -> None:
    with_cooldown = Stream(detector(cooldown_s=300))
    without = Stream(detector(cooldown_s=0))

    def both(start: float, seconds: int, qty: int, price: int = BASE) -> None:
        with_cooldown.run(start, seconds, qty, price)
        without.run(start, seconds, qty, price)

    both(0.0, 700, 10)
    both(700.0, 20, 10000, 11000)  # surge A
    both(720.0, 80, 10, 11000)
    both(800.0, 20, 10000, 11000)  # surge B, 100 s after A
    both(820.0, 200, 10, 11000)
    both(1020.0, 30, 10000, 11000)  # surge C, more than 300 s after A
    fired = [when for when, _ in with_cooldown.alerts]
    fired_without = [when for when, _ in without.alerts]
    assert [int(w) // 100 for w in fired] == [7, 10]  # A and C
    assert any(800 <= w < 820 for w in fired_without)  # B alone would have fired
    assert fired[1] - fired[0] >= 300


def test_codes_are_independent() -> None:
    det = detector()
    a, b = Stream(det, "005930"), Stream(det, "000660")
    for i in range(700):
        a.quote(float(i), 100)
        b.quote(float(i), 100)
    for i in range(700, 760):
        a.quote(float(i), 2000, price=11000)
        b.quote(float(i), 100, price=11000)
    assert len(a.alerts) == 1 and b.alerts == []


def test_a_gap_longer_than_the_ring_resets_at_once() -> None:
    det = detector(window_s=60, baseline_s=600)
    s = Stream(det)
    t = s.run(0.0, 700, qty=100)
    assert det.volumes("005930", t - 1) == (6000, 6000.0)
    later = t + 10 * 3600.0
    s.quote(later, 1000)  # after a long silence: volume of unknown timing, not counted
    window, usual = det.volumes("005930", later)
    assert window == 0 and usual is None  # warming up again, nothing left from before
    s.run(later + 1, 200, qty=100000, price=12000)
    assert s.alerts == []  # still warming up (needs two windows)


def test_silence_shorter_than_the_ring_keeps_history() -> None:
    det = detector(window_s=60, baseline_s=600)
    s = Stream(det)
    t = s.run(0.0, 700, qty=100)
    gap = t + 300.0  # five minutes without quotes (still a subscribed code)
    s.quote(gap, 1000)  # quiet for more than a window: not counted
    window, usual = det.volumes("005930", gap)
    assert window == 0 and usual is not None and 0 < usual < 6000.0


class Reference:
    """Brute-force model of the same rules: a list of (bucket, volume)."""

    def __init__(self, det: SurgeDetector) -> None:
        self.det = det
        self.items: List[Tuple[int, int]] = []
        self.first: Optional[int] = None
        self.last_bucket = 0
        self.last_volume = 0
        self.last_seen = 0.0

    def quote(self, now: float, volume: int) -> None:
        b = int(now // self.det.bucket_s)
        if self.first is None:
            self.first, self.last_bucket, self.last_volume, self.last_seen = b, b, volume, now
            return
        if b - self.last_bucket >= self.det.ring_size:
            self.first = b
        b = max(b, self.last_bucket)  # a clock stepping back counts in the latest bucket
        delta = volume - self.last_volume
        if delta < 0:
            delta = volume
        if delta and now - self.last_seen <= self.det.window_s:
            self.items.append((b, delta))
        self.last_bucket, self.last_volume, self.last_seen = b, volume, now

    def volumes(self) -> Tuple[int, Optional[float]]:
        b = self.last_bucket
        w, r = self.det.window_buckets, self.det.ring_size
        window = sum(v for k, v in self.items if b - w < k <= b)
        baseline = sum(v for k, v in self.items if b - r < k <= b - w)
        span = min(self.det.baseline_buckets, b - w - self.first + 1)
        return window, (baseline * w / float(span) if span >= w else None)


@settings(max_examples=60, deadline=None)
@given(
    bucket_s=st.sampled_from([1, 2, 5]),
    window=st.sampled_from([10, 20, 60]),
    steps=st.lists(
        st.tuples(
            st.one_of(
                st.floats(0.0, 3.0),
                st.floats(3.0, 200.0),
                st.floats(200.0, 2000.0),
                st.floats(-30.0, 0.0),  # the wall clock stepped back
            ),
            st.integers(-5, 500),
        ),
        min_size=1,
        max_size=300,
    ),
)
def test_ring_sums_match_a_brute_force_model(bucket_s, window, steps) -> None:
    det = SurgeDetector(window, window * 5, 1000.0, 1000.0, 0, bucket_s=bucket_s)
    ref = Reference(det)
    now, volume = 5000.0, 1000
    for gap, dv in steps:
        now += gap
        volume = volume + dv if volume + dv >= 0 else 7  # a negative total: a new day
        det.update(Quote("005930", BASE, 0, 0.0, volume), now, BASE)
        ref.quote(now, volume)
        got = det.volumes("005930", now)
        want = ref.volumes()
        assert got[0] == want[0]
        assert (got[1] is None) == (want[1] is None)
        if want[1] is not None:
            assert abs(got[1] - want[1]) < 1e-6


def test_a_clock_that_steps_back_does_not_leak_volume_into_the_window() -> None:
    det = SurgeDetector(10, 50, 3.0, 5.0, 0, bucket_s=1)
    s = Stream(det)
    s.run(100.0, 11, qty=10)
    s.quote(85.0, 500)  # the wall clock stepped back 26 s: counted now, in the latest bucket
    assert det.volumes("005930", 110.0)[0] == 600
    s.run(111.0, 20, qty=0)
    window, usual = det.volumes("005930", 130.0)
    assert window == 0 and usual == (100 + 500) * 10 / 21.0  # 21 buckets seen before it
