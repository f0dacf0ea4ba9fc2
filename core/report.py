"""``kc report``: the trading journal, per day, per code and over the period (``core.journal``).

    kc report                          today's journal as tables
    kc report --from 2026-11-02 --to 2026-11-30 --code 005930
    kc report --from today --format csv --out today.csv
    kc report --from 2026-11-01 --format xlsx --out nov.xlsx   (needs the 'xlsx' extra)

Exit status: 0 with a report (or a plain "no fills" message for an empty period), 2 when the
arguments, the configuration, the database or an optional extra are missing or wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from core import history, journal
from core.config import ConfigError, load_config, redact
from core.protocol.krx import KST

FORMATS = ("table", "csv", "xlsx", "parquet")
TABLES = ("journal", "days", "codes")


class ReportError(Exception):
    """Something the user must fix; the message says what (exit status 2)."""


def parse_day(text: str, today: datetime.date | None = None) -> datetime.date:
    """``today``, ``yesterday``, ``2026-12-01`` or ``20261201`` (KST dates)."""
    today = today or datetime.datetime.now(KST).date()
    t = text.strip().lower()
    if t == "today":
        return today
    if t == "yesterday":
        return today - datetime.timedelta(days=1)
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.datetime.strptime(t, fmt).date()
        except ValueError:
            pass
    raise ReportError(f"{text!r} is not a date: use YYYY-MM-DD, 'today' or 'yesterday' (KST)")


def korean_units(value: float) -> str:
    """12,345,678 → ``1,234만``; 1,234,567,890 → ``12.3억``; small numbers as they are."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    sign = "-" if value < 0 else ""
    v = abs(value)
    if v >= 100_000_000:
        return f"{sign}{v / 100_000_000:,.1f}억"
    if v >= 10_000:
        return f"{sign}{int(v // 10_000):,}만"
    return f"{sign}{int(v):,}"


def won(value: Any, units: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return korean_units(value) if units else f"{int(round(value)):,}"


# --- building ---------------------------------------------------------------------------


class Report:
    """Everything ``kc report`` shows, for one period."""

    def __init__(
        self, fills: list[dict[str, Any]], first: datetime.date, last: datetime.date, **kw: Any
    ) -> None:
        full = journal.journal(fills, kw.get("costs"), kw.get("names"))
        self.first, self.last = first, last
        inside = (full["date"] >= first) & (full["date"] <= last) if not full.empty else []
        self.journal = full[inside].reset_index(drop=True) if not full.empty else full
        self.days = journal.by_day(self.journal)
        self.codes = journal.by_code(self.journal)
        self.period = journal.period(self.journal, self.days)

    @property
    def empty(self) -> bool:
        return self.journal.empty


async def load(
    dsn: str,
    first: datetime.date,
    last: datetime.date,
    code: str | None = None,
    costs: journal.Costs | None = None,
    schema: str | None = None,
) -> Report:
    """Read the fills up to the end of ``last`` (all of them, for the cost basis) and build."""
    import asyncpg

    end = history.kst_day_bounds(last)[1]
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except Exception as exc:  # noqa: BLE001 - any connection trouble is told in words
        raise ReportError(f"cannot reach the database ({_why(exc)})") from None
    try:
        if schema:
            await conn.execute(f'SET search_path TO "{schema}"')
        try:
            fills = await history.fills_between(conn, None, end, code)
            names = await history.code_names(conn)
        except Exception as exc:  # noqa: BLE001 - e.g. no fills table: the writer never ran
            raise ReportError(f"cannot read the fills ({_why(exc)})") from None
    finally:
        await conn.close()
    return Report(fills, first, last, costs=costs, names=names)


def _why(exc: BaseException) -> str:
    text = redact(str(exc)).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- output -----------------------------------------------------------------------------


def _frames(rep: Report) -> dict[str, pd.DataFrame]:
    j = rep.journal.copy()
    if not j.empty:
        j["ts"] = j["ts"].map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S"))
    days = rep.days.reset_index().rename(columns={"index": "date"})
    codes = rep.codes.reset_index().rename(columns={"index": "code"})
    return {"journal": j, "days": days, "codes": codes}


def period_lines(rep: Report, units: bool = False) -> list[str]:
    p = rep.period
    lines = [
        f"Realised P&L {won(p.realized_pnl, units)} KRW over {p.days} day(s), "
        f"{p.trades} fill(s); fees {won(p.fees, units)}, tax {won(p.tax, units)}, "
        f"turnover {won(p.turnover, units)}",
        f"Max drawdown {won(p.max_drawdown, units)} KRW (daily cumulative realised P&L)",
    ]
    if p.best_day is not None:
        lines.append(
            f"Best day {p.best_day} {won(p.best_day_pnl, units)}; "
            f"worst day {p.worst_day} {won(p.worst_day_pnl, units)}"
        )
    if p.unknown_basis:
        lines.append(
            f"{p.unknown_basis} sell(s) of shares bought before the records begin: "
            "their P&L is not known and left out"
        )
    return lines


def render_table(rep: Report, units: bool = False, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = io.StringIO()
    console = Console(file=out, width=width or 140, force_terminal=False, color_system=None)

    def money(v: Any) -> Text:
        s = won(v, units)
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            # rises red, falls blue (Korean convention)
            return Text(s, style="red" if v > 0 else "blue" if v < 0 else "")
        return Text(s)

    t = Table(title=f"Journal {rep.first} – {rep.last} (KST, moving-average cost)")
    for col, just in (
        ("Time", "left"),
        ("Code", "left"),
        ("Name", "left"),
        ("Side", "left"),
        ("Qty", "right"),
        ("Price", "right"),
        ("Venue", "left"),
        ("Fee", "right"),
        ("Tax", "right"),
        ("Held", "right"),
        ("Avg cost", "right"),
        ("Realised", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rep.journal.to_dict("records"):
        t.add_row(
            r["ts"].strftime("%m-%d %H:%M:%S"),
            r["code"],
            r["name"],
            "매수 buy" if r["side"] == "buy" else "매도 sell",
            f"{r['qty']:,}",
            f"{r['price']:,}",
            r["venue"] or "",
            won(r["fee"]),
            won(r["tax"]),
            f"{r['position_qty']:,}",
            won(r["avg_cost"]),
            money(r["realized_pnl"]) if r["side"] == "sell" else Text(""),
        )
    console.print(t)
    for title, frame, label in (("Per day", rep.days, "Day"), ("Per code", rep.codes, "Code")):
        s = Table(title=title)
        for col in (
            label,
            "Realised",
            "Fees",
            "Tax",
            "Turnover",
            "Trades",
            "Win rate",
            "Avg win",
            "Avg loss",
        ):
            s.add_column(col, justify="left" if col == label else "right")
        for key, r in frame.iterrows():
            s.add_row(
                str(key),
                money(r["realized_pnl"]),
                won(r["fees"], units),
                won(r["tax"], units),
                won(r["turnover"], units),
                f"{int(r['trades'])}",
                "–" if math.isnan(r["win_rate"]) else f"{r['win_rate'] * 100:.0f}%",
                won(r["avg_win"], units),
                won(r["avg_loss"], units),
            )
        console.print(s)
    for line in period_lines(rep, units):
        console.print(line)
    return out.getvalue()


def write(rep: Report, fmt: str, out: str | None, table: str, units: bool) -> str:
    """Write the report; returns what to print (the table, or a line saying where it went)."""
    if fmt == "table":
        return render_table(rep, units)
    frames = _frames(rep)
    if fmt == "csv":
        text = frames[table].to_csv(index=False)
        if out in (None, "-"):
            return text
        Path(out).write_text(text, encoding="utf-8")
        return f"kc report: wrote {len(frames[table])} row(s) of {table} to {out}\n"
    if out in (None, "-"):
        raise ReportError(f"--format {fmt} writes a file: give --out PATH")
    if fmt == "xlsx":
        try:
            import openpyxl  # noqa: F401
        except ImportError:
            raise ReportError(
                "--format xlsx needs the 'xlsx' extra: pip install 'kiwoom-console[xlsx]'"
            ) from None
        summary = pd.DataFrame({"summary": period_lines(rep)})
        with pd.ExcelWriter(out, engine="openpyxl") as xw:
            for name, frame in frames.items():
                frame.to_excel(xw, sheet_name=name, index=False)
            summary.to_excel(xw, sheet_name="period", index=False)
        return f"kc report: wrote {out} (sheets journal, days, codes, period)\n"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ReportError(
            "--format parquet needs the 'parquet' extra: pip install 'kiwoom-console[parquet]'"
        ) from None
    frame = frames[table].copy()
    for col in ("date", "code"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str)
    frame.to_parquet(out, index=False)
    return f"kc report: wrote {len(frame)} row(s) of {table} to {out}\n"


# --- command line -----------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="kc report",
        description="The trading journal from the writer's database: every fill with "
        "commission, tax and realised P&L (moving-average cost), per day, per code and over "
        "the period. Dates are KST.",
    )
    p.add_argument(
        "--config", metavar="PATH", help="config.toml (default: $KC_CONFIG or the repository's)"
    )
    p.add_argument(
        "--dsn", metavar="DSN", help="database DSN, without a password (overrides [database] url)"
    )
    p.add_argument("--schema", metavar="NAME", help="database schema of the writer's tables")
    p.add_argument(
        "--from", dest="first", default="today", metavar="DATE", help="first day (default today)"
    )
    p.add_argument(
        "--to",
        dest="last",
        metavar="DATE",
        help="last day (default: the --from day or today, whichever is later)",
    )
    p.add_argument("--code", metavar="CODE", help="only this code")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument(
        "--table", choices=TABLES, default="journal", help="which table csv/parquet write"
    )
    p.add_argument("--out", metavar="PATH", help="file to write (csv: default stdout)")
    p.add_argument("--korean-units", action="store_true", help="amounts in 만/억")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, overrides={"database.url": args.dsn})
        first = parse_day(args.first)
        today = datetime.datetime.now(KST).date()
        last = parse_day(args.last) if args.last else max(first, today)
        if last < first:
            raise ReportError(f"--to {last} is before --from {first}")
        if args.code is not None and not (len(args.code) == 6 and args.code.isalnum()):
            raise ReportError(f"--code {args.code!r}: a code is 6 characters, e.g. 005930")
        dsn = cfg.database_url_with_auth()
        if not dsn:
            raise ReportError(
                "no database: set [database] url in config.toml, KC_DATABASE_URL or --dsn "
                "(the writer stores the fills there)"
            )
        rep = asyncio.run(
            load(dsn, first, last, args.code, journal.Costs.from_config(cfg), args.schema)
        )
        if rep.empty:
            what = f" of {args.code}" if args.code else ""
            print(f"kc report: no fills{what} from {first} to {last} (KST)")
            return 0
        print(write(rep, args.format, args.out, args.table, args.korean_units), end="")
        return 0
    except (ConfigError, ReportError) as exc:
        print(f"kc report: {redact(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
