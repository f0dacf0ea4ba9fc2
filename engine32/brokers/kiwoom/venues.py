"""Venue routing through the OpenAPI+ control (issue 12): KRX only, NXT and SOR refused.

What was found (docs/market-hours.md, "The OCX and NXT"):

- OpenAPI+ ``SendOrder(rqname, screen, account, order_type, code, qty, price, hoga, org_no)``
  has no venue argument, and no source we could find (Kiwoom's OpenAPI+ guide, KOA Studio
  descriptions quoted by koapy/pykiwoom users, third-party OCX code) shows an NXT or SOR
  order sent through it. Kiwoom's venue routing is documented for the REST API only:
  ``dmst_stex_tp`` = KRX | NXT | SOR on ``kt10000``-``kt10003`` and the ``_NX``/``_AL``
  code suffixes for market data (../shared/design/kiwoom-rest.md §4.2).
- One third-party program calls ``GetCodeListByMarket("NXT")`` on the control to list the
  NXT-eligible codes, so the control may know NXT; that is market data, not routing.

An order whose venue we cannot prove the control honours could land on KRX while the trader
believes it went to NXT (or the reverse), so this adapter refuses NXT and SOR orders before
anything is sent, with the reason and the way out (the REST broker). Phase rules for KRX
are left to Kiwoom's server, which answers out-of-session orders with its own message.
"""

from core.protocol import sessions

#: Venues the OCX adapter routes to.
OCX_VENUES = (sessions.KRX,)

NOT_ROUTED = (
    "the Kiwoom OpenAPI+ (OCX) broker sends orders to KRX only: OpenAPI+ SendOrder has no "
    "venue, so {venue} orders are refused here; use venue KRX, or the Kiwoom REST broker "
    '(engine.broker = "kiwoom_rest") for NXT and SOR'
)


def refusal(venue: str) -> str:
    """Why the OCX adapter will not send an order to ``venue`` ('' for KRX)."""
    if venue in OCX_VENUES:
        return ""
    return NOT_ROUTED.format(venue=venue)
