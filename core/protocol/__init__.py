"""The wire protocol shared by every part of the console (``docs/protocol.md``).

Standard library only, and it must run on 32-bit Python 3.8 inside the Windows engine.
"""

from . import krx
from .commands import (
    COMMANDS,
    TRADING_COMMANDS,
    Command,
    decode_reply,
    encode_reply,
    error_reply,
    make_command,
    make_reply,
    parse_command,
)
from .envelope import EVENT_TYPES, Envelope, decode_envelope, new_run_id, now_ms
from .errors import ERROR_CODES, ProtocolError
from .events import (
    Account,
    Fill,
    LogRecord,
    Order,
    Payload,
    Position,
    Quote,
    Surge,
    mask_account,
)
from .names import DEFAULT_PREFIX, TOPICS, Keys

__all__ = [
    "COMMANDS",
    "DEFAULT_PREFIX",
    "ERROR_CODES",
    "EVENT_TYPES",
    "TOPICS",
    "TRADING_COMMANDS",
    "Account",
    "Command",
    "Envelope",
    "Fill",
    "Keys",
    "LogRecord",
    "Order",
    "Payload",
    "Position",
    "ProtocolError",
    "Quote",
    "Surge",
    "decode_envelope",
    "decode_reply",
    "encode_reply",
    "error_reply",
    "krx",
    "make_command",
    "make_reply",
    "mask_account",
    "new_run_id",
    "now_ms",
    "parse_command",
]
