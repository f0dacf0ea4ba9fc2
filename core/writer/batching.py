"""A batch: the rows of many stream entries, grouped by table, written in one transaction.

A batch is written when it holds ``max_rows`` rows or its first entry is ``max_ms`` old,
whichever comes first, so a quiet market is stored within ``max_ms`` and a busy one in large,
efficient transactions. It also remembers every stream id it holds (acknowledged only after
the commit), the dead letters, and the highest and lowest seq per run (for gap detection).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .fastpath import (
    QUOTE_COPY_COLUMNS,
    CopyRows,
    base_micros,
    encode_quotes,
    envelope_time,
    has_no_bools,
    quote_tuples,
    quotes_envelope,
)
from .tables import QUOTES, Poison, Table, decode, grouped_rows


@dataclass(frozen=True)
class BatchPolicy:
    max_rows: int = 5000
    max_ms: int = 100


@dataclass(frozen=True)
class DeadLetter:
    stream_id: str
    reason: str
    raw: str
    run: str | None = None
    seq: int | None = None


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return "" if v is None else str(v)


@dataclass
class Batch:
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    #: keep well-formed batched quotes as binary COPY rows (for a sink that takes them)
    copy_quotes: bool = False
    #: take the hot path (:mod:`.fastpath`) for well-formed batched quotes
    fast: bool = True
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    #: rows already in the binary COPY format, per table (see :mod:`.fastpath`)
    encoded: dict[str, CopyRows] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    #: per run, the seqs in the order the entries came (for gap detection)
    seqs: dict[str, list[int]] = field(default_factory=dict)
    #: (stream id, envelope text) of every usable entry, to retry them one by one
    raws: list[tuple[str, Any]] = field(default_factory=list)
    envelopes: int = 0
    row_count: int = 0
    started: float = 0.0  # time.monotonic() of the first entry
    newest_ms: int = 0  # envelope ts of the newest event (for lag in seconds)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def empty(self) -> bool:
        return not self.ids

    def full(self) -> bool:
        return self.row_count + len(self.dead) >= self.policy.max_rows

    def due(self, now: float | None = None) -> bool:
        if self.empty:
            return False
        now = time.monotonic() if now is None else now
        return self.full() or (now - self.started) * 1000.0 >= self.policy.max_ms

    def remaining_s(self, now: float | None = None) -> float:
        """Seconds until the batch is due by age (0 when due or empty)."""
        if self.empty:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, self.policy.max_ms / 1000.0 - (now - self.started))

    def add(self, stream_id: Any, fields: dict[Any, Any] | None) -> None:
        """Add one stream entry (``fields`` as redis-py returns them; None for an entry that
        was deleted while pending)."""
        sid = _text(stream_id)
        if self.empty:
            self.started = time.monotonic()
        self.ids.append(sid)
        raw = None
        if fields:
            raw = fields.get(b"e", fields.get("e"))
            if self.fast and raw is not None and self._add_fast(sid, raw):
                return
        try:
            if fields is None:
                raise Poison("entry was deleted from the stream before it was written")
            env = decode(raw)
        except Poison as exc:
            self.dead.append(DeadLetter(sid, str(exc), _text(raw) if raw else _text(fields)))
            return
        try:
            groups = grouped_rows(env)
        except Poison as exc:
            self.dead.append(DeadLetter(sid, f"{env.type}: {exc}", _text(raw), env.run, env.seq))
            self.seqs.setdefault(env.run, []).append(env.seq)  # it did reach us: not a gap
            return
        self.envelopes += 1
        self.raws.append((sid, raw))
        self.seqs.setdefault(env.run, []).append(env.seq)
        if env.ts > self.newest_ms:
            self.newest_ms = env.ts
        for table, rows in groups:
            bucket = self.rows.get(table.name)
            if bucket is None:
                bucket = self.rows[table.name] = []
                self.tables[table.name] = table
            bucket.extend(rows)
            self.row_count += len(rows)

    def _add_fast(self, sid: str, raw: Any) -> bool:
        """A well-formed batched ``quotes`` envelope, by the hot path; False for anything
        else, which :meth:`add` then decodes and checks in full."""
        head = quotes_envelope(raw)
        if head is None:
            return False
        run, seq, ts, items = head
        if self.copy_quotes:
            base = base_micros(ts)
            data = None if base is None else encode_quotes(run, seq, base, items, has_no_bools(raw))
            if data is None:
                return False
            buf = self.encoded.get(QUOTES.name)
            if buf is None:
                buf = self.encoded[QUOTES.name] = CopyRows(QUOTES, QUOTE_COPY_COLUMNS)
            buf.add(data, len(items))
        else:
            dt = envelope_time(ts)
            rows = None if dt is None else quote_tuples(dt, run, seq, items)
            if rows is None:
                return False
            bucket = self.rows.get(QUOTES.name)
            if bucket is None:
                bucket = self.rows[QUOTES.name] = []
                self.tables[QUOTES.name] = QUOTES
            bucket.extend(rows)
        self.envelopes += 1
        self.raws.append((sid, raw))
        self.seqs.setdefault(run, []).append(seq)
        if ts > self.newest_ms:
            self.newest_ms = ts
        self.row_count += len(items)
        return True

    def by_table(self) -> list[tuple[Table, list[tuple]]]:
        return [(self.tables[name], rows) for name, rows in self.rows.items()]
