"""Kiwoom OpenAPI+ return codes in plain words (KOA Studio's OP_ERR_* table)."""

from typing import Dict

OK = 0
SOCKET_CLOSED = -106
QUERY_RATE_EXCEEDED = -200
ORDER_RATE_EXCEEDED = -308
ORDER_LIMIT_EXCEEDED = -311
#: SendOrder refusals for the rate: the order never left, so it waits and goes again.
ORDER_RATE_CODES = (ORDER_RATE_EXCEEDED, ORDER_LIMIT_EXCEEDED)

#: code → what it means, for replies and logs.
MESSAGES: Dict[int, str] = {
    0: "ok",
    -10: "request failed",
    -11: "condition search: no such condition index",
    -12: "condition search: condition index and name do not match",
    -13: "condition search: too many condition queries",
    -22: "the request was not processed (TR failed)",  # koapy OP_ERR_TR_FAIL = -22
    -100: "login failed: user information exchange failed",
    -101: "login failed: could not connect to the Kiwoom server",
    -102: "login failed: version update failed (let OpenAPI+ update itself, then restart)",
    -103: "login failed: blocked by the personal firewall",
    -104: "login failed: memory protection failure",
    -105: "invalid function arguments",
    -106: "socket closed: the connection to Kiwoom was lost",
    -200: "query rate exceeded",
    -201: "query could not be built (bad input)",
    -202: "query input invalid",
    -203: "no data",
    -204: "too many codes in one query",
    -205: "receiving data failed",
    -206: "too many FIDs in one query",
    -207: "real-time registration could not be removed",
    -300: "order input invalid",
    -301: "account password not entered (set it in the OpenAPI+ tray: 계좌비밀번호 저장)",
    -302: "the account is not one of this login's accounts",
    -303: "order value exceeds 2 billion KRW",
    -304: "order value exceeds 5 billion KRW",
    -305: "order quantity exceeds 1 % of the listed shares",
    -306: "order quantity exceeds 3 % of the listed shares",
    -307: "order could not be sent",
    -308: "order rate exceeded",
    -309: "order quantity exceeds 300 contracts",
    -310: "order quantity exceeds 500 contracts",
    -311: "order rate limit exceeded (too many orders)",
    -340: "account information missing",
    -500: "no such stock code",
}


def describe(code: int) -> str:
    """``-308`` → ``"order rate exceeded (-308)"``; unknown codes still say their number."""
    words = MESSAGES.get(code)
    if words is None:
        return "Kiwoom error {}".format(code)
    return "{} ({})".format(words, code)


#: Words in an OnReceiveMsg that say an order went through (koapy's recorded real control:
#: "[100000] 모의투자 매수주문완료"; the older mock server: "[00Z112] 모의투자 정상처리 되었습니다").
SUCCESS_WORDS = ("정상처리", "정상적으로", "주문완료", "완료되었습니다")


def is_refusal(message: str) -> bool:
    """An order's OnReceiveMsg that says why Kiwoom refused it (not a success notice)."""
    text = (message or "").strip()
    return bool(text) and not any(word in text for word in SUCCESS_WORDS)
