"""Generate ``core/protocol/krx_holidays.py``, the KRX holiday table the engine reads.

The engine runs on 32-bit Python 3.8 without pandas, so the calendar is computed here, on
the 64-bit side, from a maintained source and committed as a small dated table:

- source: the ``holidays`` package's ``XKRX`` financial calendar (Korea Exchange): public
  holidays, substitute holidays, election days, Labour Day and the year-end closure (Dec 31);
- cross-check: ``exchange-calendars`` ``XKRX`` when installed (``--check``); disagreements
  are printed, not resolved: a person decides, with KRX's own notice of the year's closures.

Yearly refresh (every December, once KRX has announced next year's closures)::

    .venv/bin/pip install -U holidays exchange-calendars
    .venv/bin/python -m core.krx_calendar --check      # writes the table, prints disagreements
    git diff core/protocol/krx_holidays.py              # compare with KRX's notice, commit

Temporary holidays the government declares at short notice (임시공휴일) reach the table only
when the source has them: add them by hand with a comment if it has not caught up.
"""

import argparse
import datetime
import sys
from pathlib import Path
from typing import Dict, List

OUT = Path(__file__).resolve().parent / "protocol" / "krx_holidays.py"
FIRST_YEAR = 2025
LAST_YEAR = 2028
#: Common names for the status bar where the official one is less familiar.
COMMON_NAMES = {"기독탄신일": "성탄절"}

HEADER = '''"""KRX holidays (weekdays when KRX and NXT are closed): GENERATED, do not edit by hand.

Made by ``python -m core.krx_calendar`` from holidays {hv} (XKRX) on {today}; years
{first}-{last}. Refresh it every December: see core/krx_calendar.py and docs/market-hours.md.
"""

from typing import Dict

#: ISO date -> Korean name (weekends are not listed).
HOLIDAYS: Dict[str, str] = {{
'''


def _common(name: str) -> str:
    for official, common in COMMON_NAMES.items():
        name = name.replace(official, common)
    return name


def xkrx_holidays(first: int, last: int) -> Dict[datetime.date, str]:
    import holidays

    out: Dict[datetime.date, str] = {}
    cal = holidays.financial_holidays("XKRX", years=range(first, last + 1), language="ko")
    for day, name in sorted(cal.items()):
        if day.weekday() < 5:
            names = [_common(n.strip()) for n in name.split(";")]
            out[day] = ", ".join(dict.fromkeys(names))
    return out


def render(table: Dict[datetime.date, str], first: int, last: int) -> str:
    import holidays

    text = HEADER.format(
        hv=holidays.__version__, today=datetime.date.today().isoformat(), first=first, last=last
    )
    for day, name in sorted(table.items()):
        text += '    "{}": "{}",\n'.format(day.isoformat(), name)
    return text + "}\n"


def cross_check(table: Dict[datetime.date, str], first: int, last: int) -> List[str]:
    """Weekdays on which exchange-calendars' XKRX disagrees with ``table``."""
    try:
        import exchange_calendars as xc
        import pandas as pd
    except ImportError:
        return ["exchange-calendars is not installed: no cross-check"]
    cal = xc.get_calendar(
        "XKRX", start="{}-12-01".format(first - 1), end="{}-01-31".format(last + 1)
    )
    out = []
    for ts in pd.date_range("{}-01-01".format(first), "{}-12-31".format(last), freq="D"):
        day = ts.date()
        if day.weekday() >= 5:
            continue
        try:
            closed = not cal.is_session(ts)
        except Exception:  # outside the calendar's range
            continue
        if closed != (day in table):
            out.append(
                "{}: exchange-calendars says {}, holidays says {}".format(
                    day, "closed" if closed else "open", table.get(day, "open")
                )
            )
    return out


def main(argv: List[str] = sys.argv[1:]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, default=FIRST_YEAR)
    parser.add_argument("--last", type=int, default=LAST_YEAR)
    parser.add_argument("--check", action="store_true", help="cross-check exchange-calendars")
    args = parser.parse_args(argv)
    table = xkrx_holidays(args.first, args.last)
    OUT.write_text(render(table, args.first, args.last), encoding="utf-8")
    print("wrote {} holidays to {}".format(len(table), OUT))
    if args.check:
        for line in cross_check(table, args.first, args.last):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
