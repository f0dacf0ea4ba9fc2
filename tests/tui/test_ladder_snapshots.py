"""The ladder (호가창) as pictures at 80×24 and 120×40 (pytest-textual-snapshot), from fixed data
in a real Redis and a frozen clock: a seeded book in ``P:state:book``, the seeded open buy
of 10 @ 71,000 marked at its level, the tape from the seeded quote history.

Update after an intended change: ``pytest tests/tui/test_ladder_snapshots.py --snapshot-update``,
then look at the SVGs under ``__snapshots__`` before committing them.
"""

from __future__ import annotations

import json

import pytest
import tui_seed
from tui_helpers import make_config, until

from core.protocol import Keys
from core.protocol.krx import next_tick, prev_tick
from tui.app import KiwoomConsole
from tui.screens.ladder import LadderScreen

pytestmark = pytest.mark.timeout(120)


def seeded_book(last: int = 71200) -> dict:
    asks, bids = [], []
    p = next_tick(last)
    for i in range(10):
        asks.append([p, 1000 + 731 * ((i * 7) % 10)])
        p = next_tick(p)
    p = last
    for i in range(10):
        bids.append([p, 1200 + 517 * ((i * 3) % 10)])
        p = prev_tick(p)
    bids[2][1] += 10  # the seeded open buy of 10 @ 71,000
    return {
        "code": "005930",
        "ts": tui_seed.FROZEN_MS,
        "time": "101530",
        "asks": asks,
        "bids": bids,
        "total_ask": sum(q for _, q in asks),
        "total_bid": sum(q for _, q in bids),
    }


@pytest.fixture
def ladder_app(redis_url, redis_client, prefix):
    tui_seed.seed(redis_client, prefix)
    redis_client.hset(Keys(prefix).state_book, "005930", json.dumps(seeded_book()))
    app = KiwoomConsole(make_config(redis_url, prefix), clock=lambda: tui_seed.FROZEN, poll_s=3600)

    async def run_before(pilot) -> None:
        await until(pilot.pause, lambda: app.feed.connected.is_set(), 10, "the feed")
        await pilot.press("o")
        await until(pilot.pause, lambda: isinstance(app.screen, LadderScreen), 10, "ladder")
        await until(pilot.pause, lambda: app.screen.cursor, 10, "the book on screen")
        envs = tui_seed.history()  # trades while the ladder is open: on the tape
        for env in envs:
            redis_client.publish(f"{prefix}:ev:quotes", env.encode())
        await until(pilot.pause, lambda: app.store.last_seq == envs[-1].seq, 10, "history")
        await pilot.press("down", "down")  # the cursor on the level of the open order
        await pilot.pause(0.3)

    app.run_before = run_before
    return app


def test_ladder_80x24(snap_compare, ladder_app) -> None:
    assert snap_compare(ladder_app, terminal_size=(80, 24), run_before=ladder_app.run_before)


def test_ladder_120x40(snap_compare, ladder_app) -> None:
    assert snap_compare(ladder_app, terminal_size=(120, 40), run_before=ladder_app.run_before)
