"""The broker contract's venue check (issue 12), for brokers that have not opted in to phases."""

import datetime

from core.protocol import krx
from engine32.brokers.base import Broker


class _Plain(Broker):
    """A broker with only the contract's defaults (as the REST broker had before it routed venues)."""

    name = "plain"

    def __init__(self, at: datetime.datetime) -> None:
        super().__init__(listener=None)  # type: ignore[arg-type]
        self.at = at

    def market_clock(self) -> datetime.datetime:
        return self.at

    connect = disconnect = info = subscribe = unsubscribe = lambda *a: None  # type: ignore
    place_order = cancel_order = modify_order = lambda *a: None  # type: ignore
    query_positions = query_open_orders = query_account = lambda *a: None  # type: ignore


def test_default_broker_routes_krx_only_and_leaves_phases_to_its_server() -> None:
    night = datetime.datetime(2026, 12, 2, 23, 0, tzinfo=krx.KST)
    b = _Plain(night)
    assert b.check_venue("005930", "KRX", "market") == ""  # no phase check by default
    assert b.check_venue("005930", "NXT", "limit") == (
        "the plain broker routes orders to KRX only, not NXT"
    )
    assert b.market_session() == "closed" and b.market_session_nxt() == "closed"
    b.checks_phases = True
    assert b.check_venue("005930", "KRX", "limit").startswith("KRX is closed at 23:00 KST")
    b.venues = ("KRX", "NXT", "SOR")
    b.at = datetime.datetime(2026, 12, 2, 17, 30, tzinfo=krx.KST)
    assert b.check_venue("005930", "NXT", "market") == "NXT after-market accepts limit orders only"
    assert b.check_venue("005930", "NXT", "limit") == ""
    assert b.market_note() == ""
    b.at = datetime.datetime(2026, 12, 25, 10, 0, tzinfo=krx.KST)
    assert b.market_note() == "휴장: 성탄절"
