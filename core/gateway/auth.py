"""Gateway tokens: ``name:scope:token`` lines, hashed at rest, compared in constant time.

Tokens come from ``[gateway] tokens_file`` (one per line, ``#`` comments) or from the
environment variable ``KC_GATEWAY_TOKENS`` (comma-separated), both in the same form. The token
part may be given as ``sha256:<64 hex>`` (what ``kc gateway --hash-token`` prints), so the file
need not hold the token itself; a clear token is hashed when it is read and only its SHA-256
digest is kept in memory. Tokens are long random strings (``kc gateway --new-token``), so a
fast hash is enough: there is nothing to brute-force.

Checking a token hashes it and compares the digest with *every* known digest using
:func:`hmac.compare_digest`, without stopping at a match, so the time taken does not tell how
much of a token was right nor which entry it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

SCOPES = ("read", "trade")
ENV_VAR = "KC_GATEWAY_TOKENS"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_HASHED = re.compile(r"^sha256:([0-9a-f]{64})$")
MIN_TOKEN_LENGTH = 16


class TokenError(ValueError):
    """A tokens file or variable that cannot be used; the message names the line, never the token."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token belongs to."""

    name: str
    scope: str

    @property
    def can_trade(self) -> bool:
        return self.scope == "trade"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def hash_line(name: str, scope: str, token: str) -> str:
    """The ``name:scope:sha256:<hex>`` line to put in a tokens file instead of the token."""
    return "{}:{}:sha256:{}".format(name, scope, digest(token).hex())


def new_token() -> str:
    return secrets.token_urlsafe(32)


class TokenStore:
    """The known tokens, as (digest, principal) pairs only."""

    def __init__(self, entries: list[tuple[bytes, Principal]]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def parse(cls, text: str, origin: str, separator: str = "\n") -> TokenStore:
        entries: list[tuple[bytes, Principal]] = []
        names: set[str] = set()
        for number, raw in enumerate(text.split(separator), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = "{} entry {}".format(origin, number)
            name, _, rest = line.partition(":")
            scope, _, token = rest.partition(":")
            if not _NAME.match(name):
                raise TokenError(
                    "{}: expected name:scope:token with a name of 1-32 letters, digits, _ . -".format(
                        where
                    )
                )
            if line.startswith(("change-me", "changeme")):
                raise TokenError("{}: still the example value from .env.example".format(where))
            if scope not in SCOPES:
                raise TokenError("{} ({}): scope must be read or trade".format(where, name))
            if name in names:
                raise TokenError("{} ({}): the name is used twice".format(where, name))
            hashed = _HASHED.match(token)
            if hashed:
                value = bytes.fromhex(hashed.group(1))
            elif len(token) < MIN_TOKEN_LENGTH:
                raise TokenError(
                    "{} ({}): the token is shorter than {} characters (make one with "
                    "'kc gateway --new-token')".format(where, name, MIN_TOKEN_LENGTH)
                )
            else:
                value = digest(token)
            names.add(name)
            entries.append((value, Principal(name, scope)))
        return cls(entries)

    @classmethod
    def load(cls, tokens_file: str, environ: dict[str, str] | None = None) -> TokenStore:
        """The file's tokens plus the variable's (a name in both is refused)."""
        env = os.environ if environ is None else environ
        entries: list[tuple[bytes, Principal]] = []
        if tokens_file:
            path = Path(tokens_file).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise TokenError(
                    "[gateway] tokens_file: cannot read {} ({})".format(path, exc.strerror)
                ) from None
            entries += cls.parse(text, str(path))._entries
        if env.get(ENV_VAR):
            entries += cls.parse(env[ENV_VAR], ENV_VAR, separator=",")._entries
        seen: set[str] = set()
        for _, who in entries:
            if who.name in seen:
                raise TokenError("token name {!r} is given twice".format(who.name))
            seen.add(who.name)
        return cls(entries)

    def check(self, token: str | None) -> Principal | None:
        """The principal of ``token``, or ``None``; constant time over all entries."""
        if not token:
            return None
        candidate = digest(token)
        found: Principal | None = None
        for value, who in self._entries:
            if hmac.compare_digest(candidate, value) and found is None:
                found = who
        return found
