"""A thin async client for Kiwoom's REST API (runs on the broker's network thread).

The wire (docs/kiwoom-rest.md §1.1): every call is ``POST <path>`` with the headers
``api-id``, ``authorization: Bearer <token>`` and, for the next page, ``cont-yn``/``next-key``;
the answer is JSON with ``return_code``/``return_msg``, and the next page is announced in the
**response headers** ``cont-yn``/``next-key``. The token comes from ``au10001`` with an
``expires_dt`` in KST (``YYYYMMDDHHMMSS``) and is revoked with ``au10002``.

What this client adds to the wire: the token is renewed ``token_margin_s`` before it expires
and re-issued once when Kiwoom says it is invalid (8005, HTTP 200 + ``return_code`` 3); requests
are paced per api-id (queries) and together (orders); a rate-limit refusal (HTTP 429,
``[1700]``) is waited out and sent again until the caller's deadline, since Kiwoom did not
process it. Nothing here logs a key, a secret or a token.
"""

import asyncio
import datetime
import logging
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import httpx

from ..kiwoom.ratelimit import SlidingWindows
from .errors import RATE_LIMITED_CODE, KiwoomRestError, error_of

log = logging.getLogger("engine32.brokers.kiwoom_rest")

KST = datetime.timezone(datetime.timedelta(hours=9))

#: Hosts (Kiwoom's guide; Kiwoom-Securities/Kiwoom-REST-API auth.py).
REST_HOSTS = {"real": "https://api.kiwoom.com", "mock": "https://mockapi.kiwoom.com"}
WS_URLS = {
    "real": "wss://api.kiwoom.com:10000/api/dostk/websocket",
    "mock": "wss://mockapi.kiwoom.com:10000/api/dostk/websocket",
}

TOKEN_PATH = "/oauth2/token"
REVOKE_PATH = "/oauth2/revoke"
ACCOUNT_PATH = "/api/dostk/acnt"
ORDER_PATH = "/api/dostk/ordr"
STOCK_INFO_PATH = "/api/dostk/stkinfo"
CHART_PATH = "/api/dostk/chart"

#: api-id → path: a wrong path is refused with 1504 (hoga-ops kiwoom_rest.py).
PATHS: Dict[str, str] = {
    "au10001": TOKEN_PATH,
    "au10002": REVOKE_PATH,
    "ka00001": ACCOUNT_PATH,
    "kt00018": ACCOUNT_PATH,
    "kt00001": ACCOUNT_PATH,
    "ka10075": ACCOUNT_PATH,
    "ka10076": ACCOUNT_PATH,
    "kt10000": ORDER_PATH,
    "kt10001": ORDER_PATH,
    "kt10002": ORDER_PATH,
    "kt10003": ORDER_PATH,
    "ka10095": STOCK_INFO_PATH,
    "ka10099": STOCK_INFO_PATH,
    "ka10100": STOCK_INFO_PATH,
    "ka10080": CHART_PATH,
    "ka10081": CHART_PATH,
}
ORDER_IDS = frozenset(("kt10000", "kt10001", "kt10002", "kt10003"))


class Credentials(NamedTuple):
    appkey: str
    secretkey: str

    def __repr__(self) -> str:  # never print the keys
        return "Credentials(appkey=***, secretkey=***)"


class Page(NamedTuple):
    body: Dict[str, Any]
    cont_yn: str
    next_key: str


def parse_expires_dt(text: str) -> float:
    """``"20260107083713"`` (KST) → a Unix time; 0 when it cannot be read."""
    try:
        moment = datetime.datetime.strptime(str(text).strip(), "%Y%m%d%H%M%S")
    except ValueError:
        return 0.0
    return moment.replace(tzinfo=KST).timestamp()


class _Bucket:
    """Requests of one kind go out in order, each when its sliding window allows it.

    A rate-limit refusal (1700) means Kiwoom's limit is below ours: the bucket then waits a
    full second (Kiwoom counts per second) and lowers its rate to what Kiwoom let through in
    the last second, so a burst is paced instead of hammering the server again.
    """

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.per_s = per_s
        self.windows = SlidingWindows(self._windows(per_s), clock)
        self.lock = asyncio.Lock()
        self.pause_until = 0.0
        self.refusals_in_a_row = 0
        self._ok: List[float] = []

    @staticmethod
    def _windows(per_s: float) -> Any:
        # N a second as "at most N in any 1 s"; below 1/s as "at most 1 in 1/N s".
        return ((1.0, int(per_s)),) if per_s >= 1 else ((1.0 / per_s, 1),)

    async def take(self) -> None:
        async with self.lock:
            while True:
                wait = max(self.windows.delay(), self.pause_until - self.clock())
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            self.windows.record()

    def succeeded(self) -> None:
        now = self.clock()
        self._ok = [t for t in self._ok if now - t < 1.0] + [now]
        self.refusals_in_a_row = 0

    def refused(self) -> float:
        """Kiwoom said 1700: slow down; returns when the next request may go."""
        now = self.clock()
        passed = len([t for t in self._ok if now - t < 1.0])
        if self.per_s >= 1:
            lower = max(1, passed if passed < self.per_s else int(self.per_s) - 1)
            if lower < self.per_s:
                self.per_s = float(lower)
                self.windows = SlidingWindows(self._windows(self.per_s), self.clock)
        self.refusals_in_a_row += 1
        pause = min(1.0 * (2 ** (self.refusals_in_a_row - 1)), 4.0)
        self.pause_until = max(self.pause_until, now + pause)
        return self.pause_until


class RestClient:
    """One app key's REST session: the token, the pacing, the retries."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        query_per_s: float = 5.0,
        order_per_s: float = 5.0,
        token_margin_s: float = 600.0,
        timeout_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
        transport: Optional[Any] = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.query_per_s = query_per_s
        self.order_per_s = order_per_s
        self.token_margin_s = token_margin_s
        self.timeout_s = timeout_s
        self.wall_clock = wall_clock
        self._transport = transport
        self._http: Optional[httpx.AsyncClient] = None
        self._token = ""
        self._expires_at = 0.0
        self._token_lock: Optional[asyncio.Lock] = None
        self._buckets: Dict[str, _Bucket] = {}
        self.tokens_issued = 0
        self.rate_retries = 0

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        kwargs: Dict[str, Any] = {"base_url": self.base_url, "timeout": self.timeout_s}
        if self._transport is not None:
            kwargs["transport"] = self._transport
        self._http = httpx.AsyncClient(**kwargs)
        self._token_lock = asyncio.Lock()

    async def close(self, revoke: bool = True) -> None:
        if self._http is None:
            return
        if revoke and self._token:
            try:
                await self._post(REVOKE_PATH, "au10002", {
                    "appkey": self._credentials.appkey,
                    "secretkey": self._credentials.secretkey,
                    "token": self._token,
                }, auth=False)  # fmt: skip
                log.info("kiwoom_rest: token revoked (au10002)")
            except Exception as exc:  # noqa: BLE001 - a clean stop goes on regardless
                log.warning("kiwoom_rest: could not revoke the token: %s", exc)
        self._token = ""
        await self._http.aclose()
        self._http = None

    # -- token -----------------------------------------------------------------------------
    @property
    def expires_at(self) -> float:
        return self._expires_at

    def token_due(self) -> bool:
        """True when there is no token or it is within ``token_margin_s`` of ``expires_dt``."""
        if not self._token:
            return True
        return bool(self._expires_at) and self.wall_clock() >= (
            self._expires_at - self.token_margin_s
        )

    async def token(self) -> str:
        """A token that is good now (issued or renewed when due)."""
        assert self._token_lock is not None, "start() first"
        async with self._token_lock:
            if self.token_due():
                await self._issue()
            return self._token

    async def renew(self, stale: str = "") -> str:
        """A new token, unless another caller already replaced ``stale``."""
        assert self._token_lock is not None, "start() first"
        async with self._token_lock:
            if not self._token or self._token == stale or not stale:
                await self._issue()
            return self._token

    async def _issue(self) -> None:
        body = {
            "grant_type": "client_credentials",
            "appkey": self._credentials.appkey,
            "secretkey": self._credentials.secretkey,
        }
        page = await self._post(TOKEN_PATH, "au10001", body, auth=False)
        token = str(page.body.get("token", "") or "")
        if not token:
            raise KiwoomRestError("au10001 gave no token", sent=False)
        self._token = token
        self._expires_at = parse_expires_dt(str(page.body.get("expires_dt", "")))
        self.tokens_issued += 1
        log.info("kiwoom_rest: token issued (au10001), expires %s KST",
                 page.body.get("expires_dt", "?"))  # fmt: skip

    # -- calls -----------------------------------------------------------------------------
    def _bucket(self, api_id: str) -> _Bucket:
        key = "orders" if api_id in ORDER_IDS else api_id
        bucket = self._buckets.get(key)
        if bucket is None:
            per_s = self.order_per_s if api_id in ORDER_IDS else self.query_per_s
            bucket = self._buckets[key] = _Bucket(per_s)
        return bucket

    async def call(
        self,
        api_id: str,
        body: Dict[str, Any],
        deadline: Optional[float] = None,
        cont_yn: str = "",
        next_key: str = "",
    ) -> Page:
        """One call, paced, renewed and retried: the page, or :class:`KiwoomRestError`.

        ``deadline`` (``time.monotonic``) bounds the retries after a rate-limit refusal.
        """
        path = PATHS[api_id]
        bucket = self._bucket(api_id)
        renewed = False
        while True:
            await bucket.take()
            token = await self.token()
            try:
                page = await self._post(path, api_id, body, token=token,
                                        cont_yn=cont_yn, next_key=next_key)  # fmt: skip
            except KiwoomRestError as exc:
                if exc.rate_limited:
                    next_at = bucket.refused()
                    if deadline is not None and next_at > deadline:
                        raise
                    self.rate_retries += 1
                    log.info("kiwoom_rest: %s over Kiwoom's rate limit; sent again in %.1f s "
                             "(now %g a second)", api_id, next_at - time.monotonic(), bucket.per_s)  # fmt: skip
                    continue
                if exc.token_problem and not renewed:
                    renewed = True
                    log.info("kiwoom_rest: %s: token refused (%s); issuing a new one", api_id,
                             exc.code or exc.return_code)  # fmt: skip
                    await self.renew(token)
                    continue
                raise
            bucket.succeeded()
            return page

    async def call_all(
        self, api_id: str, body: Dict[str, Any], list_key: str, max_pages: int = 50
    ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """Every page (``cont-yn``/``next-key`` response headers): the first body and all rows."""
        first: Optional[Dict[str, Any]] = None
        rows: List[Dict[str, Any]] = []
        cont_yn, next_key = "", ""
        for _ in range(max_pages):
            page = await self.call(api_id, body, cont_yn=cont_yn, next_key=next_key)
            if first is None:
                first = page.body
            got = page.body.get(list_key) or []
            if isinstance(got, list):
                rows.extend(r for r in got if isinstance(r, dict))
            if page.cont_yn != "Y" or not page.next_key:
                break
            cont_yn, next_key = "Y", page.next_key
        return first or {}, rows

    async def _post(
        self,
        path: str,
        api_id: str,
        body: Dict[str, Any],
        token: str = "",
        auth: bool = True,
        cont_yn: str = "",
        next_key: str = "",
    ) -> Page:
        assert self._http is not None, "start() first"
        headers = {"Content-Type": "application/json;charset=UTF-8", "api-id": api_id}
        if auth:
            headers["authorization"] = "Bearer " + token
        if cont_yn:
            headers["cont-yn"] = cont_yn
            headers["next-key"] = next_key
        try:
            resp = await self._http.post(path, json=body, headers=headers)
        except httpx.ConnectError as exc:
            raise KiwoomRestError("{}: cannot reach Kiwoom ({})".format(
                api_id, type(exc).__name__), sent=False) from None  # fmt: skip
        except httpx.HTTPError as exc:
            # The request may have reached Kiwoom: never send it again blindly.
            raise KiwoomRestError("{}: no answer from Kiwoom ({})".format(
                api_id, type(exc).__name__), sent=True) from None  # fmt: skip
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if resp.status_code == 429:
                data = {"return_code": 5, "return_msg": "[{}:]".format(RATE_LIMITED_CODE)}
            else:
                raise KiwoomRestError("{}: HTTP {} without a JSON answer".format(
                    api_id, resp.status_code), status=resp.status_code)  # fmt: skip
        error = error_of(resp.status_code, data, api_id)
        if error is not None:
            raise error
        return Page(data, resp.headers.get("cont-yn", "N").strip(),
                    resp.headers.get("next-key", "").strip())  # fmt: skip
