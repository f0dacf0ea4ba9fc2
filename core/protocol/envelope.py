"""The event envelope: one JSON object per Pub/Sub message and per ``P:events`` stream entry.

``{"v": 1, "type": "order", "run": "...", "seq": 4812, "ts": 1795400000123, "data": {...}}``
"""

import datetime
import json
import os
import time
from typing import Any, Dict, NamedTuple, Optional, Union

from .errors import BAD_JSON, INVALID_ARGUMENT, ProtocolError

VERSION = 1

#: Envelope types (``quotes`` carries ``{"items": [quote, ...]}``; ``quote`` a single quote).
EVENT_TYPES = (
    "quote",
    "quotes",
    "order",
    "fill",
    "position",
    "account",
    "surge",
    "status",
    "log",
    "reply",
    "candles",
    "book",
    "alert",
    "trigger",
    "trigger_marks",
)

#: Which Pub/Sub topic each envelope type is published on.
TOPIC_OF_TYPE = {
    "quote": "quotes",
    "quotes": "quotes",
    "order": "order",
    "fill": "fill",
    "position": "position",
    "account": "account",
    "surge": "surge",
    "status": "status",
    "log": "log",
    "reply": "reply",
    "candles": "candles",
    "book": "book",
    "alert": "alert",
    "trigger": "trigger",
    "trigger_marks": "trigger",
}


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC)."""
    return int(time.time() * 1000)


def new_run_id(now: Optional[datetime.datetime] = None) -> str:
    """A run id unique per engine start: ``YYYYMMDD-HHMM-xxxx`` in KST plus random hex."""
    kst = datetime.timezone(datetime.timedelta(hours=9))
    t = (now or datetime.datetime.now(kst)).astimezone(kst)
    return "{}-{}".format(t.strftime("%Y%m%d-%H%M"), os.urandom(3).hex())


class Envelope(NamedTuple):
    """An engine event. ``(run, seq)`` identifies it everywhere."""

    type: str
    run: str
    seq: int
    ts: int
    data: Dict[str, Any]
    v: int = VERSION

    def to_dict(self) -> Dict[str, Any]:
        return {
            "v": self.v,
            "type": self.type,
            "run": self.run,
            "seq": self.seq,
            "ts": self.ts,
            "data": self.data,
        }

    def encode(self) -> str:
        """Compact UTF-8 JSON (Korean names are kept as they are, not ``\\u`` escaped)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @property
    def topic(self) -> str:
        return TOPIC_OF_TYPE[self.type]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_envelope(raw: Union[bytes, str]) -> Envelope:
    """Parse and check one envelope; raises :class:`ProtocolError` on anything malformed."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(BAD_JSON, "envelope is not UTF-8 text ({})".format(exc)) from None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_JSON, "envelope is not valid JSON ({})".format(exc)) from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_JSON, "envelope must be a JSON object")
    v = obj.get("v")
    if v != VERSION:
        raise ProtocolError(INVALID_ARGUMENT, "unsupported envelope version {!r}".format(v), "v")
    etype = obj.get("type")
    if etype not in EVENT_TYPES:
        raise ProtocolError(INVALID_ARGUMENT, "unknown event type {!r}".format(etype), "type")
    run = obj.get("run")
    if not isinstance(run, str) or not run:
        raise ProtocolError(INVALID_ARGUMENT, "run must be a non-empty string", "run")
    seq = obj.get("seq")
    if not _is_int(seq) or seq < 0:
        raise ProtocolError(INVALID_ARGUMENT, "seq must be a non-negative integer", "seq")
    ts = obj.get("ts")
    if not _is_int(ts) or ts < 0:
        raise ProtocolError(INVALID_ARGUMENT, "ts must be integer milliseconds", "ts")
    data = obj.get("data")
    if not isinstance(data, dict):
        raise ProtocolError(INVALID_ARGUMENT, "data must be a JSON object", "data")
    return Envelope(type=etype, run=run, seq=seq, ts=ts, data=data, v=v)
