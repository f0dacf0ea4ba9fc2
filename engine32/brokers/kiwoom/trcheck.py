"""``python -m engine32 --check-trs``: does this OpenAPI+ installation still have every TR
input and output field the adapter uses (:data:`engine32.brokers.kiwoom.tr.USED_FIELDS`)?

OpenAPI+ keeps its TR definitions in ``C:/OpenAPI/data/<trcode>.enc``: a zip archive holding
``<TRCODE>.dat``, cp949 text in which every record is a block::

    [INPUT]                         ← the line before @START says INPUT or OUTPUT
    @START_opt10075=...
        계좌번호 = ...
    @END_opt10075

The reading rules are pykiwoom's (``pykiwoom/parser.py``: ``read_enc``, ``parse_block``,
``parse_dat``). pykiwoom itself is not imported: ``import pykiwoom.parser`` runs
``pykiwoom/__init__`` → ``manager`` → ``kiwoom``, which imports QAxContainer, pythoncom and
pandas at import time, and pip cannot install it where the tests run (it requires pywin32).
A Kiwoom update that renames a field is then caught here before a trade.
"""

import os
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

from .tr import USED_FIELDS

DEFAULT_DIR = "C:/OpenAPI/data"


class TrDefinition:
    """The input and output field names of one TR, by record."""

    def __init__(self, trcode: str) -> None:
        self.trcode = trcode
        self.inputs: Dict[str, List[str]] = {}
        self.outputs: Dict[str, List[str]] = {}

    def input_fields(self) -> List[str]:
        return [f for fields in self.inputs.values() for f in fields]

    def output_fields(self) -> List[str]:
        return [f for fields in self.outputs.values() for f in fields]


def parse_dat(trcode: str, text: str) -> TrDefinition:
    """pykiwoom's parse_dat: blocks from the line before ``@START`` to ``@END``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("@START")]
    ends = [i for i, line in enumerate(lines) if line.startswith("@END")]
    definition = TrDefinition(trcode)
    for start, end in zip(starts, ends):
        kind = lines[start - 1] if start > 0 else ""
        record = lines[start].split("_", 1)[1].split("=")[0].strip() if "_" in lines[start] else ""
        fields = [line.split("=")[0].strip() for line in lines[start + 1 : end]]
        fields = [f for f in fields if f]
        target = definition.inputs if "INPUT" in kind else definition.outputs
        target.setdefault(record, []).extend(fields)
    return definition


def read_enc(path: str, trcode: str) -> TrDefinition:
    """pykiwoom's read_enc: the archive's ``<TRCODE>.dat`` in cp949."""
    with zipfile.ZipFile(path) as archive:
        names = {n.upper(): n for n in archive.namelist()}
        name = names.get(trcode.upper() + ".DAT")
        if name is None:
            raise ValueError("{} holds no {}.dat".format(path, trcode.upper()))
        text = archive.read(name).decode("cp949")
    return parse_dat(trcode, text)


def check(
    data_dir: str, used: Optional[Dict[str, Tuple[Sequence[str], Sequence[str]]]] = None
) -> List[str]:
    """Problems in words (empty: every TR and field is there)."""
    used = USED_FIELDS if used is None else used
    problems = []
    for trcode, (inputs, outputs) in sorted(used.items()):
        path = os.path.join(data_dir, trcode + ".enc")
        if not os.path.exists(path):
            problems.append("{}: {} is missing".format(trcode, path))
            continue
        try:
            definition = read_enc(path, trcode)
        except (zipfile.BadZipFile, ValueError, UnicodeDecodeError, OSError) as exc:
            problems.append("{}: cannot read {}: {}".format(trcode, path, exc))
            continue
        have_in, have_out = set(definition.input_fields()), set(definition.output_fields())
        for field in inputs:
            if field not in have_in:
                problems.append("{}: input field {!r} is gone".format(trcode, field))
        for field in outputs:
            if field not in have_out:
                problems.append("{}: output field {!r} is gone".format(trcode, field))
    return problems


def main(data_dir: str = DEFAULT_DIR) -> int:
    if not os.path.isdir(data_dir):
        print(
            "{} is not a folder: is OpenAPI+ installed there? (--openapi-dir names another)".format(
                data_dir
            )
        )
        return 2
    problems = check(data_dir)
    count = sum(len(i) + len(o) for i, o in USED_FIELDS.values())
    if problems:
        print("OpenAPI+ TR definitions in {}: {} problem(s)".format(data_dir, len(problems)))
        for problem in problems:
            print("  " + problem)
        print("the adapter would read empty values for these: update engine32/brokers/kiwoom/tr.py")
        return 1
    print("OpenAPI+ TR definitions in {}: all {} TRs and {} fields the engine uses are there".format(
        data_dir, len(USED_FIELDS), count))  # fmt: skip
    return 0
