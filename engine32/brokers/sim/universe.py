"""The simulator's universe: which codes exist, their Korean names, market and previous close.

The built-in universe is about forty real KOSPI/KOSDAQ names with plausible previous closes
(the base of the daily ±30 % band). ``[sim] universe`` picks a subset (codes it does not know
get a made-up name and a price derived from the code), ``[sim] extra_codes`` adds synthetic
codes ``Z00001``, ``Z00002``... for benchmarks with thousands of codes.
"""

import math
import random
import zlib
from typing import Dict, List, NamedTuple, Sequence

from core.protocol import krx

KOSPI = "KOSPI"
KOSDAQ = "KOSDAQ"


class Instrument(NamedTuple):
    code: str
    name: str
    market: str  # KOSPI | KOSDAQ
    base: int  # previous close, KRW, on the tick grid


def _i(code: str, name: str, market: str, base: int) -> Instrument:
    return Instrument(code, name, market, krx.snap(base))


#: Real codes and names; previous closes are plausible, not quotes of any particular day.
DEFAULT_UNIVERSE = (
    _i("005930", "삼성전자", KOSPI, 71000),
    _i("000660", "SK하이닉스", KOSPI, 198000),
    _i("035420", "NAVER", KOSPI, 215000),
    _i("035720", "카카오", KOSPI, 44850),
    _i("005380", "현대차", KOSPI, 215000),
    _i("051910", "LG화학", KOSPI, 310000),
    _i("006400", "삼성SDI", KOSPI, 250000),
    _i("068270", "셀트리온", KOSPI, 180000),
    _i("207940", "삼성바이오로직스", KOSPI, 1020000),
    _i("373220", "LG에너지솔루션", KOSPI, 380000),
    _i("005490", "POSCO홀딩스", KOSPI, 300000),
    _i("000270", "기아", KOSPI, 98000),
    _i("012330", "현대모비스", KOSPI, 240000),
    _i("105560", "KB금융", KOSPI, 80000),
    _i("055550", "신한지주", KOSPI, 52000),
    _i("003550", "LG", KOSPI, 75000),
    _i("066570", "LG전자", KOSPI, 90000),
    _i("028260", "삼성물산", KOSPI, 130000),
    _i("017670", "SK텔레콤", KOSPI, 55000),
    _i("015760", "한국전력", KOSPI, 22000),
    _i("034730", "SK", KOSPI, 150000),
    _i("032830", "삼성생명", KOSPI, 85000),
    _i("096770", "SK이노베이션", KOSPI, 110000),
    _i("010130", "고려아연", KOSPI, 800000),
    _i("009150", "삼성전기", KOSPI, 130000),
    _i("018260", "삼성에스디에스", KOSPI, 140000),
    _i("323410", "카카오뱅크", KOSPI, 23000),
    _i("259960", "크래프톤", KOSPI, 320000),
    _i("011200", "HMM", KOSPI, 18000),
    _i("003490", "대한항공", KOSPI, 22000),
    _i("034020", "두산에너빌리티", KOSPI, 21000),
    _i("039490", "키움증권", KOSPI, 130000),
    _i("010140", "삼성중공업", KOSPI, 10500),
    _i("003530", "한화투자증권", KOSPI, 3500),
    _i("247540", "에코프로비엠", KOSDAQ, 150000),
    _i("086520", "에코프로", KOSDAQ, 85000),
    _i("196170", "알테오젠", KOSDAQ, 330000),
    _i("028300", "HLB", KOSDAQ, 65000),
    _i("263750", "펄어비스", KOSDAQ, 35000),
    _i("293490", "카카오게임즈", KOSDAQ, 18000),
    _i("041510", "에스엠", KOSDAQ, 80000),
    _i("035900", "JYP Ent.", KOSDAQ, 65000),
    _i("058470", "리노공업", KOSDAQ, 170000),
    _i("039030", "이오테크닉스", KOSDAQ, 150000),
    _i("145020", "휴젤", KOSDAQ, 250000),
    _i("112040", "위메이드", KOSDAQ, 30000),
    _i("240810", "원익IPS", KOSDAQ, 30000),
    _i("032820", "우리기술", KOSDAQ, 1500),
)

_BY_CODE: Dict[str, Instrument] = {ins.code: ins for ins in DEFAULT_UNIVERSE}


def _log_uniform_price(rng: random.Random) -> int:
    """A previous close between 1,000 and 500,000 KRW, log-uniform, on the tick grid."""
    return krx.snap(math.exp(rng.uniform(math.log(1000), math.log(500000))))


def unknown_instrument(code: str) -> Instrument:
    """An instrument for a code the built-in list lacks: a stable made-up price from the code."""
    rng = random.Random(zlib.crc32(code.encode("ascii")))
    return Instrument(code, "SIM " + code, KOSPI, _log_uniform_price(rng))


def synthetic_instruments(count: int) -> List[Instrument]:
    """``count`` made-up codes ``Z00001``... with prices that do not depend on the seed."""
    rng = random.Random(0x5EED)
    out = []
    for i in range(1, count + 1):
        market = KOSPI if i % 2 else KOSDAQ
        out.append(
            Instrument(
                "Z{:05d}".format(i), "합성 {:05d}".format(i), market, _log_uniform_price(rng)
            )
        )
    return out


def build_universe(codes: Sequence[str] = (), extra_codes: int = 0) -> List[Instrument]:
    """The universe from ``[sim] universe`` (empty: the built-in list) plus ``extra_codes``."""
    if extra_codes > 99999:
        raise ValueError("at most 99,999 synthetic codes, got {}".format(extra_codes))
    if codes:
        base = [_BY_CODE.get(code) or unknown_instrument(code) for code in dict.fromkeys(codes)]
    else:
        base = list(DEFAULT_UNIVERSE)
    return base + synthetic_instruments(extra_codes)


#: Built-in codes the simulator treats as KRX-only (real Nextrade lists about 800 names, the
#: large caps among them; which small caps are out changes: Kiwoom REST ka10099 nxtEnable).
KRX_ONLY = frozenset({"032820", "003530", "263750", "112040"})


def nxt_eligible(code: str) -> bool:
    """Whether the simulator lets ``code`` trade on NXT: the built-in names except
    :data:`KRX_ONLY`, and four in five other codes (stable: a hash of the code)."""
    if code in KRX_ONLY:
        return False
    if code in _BY_CODE:
        return True
    return zlib.crc32(code.encode("ascii", "replace")) % 5 != 0
