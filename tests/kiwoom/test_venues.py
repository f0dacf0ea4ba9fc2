"""Issue 12: what the OpenAPI+ (OCX) adapter does with a venue. Pinned, as found: KRX only.

OpenAPI+ SendOrder has no venue argument and no source shows NXT/SOR orders through it
(docs/market-hours.md, "The OCX and NXT"), so NXT and SOR orders are refused before
anything reaches the control, and KRX orders go out exactly as before.
"""

import pytest

from engine32.brokers.base import OrderRequest
from tests.fakes.kiwoom_control import FakeKiwoomControl


def _ready(make_rig):
    rig = make_rig(FakeKiwoomControl(holdings={"005930": (20, 68000)}))
    rig.connect()
    return rig


@pytest.mark.parametrize("venue", ["NXT", "SOR"])
def test_nxt_and_sor_orders_are_refused_and_nothing_is_sent(make_rig, venue) -> None:
    rig = _ready(make_rig)
    assert rig.broker.venues == ("KRX",)
    reason = rig.broker.check_venue("005930", venue, "limit")
    assert reason.startswith("the Kiwoom OpenAPI+ (OCX) broker sends orders to KRX only")
    assert "{} orders are refused here".format(venue) in reason
    assert "Kiwoom REST broker" in reason
    result = rig.call(
        lambda done: rig.broker.place_order(
            OrderRequest("005930", "buy", 1, 70000, venue=venue), done
        )
    )
    assert not result.ok and result.error_code == "INVALID_ARGUMENT"
    assert result.message == reason
    assert rig.fake.calls_of("SendOrder") == []


def test_krx_orders_still_go_out_unchanged(make_rig) -> None:
    rig = _ready(make_rig)
    assert rig.broker.check_venue("005930", "KRX", "market") == ""
    result = rig.call(
        lambda done: rig.broker.place_order(OrderRequest("005930", "buy", 1, 70000), done)
    )
    assert result.ok, result
    (args,) = rig.fake.calls_of("SendOrder")
    assert args[4] == "005930" and args[7] == "00"  # the plain code, hoga 00: KRX as before
