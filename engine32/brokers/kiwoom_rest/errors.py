"""Kiwoom REST answers in plain words.

A REST answer says how it went in ``return_code`` and ``return_msg``. The detailed 4-digit
code comes in two forms, and both are seen in the wild (docs/kiwoom-rest.md, "Error codes"):

- a small ``return_code`` with the code in brackets: ``{"return_code": 3, "return_msg":
  "인증에 실패했습니다[8005:Token이 유효하지 않습니다]"}``, sent as HTTP **200** (kiwoom_client
  base.py, observed on api.kiwoom.com 2026-08-15), or ``return_code`` 5 with ``[1700:…]`` and
  HTTP 429 for the rate limit;
- the 4-digit code itself as ``return_code`` (Kiwoom's own helper compares
  ``return_code in (8005, 8031, 8103)``).

Codes and their meaning: Kiwoom's ``errors.py`` in Kiwoom-Securities/Kiwoom-REST-API and the
same table in ``KIWOOM_ERROR_CODES`` (TypeScript); 8050 is a terminal/IP registration problem,
not a token one (hoga-ops ``kiwoom_rest.py``).
"""

import re
from typing import Any, Dict, Optional

#: Detailed codes → what a trader should read.
MESSAGES: Dict[int, str] = {
    1501: "the request has no API ID (a bug in the engine)",
    1504: "this API ID is not served on this URL (a bug in the engine's TR table)",
    1505: "no such API ID",
    1511: "a required field is missing",
    1513: "the authorization header is missing",
    1517: "the request's input is not in the expected format",
    1634: "too many codes in one request (at most 100)",
    1700: "too many requests: Kiwoom's rate limit; the request was not processed",
    1901: "the market code is missing",
    1902: "no such stock",
    1999: "unexpected error at Kiwoom",
    8001: "the app key is not valid",
    8002: "the secret key is not valid",
    8003: "the token could not be looked up",
    8005: "the token is not valid (expired, or replaced by a newer one)",
    8006: "the token could not be issued",
    8009: "the token could not be issued",
    8010: "the token is used from another IP than the one that got it",
    8020: "the app key or secret key is missing",
    8030: "the app key is for the other server (real vs mock): check [engine.kiwoom_rest] server",
    8031: "the token is for the other server (real vs mock): check [engine.kiwoom_rest] server",
    8040: "terminal authentication failed",
    8050: "this machine's IP is not registered for the app key (register the VM's public IP "
    "under 계좌 APP Key 관리 on openapi.kiwoom.com)",
    8103: "token or terminal authentication failed",
}

RATE_LIMITED_CODE = 1700
BATCH_TOO_LARGE_CODE = 1634
TOKEN_INVALID_CODE = 8005
#: Detailed codes after which a fresh token may help (Kiwoom's helper retries these once).
TOKEN_CODES = frozenset((8003, 8005, 8031, 8103))
#: Problems no retry fixes: the configuration or the registration must change.
FATAL_CODES = frozenset((8001, 8002, 8010, 8020, 8030, 8040, 8050))
#: ``return_code`` 3 is "authentication failed" in the small form.
RC_AUTH = 3
#: ``return_code`` 5 is a rate or batch limit in the small form.
RC_LIMIT = 5

_DETAIL = re.compile(r"\[(\d{4})\s*:")
_CODE_EQ = re.compile(r"CODE\s*=\s*(\d{4})")


def detail_code(return_code: Any, return_msg: str = "") -> int:
    """The 4-digit code of an answer: from ``[NNNN:`` or ``CODE=NNNN`` in the message, or
    ``return_code`` itself when it is 4 digits; 0 when there is none."""
    match = _DETAIL.search(return_msg or "") or _CODE_EQ.search(return_msg or "")
    if match:
        return int(match.group(1))
    try:
        rc = int(str(return_code).strip())
    except ValueError:
        return 0
    return rc if rc >= 1000 else 0


def describe(code: int, return_msg: str = "") -> str:
    """A sentence for a detailed code (the message Kiwoom sent is kept after it)."""
    words = MESSAGES.get(code)
    msg = (return_msg or "").strip()
    if words is None:
        return "Kiwoom: {}".format(msg) if msg else "Kiwoom error {}".format(code)
    return "{} ({}{})".format(words, code, ": " + msg if msg else "")


class KiwoomRestError(Exception):
    """A refused or failed REST call.

    ``code`` is the detailed 4-digit code (0 if none), ``return_code`` what the envelope said,
    ``status`` the HTTP status, ``sent`` whether the request may have been processed (False
    when it surely was not: rate limit, authentication, connection refused).
    """

    def __init__(
        self,
        message: str,
        code: int = 0,
        return_code: Optional[int] = None,
        status: int = 0,
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.return_code = return_code
        self.status = status
        self.sent = sent

    @property
    def rate_limited(self) -> bool:
        return self.code == RATE_LIMITED_CODE or (
            self.status == 429 and self.code != BATCH_TOO_LARGE_CODE
        )

    @property
    def token_problem(self) -> bool:
        return self.code in TOKEN_CODES or (self.return_code == RC_AUTH and self.code == 0)

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


def error_of(status: int, body: Dict[str, Any], api_id: str) -> Optional[KiwoomRestError]:
    """The error an answer carries, or None when it is a success (``return_code`` 0)."""
    rc_raw = body.get("return_code", 0 if status == 200 else -1)
    try:
        rc = int(str(rc_raw).strip())
    except ValueError:
        rc = -1
    if rc == 0 and status == 200:
        return None
    msg = str(body.get("return_msg", "") or "")
    code = detail_code(rc, msg)
    if code == 0 and status == 429:
        code = RATE_LIMITED_CODE
    words = describe(code, msg) if code else (msg.strip() or "HTTP {}".format(status))
    processed = not (
        code in (RATE_LIMITED_CODE, BATCH_TOO_LARGE_CODE)
        or code in TOKEN_CODES
        or rc == RC_AUTH
        or code in FATAL_CODES
        or 1500 <= code < 1600
    )
    return KiwoomRestError("{} refused: {}".format(api_id, words), code, rc, status, sent=processed)
