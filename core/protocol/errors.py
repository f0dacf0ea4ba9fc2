"""Error codes of the wire protocol and the one exception the protocol package raises."""

from typing import Optional

BAD_JSON = "BAD_JSON"
UNKNOWN_COMMAND = "UNKNOWN_COMMAND"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
STALE = "STALE"
DUPLICATE = "DUPLICATE"
RISK_REJECTED = "RISK_REJECTED"
HALTED = "HALTED"
RATE_LIMITED = "RATE_LIMITED"
BROKER_ERROR = "BROKER_ERROR"
NOT_READY = "NOT_READY"
ENGINE_RESTARTED = "ENGINE_RESTARTED"

ERROR_CODES = (
    BAD_JSON,
    UNKNOWN_COMMAND,
    INVALID_ARGUMENT,
    STALE,
    DUPLICATE,
    RISK_REJECTED,
    HALTED,
    RATE_LIMITED,
    BROKER_ERROR,
    NOT_READY,
    ENGINE_RESTARTED,
)


class ProtocolError(Exception):
    """A message that breaks the protocol, with the code and words to put in the reply.

    ``cmd_id`` and ``cmd`` carry what could still be read from a bad command, so the
    engine can address its reply (rule 1: every command gets exactly one reply).
    """

    def __init__(
        self,
        code: str,
        message: str,
        field: Optional[str] = None,
        cmd_id: Optional[str] = None,
        cmd: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.cmd_id = cmd_id
        self.cmd = cmd

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return "ProtocolError({!r}, {!r})".format(self.code, self.message)
