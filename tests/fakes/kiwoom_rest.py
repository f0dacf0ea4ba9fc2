"""A fake of Kiwoom's REST + WebSocket servers, with the quirks the research note lists.

Runs on 127.0.0.1 on its own asyncio thread: ``base_url`` (HTTP, all POST) and ``ws_url``
(``/api/dostk/websocket``), like ``api.kiwoom.com`` and ``api.kiwoom.com:10000``. What it
reproduces (docs/kiwoom-rest.md; /work/shared/design/kiwoom-rest.md §6):

- every call is POST with ``api-id``; an api-id on the wrong path → 1504, unknown → 1505; no
  ``authorization`` → 1513; a bad or expired token → HTTP **200** + ``return_code`` 3 +
  ``[8005:…]`` (or the 4-digit ``return_code`` 8005 form, ``auth_form="code"``);
- ``au10001`` gives ``token``/``token_type``/``expires_dt`` (KST ``YYYYMMDDHHMMSS``) on a
  movable clock; re-issuing kills the previous token (hoga-ops saw 8005 after a re-issue);
  ``au10002`` revokes;
- paging in the **response headers** ``cont-yn``/``next-key`` (kt00018, ka10075), the next page
  only when both request headers match;
- a rate limit per (app key, api-id): HTTP 429 + ``return_code`` 5 + ``[1700:…]``; ka10095 with
  more than 100 codes: ``return_code`` 5 + ``[1634:…]``;
- charts: ``ka10081`` (daily, ``base_dt`` required, 600 rows a page, unsigned prices) and
  ``ka10080`` (minute, ``tic_scope``, 900 rows a page, prices signed against the previous
  close), newest first, today's forming candle included, paged in the response headers;
- signed and zero-padded number strings (``"-00000000196888"``, ``"+72000"``, ``"A005930"``);
- orders: ``trde_tp`` "0" needs ``ord_uv``, "3" needs ``ord_uv ""``; "00"/"03" refused unless
  ``accept_two_digit_trde_tp``; 접수 → 체결 (per fill, cumulative 911/903, unit 914/915,
  902 decreasing) → 04 balance; modify/cancel get a new number with 904 = original and a 확인;
  ``cncl_qty``/``mdfy_qty`` "0" mean all remaining; ``ack_first`` sends the 접수 **before** the
  HTTP answer; ``fill_plan`` "full", "two_prices" (partial fills at two prices) or "none";
- WebSocket: LOGIN first; server PINGs (sometimes with extra fields) that must come back
  verbatim; REG/REMOVE acks with only ``trnm``/``return_code``/``return_msg``; 105110 past
  5 REG/s, 105115 past 200 items; REAL frames batching rows; one session per app key (the old
  one gets ``SYSTEM R10001`` and close(1000, "Bye")); registrations die with the connection;
  ``zombie()`` keeps TCP open and goes silent; CNSRLST / CNSRREQ (``search_type`` "1" only after
  CNSRLST) / REAL ``02``.

Fixtures are built by hand from these rules (Kiwoom's spec is proprietary: nothing pasted).
"""

import asyncio
import datetime
import itertools
import json
import random
import threading
import time
import zlib
from typing import Any, Dict, List, Optional, Tuple

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

KST = datetime.timezone(datetime.timedelta(hours=9))
WS_PATH = "/api/dostk/websocket"
PATHS = {
    "au10001": "/oauth2/token",
    "au10002": "/oauth2/revoke",
    "ka00001": "/api/dostk/acnt",
    "kt00018": "/api/dostk/acnt",
    "kt00001": "/api/dostk/acnt",
    "ka10075": "/api/dostk/acnt",
    "ka10076": "/api/dostk/acnt",
    "kt10000": "/api/dostk/ordr",
    "kt10001": "/api/dostk/ordr",
    "kt10002": "/api/dostk/ordr",
    "kt10003": "/api/dostk/ordr",
    "ka10001": "/api/dostk/stkinfo",
    "ka10095": "/api/dostk/stkinfo",
    "ka10099": "/api/dostk/stkinfo",
    "ka10080": "/api/dostk/chart",
    "ka10081": "/api/dostk/chart",
}
NAMES = {"005930": "삼성전자", "000660": "SK하이닉스", "035420": "NAVER", "035720": "카카오",
         "005380": "현대차", "051910": "LG화학", "006400": "삼성SDI", "068270": "셀트리온"}  # fmt: skip
#: ka10099's master list: code → (name, mrkt_tp "0" KOSPI / "10" KOSDAQ, nxtEnable). Real
#: codes; which of them NXT trades is made up (two are KRX-only so a test can tell).
MASTER = {c: (n, "0", True) for c, n in NAMES.items()}
MASTER.update({"086520": ("에코프로", "10", True), "263750": ("펄어비스", "10", False),
               "032820": ("우리기술", "10", False)})  # fmt: skip
AUTH_FAILED_MSG = "인증에 실패했습니다[8005:Token이 유효하지 않습니다]"
RATE_MSG = "허용된 요청 개수를 초과하였습니다[1700:허용된 요청 개수를 초과하였습니다. API ID={}]"
BATCH_MSG = "허용된 요청 개수를 초과하였습니다[1634:허용된 요청 개수를 초과하였습니다. API ID={}]"


def pad(value: int, width: int = 15) -> str:
    """Zero-padded signed fixed width: 196888 → "000000000196888", -196888 → "-00000000196888"."""
    if value < 0:
        return "-" + str(-value).zfill(width - 1)
    return str(value).zfill(width)


def signed(value: int, base: int) -> str:
    """A price with its direction against the previous close: "+72000", "-70500", "71000"."""
    if value > base:
        return "+{}".format(value)
    if value < base:
        return "-{}".format(value)
    return str(value)


class _Order:
    def __init__(self, no: str, code: str, side: str, qty: int, price: int, market: bool,
                 orig: str = "", role: str = "order", venue: str = "KRX") -> None:  # fmt: skip
        self.no = no
        self.venue = venue  # dmst_stex_tp as sent: KRX | NXT | SOR
        self.code = code
        self.side = side  # "buy" | "sell"
        self.qty = qty
        self.price = price
        self.market = market
        self.orig = orig
        self.role = role
        self.filled = 0
        self.amount = 0
        self.cancelled = 0
        self.fills = 0

    @property
    def open_qty(self) -> int:
        return max(0, self.qty - self.filled - self.cancelled)


class _Session:
    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.logged_in = False
        self.types: Dict[str, set] = {}  # type → items
        self.reg_times: List[float] = []
        self.listed_conditions = False
        self.condition_seq = ""
        self.frames_in: List[Dict[str, Any]] = []
        self.pongs: List[str] = []


class FakeKiwoomRest:
    def __init__(
        self,
        appkey: str = "fake-appkey-0123456789",
        secretkey: str = "fake-secretkey-0123456789",
        account: str = "8012345611",
        holdings: Optional[Dict[str, Tuple[int, int]]] = None,
        prices: Optional[Dict[str, int]] = None,
        cash: int = 100_000_000,
        token_ttl_s: float = 86400.0,
        rate_per_s: int = 5,
        rate_limits: Optional[Dict[str, int]] = None,
        page_size: int = 2,
        ack_first: bool = False,
        fill_plan: str = "full",
        event_gap_s: float = 0.02,
        ping_interval_s: Optional[float] = None,
        ping_timeout_s: float = 10.0,
        tick_s: Optional[float] = None,
        auth_form: str = "rc3",
        accept_two_digit_trde_tp: bool = False,
        conditions: Optional[List[Tuple[str, str]]] = None,
        condition_hits: Optional[List[str]] = None,
        reissue_kills_old: bool = True,
        max_codes: int = 100,
        issue_refusal: Optional[int] = None,
        order_answer_delay_s: float = 0.0,
        chart_days: int = 1300,
        chart_minute_days: int = 5,
        chart_now: Optional[datetime.datetime] = None,
        chart_end_no_data: bool = False,
        mock_krx_only: bool = False,
        master: Optional[Dict[str, Tuple[str, str, bool]]] = None,
        master_page_size: int = 3,
    ) -> None:
        self.appkey = appkey
        self.secretkey = secretkey
        self.account = account
        self.holdings: Dict[str, List[int]] = {
            c: [q, p] for c, (q, p) in (holdings if holdings is not None else {
                "005930": (20, 68000), "000660": (5, 170000), "035420": (3, 210000)}).items()
        }  # fmt: skip
        self.prices = dict(prices or {"005930": 72000, "000660": 180000, "035420": 200000,
                                      "035720": 45000, "005380": 250000})  # fmt: skip
        self.base = {c: p - 1000 for c, p in self.prices.items()}
        self.cash = cash
        self.token_ttl_s = token_ttl_s
        self.rate_per_s = rate_per_s
        self.rate_limits = dict(rate_limits or {})
        self.page_size = page_size
        self.ack_first = ack_first
        self.fill_plan = fill_plan
        self.event_gap_s = event_gap_s
        self.ping_interval_s = ping_interval_s
        self.ping_timeout_s = ping_timeout_s
        self.tick_s = tick_s
        self.auth_form = auth_form
        self.accept_two_digit_trde_tp = accept_two_digit_trde_tp
        self.conditions = list(conditions or [("0", "거래량폭증"), ("1", "신고가")])
        self.condition_hits = list(condition_hits or [])
        self.reissue_kills_old = reissue_kills_old
        self.max_codes = max_codes
        #: au10001 refuses with this code: 8050 (IP/terminal not registered), 8030 (mock key
        #: on the real server)...
        self.issue_refusal = issue_refusal
        #: kt1000x answers this late (after the order is placed and its events sent): a
        #: client timeout then cannot tell whether the order went through.
        self.order_answer_delay_s = order_answer_delay_s
        #: chart history: weekdays of daily rows (back from today), days of minute rows, and
        #: the KST moment the charts are served at (None: now), which says what is forming.
        self.chart_days = chart_days
        self.chart_minute_days = chart_minute_days
        self.chart_now = chart_now
        self.chart_page_sizes = {"ka10081": 600, "ka10080": 900}
        #: the last chart page still says cont-yn Y, and the page after it is
        #: ``return_code`` 20 "조회할 자료가 없습니다" (a server that finds the end late)
        self.chart_end_no_data = chart_end_no_data
        self.clock_offset = 0.0
        #: Kiwoom's mock-trading server takes KRX orders only ("모의투자는 KRX만 지원됩니다":
        #: the kiwoom-cli README on PyPI; "(모의는 KRX)" in a client's kt10000 DTO). The real
        #: server takes KRX, NXT and SOR ("국내거래소구분 KRX,NXT,SOR", Kiwoom's samples).
        self.mock_krx_only = mock_krx_only
        #: ka10099: code → (name, mrkt_tp, nxtEnable), served in pages of master_page_size
        #: (whether Kiwoom pages ka10099 is an open question of the design note: the fake does,
        #: so the broker must follow cont-yn/next-key).
        self.master = dict(MASTER if master is None else master)
        self.master_page_size = master_page_size
        #: every dmst_stex_tp a kt10000..kt10003 carried, as (api_id, value), refused ones too
        self.order_venues: List[Tuple[str, Any]] = []
        # what happened (read by tests)
        self.calls: List[Dict[str, Any]] = []
        self.sessions: List[_Session] = []
        self.logins = 0
        self.kicks = 0
        self.rate_refusals = 0
        self.tokens: Dict[str, float] = {}  # token → expiry (Unix time, fake clock)
        self.revoked: List[str] = []
        self.orders: Dict[str, _Order] = {}
        self.zombie_mode = False
        self._order_nos = itertools.count(138)
        self._token_nos = itertools.count(1)
        self._rate: Dict[str, List[float]] = {}
        self._fill_nos = itertools.count(1)
        self.loop = asyncio.new_event_loop()
        self._thread: Optional[threading.Thread] = None
        self._started = threading.Event()
        self.base_url = ""
        self.ws_url = ""

    # ------------------------------------------------------------------------------------
    # lifecycle and controls (callable from the test thread)
    # ------------------------------------------------------------------------------------
    def start(self) -> "FakeKiwoomRest":
        self._thread = threading.Thread(target=self._run, name="fake-kiwoom-rest", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake Kiwoom REST server did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self.loop.run_forever()

    async def _serve(self) -> None:
        self._http = await asyncio.start_server(self._http_client, "127.0.0.1", 0)
        http_port = self._http.sockets[0].getsockname()[1]
        self._ws_server = await serve(self._ws_client, "127.0.0.1", 0, ping_interval=None,
                                      compression=None)  # fmt: skip
        ws_port = list(self._ws_server.sockets)[0].getsockname()[1]
        self.base_url = "http://127.0.0.1:{}".format(http_port)
        self.ws_url = "ws://127.0.0.1:{}{}".format(ws_port, WS_PATH)
        self._bg = [asyncio.ensure_future(self._pinger()), asyncio.ensure_future(self._ticker())]
        self._started.set()

    def stop(self) -> None:
        async def shutdown() -> None:
            for task in self._bg:
                task.cancel()
            self._http.close()
            self._ws_server.close()
            for s in list(self.sessions):
                s.ws.transport.abort()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        if self._thread is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> "FakeKiwoomRest":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _in_loop(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (token expiry) forward."""
        self.clock_offset += seconds

    def expire_tokens(self) -> None:
        """Every token issued so far is invalid from now on (as a re-issue elsewhere does)."""
        self._in_loop(self.tokens.clear)

    def drop_ws(self) -> None:
        """Every WebSocket connection drops (no close frame: a network drop)."""
        self._in_loop(lambda: [s.ws.transport.abort() for s in list(self.sessions)])

    def kick(self) -> None:
        """Another session took the app key: SYSTEM R10001, then close(1000, "Bye")."""
        self._in_loop(self._kick_all)

    def zombie(self, on: bool = True) -> None:
        self.zombie_mode = on

    def push_condition(self, code: str, event: str = "I") -> None:
        self._in_loop(self._condition_event, code, event)

    def push_raw(self, text: str) -> None:
        """Send any text to every logged-in session (junk, half frames, wrong shapes)."""

        async def send() -> None:
            for s in self.live_sessions():
                await s.ws.send(text)

        self._in_loop(send)

    def set_price(self, code: str, price: int) -> None:
        self._in_loop(self.prices.__setitem__, code, price)

    def sent_orders(
        self, api_id: str = "kt10000", accepted_only: bool = True
    ) -> List[Dict[str, Any]]:
        return [c for c in self.calls if c["api_id"] == api_id
                and (not accepted_only or c["return_code"] == 0)]  # fmt: skip

    def live_sessions(self) -> List[_Session]:
        return [s for s in self.sessions if s.logged_in]

    # ------------------------------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------------------------------
    async def _http_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, path, _version = line.decode("latin-1").split(" ", 2)
                headers: Dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                status, body, extra = await self._handle(method, path, headers, raw, writer)
                self._respond(writer, status, body, extra)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _respond(writer: asyncio.StreamWriter, status: int, body: Dict[str, Any],
                 extra: Dict[str, str]) -> None:  # fmt: skip
        data = json.dumps(body, ensure_ascii=False).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
        head = ["HTTP/1.1 {} {}".format(status, reason.get(status, "")),
                "Content-Type: application/json;charset=UTF-8",
                "Content-Length: {}".format(len(data))]  # fmt: skip
        head += ["{}: {}".format(k, v) for k, v in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)

    def _record(self, api_id: str, path: str, body: Any, headers: Dict[str, str], status: int,
                answer: Dict[str, Any]) -> None:  # fmt: skip
        self.calls.append({
            "api_id": api_id, "path": path, "body": body, "status": status,
            "return_code": answer.get("return_code"), "cont_yn": headers.get("cont-yn", ""),
            "next_key": headers.get("next-key", ""), "at": time.monotonic(), "answer": answer,
        })  # fmt: skip

    async def _handle(self, method: str, path: str, headers: Dict[str, str], raw: bytes,
                      writer: asyncio.StreamWriter) -> Tuple[int, Dict[str, Any], Dict[str, str]]:  # fmt: skip
        api_id = headers.get("api-id", "")
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            body = None
        status, answer, extra = self._answer(method, path, api_id, headers, body)
        self._record(api_id, path, body, headers, status, answer)
        if (
            status == 200
            and answer.get("return_code") == 0
            and api_id in ("kt10000", "kt10001", "kt10002", "kt10003")
        ):
            no = answer["ord_no"]
            if self.ack_first:
                await self._order_events(no, ack_only=True)  # 접수 reaches the WS first
                asyncio.ensure_future(self._order_events(no, skip_ack=True))
            else:
                asyncio.get_running_loop().call_later(
                    self.event_gap_s, lambda: asyncio.ensure_future(self._order_events(no))
                )
            if self.order_answer_delay_s:
                await asyncio.sleep(self.order_answer_delay_s)
        extra = dict(extra)
        extra.setdefault("api-id", api_id)
        return status, answer, extra

    def _answer(self, method: str, path: str, api_id: str, headers: Dict[str, str],
                body: Any) -> Tuple[int, Dict[str, Any], Dict[str, str]]:  # fmt: skip
        if method != "POST":
            return 404, {"return_code": 2, "return_msg": "POST only"}, {}
        if body is None or not isinstance(body, dict):
            return (
                200,
                {"return_code": 2, "return_msg": "입력 값 형식이 올바르지 않습니다[1517]"},
                {},
            )
        if path == "/oauth2/token":
            return self._issue(body)
        if path == "/oauth2/revoke":
            token = str(body.get("token", ""))
            self.tokens.pop(token, None)
            self.revoked.append(token)
            return 200, {"return_code": 0, "return_msg": "정상적으로 처리되었습니다"}, {}
        if not api_id:
            return 200, {"return_code": 2, "return_msg": "API ID가 없습니다[1501]"}, {}
        if api_id not in PATHS:
            return (
                200,
                {
                    "return_code": 2,
                    "return_msg": "API ID가 존재하지 않습니다[1505:{}]".format(api_id),
                },
                {},
            )
        if PATHS[api_id] != path:
            return (
                200,
                {
                    "return_code": 2,
                    "return_msg": "URI에서 지원하지 않는 API ID입니다[1504:{}]".format(api_id),
                },
                {},
            )
        auth = headers.get("authorization", "")
        if not auth:
            return 200, {"return_code": 2, "return_msg": "authorization 헤더가 없습니다[1513]"}, {}
        token = auth.split(" ", 1)[-1].strip()
        expiry = self.tokens.get(token)
        if expiry is None or self.now() >= expiry:
            if self.auth_form == "code":
                return 200, {"return_code": 8005, "return_msg": "Token이 유효하지 않습니다"}, {}
            return 200, {"return_code": 3, "return_msg": AUTH_FAILED_MSG}, {}
        if not self._rate_ok(api_id):
            self.rate_refusals += 1
            return 429, {"return_code": 5, "return_msg": RATE_MSG.format(api_id)}, {}
        handler = getattr(self, "_tr_" + api_id, None)
        if handler is None:
            return 200, {"return_code": 20, "return_msg": "조회할 자료가 없습니다"}, {}
        return handler(body, headers)

    def _rate_ok(self, api_id: str) -> bool:
        limit = self.rate_limits.get(api_id, self.rate_per_s)
        now = time.monotonic()
        times = [t for t in self._rate.get(api_id, []) if now - t < 1.0]
        if len(times) >= limit:
            self._rate[api_id] = times
            return False
        times.append(now)
        self._rate[api_id] = times
        return True

    def _issue(self, body: Dict[str, Any]) -> Tuple[int, Dict[str, Any], Dict[str, str]]:
        if body.get("grant_type") != "client_credentials":
            return 200, {"return_code": 2, "return_msg": "grant_type이 올바르지 않습니다[8011]"}, {}
        if body.get("appkey") != self.appkey:
            return (
                200,
                {"return_code": 2, "return_msg": "appkey가 유효하지 않습니다[8001:appkey]"},
                {},
            )
        if body.get("secretkey") != self.secretkey:
            return (
                200,
                {"return_code": 2, "return_msg": "secretkey가 유효하지 않습니다[8002:secretkey]"},
                {},
            )
        if self.issue_refusal:
            words = {
                8050: "지정단말기 인증에 실패했습니다",
                8030: "실전/모의 투자구분이 일치하지 않습니다(appkey)",
            }
            return 200, {"return_code": 2, "return_msg": "{}[{}:{}]".format(
                words.get(self.issue_refusal, "오류"), self.issue_refusal, words.get(self.issue_refusal, ""))}, {}  # fmt: skip
        if self.reissue_kills_old:
            self.tokens.clear()
        token = "fAkEtOkEn{:04d}".format(next(self._token_nos)) + "x" * 73  # 86 chars, as observed
        expiry = self.now() + self.token_ttl_s
        self.tokens[token] = expiry
        expires_dt = datetime.datetime.fromtimestamp(expiry, KST).strftime("%Y%m%d%H%M%S")
        return 200, {"expires_dt": expires_dt, "token_type": "bearer", "token": token,
                     "return_code": 0, "return_msg": "정상적으로 처리되었습니다"}, {}  # fmt: skip

    # -- paging --------------------------------------------------------------------------
    def _page(self, api_id: str, rows: List[Dict[str, Any]], headers: Dict[str, str],
              size: Optional[int] = None) -> Tuple[List[Dict[str, Any]], Dict[str, str]]:  # fmt: skip
        page_size = size or self.page_size
        start = 0
        if headers.get("cont-yn") == "Y":
            key = headers.get("next-key", "")
            prefix = "{}-".format(api_id)
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                start = int(key[len(prefix) :])
        chunk = rows[start : start + page_size]
        if start + page_size < len(rows):
            return chunk, {
                "cont-yn": "Y",
                "next-key": "{}-{}".format(api_id, start + page_size),
            }
        return chunk, {"cont-yn": "N", "next-key": ""}

    # -- TRs -----------------------------------------------------------------------------
    @staticmethod
    def _ok(**fields: Any) -> Dict[str, Any]:
        out = dict(fields)
        out.update(return_code=0, return_msg=" 조회가 완료되었습니다.")
        return out

    def _tr_ka00001(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        return 200, self._ok(acctNo=self.account), {}

    def _tr_kt00018(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        if body.get("qry_tp") not in ("1", "2") or body.get("dmst_stex_tp") not in ("KRX", "NXT"):
            return 200, {"return_code": 2, "return_msg": "필수 입력 값이 없습니다[1511:qry_tp]"}, {}
        rows, total_buy, total_eval = [], 0, 0
        for code, (qty, avg) in sorted(self.holdings.items()):
            if qty <= 0:
                continue
            price = self.prices.get(code, avg)
            total_buy += qty * avg
            total_eval += qty * price
            rows.append({"stk_cd": "A" + code, "stk_nm": NAMES.get(code, code),
                         "rmnd_qty": pad(qty), "trde_able_qty": pad(qty), "pur_pric": pad(avg),
                         "cur_prc": pad(price), "evltv_prft": pad((price - avg) * qty),
                         "prft_rt": "{:.2f}".format((price - avg) * 100.0 / avg),
                         "pred_close_pric": pad(self.base.get(code, price))})  # fmt: skip
        page, extra = self._page("kt00018", rows, headers)
        return 200, self._ok(tot_pur_amt=pad(total_buy), tot_evlt_amt=pad(total_eval),
                             tot_evlt_pl=pad(total_eval - total_buy), tot_prft_rt="0.00",
                             prsm_dpst_aset_amt=pad(self.cash + total_eval),
                             acnt_evlt_remn_indv_tot=page), extra  # fmt: skip

    def _tr_kt00001(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        held = sum(o.open_qty * o.price for o in self.orders.values()
                   if o.role == "order" and o.side == "buy" and not o.market)  # fmt: skip
        return 200, self._ok(entr=pad(self.cash), d2_entra=pad(self.cash),
                             ord_alow_amt=pad(self.cash - held), pymn_alow_amt=pad(self.cash)), {}  # fmt: skip

    def _tr_ka10075(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        rows = []
        for o in self.orders.values():
            if o.role != "order" or o.open_qty <= 0:
                continue
            rows.append({"ord_no": o.no, "stk_cd": o.code, "stk_nm": NAMES.get(o.code, o.code),
                         "ord_stt": "접수", "ord_qty": pad(o.qty, 12),
                         "ord_pric": pad(o.price, 12), "oso_qty": pad(o.open_qty, 12),
                         "cntr_qty": pad(o.filled, 12),
                         "cntr_pric": pad(o.amount // o.filled if o.filled else 0, 12),
                         "io_tp_nm": "+매수" if o.side == "buy" else "-매도",
                         "trde_tp": "시장가" if o.market else "보통",
                         "orig_ord_no": o.orig or "0000000",
                         "stex_tp": "2" if o.venue == "NXT" else "1",
                         "sor_yn": "Y" if o.venue == "SOR" else "N"})  # fmt: skip
        page, extra = self._page("ka10075", rows, headers)
        return 200, self._ok(oso=page), extra

    def _tr_ka10095(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        codes = [c for c in str(body.get("stk_cd", "")).split("|") if c]
        if len(codes) > self.max_codes:
            return 200, {"return_code": 5, "return_msg": BATCH_MSG.format("ka10095")}, {}
        rows = [{"stk_cd": c, "stk_nm": NAMES.get(c, "종목" + c),
                 "cur_prc": signed(self.prices.get(c, 10000), self.base.get(c, 10000)),
                 "base_pric": str(self.base.get(c, 10000))} for c in codes]  # fmt: skip
        return 200, self._ok(atn_stk_infr=rows), {}

    def _tr_ka10099(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        """종목정보 리스트: camelCase keys, ``lastPrice`` zero-padded, ``nxtEnable`` "Y"/"N"."""
        mrkt_tp = body.get("mrkt_tp")
        if not isinstance(mrkt_tp, str) or not mrkt_tp:
            return (
                200,
                {"return_code": 2, "return_msg": "필수 입력 값이 없습니다[1511:mrkt_tp]"},
                {},
            )
        market_name = {"0": "거래소", "10": "코스닥"}.get(mrkt_tp, "")
        rows = [{"code": code, "name": name, "listCount": "0000000010000000",
                 "auditInfo": "정상", "regDay": "20000101",
                 "lastPrice": str(self.base.get(code, 10000)).zfill(8),
                 "state": "증거금20%|담보대출|신용가능", "marketCode": mrkt_tp,
                 "marketName": market_name, "upName": "", "upSizeName": "",
                 "companyClassName": "", "orderWarning": "0",
                 "nxtEnable": "Y" if nxt else "N"}
                for code, (name, market, nxt) in sorted(self.master.items())
                if market == mrkt_tp]  # fmt: skip
        page, extra = self._page("ka10099", rows, headers, size=self.master_page_size)
        return 200, self._ok(list=page), extra

    # -- charts (ka10081 daily / ka10080 minute) ---------------------------------------------
    def chart_moment(self) -> datetime.datetime:
        return self.chart_now or datetime.datetime.fromtimestamp(self.now(), KST)

    def chart_candles(self, code: str, interval: str) -> List[List[int]]:
        """The fake's past, oldest first, as ``[start_ms, open, high, low, close, volume]``
        (today's forming candle included), the truth the chart rows are written from."""
        now = self.chart_moment()
        rng = random.Random(zlib.crc32("{}:{}".format(code, interval).encode()))
        days: List[datetime.date] = []
        day = now.date()
        wanted = self.chart_days if interval == "1d" else self.chart_minute_days
        while len(days) < wanted:
            if day.weekday() < 5:
                days.append(day)
            day -= datetime.timedelta(days=1)
        days.reverse()
        if interval == "1d":
            starts = [datetime.datetime.combine(d, datetime.time(0), tzinfo=KST) for d in days]
            sigma, volume = 0.02, 3_000_000
        else:
            starts = []
            for d in days:
                opening = datetime.datetime.combine(d, datetime.time(9, 0), tzinfo=KST)
                for m in range(390):  # 09:00 … 15:29
                    start = opening + datetime.timedelta(minutes=m)
                    if start > now:
                        break
                    starts.append(start)
            sigma, volume = 0.001, 8000
        out: List[List[int]] = []
        close = self.prices.get(code, 10000)
        for start in reversed(starts):  # back from today's price
            prev = max(100, int(round(close / (1.0 + rng.gauss(0.0, sigma)) / 10.0)) * 10)
            open_ = max(100, int(round(prev * (1.0 + rng.gauss(0.0, sigma / 3)) / 10.0)) * 10)
            high = max(open_, close) + 10 * rng.randint(0, 5)
            low = max(10, min(open_, close) - 10 * rng.randint(0, 5))
            ms = int(start.timestamp() * 1000)
            out.append([ms, open_, high, low, close, int(volume * (0.5 + rng.random()))])
            close = prev
        out.reverse()
        return out

    def _chart_refusal(self, body: Dict[str, Any], need: str) -> Any:
        code = str(body.get("stk_cd", ""))
        if code not in self.prices:
            return self._refuse("종목코드가 존재하지 않습니다[1902:{}]".format(code))
        if str(body.get("upd_stkpc_tp", "")) not in ("0", "1"):
            return self._refuse("필수 입력 값이 없습니다[1511:upd_stkpc_tp]")
        if need == "base_dt":
            text = str(body.get("base_dt", ""))
            if len(text) != 8 or not text.isdigit():
                return self._refuse("필수 입력 값이 없습니다[1511:base_dt]")
        elif str(body.get("tic_scope", "")) not in ("1", "3", "5", "10", "15", "30", "45", "60"):
            return self._refuse("필수 입력 값이 없습니다[1511:tic_scope]")
        return None

    def _chart_page(self, api_id: str, rows: List[Dict[str, Any]], headers: Dict[str, str]) -> Any:
        size = self.chart_page_sizes[api_id]
        page, extra = self._page(api_id, rows, headers, size)
        if self.chart_end_no_data:
            if not page:
                return None, {}
            if extra.get("cont-yn") == "N":
                start = len(rows) - len(page)
                extra = {"cont-yn": "Y", "next-key": "{}-{}".format(api_id, start + size)}
        return page, extra

    def _tr_ka10081(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        refusal = self._chart_refusal(body, "base_dt")
        if refusal:
            return refusal
        code, base_dt = str(body["stk_cd"]), str(body["base_dt"])
        rows = []
        candles = self.chart_candles(code, "1d")
        for i in range(len(candles) - 1, -1, -1):  # newest first
            ms, o, h, lo, c, v = candles[i]
            dt = datetime.datetime.fromtimestamp(ms / 1000, KST).strftime("%Y%m%d")
            if dt > base_dt:
                continue
            prev = candles[i - 1][4] if i else c
            sign = "2" if c > prev else "5" if c < prev else "3"
            rows.append({"cur_prc": str(c), "trde_qty": str(v), "trde_prica": str(v * c // 1_000_000),
                         "dt": dt, "open_pric": str(o), "high_pric": str(h), "low_pric": str(lo),
                         "pred_pre": "{:+d}".format(c - prev) if c != prev else "0", "pred_pre_sig": sign,
                         "trde_tern_rt": "{:+.2f}".format(v * 100.0 / 5_969_782_550)})  # fmt: skip
        page, extra = self._chart_page("ka10081", rows, headers)
        if page is None:
            return 200, {"return_code": 20, "return_msg": "조회할 자료가 없습니다"}, {}
        return 200, self._ok(stk_cd=code, stk_dt_pole_chart_qry=page), extra

    def _tr_ka10080(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        refusal = self._chart_refusal(body, "tic_scope")
        if refusal:
            return refusal
        code = str(body["stk_cd"])
        if body.get("tic_scope") != "1":
            return self._refuse("the fake serves one-minute candles only[1517:tic_scope]")
        candles = self.chart_candles(code, "1m")
        prev_close: Dict[str, int] = {}  # day → the previous day's last close
        last = candles[0][1] if candles else 0
        for ms, _o, _h, _lo, c, _v in candles:
            day = datetime.datetime.fromtimestamp(ms / 1000, KST).strftime("%Y%m%d")
            prev_close.setdefault(day, last)
            last = c
        rows = []
        for ms, o, h, lo, c, v in reversed(candles):  # newest first
            tm = datetime.datetime.fromtimestamp(ms / 1000, KST).strftime("%Y%m%d%H%M%S")
            base = prev_close[tm[:8]]
            rows.append({"cur_prc": signed(c, base), "trde_qty": str(v), "cntr_tm": tm,
                         "open_pric": signed(o, base), "high_pric": signed(h, base),
                         "low_pric": signed(lo, base), "acc_trde_qty": str(v),
                         "pred_pre": "{:+d}".format(c - base) if c != base else "0",
                         "pred_pre_sig": "2" if c > base else "5" if c < base else "3"})  # fmt: skip
        page, extra = self._chart_page("ka10080", rows, headers)
        if page is None:
            return 200, {"return_code": 20, "return_msg": "조회할 자료가 없습니다"}, {}
        return 200, self._ok(stk_cd=code, stk_min_pole_chart_qry=page), extra

    def _tr_kt10000(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        return self._new_order(body, "buy")

    def _tr_kt10001(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        return self._new_order(body, "sell")

    @staticmethod
    def _refuse(msg: str) -> Tuple[int, Dict[str, Any], Dict[str, str]]:
        return 200, {"return_code": 2, "return_msg": msg}, {}

    def _venue_refusal(self, api_id: str, body: Dict[str, Any]) -> Any:
        """Record ``dmst_stex_tp`` and refuse what Kiwoom would: an unknown value (the
        field's error form, 1517, as the other input checks), NXT/SOR on the mock server."""
        venue = body.get("dmst_stex_tp")
        self.order_venues.append((api_id, venue))
        if venue not in ("KRX", "NXT", "SOR"):
            return self._refuse("국내거래소구분을 확인하세요[1517:dmst_stex_tp]")
        if self.mock_krx_only and venue != "KRX":
            return self._refuse("모의투자에서는 KRX만 주문 가능합니다[dmst_stex_tp]")
        return None

    def _new_order(self, body: Dict[str, Any], side: str) -> Any:
        refusal = self._venue_refusal("kt10000" if side == "buy" else "kt10001", body)
        if refusal:
            return refusal
        venue = str(body["dmst_stex_tp"])
        code, qty_text = str(body.get("stk_cd", "")), str(body.get("ord_qty", ""))
        trde_tp, uv = str(body.get("trde_tp", "")), body.get("ord_uv")
        if code not in self.prices:
            return self._refuse("종목코드가 존재하지 않습니다[1902:{}]".format(code))
        if not qty_text.isdigit() or int(qty_text) <= 0:
            return self._refuse("주문수량을 확인하세요[1517:ord_qty]")
        if trde_tp in ("00", "03") and self.accept_two_digit_trde_tp:
            trde_tp = trde_tp[1]
        if trde_tp == "0":
            if not (isinstance(uv, str) and uv.isdigit() and int(uv) > 0):
                return self._refuse("지정가 주문은 주문단가가 필요합니다[1517:ord_uv]")
            market = False
        elif trde_tp == "3":
            if uv not in ("", None):
                return self._refuse("시장가 주문은 주문단가를 비워야 합니다[1517:ord_uv]")
            market = True
        else:
            return self._refuse("매매구분을 확인하세요[1517:trde_tp={}]".format(trde_tp))
        if side == "sell" and self.holdings.get(code, [0, 0])[0] < int(qty_text):
            return self._refuse("매도가능수량이 부족합니다")
        no = "{:07d}".format(next(self._order_nos))
        price = 0 if market else int(uv)
        self.orders[no] = _Order(no, code, side, int(qty_text), price, market, venue=venue)
        return 200, {"ord_no": no, "dmst_stex_tp": venue, "return_code": 0,
                     "return_msg": "매수주문이 완료되었습니다." if side == "buy" else "매도주문이 완료되었습니다."}, {}  # fmt: skip

    def _leg(self, body: Dict[str, Any], qty_key: str) -> Any:
        refusal = self._venue_refusal("kt10003" if qty_key == "cncl_qty" else "kt10002", body)
        if refusal:
            return None, refusal
        orig = self.orders.get(str(body.get("orig_ord_no", "")))
        if orig is None or orig.role != "order":
            return None, self._refuse("원주문번호가 존재하지 않습니다")
        if body.get("dmst_stex_tp") != orig.venue:
            # the original order is not on the venue named: assumed (not documented) that
            # Kiwoom then does not find it, as for an unknown order number
            return None, self._refuse(
                "원주문번호가 존재하지 않습니다[{}]".format(body.get("dmst_stex_tp"))
            )
        if orig.open_qty <= 0:
            return None, self._refuse("정정/취소 가능 수량이 없습니다")
        text = str(body.get(qty_key, ""))
        if not text.isdigit():
            return None, self._refuse("수량을 확인하세요[1517:{}]".format(qty_key))
        qty = int(text) or orig.open_qty  # "0": all that remains
        if qty > orig.open_qty:
            return None, self._refuse("정정/취소 가능 수량을 초과했습니다")
        return (orig, qty), None

    def _tr_kt10003(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        got, refusal = self._leg(body, "cncl_qty")
        if refusal:
            return refusal
        orig, qty = got
        no = "{:07d}".format(next(self._order_nos))
        self.orders[no] = _Order(
            no, orig.code, orig.side, qty, orig.price, orig.market, orig.no, "cancel", orig.venue
        )
        return 200, {"ord_no": no, "base_orig_ord_no": orig.no, "cncl_qty": pad(qty, 12),
                     "return_code": 0, "return_msg": "취소주문이 완료되었습니다."}, {}  # fmt: skip

    def _tr_kt10002(self, body: Dict[str, Any], headers: Dict[str, str]) -> Any:
        got, refusal = self._leg(body, "mdfy_qty")
        if refusal:
            return refusal
        orig, qty = got
        uv = str(body.get("mdfy_uv", ""))
        if not uv.isdigit() or int(uv) <= 0:
            return self._refuse("정정단가를 확인하세요[1517:mdfy_uv]")
        no = "{:07d}".format(next(self._order_nos))
        self.orders[no] = _Order(no, orig.code, orig.side, qty, int(uv), False, orig.no, "modify",
                                 orig.venue)  # fmt: skip
        return 200, {"ord_no": no, "base_orig_ord_no": orig.no, "mdfy_qty": pad(qty, 12),
                     "dmst_stex_tp": orig.venue, "return_code": 0,
                     "return_msg": "정정주문이 완료되었습니다."}, {}  # fmt: skip

    # ------------------------------------------------------------------------------------
    # order lifecycle → 00 / 04 frames
    # ------------------------------------------------------------------------------------
    def _order_values(self, o: _Order, status: str, fill_qty: int = 0, fill_price: int = 0) -> Dict[str, str]:  # fmt: skip
        buy = o.side == "buy"
        kind = {"order": "+매수" if buy else "-매도", "cancel": "매수취소" if buy else "매도취소",
                "modify": "매수정정" if buy else "매도정정"}[o.role]  # fmt: skip
        fee = o.amount * 15 // 100000
        return {
            "9201": self.account, "9203": o.no, "9001": o.code, "913": status,
            "302": NAMES.get(o.code, o.code), "900": str(o.qty), "901": str(o.price),
            "902": str(o.open_qty), "903": str(o.amount), "904": o.orig or "0000000",
            "905": kind, "906": "시장가" if o.market else "보통", "907": "2" if buy else "1",
            "908": datetime.datetime.now(KST).strftime("%H%M%S"),
            "909": str(next(self._fill_nos)) if fill_qty else "", "910": str(fill_price) if fill_qty else "",
            "911": str(o.filled) if o.filled else "", "914": str(fill_price) if fill_qty else "",
            "915": str(fill_qty) if fill_qty else "", "938": str(fee), "939": "0", "919": "",
            "2134": "2" if o.venue == "NXT" else "1", "2135": "NXT" if o.venue == "NXT" else "KRX",
            "2136": "Y" if o.venue == "SOR" else "N",
        }  # fmt: skip

    def book_levels(self, last: int) -> Tuple[List[List[int]], List[List[int]]]:
        """Ten asks from ten above ``last`` up, ten bids from ``last`` down, 10 KRW apart (the
        fake's own price step, as its 0B rows), 100 x the level's number of shares each."""
        asks = [[last + 10 * (i + 1), 100 * (i + 1)] for i in range(10)]
        bids = [[last - 10 * i, 100 * (i + 1) + 50] for i in range(10)]
        return asks, bids

    def book_values(self, code: str, last: int) -> Dict[str, str]:
        """A 0D (주식호가잔량) row's values: the OCX's FIDs as strings, prices signed against
        the previous close, quantities and totals unsigned (issue 13)."""
        base = self.base.get(code, last)
        asks, bids = self.book_levels(last)
        values = {"21": datetime.datetime.now(KST).strftime("%H%M%S")}
        for i in range(10):
            values[str(41 + i)] = signed(asks[i][0], base)
            values[str(61 + i)] = str(asks[i][1])
            values[str(51 + i)] = signed(bids[i][0], base)
            values[str(71 + i)] = str(bids[i][1])
        values["121"] = str(sum(q for _, q in asks))
        values["125"] = str(sum(q for _, q in bids))
        return values

    async def _push(self, rows: List[Dict[str, Any]]) -> None:
        if self.zombie_mode:
            return
        for s in list(self.sessions):
            mine = [r for r in rows if r["item"] in s.types.get(r["type"], ())]
            if s.logged_in and mine:
                try:
                    await s.ws.send(json.dumps({"trnm": "REAL", "data": mine}, ensure_ascii=False))
                except ConnectionClosed:
                    pass

    def _row(self, kind: str, item: str, values: Dict[str, str]) -> Dict[str, Any]:
        names = {
            "00": "주문체결",
            "04": "잔고",
            "0B": "주식체결",
            "02": "조건검색",
            "0D": "주식호가잔량",
        }
        return {"type": kind, "name": names.get(kind, ""), "item": item, "values": values}

    async def _order_events(self, no: str, ack_only: bool = False, skip_ack: bool = False) -> None:
        o = self.orders[no]
        if not skip_ack:
            await self._push([self._row("00", "", self._order_values(o, "접수"))])
        if ack_only:
            return
        await asyncio.sleep(self.event_gap_s)
        if o.role in ("cancel", "modify"):
            orig = self.orders[o.orig]
            qty = min(o.qty, orig.open_qty)
            orig.cancelled += qty
            o.qty = qty
            await self._push([self._row("00", "", self._order_values(o, "확인"))])
            if o.role == "cancel":
                o.cancelled = o.qty  # a cancel leg never rests
                return
        await self._match(o)

    async def _match(self, o: _Order) -> None:
        if self.fill_plan == "none":
            return
        price = self.prices[o.code]
        crosses = (
            o.market
            or (o.side == "buy" and o.price >= price)
            or (o.side == "sell" and o.price <= price)
        )
        if not crosses:
            return
        if self.fill_plan == "two_prices" and o.open_qty >= 2:
            first = o.open_qty // 2
            parts = [(first, price), (o.open_qty - first, price + (10 if o.side == "buy" else -10))]
        else:
            parts = [(o.open_qty, price)]
        for qty, fill_price in parts:
            if not o.market and (
                (o.side == "buy" and fill_price > o.price)
                or (o.side == "sell" and fill_price < o.price)
            ):
                fill_price = o.price
            await asyncio.sleep(self.event_gap_s)
            o.filled += qty
            o.amount += qty * fill_price
            held = self.holdings.setdefault(o.code, [0, 0])
            if o.side == "buy":
                held[1] = (held[0] * held[1] + qty * fill_price) // (held[0] + qty)
                held[0] += qty
                self.cash -= qty * fill_price
            else:
                held[0] -= qty
                self.cash += qty * fill_price
            await self._push([
                self._row("00", "", self._order_values(o, "체결", qty, fill_price)),
                self._row("04", "", {
                    "9201": self.account, "9001": o.code, "302": NAMES.get(o.code, o.code),
                    "10": signed(self.prices[o.code], self.base.get(o.code, 0)), "930": str(held[0]),
                    "931": str(held[1]), "932": str(held[0] * held[1]), "933": str(held[0]),
                    "950": "0"}),
            ])  # fmt: skip

    # ------------------------------------------------------------------------------------
    # WebSocket
    # ------------------------------------------------------------------------------------
    async def _ws_client(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path != WS_PATH:
            await ws.close(1008, "not found")
            return
        session = _Session(ws)
        self.sessions.append(session)
        try:
            async for raw in ws:
                if self.zombie_mode:
                    continue
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                session.frames_in.append(frame)
                await self._ws_frame(session, frame, raw if isinstance(raw, str) else raw.decode())
        except ConnectionClosed:
            pass
        finally:
            session.logged_in = False
            if session in self.sessions:
                self.sessions.remove(session)

    async def _ws_frame(self, s: _Session, frame: Dict[str, Any], raw: str) -> None:
        trnm = frame.get("trnm")
        if not s.logged_in and trnm != "LOGIN":
            if trnm == "PING":
                s.pongs.append(raw)
                return
            await s.ws.close(1008, "LOGIN first")
            return
        if trnm == "LOGIN":
            token = str(frame.get("token", ""))
            expiry = self.tokens.get(token)
            if expiry is None or self.now() >= expiry:
                await s.ws.send(json.dumps({"trnm": "LOGIN", "return_code": 1,
                                            "return_msg": AUTH_FAILED_MSG}, ensure_ascii=False))  # fmt: skip
                return
            for other in self.live_sessions():  # one session per app key
                await self._kick_one(other)
            s.logged_in = True
            self.logins += 1
            await s.ws.send(json.dumps({"trnm": "LOGIN", "return_code": 0, "return_msg": ""}))
        elif trnm == "PING":
            s.pongs.append(raw)
        elif trnm in ("REG", "REMOVE"):
            await self._reg(s, frame, trnm)
        elif trnm == "CNSRLST":
            s.listed_conditions = True
            await s.ws.send(json.dumps({"trnm": "CNSRLST", "return_code": 0, "return_msg": "",
                                        "data": [list(c) for c in self.conditions]}, ensure_ascii=False))  # fmt: skip
        elif trnm == "CNSRREQ":
            await self._cnsrreq(s, frame)
        elif trnm == "CNSRCLR":
            s.condition_seq = ""
            await s.ws.send(json.dumps({"trnm": "CNSRCLR", "return_code": 0, "return_msg": ""}))

    async def _reg(self, s: _Session, frame: Dict[str, Any], trnm: str) -> None:
        now = time.monotonic()
        s.reg_times = [t for t in s.reg_times if now - t < 1.0]
        if len(s.reg_times) >= 5:
            await s.ws.send(json.dumps({"trnm": trnm, "return_code": 105110,
                                        "return_msg": "등록 요청 횟수 초과"}, ensure_ascii=False))  # fmt: skip
            return
        s.reg_times.append(now)
        if frame.get("refresh") == "0" and trnm == "REG":
            s.types = {}
        for entry in frame.get("data") or []:
            items = [str(i) for i in entry.get("item") or []]
            for kind in entry.get("type") or []:
                bucket = s.types.setdefault(str(kind), set())
                if trnm == "REG":
                    bucket.update(items)
                else:
                    bucket.difference_update(items)
        if len(set().union(*s.types.values()) if s.types else ()) > 200:
            await s.ws.send(json.dumps({"trnm": trnm, "return_code": 105115,
                                        "return_msg": "등록 가능 개수 초과"}, ensure_ascii=False))  # fmt: skip
            return
        await s.ws.send(json.dumps({"trnm": trnm, "return_code": 0, "return_msg": ""}))

    async def _cnsrreq(self, s: _Session, frame: Dict[str, Any]) -> None:
        seq = str(frame.get("seq", "")).strip()
        if frame.get("search_type") == "1" and not s.listed_conditions:
            await s.ws.send(json.dumps({"trnm": "CNSRREQ", "return_code": 1,
                                        "return_msg": "조건검색 목록조회(CNSRLST)를 먼저 하세요"}, ensure_ascii=False))  # fmt: skip
            return
        if seq not in [c[0] for c in self.conditions]:
            await s.ws.send(
                json.dumps(
                    {"trnm": "CNSRREQ", "return_code": 1, "return_msg": "조건 없음"},
                    ensure_ascii=False,
                )
            )
            return
        s.condition_seq = seq if frame.get("search_type") == "1" else s.condition_seq
        await s.ws.send(json.dumps({"trnm": "CNSRREQ", "seq": seq + "  ", "cont_yn": "N", "next_key": "",
                                    "return_code": 0, "return_msg": "",
                                    "data": [{"jmcode": "A005930"}]}, ensure_ascii=False))  # fmt: skip
        for code in self.condition_hits:
            asyncio.get_running_loop().call_later(
                0.1, lambda c=code: asyncio.ensure_future(self._condition_event(c, "I"))
            )

    async def _condition_event(self, code: str, event: str) -> None:
        for s in self.live_sessions():
            if s.condition_seq:
                row = self._row("02", code, {"841": s.condition_seq, "9001": code, "843": event,
                                             "20": datetime.datetime.now(KST).strftime("%H%M%S"), "907": "2"})  # fmt: skip
                await s.ws.send(json.dumps({"trnm": "REAL", "data": [row]}, ensure_ascii=False))

    async def _kick_one(self, s: _Session) -> None:
        self.kicks += 1
        s.logged_in = False
        try:
            await s.ws.send(json.dumps({"trnm": "SYSTEM", "code": "R10001",
                                        "message": "동일한 App key로 접속이 되어 기존 세션을 종료합니다."},
                                       ensure_ascii=False))  # fmt: skip
            await s.ws.close(1000, "Bye")
        except ConnectionClosed:
            pass

    async def _kick_all(self) -> None:
        for s in self.live_sessions():
            await self._kick_one(s)

    async def _pinger(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.ping_interval_s or 3600)
            if not self.ping_interval_s or self.zombie_mode:
                continue
            n += 1
            frame = {"trnm": "PING"} if n % 2 else {"trnm": "PING", "time": str(int(time.time()))}
            raw = json.dumps(frame)
            for s in list(self.sessions):
                if not s.logged_in:
                    continue
                before = len(s.pongs)
                try:
                    await s.ws.send(raw)
                except ConnectionClosed:
                    continue
                asyncio.ensure_future(self._expect_pong(s, raw, before))

    async def _expect_pong(self, s: _Session, raw: str, before: int) -> None:
        deadline = time.monotonic() + self.ping_timeout_s
        while time.monotonic() < deadline:
            if raw in s.pongs[before:]:
                return
            await asyncio.sleep(0.05)
        await s.ws.close(1000, "PING not answered")

    async def _ticker(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.tick_s or 3600)
            if not self.tick_s:
                continue
            n += 1
            rows = []
            for code, price in list(self.prices.items()):
                tick = price + (10 if n % 2 else -10)
                base = self.base.get(code, price)
                rows.append(self._row("0B", code, {
                    "20": datetime.datetime.now(KST).strftime("%H%M%S"), "10": signed(tick, base),
                    "11": signed(tick - base, 0), "12": "{:+.2f}".format((tick - base) * 100.0 / base),
                    "15": "+1" if n % 2 else "-1", "13": str(1000 + n), "14": "72",
                    "16": signed(base, base), "17": signed(price + 10, base), "18": " {}".format(price - 10),
                    "27": signed(tick + 10, base), "28": signed(tick, base), "228": "101.5"}))  # fmt: skip
                rows.append(self._row("0D", code, self.book_values(code, tick)))
            await self._push(rows)
