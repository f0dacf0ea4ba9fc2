"""Both venues' phases in words, for the status bar and the order ticket (issue 12)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from core.protocol import sessions


def phase_words(name: str) -> str:
    """Korean words for a phase name (``after_market`` → ``애프터마켓``)."""
    return sessions.PHASE_WORDS.get(name, (name, name))[0]


def venues_text(info: Mapping[str, str] | None, now: datetime.datetime) -> str:
    """``KRX 시간외단일가 │ NXT 애프터마켓``, or ``휴장: 성탄절``.

    From the engine's ``P:engine`` (``session``, ``session_nxt``, ``session_note``) when it
    is alive (the simulator's clock may not be the wall's), else from the real calendar.
    """
    if info and info.get("session"):
        note = info.get("session_note", "")
        if note:
            return note
        text = "KRX " + phase_words(info["session"])
        if info.get("session_nxt"):
            text += " │ NXT " + phase_words(info["session_nxt"])
        return text
    return sessions.status_text(now)


def nxt_codes(info: Mapping[str, str] | None) -> set[str]:
    """The watched codes the engine's broker says trade on NXT (``P:engine`` ``nxt_codes``)."""
    raw = (info or {}).get("nxt_codes", "")
    return {c for c in raw.split(",") if c}


def venue_phase(
    info: Mapping[str, str] | None, venue: str, now: datetime.datetime
) -> sessions.Phase:
    """The phase of ``venue`` (KRX or NXT) as the engine reports it, else by the calendar."""
    key = "session" if venue == sessions.KRX else "session_nxt"
    name = (info or {}).get(key, "") if info and info.get("session") else ""
    if not name:
        return sessions.phase_at(venue, now)
    for phase in sessions.DAYS[venue]:
        if phase.name == name:
            return phase
    return sessions.closed_phase(venue, why=(info or {}).get("session_note", ""))


def default_venue(info: Mapping[str, str] | None, now: datetime.datetime, code: str) -> str:
    """KRX when it takes orders; else NXT when it does and the code trades there."""
    if venue_phase(info, sessions.KRX, now).is_open:
        return sessions.KRX
    eligible = code in nxt_codes(info) if info and "nxt_codes" in info else True
    if eligible and venue_phase(info, sessions.NXT, now).is_open:
        return sessions.NXT
    return sessions.KRX


def venue_summary(
    info: Mapping[str, str] | None, venue: str, kind: str, now: datetime.datetime
) -> tuple[str, str]:
    """(``NXT 애프터마켓: limit orders only``, a warning when ``kind`` will be refused)."""
    if venue == sessions.SOR:
        krx_p = venue_phase(info, sessions.KRX, now)
        nxt_p = venue_phase(info, sessions.NXT, now)
        text = "SOR (the broker picks): KRX {} · NXT {}".format(krx_p.ko, nxt_p.ko)
        takes = [p for p in (krx_p, nxt_p) if kind in p.kinds]
        return text, "" if takes else "neither venue takes a {} order now".format(kind)
    phase = venue_phase(info, venue, now)
    text = "{} {}: {}".format(venue, phase.ko, phase.accepts_text())
    if not phase.kinds:
        return text, "{} takes no orders now".format(venue)
    if kind not in phase.kinds:
        return text, "{} {} accepts {}".format(venue, phase.en, phase.accepts_text())
    return text, ""
