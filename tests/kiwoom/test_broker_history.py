"""``history`` on the OCX: opt10081/opt10080 with continuation pages, within the TR rate
limit, oldest first, without today's forming candle."""

import datetime

from core.protocol import krx
from engine32.brokers.kiwoom.history import DAILY, MINUTE


def test_daily_history_pages_through_opt10081(make_rig, fake) -> None:
    rig = make_rig(tr_windows=((1.0, 2),))  # a tight limit: continuation pages must queue
    rig.connect()
    before = len(fake.tr_requests)
    result = rig.call(lambda done: rig.broker.history("005930", "1d", 1300, done), timeout=20)
    assert result.ok, result.message
    asked = [(t, n, s) for t, _, n, s in fake.tr_requests[before:]]
    # 1,300 days plus today's forming candle at 600 rows a page: three pages (next 0, 2, 2),
    # the third queued behind the 2-per-second window, and no -200 from the control
    assert [(t, n) for t, n, _ in asked] == [(DAILY, 0), (DAILY, 2), (DAILY, 2)]
    assert all(len(s) == 4 and s != "0000" for _, _, s in asked)
    candles = result.value["candles"]
    assert len(candles) == 1300 and result.value["source"] == "kiwoom"
    starts = [c[0] for c in candles]
    assert starts == sorted(set(starts))
    today = datetime.datetime.combine(krx.now_kst().date(), datetime.time(0), tzinfo=krx.KST)
    assert starts[-1] < today.timestamp() * 1000  # today's candle is left to the live quotes
    for _, o, h, lo, c, v in candles:
        assert lo <= min(o, c) <= max(o, c) <= h and v > 0
    assert fake.violations == []


def test_minute_history_reads_signed_prices(make_rig, fake) -> None:
    rig = make_rig()
    rig.connect()
    result = rig.call(lambda done: rig.broker.history("005930", "1m", 100, done))
    assert result.ok, result.message
    candles = result.value["candles"]
    assert len(candles) == 100
    assert all(c[4] > 0 and c[1] > 0 for c in candles)  # "-70000" read as 70,000
    minute = [t for t, *_ in fake.tr_requests].count(MINUTE)
    assert minute == 1  # 100 rows fit in the first page of 900


def test_history_of_an_unknown_code_is_empty_and_not_ready_is_refused(make_rig, fake) -> None:
    rig = make_rig()
    refused = rig.call(lambda done: rig.broker.history("005930", "1d", 10, done))
    assert not refused.ok and refused.error_code == "NOT_READY"
    rig.connect()
    empty = rig.call(lambda done: rig.broker.history("999999", "1d", 10, done))
    assert empty.ok and empty.value["candles"] == []
