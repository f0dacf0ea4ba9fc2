"""``kc report`` on real servers: its figures equal the sim engine's, and every failure is a
plain message with exit status 2 (0 for an empty period)."""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import time
import uuid

import asyncpg
import pytest
import redis

from core import journal, report
from core.protocol import Keys
from core.protocol.krx import KST
from core.writer import Writer
from core.writer.schema import quote_ident
from tests.helpers.engine_process import EngineProcess
from tests.writer.conftest import DbTarget, db_conn
from tests.writer.helpers import settings


def run_report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.report", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


async def _drain(writer: Writer, task: asyncio.Task, rconn: redis.Redis, keys: Keys) -> None:
    deadline = time.monotonic() + 60
    while True:
        g = rconn.xinfo_groups(keys.events)[0]
        last = rconn.xrevrange(keys.events, count=1)[0][0]
        if g["pending"] == 0 and g["last-delivered-id"] == last:
            break
        assert time.monotonic() < deadline, g
        await asyncio.sleep(0.05)
    writer.stop()
    await asyncio.wait_for(task, 30)


@pytest.mark.slow
async def test_report_equals_the_engine_after_round_trips(
    pg: DbTarget, redis_url: str, tmp_path
) -> None:
    rconn = redis.Redis.from_url(redis_url)
    with EngineProcess(
        redis_url, settings={"sim.seed": 5, "sim.quote_rate": 300}, log_dir=str(tmp_path)
    ) as eng:
        eng.wait_ready(timeout=60)
        keys = Keys(eng.prefix)
        writer = Writer(settings(redis_url, keys, pg))
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.wait_for(writer.ready.wait(), 60)
            # three round trips on two codes, in parts (several fills at several prices)
            for code, qty in (("005930", 7), ("035720", 12), ("005930", 3)):
                for side, q in (("buy", qty), ("buy", qty), ("sell", qty), ("sell", qty)):
                    r = await asyncio.to_thread(
                        eng.send, {"cmd": side, "code": code, "qty": q, "type": "market"}
                    )
                    assert r["ok"], r
                    await asyncio.sleep(0.3)
            deadline = time.monotonic() + 30
            while rconn.hlen(keys.state_positions) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            account = {k.decode(): v.decode() for k, v in rconn.hgetall(keys.state_account).items()}
        finally:
            await asyncio.to_thread(eng.stop)
        await _drain(writer, task, rconn, keys)
    async with db_conn(pg) as conn:
        fees, taxes, n = await conn.fetchrow(
            "SELECT sum(fee)::int8, sum(tax)::int8, count(*) FROM fills"
        )
    assert n >= 12
    today = datetime.datetime.now(KST).date()
    rep = await report.load(pg.dsn, today, today, costs=journal.Costs(), schema=pg.schema)
    assert rep.period.realized_pnl == int(account["realized_pnl_today"]) != 0
    assert (rep.period.fees, rep.period.tax) == (fees, taxes)
    assert rep.period.unknown_basis == 0
    assert list(rep.journal["broker_fee"]) == list(rep.journal["fee"])
    # the command line prints the same figure, grouped with separators
    out = run_report("--dsn", pg.dsn, "--schema", pg.schema, "--from", "today")
    assert out.returncode == 0, out.stderr
    assert f"Realised P&L {rep.period.realized_pnl:,} KRW" in out.stdout
    assert "005930" in out.stdout and "035720" in out.stdout
    csv = run_report("--dsn", pg.dsn, "--schema", pg.schema, "--format", "csv", "--table", "days")
    assert csv.returncode == 0, csv.stderr
    header, row = csv.stdout.splitlines()[:2]
    assert header.startswith("date,realized_pnl,fees,tax")
    assert row.split(",")[1] == str(rep.period.realized_pnl)


async def _schema_with_tables(dsn: str) -> str:
    from core.writer import schema

    name = "r_" + uuid.uuid4().hex[:10]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {quote_ident(name)}")
        await conn.execute(f"SET search_path TO {quote_ident(name)}, public")
        await schema.migrate(conn)
    finally:
        await conn.close()
    return name


async def test_empty_period_says_so_with_status_0(postgres_dsn: str) -> None:
    name = await _schema_with_tables(postgres_dsn)
    out = run_report(
        "--dsn", postgres_dsn, "--schema", name, "--from", "2026-11-02", "--to", "2026-11-03"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "kc report: no fills from 2026-11-02 to 2026-11-03 (KST)"
    assert out.stderr == ""


def test_failures_are_plain_messages_with_status_2(tmp_path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[database]\nurl = ""\n')
    no_db = run_report("--config", str(cfg))
    assert no_db.returncode == 2 and "no database" in no_db.stderr
    assert "Traceback" not in no_db.stderr
    down = run_report("--config", str(cfg), "--dsn", "postgresql://kc@127.0.0.1:1/kc")
    assert down.returncode == 2 and "cannot reach the database" in down.stderr
    assert "Traceback" not in down.stderr
    bad = run_report("--config", str(cfg), "--from", "yesterdayish")
    assert bad.returncode == 2 and "is not a date" in bad.stderr
    order = run_report("--config", str(cfg), "--from", "2026-12-02", "--to", "2026-12-01")
    assert order.returncode == 2 and "before --from" in order.stderr


async def test_no_fills_table_is_a_message(postgres_dsn: str) -> None:
    name = "n_" + uuid.uuid4().hex[:8]
    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute(f"CREATE SCHEMA {name}")
    await conn.close()
    out = run_report("--dsn", postgres_dsn, "--schema", name)
    assert out.returncode == 2 and "cannot read the fills" in out.stderr
    assert "Traceback" not in out.stderr


def test_xlsx_and_parquet_need_their_extra_or_write(tmp_path) -> None:
    rep = report.Report(
        [
            {
                "ts": datetime.datetime(2026, 12, 1, 9, tzinfo=KST),
                "code": "005930",
                "side": "buy",
                "qty": 1,
                "price": 70000,
            }
        ],
        datetime.date(2026, 12, 1),
        datetime.date(2026, 12, 1),
    )
    for fmt, module in (("xlsx", "openpyxl"), ("parquet", "pyarrow")):
        try:
            __import__(module)
        except ImportError:
            with pytest.raises(report.ReportError, match=f"needs the '{fmt}' extra"):
                report.write(rep, fmt, str(tmp_path / f"r.{fmt}"), "journal", False)
        else:
            assert "wrote" in report.write(rep, fmt, str(tmp_path / f"r.{fmt}"), "journal", False)
            assert (tmp_path / f"r.{fmt}").stat().st_size > 0


def test_korean_units() -> None:
    assert report.korean_units(12_345_678) == "1,234만"
    assert report.korean_units(-1_234_567_890) == "-12.3억"
    assert report.korean_units(9_999) == "9,999"
    assert json.dumps(report.won(float("nan"))) == '"\\u2013"'
