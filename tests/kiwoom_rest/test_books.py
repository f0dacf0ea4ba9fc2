"""Order books over Kiwoom's WebSocket: ``0D`` (주식호가잔량) with the OCX's FIDs (issue 13)."""

from typing import Any, List

from core.protocol.events import Book
from engine32.brokers.kiwoom_rest.ws import BOOK_TYPE
from tests.fakes.kiwoom_rest import FakeKiwoomRest
from tests.kiwoom.helpers import wait_until


def test_books_arrive_from_0d_rows(make_rig: Any) -> None:
    rig = make_rig(fake_kwargs={"tick_s": 0.05})
    books: List[Book] = []
    rig.rec.on_book = books.append  # type: ignore[method-assign]
    rig.broker.subscribe(["005930"])
    rig.connect()
    rig.broker.subscribe_book(["000660"])
    wait_until(lambda: books, 10, "a book")
    book = books[-1]
    assert book.code == "000660" and len(book.time) == 6
    last = book.bids[0][0]
    asks, bids = FakeKiwoomRest().book_levels(last)  # the fake's levels, recomputed
    assert book.asks == asks and book.bids == bids
    assert book.total_ask == sum(q for _, q in asks) and book.total_bid == sum(q for _, q in bids)
    regs = [f for f in rig.fake.sessions[0].frames_in if f["trnm"] == "REG"]
    assert any(
        d["type"] == [BOOK_TYPE] and d["item"] == ["000660"] for f in regs for d in f["data"]
    )
    assert not [b for b in books if b.code == "005930"]  # quotes only for 005930
    rig.broker.unsubscribe_book(["000660"])
    wait_until(
        lambda: "000660" not in rig.fake.sessions[0].types.get(BOOK_TYPE, set()), 5, "REMOVE"
    )
