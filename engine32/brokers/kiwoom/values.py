"""Reading the OCX's strings: signed (``+65000``), zero- or space-padded (``000000070000``)."""


def to_int(text: str) -> int:
    """``"+65000"`` → 65000, ``"-1200"`` → -1200, ``" 000070000 "`` → 70000, ``""`` → 0."""
    t = (text or "").strip().replace(",", "")
    if not t:
        return 0
    try:
        return int(t)
    except ValueError:
        return int(float(t))


def to_price(text: str) -> int:
    """A price: the sign only says up or down from the previous close, so it is dropped."""
    return abs(to_int(text))


def to_float(text: str) -> float:
    t = (text or "").strip().replace(",", "")
    return float(t) if t else 0.0


def to_code(raw: str) -> str:
    """``"A005930"`` or ``"005930_AL"`` (a market suffix) → ``"005930"``."""
    t = (raw or "").strip().split("_")[0]
    return t[-6:]
