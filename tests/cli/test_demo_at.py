"""``kc demo --at``: a time it cannot read is refused before anything starts."""

from core import demo


def test_demo_refuses_an_unreadable_start_time(capsys, tmp_path) -> None:
    assert demo.main(["--at", "half past five", "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "start_at must be a KST time such as 17:30" in err
    assert not (tmp_path / "d").exists()  # no server was started
    assert demo.main(["--at", "17:30", "--speed", "0", "--data-dir", str(tmp_path / "d")]) == 2
