"""The store: events in, dirty rows out; orders and fills never merged; seq gaps noticed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.bus import Snapshot
from core.protocol import Envelope
from core.protocol.events import Fill, Order
from tui.state import SPARK_POINTS, Spark, Store

RUN = "r1"


def env(etype: str, seq: int, data: dict, ts: int = 1_000_000, run: str = RUN) -> Envelope:
    return Envelope(type=etype, run=run, seq=seq, ts=ts, data=data)


def order(oid: str, status: str = "accepted", filled: int = 0) -> dict:
    return {
        "order_id": oid,
        "code": "005930",
        "side": "buy",
        "qty": 10,
        "price": 70000,
        "filled_qty": filled,
        "remaining_qty": 10 - filled,
        "status": status,
    }


def test_quotes_mark_only_their_rows_dirty_and_positions_follow() -> None:
    s = Store()
    s.apply(env("position", 1, {"code": "000660", "qty": 5, "avg_price": 180000}))
    s.take_dirty()
    s.apply(
        env(
            "quotes",
            2,
            {"items": [{"code": "005930", "price": 70000}, {"code": "000660", "price": 181000}]},
        )
    )
    d = s.take_dirty()
    assert d.quotes == {"005930", "000660"}
    assert d.positions == {"000660"}
    assert not d.orders and not d.watchlist
    assert not s.take_dirty()


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.sampled_from(["accepted", "partially_filled", "filled", "cancelled"]),
        min_size=1,
        max_size=30,
    )
)
def test_every_order_event_is_reported_in_order(statuses: list[str]) -> None:
    s = Store()
    seen = []
    for i, status in enumerate(statuses):
        seen += s.apply(env("order", i + 1, order("A1", status)))
    assert [o.status for o in seen] == statuses
    assert all(isinstance(o, Order) for o in seen)
    assert s.orders["A1"].status == statuses[-1]


def test_fills_are_kept_each_once() -> None:
    s = Store()
    f1 = {
        "fill_id": "F1",
        "order_id": "A1",
        "code": "005930",
        "side": "buy",
        "qty": 3,
        "price": 70000,
    }
    f2 = dict(f1, fill_id="F2", qty=7)
    out = s.apply(env("fill", 1, f1)) + s.apply(env("fill", 2, f2)) + s.apply(env("fill", 3, f1))
    assert [f.fill_id for f in out if isinstance(f, Fill)] == ["F1", "F2"]
    assert [f.fill_id for f in s.fills] == ["F2", "F1"]


def test_seq_check_drops_what_the_snapshot_covered_and_sees_gaps() -> None:
    s = Store()
    s.load_snapshot(Snapshot(engine={"run_id": RUN, "seq": "10", "state": "ready"}, alive=True))
    assert s.seq_check(env("log", 9, {})) == "old"
    assert s.seq_check(env("log", 10, {})) == "old"
    assert s.seq_check(env("log", 11, {})) == "ok"
    assert s.seq_check(env("log", 13, {})) == "gap"
    assert s.seq_check(env("log", 1, {}, run="r2")) == "gap"  # a new engine run


def test_snapshot_rebuilds_everything_but_keeps_the_seen_history() -> None:
    s = Store()
    for i in range(5):
        s.apply(
            env(
                "quotes",
                i + 1,
                {"items": [{"code": "005930", "price": 70000 + i * 100}]},
                ts=i * 60_000,
            )
        )
    snap = Snapshot(
        quotes={"005930": {"code": "005930", "price": 71000, "change": 500}},
        positions={"005930": {"code": "005930", "qty": 10, "avg_price": 70000}},
        orders={"A1": order("A1")},
        account={"cash": 5, "equity": 9},
        surge=[
            {
                "code": "005930",
                "price": 71000,
                "change_pct": 3.1,
                "volume_ratio": 6.0,
                "window_s": 60,
                "reason": "burst",
            }
        ],
        watchlist=["005930", "000660", "005930"],
        engine={"run_id": "r2", "seq": "77", "state": "halted"},
        alive=True,
    )
    s.load_snapshot(snap)
    assert s.run == "r2" and s.last_seq == 77 and s.status.state == "halted"
    assert s.last_price("005930") == 71000 and s.base_price("005930") == 70500
    assert s.watchlist == ["005930", "000660"]
    assert s.positions["005930"].qty == 10 and s.orders["A1"].is_open
    assert s.account.cash == 5 and len(s.surge) == 1
    assert len(s.candles["005930"]) == 5  # the bars seen live survive the resync
    d = s.take_dirty()
    assert d.watchlist and d.orders_rows and d.positions_rows and d.surge and d.account and d.status


def test_order_rows_are_newest_created_first_and_do_not_move_when_they_fill() -> None:
    s = Store()
    s.apply(env("order", 1, dict(order("old-open"), created_ts=1, updated_ts=1)))
    s.apply(env("order", 2, dict(order("new-done", "filled", 10), created_ts=9, updated_ts=9)))
    s.apply(env("order", 3, dict(order("mid-open"), created_ts=5, updated_ts=5)))
    assert s.order_rows() == ["new-done", "mid-open", "old-open"]
    s.apply(env("order", 4, dict(order("old-open", "filled", 10), created_ts=1, updated_ts=20)))
    assert s.order_rows() == ["new-done", "mid-open", "old-open"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000_000), st.integers(1, 10**6)), min_size=1, max_size=200)
)
def test_spark_keeps_the_last_price_of_each_bucket(points: list[tuple[int, int]]) -> None:
    spark = Spark(bucket_ms=12_500)
    points = sorted(points)
    for ts, price in points:
        spark.add(ts, price)
    expected: dict[int, int] = {}
    for ts, price in points:
        expected[ts // 12_500] = price
    assert spark.values() == list(expected.values())[-SPARK_POINTS:]
