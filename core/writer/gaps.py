"""Holes in the history, found two ways.

- **seq**: within a run every envelope has the next ``seq`` (the engine starts each run at 1).
  A seq that never reached the writer (the engine dropped it, or the stream lost it) shows as
  a jump between two consecutive envelopes of the run.
- **trimmed**: the engine trims ``P:events``. When the group's position (last-delivered-id)
  is before the stream's first entry and the stream's counters say entries were removed that
  the group never read (``entries-added − length > entries-read``), those entries are gone.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The seq the engine gives the first event of a run.
FIRST_SEQ = 1


@dataclass(frozen=True)
class Gap:
    kind: str  # "seq" or "trimmed"
    run: str = ""
    first_missing_seq: int | None = None
    last_missing_seq: int | None = None
    lost_entries: int | None = None
    after_stream_id: str | None = None
    before_stream_id: str | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        if self.kind == "seq":
            return f"seq:{self.run}:{self.first_missing_seq}:{self.last_missing_seq}"
        return f"trimmed:{self.after_stream_id}"

    def row(self) -> tuple:
        return (
            self.key,
            self.kind,
            self.run,
            self.first_missing_seq,
            self.last_missing_seq,
            self.lost_entries,
            self.after_stream_id,
            self.before_stream_id,
            self.detail,
        )


def seq_gaps(
    known: dict[str, int], seqs: dict[str, list[int]]
) -> tuple[list[Gap], dict[str, tuple[int, int]]]:
    """Gaps in ``seqs`` (per run, the seqs of a batch) given the highest seq already written
    per run (``known``; a run not in it is new). Returns the gaps and, per run, the (lowest,
    highest) seq of the batch. A seq at or below the known highest (a redelivery, or an entry
    claimed late from a dead consumer) is not a gap."""
    gaps: list[Gap] = []
    bounds: dict[str, tuple[int, int]] = {}
    for run, batch in seqs.items():
        ordered = sorted(set(batch))
        last = known.get(run)
        if last is None:
            last = FIRST_SEQ - 1
        for s in ordered:
            if s > last + 1:
                gaps.append(
                    Gap(
                        "seq",
                        run,
                        last + 1,
                        s - 1,
                        lost_entries=None,
                        detail=f"{s - 1 - last} event(s) of run {run} never reached the writer",
                    )
                )
            if s > last:
                last = s
        bounds[run] = (ordered[0], ordered[-1])
    return gaps, bounds


def stream_id_key(sid: str) -> tuple[int, int]:
    ms, _, n = sid.partition("-")
    return int(ms), int(n or 0)


def trimmed_gap(stream: dict, group: dict) -> Gap | None:
    """A trimmed gap from ``XINFO STREAM`` and the group's ``XINFO GROUPS`` entry (redis-py
    dicts, values as bytes or str), or None."""

    def s(v: object) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    first = stream.get("first-entry")
    added = stream.get("entries-added")
    length = stream.get("length")
    if not first or added is None or length is None:
        return None
    first_id = s(first[0])
    delivered = s(group.get("last-delivered-id") or "0-0")
    if stream_id_key(delivered) >= stream_id_key(first_id):
        return None  # the group is already inside what the stream holds
    read = group.get("entries-read")
    if read is None:
        if delivered != "0-0":
            return None  # cannot count
        read = 0
    removed = int(added) - int(length)  # entries trimmed from the head, ever
    lost = removed - int(read)
    if lost <= 0:
        return None
    return Gap(
        "trimmed",
        lost_entries=lost,
        after_stream_id=delivered,
        before_stream_id=first_id,
        detail=f"{lost} stream entries were trimmed from P:events before the writer read them",
    )
