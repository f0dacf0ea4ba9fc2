"""Kiwoom's real-time WebSocket: one session per app key, kept alive (network thread).

The protocol (docs/kiwoom-rest.md §2; Kiwoom's guide sample client, Kiwoom-REST-API
``ws_client.py``, kiwoom_client ``websocket.py``, hoga-ops ``kiwoom_ws_client.py``):

1. connect without auth headers and without protocol pings (Kiwoom's helper and hoga-ops pass
   ``ping_interval=None``; the server sends its own ``PING`` frames);
2. ``{"trnm":"LOGIN","token":…}`` first; skip PINGs while waiting for the answer;
3. ``REG`` with ``grp_no``/``refresh``/``data:[{item, type}]``, one in flight, at most about
   5 a second (rc 105110 past that), at most 200 items per connection (105115/105118);
   account streams ``00``/``04`` with ``item [""]``;
4. ``PING`` frames are sent back verbatim;
5. ``REAL`` frames carry rows ``{type, item, values{fid: text}}``;
6. ``SYSTEM R10001``: another session took the app key; the server closes with (1000, "Bye").

The server forgets every registration when a connection ends, so on a reconnect everything is
registered again. No frame at all for ``idle_s`` is a dead session (hoga-ops saw TCP open and
no ticks for 2 h 20 min). After a kick the next try waits ``kick_retry_s``: never a storm.
"""

import asyncio
import json
import logging
import random
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from ..kiwoom.ratelimit import SlidingWindows
from .errors import TOKEN_CODES, KiwoomRestError, describe, detail_code

log = logging.getLogger("engine32.brokers.kiwoom_rest")

ACCOUNT_GROUP = "1"
QUOTE_GROUP = "2"
ACCOUNT_TYPES = ("00", "04")
QUOTE_TYPE = "0B"
CONDITION_TYPE = "02"
#: Order books (주식호가잔량, the OCX's FIDs 41-80, 121/125, 21): issue 13.
BOOK_GROUP = "3"
BOOK_TYPE = "0D"
#: Items per connection (hoga-ops, live); the account's "" item takes one slot.
MAX_ITEMS = 200
#: Items per REG frame.
REG_CHUNK = 100
RC_REG_RATE = 105110
KICK_CODE = "R10001"

#: What the session tells its owner: ("up", ""), ("down", words), ("kicked", words),
#: ("failed", words) for a problem that needs the user (bad key, IP not registered).
StateCallback = Callable[[str, str], None]
RowCallback = Callable[[Dict[str, Any]], None]


class LoginRefused(Exception):
    def __init__(self, words: str, code: int) -> None:
        super().__init__(words)
        self.code = code


class WsSession:
    """Keeps one LOGINed, fully registered WebSocket while ``run()`` runs."""

    def __init__(
        self,
        url: str,
        token: Callable[[], Awaitable[str]],
        renew: Callable[[str], Awaitable[str]],
        on_row: RowCallback,
        on_state: StateCallback,
        on_condition_list: Optional[Callable[[List[Any]], None]] = None,
        idle_s: float = 300.0,
        kick_retry_s: float = 60.0,
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 60.0,
        reg_per_s: int = 4,
        ack_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self._token = token
        self._renew = renew
        self._on_row = on_row
        self._on_state = on_state
        self._on_condition_list = on_condition_list
        self.idle_s = idle_s
        self.kick_retry_s = kick_retry_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.ack_timeout_s = ack_timeout_s
        self._reg_windows = SlidingWindows(((1.0, max(1, reg_per_s)),))
        self._codes: List[str] = []
        self._book_codes: List[str] = []
        self._condition = ""
        self._condition_seq = ""
        self._ws: Any = None
        self._registered = False
        self._registered_once = False
        self._kick_words = ""
        self._acks: Dict[str, "asyncio.Future[Dict[str, Any]]"] = {}
        self._send_lock: Optional[asyncio.Lock] = None
        self._stopping = False
        self.connections = 0
        self.kicks = 0
        self.pings = 0

    # -- what is wanted (callable from the loop at any time) -------------------------------
    @property
    def connected(self) -> bool:
        """LOGINed and registered."""
        return self._registered

    @property
    def codes(self) -> List[str]:
        return list(self._codes)

    async def subscribe(self, codes: Sequence[str]) -> List[str]:
        """Stream 0B for these codes too; returns the codes refused for the 200-item cap."""
        room = MAX_ITEMS - 1 - len(self._codes)
        new = [c for c in dict.fromkeys(codes) if c not in self._codes]
        taken, refused = new[: max(room, 0)], new[max(room, 0) :]
        self._codes.extend(taken)
        if taken and self._registered:
            await self._reg("REG", QUOTE_GROUP, taken, [QUOTE_TYPE])
        return refused

    async def subscribe_book(self, codes: Sequence[str]) -> List[str]:
        """Stream 0D (order books) for these codes too, within the same 200-item cap as 0B
        (an item is a code per type); returns the codes refused for the cap."""
        room = MAX_ITEMS - 1 - len(self._codes) - len(self._book_codes)
        new = [c for c in dict.fromkeys(codes) if c not in self._book_codes]
        taken, refused = new[: max(room, 0)], new[max(room, 0) :]
        self._book_codes.extend(taken)
        if taken and self._registered:
            await self._reg("REG", BOOK_GROUP, taken, [BOOK_TYPE])
        return refused

    async def unsubscribe_book(self, codes: Sequence[str]) -> None:
        gone = [c for c in codes if c in self._book_codes]
        self._book_codes = [c for c in self._book_codes if c not in gone]
        if gone and self._registered:
            await self._reg("REMOVE", BOOK_GROUP, gone, [BOOK_TYPE])

    async def unsubscribe(self, codes: Sequence[str]) -> None:
        gone = [c for c in codes if c in self._codes]
        self._codes = [c for c in self._codes if c not in gone]
        if gone and self._registered:
            await self._reg("REMOVE", QUOTE_GROUP, gone, [QUOTE_TYPE])

    def want_condition(self, name: str) -> None:
        self._condition = name

    # -- the session loop ------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping = True
        ws = self._ws
        if ws is not None:
            asyncio.ensure_future(ws.close())

    async def run(self) -> None:
        """Connect, LOGIN, register, read; on a drop wait (backoff) and do it all again."""
        self._send_lock = asyncio.Lock()
        failures = 0
        while not self._stopping:
            words, kicked = await self._one_session()
            if self._stopping:
                break
            if self._registered_once:
                failures = 0
            if kicked:
                self.kicks += 1
                self._on_state("kicked", words)
                delay = float(self.kick_retry_s)
            else:
                self._on_state("down", words)
                delay = min(self.reconnect_base_s * (2**failures), self.reconnect_max_s)
                delay *= random.uniform(0.8, 1.2)
                failures += 1
            log.warning("kiwoom_rest websocket: %s; trying again in %.1f s", words, delay)
            await asyncio.sleep(delay)

    async def _one_session(self) -> Tuple[str, bool]:
        self._registered = False
        self._registered_once = False
        self._kick_words = ""
        try:
            async with connect(self.url, ping_interval=None, open_timeout=10,
                               close_timeout=2, max_size=2**22) as ws:  # fmt: skip
                self._ws = ws
                self.connections += 1
                try:
                    await self._login(ws)
                except KiwoomRestError as exc:  # the token could not be had
                    if exc.fatal:
                        self._on_state("failed", str(exc))
                    return str(exc), False
                reader = asyncio.ensure_future(self._read(ws))
                try:
                    await self._register_all()
                    self._registered = self._registered_once = True
                    self._on_state("up", "")
                    if self._condition:
                        await self._start_condition()
                    words = await reader
                finally:
                    reader.cancel()
                    self._fail_acks()
        except LoginRefused as exc:
            words = str(exc)
            if (
                exc.code
                and exc.code not in TOKEN_CODES
                and exc.code in (8001, 8002, 8010, 8030, 8050)
            ):
                self._on_state("failed", words)
        except ConnectionClosed as exc:
            words = self._closed_words(exc)
        except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
            words = "WebSocket connection failed ({})".format(type(exc).__name__)
        finally:
            self._ws = None
            self._registered = False
        return words, bool(self._kick_words)

    def _closed_words(self, exc: ConnectionClosed) -> str:
        if self._kick_words:
            return self._kick_words
        rcvd = getattr(exc, "rcvd", None)
        if rcvd is not None:
            return "WebSocket closed by Kiwoom ({} {})".format(rcvd.code, rcvd.reason or "")
        return "WebSocket connection lost"

    async def _login(self, ws: Any) -> None:
        token = await self._token()
        for attempt in (1, 2):
            await ws.send(json.dumps({"trnm": "LOGIN", "token": token}))
            reply = await self._next_non_ping(ws)
            rc = reply.get("return_code", 0)
            if str(rc).strip() in ("0", ""):
                return
            msg = str(reply.get("return_msg", ""))
            code = detail_code(rc, msg)
            if attempt == 1 and (code in TOKEN_CODES or str(rc).strip() == "3"):
                token = await self._renew(token)
                continue
            raise LoginRefused("WebSocket LOGIN refused: " + describe(code, msg), code)

    async def _next_non_ping(self, ws: Any) -> Dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(ws.recv(), self.ack_timeout_s * 2)
            frame = _decode(raw)
            if frame.get("trnm") == "PING":
                self.pings += 1
                await ws.send(raw if isinstance(raw, str) else raw.decode())
                continue
            if frame.get("trnm") == "SYSTEM":
                self._system(frame)
                continue
            return frame

    async def _read(self, ws: Any) -> str:
        """Frames until the connection ends: the words for why it ended."""
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.idle_s)
            except asyncio.TimeoutError:
                await ws.close(1000, "idle")
                return "no frame from Kiwoom for {:g} s: the session counts as dead".format(
                    self.idle_s
                )
            except ConnectionClosed as exc:
                return self._closed_words(exc)
            frame = _decode(raw)
            trnm = frame.get("trnm")
            if trnm == "PING":
                self.pings += 1
                try:
                    await ws.send(raw if isinstance(raw, str) else raw.decode())
                except ConnectionClosed as exc:
                    return self._closed_words(exc)
            elif trnm == "REAL":
                for row in frame.get("data") or []:
                    if isinstance(row, dict):
                        self._on_row(row)
            elif trnm == "SYSTEM":
                self._system(frame)
            elif trnm:
                future = self._acks.pop(str(trnm), None)
                if future is not None and not future.done():
                    future.set_result(frame)

    def _system(self, frame: Dict[str, Any]) -> None:
        code = str(frame.get("code", ""))
        message = str(frame.get("message", "")).strip()
        if code == KICK_CODE:
            self._kick_words = (
                "another session logged in with the same app key (Kiwoom allows one "
                "WebSocket per app key; {}): is a second engine running? Retrying in {:g} s".format(
                    message or code, self.kick_retry_s
                )
            )
        log.warning("kiwoom_rest websocket: SYSTEM %s %s", code, message)

    def _fail_acks(self) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_exception(ConnectionError("WebSocket closed"))
        self._acks.clear()

    # -- requests with an answer -----------------------------------------------------------
    async def request(self, frame: Dict[str, Any]) -> Dict[str, Any]:
        """Send one frame and wait for the answer with the same ``trnm`` (one at a time)."""
        assert self._send_lock is not None
        async with self._send_lock:
            ws = self._ws
            if ws is None:
                raise ConnectionError("WebSocket not connected")
            trnm = str(frame["trnm"])
            future: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
            self._acks[trnm] = future
            await ws.send(json.dumps(frame, ensure_ascii=False))
            return await asyncio.wait_for(future, self.ack_timeout_s)

    async def _reg(self, trnm: str, group: str, items: Sequence[str], types: Sequence[str]) -> None:
        for start in range(0, max(len(items), 1), REG_CHUNK):
            chunk = list(items[start : start + REG_CHUNK])
            frame = {"trnm": trnm, "grp_no": group, "refresh": "1",
                     "data": [{"item": chunk, "type": list(types)}]}  # fmt: skip
            for _attempt in range(5):
                wait = self._reg_windows.delay()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._reg_windows.record()
                reply = await self.request(frame)
                rc = _int(reply.get("return_code", 0))
                if rc == 0:
                    break
                if rc == RC_REG_RATE:
                    await asyncio.sleep(1.0)
                    continue
                log.warning("kiwoom_rest websocket: %s %s refused: %s %s", trnm, types, rc,
                            reply.get("return_msg", ""))  # fmt: skip
                break

    async def _register_all(self) -> None:
        await self._reg("REG", ACCOUNT_GROUP, [""], list(ACCOUNT_TYPES))
        if self._codes:
            await self._reg("REG", QUOTE_GROUP, list(self._codes), [QUOTE_TYPE])
        if self._book_codes:
            await self._reg("REG", BOOK_GROUP, list(self._book_codes), [BOOK_TYPE])

    async def _start_condition(self) -> None:
        """``CNSRLST`` first (Kiwoom refuses CNSRREQ without it), then real-time ``CNSRREQ``."""
        try:
            listing = await self.request({"trnm": "CNSRLST"})
            pairs = listing.get("data") or []
            if self._on_condition_list is not None:
                self._on_condition_list(pairs)
            seq = ""
            for pair in pairs:
                if (
                    isinstance(pair, (list, tuple))
                    and len(pair) >= 2
                    and str(pair[1]).strip() == self._condition
                ):
                    seq = str(pair[0]).strip()
            if not seq:
                log.warning("condition search: no condition named %r", self._condition)
                return
            self._condition_seq = seq
            reply = await self.request({"trnm": "CNSRREQ", "seq": seq, "search_type": "1",
                                        "stex_tp": "K"})  # fmt: skip
            if _int(reply.get("return_code", 0)) != 0:
                log.warning("condition search refused: %s", reply.get("return_msg", ""))
        except (ConnectionError, asyncio.TimeoutError) as exc:
            log.warning("condition search could not start: %s", exc)


def _decode(raw: Any) -> Dict[str, Any]:
    try:
        frame = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return frame if isinstance(frame, dict) else {}


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        return -1
