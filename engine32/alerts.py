"""Price alerts set by the trader (``alert_add``), checked in the engine on every quote so they
fire with no console attached. Each alert fires once: the first quote that meets its condition
turns it ``fired`` and it is never checked again (``alert_remove`` deletes it).

Conditions: ``above`` (last price at or above a price), ``below`` (at or below a price),
``change_pct`` (the day's change at or beyond a signed percentage: ``5`` fires at +5 % or more,
``-3`` at -3 % or less). The condition is checked on quotes received after the alert was set;
an alert whose condition already holds fires on the code's next quote.

Pure Python on the Qt thread; the engine turns what :meth:`PriceAlerts.check` returns into
``alert`` events and ``P:state:alerts`` writes.
"""

import itertools
from typing import Any, Dict, Iterable, List, Optional

from core.protocol.envelope import now_ms
from core.protocol.events import ABOVE, ALERT_CONDITIONS, BELOW, CHANGE_PCT, PriceAlert, Quote

#: Alerts kept at most (active and fired, until removed).
MAX_ALERTS = 500
ACTIVE = "active"
FIRED = "fired"


class TooManyAlerts(ValueError):
    """The engine already keeps :data:`MAX_ALERTS` alerts."""


def describe(alert: PriceAlert) -> str:
    """The condition in words: ``005930 at or above 71,000``."""
    if alert.condition == ABOVE:
        return "{} at or above {:,}".format(alert.code, int(alert.threshold))
    if alert.condition == BELOW:
        return "{} at or below {:,}".format(alert.code, int(alert.threshold))
    return "{} {} {:+g}% on the day".format(
        alert.code, "up" if alert.threshold > 0 else "down", alert.threshold
    )


def _met(alert: PriceAlert, quote: Quote) -> bool:
    if alert.condition == ABOVE:
        return quote.price >= alert.threshold
    if alert.condition == BELOW:
        return quote.price <= alert.threshold
    if alert.threshold > 0:
        return quote.change_pct >= alert.threshold
    return quote.change_pct <= alert.threshold


class PriceAlerts:
    """The alerts, indexed by code for the per-quote check (a dict lookup for other codes)."""

    def __init__(self) -> None:
        self.alerts: Dict[str, PriceAlert] = {}
        self._active: Dict[str, List[PriceAlert]] = {}
        self._ids = itertools.count(1)

    def load(self, kept: Iterable[Dict[str, Any]]) -> int:
        """Alerts kept in ``P:state:alerts`` by a previous run; unreadable ones are skipped."""
        n = 0
        for data in kept:
            try:
                alert = PriceAlert.from_dict(data)
            except TypeError:
                continue
            if alert.condition not in ALERT_CONDITIONS or not alert.alert_id:
                continue
            self._put(alert)
            n += 1
        return n

    def add(self, code: str, condition: str, threshold: float, name: str = "") -> PriceAlert:
        if condition not in ALERT_CONDITIONS:
            raise ValueError("unknown alert condition {!r}".format(condition))
        if len(self.alerts) >= MAX_ALERTS:
            raise TooManyAlerts(
                "the engine keeps at most {} alerts; remove some with alert_remove".format(
                    MAX_ALERTS
                )
            )
        now = now_ms()
        alert_id = "A{}{:03d}".format(now, next(self._ids) % 1000)
        while alert_id in self.alerts:
            alert_id = "A{}{:03d}".format(now, next(self._ids) % 1000)
        if condition != CHANGE_PCT:
            threshold = int(threshold)
        alert = PriceAlert(
            alert_id=alert_id,
            code=code,
            condition=condition,
            threshold=threshold,
            name=name,
            status=ACTIVE,
            created_ts=now,
        )
        alert = alert.replace(message="alert set: " + describe(alert))
        self._put(alert)
        return alert

    def remove(self, alert_id: str) -> Optional[PriceAlert]:
        alert = self.alerts.pop(alert_id, None)
        if alert is not None:
            self._unindex(alert)
        return alert

    def active_codes(self) -> List[str]:
        return list(self._active)

    def check(self, quote: Quote) -> List[PriceAlert]:
        """The alerts this quote fires (now ``fired``; each only once)."""
        waiting = self._active.get(quote.code)
        if not waiting:
            return []
        fired: List[PriceAlert] = []
        for alert in list(waiting):
            if not _met(alert, quote):
                continue
            done = alert.replace(
                status=FIRED,
                fired_ts=now_ms(),
                price=quote.price,
                change_pct=quote.change_pct,
                message="{} - last {:,} KRW ({:+.2f}%)".format(
                    describe(alert), quote.price, quote.change_pct
                ),
            )
            self._unindex(alert)
            self.alerts[alert.alert_id] = done
            fired.append(done)
        return fired

    def _put(self, alert: PriceAlert) -> None:
        old = self.alerts.get(alert.alert_id)
        if old is not None:
            self._unindex(old)
        self.alerts[alert.alert_id] = alert
        if alert.status == ACTIVE:
            self._active.setdefault(alert.code, []).append(alert)

    def _unindex(self, alert: PriceAlert) -> None:
        waiting = self._active.get(alert.code)
        if not waiting:
            return
        waiting[:] = [a for a in waiting if a.alert_id != alert.alert_id]
        if not waiting:
            del self._active[alert.code]
