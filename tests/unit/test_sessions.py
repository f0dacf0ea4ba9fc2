"""The session model of both venues: every boundary, weekends, holidays, what each phase takes."""

import datetime

import pytest

from core.protocol import krx, sessions
from core.protocol.sessions import KRX, LIMIT, MARKET, NXT, SOR

DAY = datetime.date(2026, 12, 2)  # a Wednesday, a trading day


def at(hhmmss: str, day: datetime.date = DAY) -> datetime.datetime:
    parts = [int(p) for p in hhmmss.split(":")] + [0]
    return datetime.datetime(day.year, day.month, day.day, parts[0], parts[1], parts[2],
                             tzinfo=krx.KST)  # fmt: skip


def minus_1s(hhmmss: str) -> str:
    t = at(hhmmss) - datetime.timedelta(seconds=1)
    return t.strftime("%H:%M:%S")


# Every boundary of the day: (time, KRX phase, NXT phase) at that second.
BOUNDARIES = [
    ("00:00", "closed", "closed"),
    ("08:00", "closed", "pre_market"),
    ("08:30", "pre_open", "pre_market"),
    ("08:50", "pre_open", "paused"),
    ("09:00", "continuous", "paused"),
    ("09:00:30", "continuous", "main"),
    ("15:20", "closing_auction", "paused"),
    ("15:30", "post_close_wait", "after_auction"),
    ("15:40", "post_close_price", "after_market"),
    ("16:00", "after_hours_single", "after_market"),
    ("18:00", "closed", "after_market"),
    ("20:00", "closed", "closed"),
    ("23:59:59", "closed", "closed"),
]


@pytest.mark.parametrize("hhmmss,krx_phase,nxt_phase", BOUNDARIES)
def test_every_boundary_of_both_venues(hhmmss, krx_phase, nxt_phase) -> None:
    assert sessions.phase_at(KRX, at(hhmmss)).name == krx_phase
    assert sessions.phase_at(NXT, at(hhmmss)).name == nxt_phase


@pytest.mark.parametrize("i", range(1, len(BOUNDARIES)))
def test_one_second_before_each_boundary_is_still_the_previous_phase(i) -> None:
    hhmmss = BOUNDARIES[i][0]
    _, krx_before, nxt_before = BOUNDARIES[i - 1]
    before = at(minus_1s(hhmmss))
    assert sessions.phase_at(KRX, before).name == krx_before
    assert sessions.phase_at(NXT, before).name == nxt_before


def test_any_timezone_is_read_as_kst_and_naive_times_are_refused() -> None:
    utc = datetime.datetime(2026, 12, 2, 8, 30, tzinfo=datetime.timezone.utc)  # 17:30 KST
    assert sessions.phase_at(KRX, utc).name == "after_hours_single"
    assert sessions.phase_at(NXT, utc).name == "after_market"
    with pytest.raises(ValueError, match="timezone"):
        sessions.phase_at(KRX, datetime.datetime(2026, 12, 2, 10, 0))


# What each phase accepts: (time, venue, kind, accepted?)
ACCEPTS = [
    ("08:10", NXT, LIMIT, True),
    ("08:10", NXT, MARKET, False),  # NXT pre-market: limit only
    ("08:10", KRX, LIMIT, False),  # KRX not open yet
    ("08:40", KRX, MARKET, True),  # the opening auction takes market orders
    ("08:55", NXT, LIMIT, False),  # NXT paused
    ("10:00", KRX, MARKET, True),
    ("10:00", NXT, MARKET, True),  # NXT main market takes market orders
    ("15:25", KRX, MARKET, True),  # closing auction
    ("15:25", NXT, LIMIT, False),  # NXT paused for the KRX close
    ("15:35", KRX, LIMIT, True),  # after-hours close orders are taken from 15:30
    ("15:35", KRX, MARKET, False),
    ("15:35", NXT, LIMIT, True),  # the after-market's opening auction
    ("15:50", KRX, LIMIT, True),
    ("17:30", KRX, LIMIT, True),  # 시간외 단일가
    ("17:30", KRX, MARKET, False),  # single price: limit only
    ("17:30", NXT, LIMIT, True),
    ("17:30", NXT, MARKET, False),  # NXT after-market: limit only
    ("19:00", KRX, LIMIT, False),
    ("19:00", NXT, LIMIT, True),
    ("20:00", NXT, LIMIT, False),
]


@pytest.mark.parametrize("hhmm,venue,kind,ok", ACCEPTS)
def test_what_each_phase_accepts(hhmm, venue, kind, ok) -> None:
    reason = sessions.check_order(venue, kind, at(hhmm))
    assert (reason == "") is ok, reason


def test_reasons_are_in_words() -> None:
    assert sessions.check_order(NXT, MARKET, at("17:30")) == (
        "NXT after-market accepts limit orders only"
    )
    assert sessions.check_order(KRX, MARKET, at("17:30")) == (
        "KRX after-hours single price accepts limit orders only, within ±10% of today's close"
    )
    closed = sessions.check_order(KRX, LIMIT, at("19:00"))
    assert closed == "KRX is closed at 19:00 KST; it takes orders again at 2026-12-03 08:30 KST"
    paused = sessions.check_order(NXT, LIMIT, at("08:55"))
    assert paused.startswith("NXT is paused before the main market (08:50-09:00:30)")


def test_sor_takes_whichever_venue_accepts_and_routes_there() -> None:
    assert sessions.check_order(SOR, LIMIT, at("19:00")) == ""
    assert sessions.route(SOR, LIMIT, at("19:00")) == NXT
    assert sessions.route(SOR, LIMIT, at("10:00")) == KRX
    assert sessions.check_order(SOR, LIMIT, at("19:00"), nxt_eligible=False).startswith(
        "KRX is closed"
    )
    assert sessions.check_order(SOR, LIMIT, at("21:00")).startswith("SOR has no venue")
    assert "not in Nextrade" in sessions.check_order(NXT, LIMIT, at("10:00"), nxt_eligible=False)
    assert sessions.check_order("NYSE", LIMIT, at("10:00")).startswith("venue must be")


def test_default_venue_is_the_open_one() -> None:
    assert sessions.default_venue(at("10:00")) == KRX
    assert sessions.default_venue(at("08:10")) == NXT
    assert sessions.default_venue(at("19:00")) == NXT
    assert sessions.default_venue(at("19:00"), nxt_eligible=False) == KRX
    assert sessions.default_venue(at("21:00")) == KRX


# -- the calendar ---------------------------------------------------------------------------

HOLIDAYS_2026_2027 = [
    ("2026-01-01", "신정"),
    ("2026-02-16", "설날"),
    ("2026-02-17", "설날"),
    ("2026-02-18", "설날"),
    ("2026-03-02", "삼일절 대체"),  # 3/1 is a Sunday: substitute holiday
    ("2026-05-01", "노동절"),
    ("2026-05-05", "어린이날"),
    ("2026-05-25", "부처님오신날 대체"),  # 5/24 is a Sunday
    ("2026-06-03", "지방선거"),  # election day
    ("2026-07-17", "제헌절"),  # a public holiday again from 2026
    ("2026-08-17", "광복절 대체"),
    ("2026-09-24", "추석"),
    ("2026-09-25", "추석"),
    ("2026-10-05", "개천절 대체"),
    ("2026-10-09", "한글날"),
    ("2026-12-25", "성탄절"),
    ("2026-12-31", "연말휴장"),  # year-end closure
    ("2027-01-01", "신정"),
    ("2027-02-08", "설날"),
    ("2027-02-09", "설날 대체"),
    ("2027-03-01", "삼일절"),
    ("2027-05-05", "어린이날"),
    ("2027-05-13", "부처님오신날"),
    ("2027-07-19", "제헌절 대체"),
    ("2027-08-16", "광복절 대체"),
    ("2027-09-14", "추석"),
    ("2027-09-15", "추석"),
    ("2027-09-16", "추석"),
    ("2027-10-04", "개천절 대체"),
    ("2027-10-11", "한글날 대체"),
    ("2027-12-27", "성탄절 대체"),
    ("2027-12-31", "연말휴장"),
]


@pytest.mark.parametrize("iso,words", HOLIDAYS_2026_2027)
def test_holidays_close_both_venues_and_say_why(iso, words) -> None:
    day = datetime.date.fromisoformat(iso)
    name = sessions.holiday_name(day)
    for word in words.split():
        assert word in name.replace(" ", "") or word in name, (iso, name)
    for hhmm in ("08:10", "10:00", "17:30"):
        for venue in (KRX, NXT):
            phase = sessions.phase_at(venue, at(hhmm, day))
            assert phase.name == "closed" and phase.ko == "휴장: " + name
    assert sessions.status_text(at("10:00", day)) == "휴장: " + name
    assert "휴장" in sessions.check_order(NXT, LIMIT, at("10:00", day))


def test_no_other_weekday_of_2026_and_2027_is_a_holiday() -> None:
    listed = {datetime.date.fromisoformat(iso) for iso, _ in HOLIDAYS_2026_2027}
    day = datetime.date(2026, 1, 1)
    extra = []
    while day.year < 2028:
        if day.weekday() < 5 and sessions.holiday_name(day) and day not in listed:
            extra.append((day.isoformat(), sessions.holiday_name(day)))
        day += datetime.timedelta(days=1)
    # 2027-05-03 (Labour Day substitute) is in the source but not confirmed: docs/market-hours.md
    assert extra == [("2027-05-03", "노동절 대체 휴일")]


def test_weekends_are_closed_and_the_next_trading_day_skips_holidays() -> None:
    saturday = datetime.date(2026, 12, 5)
    assert sessions.closed_reason(saturday) == "휴장: 주말"
    assert sessions.phase_at(NXT, at("10:00", saturday)).name == "closed"
    assert sessions.next_trading_day(datetime.date(2026, 12, 24)) == datetime.date(2026, 12, 28)
    assert sessions.next_trading_day(datetime.date(2026, 12, 30)) == datetime.date(2027, 1, 4)
    # Closed on Christmas Eve evening: the next open is the Monday after.
    assert sessions.check_order(KRX, LIMIT, at("19:00", datetime.date(2026, 12, 24))).endswith(
        "again at 2026-12-28 08:30 KST"
    )


def test_status_text_shows_both_venues() -> None:
    assert sessions.status_text(at("17:00")) == "KRX 시간외단일가 │ NXT 애프터마켓"
    assert sessions.status_text(at("10:00")) == "KRX 장중 │ NXT 메인마켓"


# -- prices and auctions -------------------------------------------------------------------------


def test_price_bands_per_phase() -> None:
    cont = sessions.phase_at(KRX, at("10:00"))
    assert sessions.price_band(cont, 71000) == krx.limit_band(71000)
    single = sessions.phase_at(KRX, at("17:00"))
    assert sessions.price_band(single, 71000, close=72000) == (64800, 79200)
    at_close = sessions.phase_at(KRX, at("15:50"))
    assert sessions.price_band(at_close, 71000, close=72000) == (72000, 72000)
    # ±10 % of the close never leaves the daily band
    assert sessions.price_band(single, 10000, close=13000) == (11700, 13000)


def test_single_price_auctions_every_ten_minutes_and_the_opening_one_at_nine() -> None:
    single = sessions.phase_at(KRX, at("16:00"))
    due = [
        m
        for m in range(16 * 60, 18 * 60 + 1)
        if sessions.auction_due(
            single, at("{}:{:02d}".format(m // 60, m % 60)) - datetime.timedelta(seconds=1),
            at("{}:{:02d}".format(m // 60, m % 60)),
        )
    ]  # fmt: skip
    assert [(m // 60, m % 60) for m in due] == [(16 + i // 6, i % 6 * 10) for i in range(1, 13)]
    opening = sessions.phase_at(KRX, at("08:45"))
    assert sessions.auction_due(opening, at("08:59:59"), at("09:00"))
    assert not sessions.auction_due(opening, at("08:40"), at("08:59:59"))
    cont = sessions.phase_at(KRX, at("10:00"))
    assert not sessions.auction_due(cont, at("09:00"), at("15:00"))


def test_parse_start_at() -> None:
    now = at("10:00")
    assert sessions.parse_start_at("17:30", now) == at("17:30")
    assert sessions.parse_start_at("2026-12-24 17:30", now) == at(
        "17:30", datetime.date(2026, 12, 24)
    )
    # On a holiday a bare time means the next trading day
    assert sessions.parse_start_at("17:30", at("10:00", datetime.date(2026, 12, 25))) == at(
        "17:30", datetime.date(2026, 12, 28)
    )
    with pytest.raises(ValueError, match="start_at must be"):
        sessions.parse_start_at("half past five", now)


def test_krx_session_at_keeps_its_regular_market_meaning() -> None:
    assert krx.session_at(at("15:30")) == krx.CLOSED
    assert krx.session_at(at("10:00")) == krx.CONTINUOUS


def test_buy_and_sell_take_a_venue_and_keep_krx_orders_unchanged_on_the_wire() -> None:
    from core.protocol import ProtocolError, make_command

    krx_order = make_command("buy", code="005930", qty=1, price=70000)
    assert krx_order.venue is None and krx_order.order_venue == "KRX"
    assert "venue" not in krx_order.to_dict()
    nxt = make_command("sell", code="005930", qty=1, price=70000, venue="NXT")
    assert nxt.order_venue == "NXT" and nxt.to_dict()["venue"] == "NXT"
    for bad in ("nxt", "KOSDAQ", 1, ""):
        with pytest.raises(ProtocolError) as err:
            make_command("buy", code="005930", qty=1, price=70000, venue=bad)
        assert err.value.field == "venue"
    with pytest.raises(ProtocolError):
        make_command("cancel", order_id="S1", venue="NXT")  # not an argument of cancel
