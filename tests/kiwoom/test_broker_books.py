"""Order books (주식호가잔량) through the Kiwoom adapter on the fake control, and end to end
through the engine into ``P:state:book``.

The FIDs are the control's (koapy's metadata, realtype_by_desc.json, 주식호가잔량 / gidc 0D):
41-50 매도호가, 51-60 매수호가, 61-70 매도호가수량, 71-80 매수호가수량, 121/125 totals, 21 time.
"""

import json
import time
from typing import Any, List

import pytest

from core.protocol import krx
from core.protocol.events import Book
from engine32.brokers.kiwoom.hoga import BOOK_FIDS, BOOK_SCREENS_FROM
from tests.fakes.kiwoom_control import HOGA_FID_ORDER, FakeKiwoomControl
from tests.helpers.engine_process import EngineProcess

from .helpers import Recorder, wait_until

FAKE = "tests.fakes.kiwoom_control:create_fake_control"


class BookRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.books: List[Book] = []

    def on_book(self, book: Book) -> None:
        self.books.append(book)


def test_book_fids_are_those_of_the_real_type() -> None:
    fids = [int(f) for f in BOOK_FIDS.split(";")]
    assert set(fids) == {21, 121, 125} | set(range(41, 81))
    assert set(fids) <= set(HOGA_FID_ORDER)  # every one belongs to 주식호가잔량


def test_books_register_on_their_own_screens_and_arrive_with_their_levels(make_rig, fake) -> None:
    rec = BookRecorder()
    rig = make_rig(listener=rec)
    rig.broker.subscribe_book(["005930"])  # before login: registered on login
    assert fake.calls_of("SetRealReg") == []
    rig.connect()
    rig.broker.subscribe(["005930", "000660"])
    regs = {screen: (codes, fids, opt) for screen, codes, fids, opt in fake.calls_of("SetRealReg")}
    book_screen = "{:04d}".format(BOOK_SCREENS_FROM)
    assert regs[book_screen] == ("005930", BOOK_FIDS, "0")
    quote_screens = [s for s in regs if s != book_screen]
    assert quote_screens and all("41" not in regs[s][1].split(";") for s in quote_screens)
    # the quote screen's "0" registration did not take the book's code away, nor the reverse
    assert fake.screens[book_screen] == ["005930"]
    assert fake.book_codes() == ["005930"]

    asks = [[70100 + 100 * i, 1000 + i] for i in range(10)]
    bids = [[70000 - 100 * i, 2000 + i] for i in range(9)]  # a level missing: reads 0
    fake.hoga("005930", asks, bids)
    fake.hoga("000660", asks, bids)  # no book asked for 000660: not sent
    wait_until(lambda: rec.books, 5, "a book")
    rig.settle()
    assert len(rec.books) == 1
    book = rec.books[0]
    assert book.code == "005930" and len(book.time) == 6
    assert book.asks == asks
    assert book.bids == bids + [[0, 0]]
    assert book.total_ask == sum(q for _, q in asks) and book.total_bid == sum(q for _, q in bids)

    rig.broker.unsubscribe_book(["005930"])
    assert (book_screen, "005930") in fake.calls_of("SetRealRemove")
    fake.hoga("005930", asks, bids)
    rig.settle()
    assert len(rec.books) == 1
    assert "005930" in fake.registered()  # quotes go on


def test_prices_below_the_previous_close_lose_their_sign(make_rig, fake) -> None:
    rec = BookRecorder()
    rig = make_rig(listener=rec)
    rig.connect()
    rig.broker.subscribe_book(["005930"])
    asks = [[69900 + 100 * i, 5] for i in range(10)]  # 69,900 < 70,000: sent as "-69900"
    bids = [[69800 - 100 * i, 7] for i in range(10)]
    fake.hoga("005930", asks, bids)
    wait_until(lambda: rec.books, 5, "a book")
    assert rec.books[0].asks[0] == [69900, 5] and rec.books[0].bids[0] == [69800, 7]


@pytest.mark.slow
def test_engine_on_the_fake_control_puts_the_book_in_state(redis_url: str, tmp_path: Any) -> None:
    env = {"KC_ENGINE_KIWOOM__CONTROL": FAKE, "KC_FAKE_KIWOOM_TICK_MS": "100"}
    with EngineProcess(redis_url, broker="kiwoom", env=env, log_dir=str(tmp_path),
                       settings={"engine.watchlist": ["005930"]}) as eng:  # fmt: skip
        eng.wait_ready(timeout=30)
        reply = eng.send({"cmd": "book_subscribe", "codes": ["000660"]})
        assert reply["ok"], reply
        deadline = time.monotonic() + 15
        raw = None
        while raw is None and time.monotonic() < deadline:
            raw = eng.redis.hget(eng.keys.state_book, "000660")
            time.sleep(0.05)
        assert raw, eng.stderr_text()[-2000:]
        book = json.loads(raw)
        assert book["code"] == "000660" and len(book["asks"]) == 10 and len(book["bids"]) == 10
        # The fake's own levels around the price it was at: recomputed independently.
        expected = FakeKiwoomControl()
        expected.stocks["000660"][2] = book["bids"][0][0]
        asks, bids = expected.book_levels("000660")
        assert book["asks"] == asks and book["bids"] == bids
        assert book["asks"][0][0] == krx.next_tick(book["bids"][0][0])
        assert book["total_ask"] == sum(q for _, q in asks)
        assert book["total_bid"] == sum(q for _, q in bids)
        assert eng.redis.lrange(eng.keys.state_book_codes, 0, -1) == ["000660"]
        eng.stop()
