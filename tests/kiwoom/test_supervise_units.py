"""The supervisor's maintenance windows and restart rules, --check-trs on a small .enc, and
the config key, without a Qt loop where none is needed."""

import datetime
import io
import os
import subprocess
import sys
import zipfile
from typing import Any

import pytest

from core.config import ConfigError, load_config
from engine32 import exitcodes
from engine32.brokers.kiwoom import tr, trcheck
from engine32.supervise import KST, Supervisor, parse_windows, seconds_until_open


def _at(day: int, hour: int, minute: int) -> datetime.datetime:
    """2026-11-30 is a Monday: ``day`` 0 is Monday."""
    monday = datetime.datetime(2026, 11, 30, hour, minute, tzinfo=KST)
    assert monday.weekday() == 0
    return monday + datetime.timedelta(days=day)


def test_the_default_window_waits_past_the_disconnect_and_the_0650_notice() -> None:
    windows = parse_windows(load_config(environ={}).engine_kiwoom.maintenance_windows)
    assert seconds_until_open(windows, _at(0, 5, 6)) == (6 * 60 + 55 - (5 * 60 + 6)) * 60
    assert seconds_until_open(windows, _at(0, 7, 0)) == 0
    assert seconds_until_open(windows, _at(0, 4, 59)) == 0
    assert (
        seconds_until_open(windows, _at(6, 4, 10)) == (6 * 60 + 55 - (4 * 60 + 10)) * 60
    )  # Sunday
    # The same instant given in UTC is read in KST.
    assert seconds_until_open(windows, _at(0, 5, 6).astimezone(datetime.timezone.utc)) > 0


def test_windows_parse_or_explain() -> None:
    assert parse_windows("none") == [] and parse_windows(" NONE ") == []
    (window,) = parse_windows("sat-mon 01:00-02:00")
    assert window.days == frozenset({5, 6, 0}) and (window.start, window.end) == (60, 120)
    for bad in ("daily 05:00-06:00", "mon 06:00-05:00", "mon 05:00"):
        with pytest.raises(ValueError):
            parse_windows(bad)
    with pytest.raises(ConfigError):
        load_config(overrides={"engine.kiwoom.maintenance_windows": "whenever"}, environ={})
    cfg = load_config(overrides={"engine.kiwoom.maintenance_windows": "none"}, environ={})
    assert cfg.engine_kiwoom.maintenance_windows == "none"


def _script(tmp_path: Any, codes: str) -> list:
    """A child that exits with the next code of ``codes`` each time it runs."""
    counter = tmp_path / "n"
    code = (
        "import sys, pathlib; p = pathlib.Path({!r}); n = int(p.read_text()) if p.exists() else 0; "
        "p.write_text(str(n + 1)); sys.exit([{}][n])"
    ).format(str(counter), codes)
    return [sys.executable, "-c", code]


def test_the_supervisor_restarts_after_75_and_crashes_and_stops_on_0(tmp_path: Any) -> None:
    supervisor = Supervisor(_script(tmp_path, "75, 1, 75, 0"), [], first_backoff_s=0.01)
    assert supervisor.run() == 0
    assert supervisor.starts == 4


def test_the_supervisor_stops_on_a_configuration_error(tmp_path: Any) -> None:
    supervisor = Supervisor(_script(tmp_path, "75, 2, 0"), [], first_backoff_s=0.01)
    assert supervisor.run() == exitcodes.CONFIG and supervisor.starts == 2


def test_the_supervisor_waits_out_a_window_before_starting(tmp_path: Any) -> None:
    moments = [
        _at(
            0,
            6,
            54,
        )
        + datetime.timedelta(seconds=59.9),
        _at(0, 7, 0),
    ]
    now = lambda: moments.pop(0) if len(moments) > 1 else moments[0]  # noqa: E731
    supervisor = Supervisor(_script(tmp_path, "0"), parse_windows("mon 05:00-06:55"), 0.01, now)
    assert supervisor.run() == 0 and supervisor.starts == 1  # waited 0.1 s, then started


def _enc(path: Any, trcode: str, inputs: list, records: dict) -> None:
    """A .enc as OpenAPI+ installs it: a zip holding <TRCODE>.dat in cp949 (pykiwoom's reader)."""
    lines = ["[TRINFO]", "TRName={}".format(trcode), "[INPUT]", "@START_{}=*,*,*".format(trcode)]
    lines += ["\t{} = 000, 010, 0, 0, 0, 0, 0".format(name) for name in inputs]
    lines += ["@END_{}".format(trcode)]
    for record, fields in records.items():
        lines += ["[OUTPUT]", "@START_{}=*,*,*".format(record)]
        lines += ["\t{} = 000, 015, 0".format(name) for name in fields]
        lines += ["@END_{}".format(record)]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(trcode.upper() + ".dat", "\r\n".join(lines).encode("cp949"))
    path.write_bytes(buffer.getvalue())


def test_check_trs_reads_enc_files_and_names_what_is_gone(tmp_path: Any) -> None:
    for trcode, (inputs, outputs) in tr.USED_FIELDS.items():
        half = len(outputs) // 2
        _enc(tmp_path / (trcode + ".enc"), trcode, list(inputs),
             {"단일": list(outputs[:half]) + ["다른필드"], "멀티": list(outputs[half:])})  # fmt: skip
    assert trcheck.check(str(tmp_path)) == []
    definition = trcheck.read_enc(str(tmp_path / "opt10075.enc"), "opt10075")
    assert definition.inputs["opt10075"] == list(tr.USED_FIELDS["opt10075"][0])
    assert set(definition.outputs) == {"단일", "멀티"}
    # A Kiwoom update renames 미체결수량 and drops opw00001.
    inputs, outputs = tr.USED_FIELDS["opt10075"]
    _enc(tmp_path / "opt10075.enc", "opt10075", list(inputs),
         {"미체결": [o if o != "미체결수량" else "미체결수량2" for o in outputs]})  # fmt: skip
    os.remove(str(tmp_path / "opw00001.enc"))
    problems = trcheck.check(str(tmp_path))
    assert any("opt10075" in p and "'미체결수량'" in p for p in problems)
    assert any("opw00001" in p and "missing" in p for p in problems)
    assert len(problems) == 2
    run = subprocess.run([sys.executable, "-m", "engine32", "--check-trs", "--openapi-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 1 and "미체결수량" in run.stdout


def test_kc_engine_passes_the_new_flags_through(tmp_path: Any) -> None:
    kc = os.path.join(os.path.dirname(sys.executable), "kc")
    missing = subprocess.run([kc, "engine", "--check-trs", "--openapi-dir", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 2 and "not a folder" in missing.stdout
    helped = subprocess.run([kc, "engine", "--help"], capture_output=True, text=True, timeout=60)
    assert "--supervise" in helped.stdout and "--check-trs" in helped.stdout
