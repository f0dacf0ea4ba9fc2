"""The fake Kiwoom REST + WebSocket server, proven against code we did not write.

``kiwoom_client`` 0.4.0 (PyPI, MIT, a dev-only dependency) is an independent client with
live-verified fixes (the 8005-as-HTTP-200 refresh, paging from the response headers). If the
fake spoke a dialect of its own, this client would read it wrong: here it logs in, pages,
orders, renews a refused token, waits out a 429 and speaks LOGIN/REG/PING/REAL on the socket.
"""

import asyncio
import datetime
from typing import Any, Dict, Iterator, List

import pytest

kiwoom_client = pytest.importorskip("kiwoom_client")

from kiwoom_client import AsyncKiwoomAPI, KiwoomAPI, KiwoomAPIError, KiwoomWebSocket  # noqa: E402

from tests.fakes.kiwoom_rest import KST, FakeKiwoomRest  # noqa: E402

APPKEY = "fake-appkey-0123456789"
SECRET = "fake-secretkey-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeKiwoomRest]:
    with FakeKiwoomRest(page_size=2) as server:
        yield server


def _api(fake: FakeKiwoomRest, **kwargs: Any) -> KiwoomAPI:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry_backoff", 0.05)
    return KiwoomAPI(APPKEY, SECRET, base_url=fake.base_url, **kwargs)


def test_token_account_and_pages_as_kiwoom_client_reads_them(fake: FakeKiwoomRest) -> None:
    with _api(fake) as api:
        issued = api.login()
        assert issued["token_type"].lower() == "bearer" and len(issued["token"]) == 86
        # kiwoom_client parsed expires_dt (KST YYYYMMDDHHMMSS) into an expiry in the future
        assert api._auth.expires_at is not None and api._auth.expires_at > fake.now() + 3600
        # ka00001 through the library's own module, path and api-id
        account = api._client.request("/api/dostk/acnt", "ka00001", {})
        assert account["acctNo"] == fake.account
        # three holdings, two a page: the library's request_all follows the response headers
        rows = api._client.request_all("/api/dostk/acnt", "kt00018",
                                       {"qry_tp": "1", "dmst_stex_tp": "KRX"},
                                       data_key="acnt_evlt_remn_indv_tot")  # fmt: skip
        assert sorted(r["stk_cd"] for r in rows) == ["A000660", "A005930", "A035420"]
        pages = [c for c in fake.calls if c["api_id"] == "kt00018"]
        assert [p["cont_yn"] for p in pages] == ["N", "Y"] and pages[1]["next_key"] == "kt00018-2"
        assert rows[0]["rmnd_qty"].startswith("0000") and len(rows[0]["rmnd_qty"]) == 15


def test_orders_through_kiwoom_clients_order_module(fake: FakeKiwoomRest) -> None:
    with _api(fake) as api:
        placed = api.order.buy_order(dmst_stex_tp="KRX", stk_cd="005930", ord_qty="2",
                                     ord_uv="72000", trde_tp="0", cond_uv="")  # fmt: skip
        assert placed["return_code"] == 0 and len(placed["ord_no"]) == 7
        # the README's "00" is refused by the fake (Kiwoom's guide: 0 보통, 3 시장가)
        with pytest.raises(KiwoomAPIError):
            api.order.buy_order(dmst_stex_tp="KRX", stk_cd="005930", ord_qty="1",
                                ord_uv="72000", trde_tp="00")  # fmt: skip
        market = api.order.sell_order(dmst_stex_tp="KRX", stk_cd="005930", ord_qty="1",
                                      ord_uv="", trde_tp="3")  # fmt: skip
        assert market["return_code"] == 0
        assert fake.calls[-1]["path"] == "/api/dostk/ordr"


def test_a_refused_token_is_renewed_by_kiwoom_client_as_on_the_real_server(
    fake: FakeKiwoomRest,
) -> None:
    with _api(fake) as api:
        api.login()
        fake.expire_tokens()  # Kiwoom answers HTTP 200 + return_code 3 + [8005:…]
        account = api._client.request("/api/dostk/acnt", "ka00001", {})
        assert account["acctNo"] == fake.account
        answers = [c["return_code"] for c in fake.calls if c["api_id"] == "ka00001"]
        assert answers == [3, 0]  # refused once, then the re-issued token worked


def test_a_429_is_retried_by_kiwoom_client(fake: FakeKiwoomRest) -> None:
    fake.rate_limits["ka00001"] = 1
    with _api(fake, max_retries=5, retry_backoff=0.3) as api:
        for _ in range(3):
            assert api._client.request("/api/dostk/acnt", "ka00001", {})["acctNo"]
    statuses = [c["status"] for c in fake.calls if c["api_id"] == "ka00001"]
    assert 429 in statuses and statuses.count(200) == 3
    assert fake.rate_refusals >= 1


def test_websocket_login_reg_ping_and_real_with_kiwoom_clients_socket(fake: FakeKiwoomRest) -> None:
    fake.ping_interval_s = 0.1
    with _api(fake) as api:
        token = api.login()["token"]

    async def run() -> List[Dict[str, Any]]:
        got: List[Dict[str, Any]] = []
        ws = KiwoomWebSocket(token, ws_url=fake.ws_url)
        ws.on("00", got.append)
        ws.on("04", got.append)
        await ws.connect()  # LOGIN answered with return_code 0
        await ws.subscribe(["00", "04"], [""])
        listener = asyncio.ensure_future(ws.listen())
        async with AsyncKiwoomAPI(APPKEY, SECRET, base_url=fake.base_url, rate_limit=None) as aapi:
            await aapi.order.buy_order(dmst_stex_tp="KRX", stk_cd="005930", ord_qty="3",
                                       ord_uv="73000", trde_tp="0", cond_uv="")  # fmt: skip
        for _ in range(100):
            if len([r for r in got if r["type"] == "04"]) >= 1:
                break
            await asyncio.sleep(0.05)
        await ws.disconnect()
        listener.cancel()
        return got

    rows = asyncio.run(run())
    kinds = [(r["type"], r["values"].get("913", "")) for r in rows]
    assert kinds[:2] == [("00", "접수"), ("00", "체결")] and ("04", "") in kinds
    fill = rows[1]["values"]
    assert fill["911"] == "3" and fill["902"] == "0" and fill["9203"] == rows[0]["values"]["9203"]
    # the library echoed the server's PINGs verbatim (else the fake would have closed)
    assert fake.logins == 1 and fake.kicks == 0


def test_chart_pages_as_kiwoom_clients_chart_module_reads_them() -> None:
    """ka10081/ka10080 through kiwoom_client's own ``chart`` endpoints and ``request_all``:
    the fake's chart answers (keys, header paging, dates kept as text, signed minute prices)
    read as the library reads Kiwoom's."""
    from kiwoom_client.parsing import extract_records, normalize

    now = datetime.datetime(2026, 11, 25, 10, 30, 20, tzinfo=KST)  # a Wednesday, mid-session
    with FakeKiwoomRest(chart_days=700, chart_minute_days=3, chart_now=now) as server, _api(
        server
    ) as api:
        daily = api.chart.stock_daily_chart(stk_cd="005930", base_dt="20991231", upd_stkpc_tp="1")
        key, rows = extract_records(daily)
        assert key == "stk_dt_pole_chart_qry" and len(rows) == 600  # a full first page
        # every page, through the response headers, as the library follows them
        every = api._client.request_all("/api/dostk/chart", "ka10081",
                                         {"stk_cd": "005930", "base_dt": "20991231",
                                          "upd_stkpc_tp": "1"},
                                         data_key="stk_dt_pole_chart_qry")  # fmt: skip
        assert len(every) == 700
        dates = [r["dt"] for r in normalize(every)]
        assert all(isinstance(d, str) and len(d) == 8 for d in dates)  # dt stays text
        assert dates == sorted(dates, reverse=True)  # newest first
        closes = [r["cur_prc"] for r in normalize(every)]
        assert all(isinstance(c, int) and c > 0 for c in closes)  # unsigned daily prices
        pages = [c for c in server.calls if c["api_id"] == "ka10081"][1:]
        assert [(p["cont_yn"], p["next_key"]) for p in pages] == [("N", ""), ("Y", "ka10081-600")]

        minute = api.chart.stock_minute_chart(stk_cd="005930", tic_scope="1", upd_stkpc_tp="1")
        key, rows = extract_records(minute)
        assert key == "stk_min_pole_chart_qry" and 0 < len(rows) <= 900
        parsed = normalize(rows)
        assert all(isinstance(r["cntr_tm"], str) and len(r["cntr_tm"]) == 14 for r in parsed)
        # signed minute prices: the library reads "-71900" as -71900 (a fall, price 71900)
        falls = [(raw, p) for raw, p in zip(rows, parsed) if raw["cur_prc"].startswith("-")]
        rises = [(raw, p) for raw, p in zip(rows, parsed) if raw["cur_prc"].startswith("+")]
        assert falls and rises
        assert all(p["cur_prc"] == -int(raw["cur_prc"][1:]) for raw, p in falls)
        assert all(p["cur_prc"] == int(raw["cur_prc"][1:]) for raw, p in rises)
