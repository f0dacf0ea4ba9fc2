"""``kc demo --at``: a time it cannot read is refused before anything starts."""

from core import demo


def test_demo_refuses_an_unreadable_start_time(capsys, tmp_path) -> None:
    assert demo.main(["--at", "half past five", "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "start_at must be a KST time such as 17:30" in err
    assert not (tmp_path / "d").exists()  # no server was started
    assert demo.main(["--at", "17:30", "--speed", "0", "--data-dir", str(tmp_path / "d")]) == 2


def test_status_shows_both_venues_or_why_the_market_is_closed() -> None:
    from core.status import render

    base = {"engine_alive": True, "heartbeat_age_ms": 5, "writer": {}, "queued_commands": 0,
            "in_flight_commands": 0, "dead_commands": 0, "redis_rtt_ms": 0.1}  # fmt: skip
    eng = {"state": "ready", "session": "after_hours_single", "session_nxt": "after_market"}
    lines = render(dict(base, engine=eng))
    assert "market: KRX 시간외단일가 (after_hours_single) | NXT 애프터마켓 (after_market)" in lines
    lines = render(dict(base, engine=dict(eng, session="closed", session_note="휴장: 성탄절")))
    assert "market: 휴장: 성탄절" in lines
