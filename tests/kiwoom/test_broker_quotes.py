"""Real-time registration across screens and 주식체결 quotes through the broker."""

from .helpers import wait_until


def test_subscribing_past_100_codes_spreads_them_over_screens(make_rig, fake) -> None:
    rig = make_rig()
    rig.connect()
    codes = ["{:06d}".format(n) for n in range(100000, 100250)]
    rig.broker.subscribe(codes)
    regs = fake.calls_of("SetRealReg")
    assert [(screen, len(c.split(";")), opt) for screen, c, _fids, opt in regs] == [
        ("5000", 100, "0"),
        ("5001", 100, "0"),
        ("5002", 50, "0"),
    ]
    assert all(fids.split(";")[:2] == ["20", "10"] for _s, _c, fids, _o in regs)
    assert sorted(fake.registered()) == codes
    rig.broker.subscribe(codes[:10] + ["005930"])  # known codes are not sent again
    assert (
        fake.calls_of("SetRealReg")[-1][:2] == ("5002", "005930")
        and fake.calls_of("SetRealReg")[-1][3] == "1"
    )
    rig.broker.unsubscribe(codes[200:])
    assert len(fake.calls_of("SetRealRemove")) == 50
    assert "5002" in fake.screens and fake.screens["5002"] == ["005930"]
    assert sorted(fake.registered()) == sorted(codes[:200] + ["005930"])


def test_subscribing_before_login_registers_on_login(make_rig, fake) -> None:
    rig = make_rig()
    rig.broker.subscribe(["005930", "000660"])
    assert fake.calls_of("SetRealReg") == []
    rig.connect()
    assert sorted(fake.registered()) == ["000660", "005930"]
    assert rig.rec.names["005930"] == "삼성전자" and rig.rec.names["000660"] == "SK하이닉스"


def test_quotes_from_signed_strings(make_rig, fake) -> None:
    rig = make_rig()
    rig.connect()
    rig.broker.subscribe(["005930"])
    fake.trade("005930", 68900, -30)  # below the previous close (70,000), sell-initiated
    fake.trade("005930", 71000, 12)
    wait_until(lambda: len(rig.rec.quotes) == 2, 5, "two quotes")
    down, up = rig.rec.quotes
    assert (down.code, down.price, down.change, down.trade_qty, down.change_pct) == (
        "005930",
        68900,
        -1100,
        -30,
        -1.57,
    )
    assert (down.low, down.high, down.open, down.volume) == (68900, 70000, 70000, 30)
    assert (up.price, up.change, up.trade_qty, up.volume, up.bid, up.ask) == (
        71000,
        1000,
        12,
        42,
        71000,
        71100,
    )
    assert len(up.time) == 6 and up.time.isdigit()


def test_quotes_nobody_asked_for_are_dropped(make_rig, fake) -> None:
    rig = make_rig()
    rig.connect()
    rig.broker.subscribe(["005930"])
    fake.trade("000660", 181000, 5, unasked=True)  # registered by a TR, not by us
    fake.trade("005930", 70100, 5)
    wait_until(lambda: rig.rec.quotes, 5, "a quote")
    rig.settle()
    assert [q.code for q in rig.rec.quotes] == ["005930"]
    assert rig.broker.unasked_quotes == 1
    rig.broker.unsubscribe(["005930"])
    fake.trade("005930", 70200, 5, unasked=True)
    rig.settle()
    assert len(rig.rec.quotes) == 1


def test_master_list_reads_both_markets_through_the_control_in_chunks(qapp, make_rig):
    """GetCodeListByMarket("0") and ("10") (';'-separated, a trailing ';'), then
    GetMasterCodeName per code, a chunk per turn of the Qt loop; refused before login."""
    from engine32.brokers.kiwoom import broker as ocx
    from tests.fakes.kiwoom_control import DEFAULT_STOCKS, FakeKiwoomControl

    stocks = dict(DEFAULT_STOCKS)
    stocks.update({"086520": ("에코프로", 90000), "247540": ("에코프로비엠", 150000)})
    for i in range(700):  # more than two chunks
        stocks["9{:05d}".format(i)] = ("종목{}".format(i), 1000)
    control = FakeKiwoomControl(stocks=stocks)
    rig = make_rig(control=control)
    before = rig.call(rig.broker.master_list)
    assert not before.ok and before.error_code == "NOT_READY"
    rig.connect()
    assert control.dynamicCall("GetCodeListByMarket(QString)", "10") == "086520;247540;"
    calls = len(control.calls)
    answers = []
    rig.broker.master_list(answers.append)
    # nothing named in the call itself: the names are read on later turns of the Qt loop
    assert not answers
    assert not [c for c in control.calls[calls:] if c[0] == "GetMasterCodeName"]
    wait_until(lambda: answers, 10.0, "the master list")
    result = answers[0]
    assert result.ok, result
    listings = result.value["listings"]
    assert len(listings) == len(stocks)
    assert listings["005930"].name == "삼성전자" and listings["005930"].market == "KOSPI"
    assert listings["086520"] == ocx.Listing("에코프로", "KOSDAQ", None)
    asked = [c for c in control.calls[calls:] if c[0] == "GetCodeListByMarket"]
    assert [c[1] for c in asked] == [("0",), ("10",)]
    assert len(stocks) > 2 * ocx.MASTER_CHUNK
