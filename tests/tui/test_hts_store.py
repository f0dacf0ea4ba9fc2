"""The console's store for books, the tape and fired alerts (no widgets)."""

from __future__ import annotations

from core.protocol import Envelope
from tui.hts import TAPE_KEEP, HtsStore


def env(etype: str, seq: int, data: dict) -> Envelope:
    return Envelope(etype, "r1", seq, 1795400000000 + seq, data)


def q(code: str, price: int, qty: int) -> dict:
    return {"code": code, "price": price, "trade_qty": qty, "time": "091500"}


def test_books_tape_and_alerts() -> None:
    store = HtsStore()
    fired = []
    store.on_alert = fired.append
    store.apply(env("quotes", 1, {"items": [q("005930", 70000, 5)]}))
    assert store.tapes == {}  # no book for it yet: no tape (other codes cost a lookup)
    book = {"code": "005930", "asks": [[70100, 3]], "bids": [[70000, 4]], "time": "091501"}
    store.apply(env("book", 2, book))
    assert store.books["005930"] == book and store.book_version["005930"] == 1
    store.apply(
        env(
            "quotes",
            3,
            {"items": [q("005930", 70100, 7), q("000660", 1, 1), q("005930", 70000, -2)]},
        )
    )
    tape = store.tapes["005930"]
    assert [(t.price, t.qty) for t in tape] == [(70000, -2), (70100, 7)]  # newest first
    assert "000660" not in store.tapes
    for i in range(TAPE_KEEP + 5):
        store.apply(env("quotes", 4 + i, {"items": [q("005930", 70000, 1)]}))
    assert len(store.tapes["005930"]) == TAPE_KEEP
    store.apply(env("book", 100, {"code": 5}))  # unreadable: ignored
    store.apply(env("alert", 101, {"alert_id": "A1", "code": "005930", "condition": "above",
                                   "threshold": 70000.0, "status": "fired", "price": 70100}))  # fmt: skip
    assert [a.alert_id for a in fired] == ["A1"] and store.alerts_fired[0].price == 70100
    store.apply(env("alert", 102, {"bogus": 1}))
    assert len(fired) == 1
    assert store.last_seq == 102  # the base store's bookkeeping still runs
