"""Every file of the corpora under tests/data/ through ``csvpg infer`` + ``csvpg run``,
the loaded table compared cell by cell with an independent reader: Python's ``csv``
with the file's true dialect (declared below, by a person who read the file), or
csv-spectrum's expected JSON.

Each file is *exact* (every record loaded as written), *explained* (every record that
did not load is a reject with its line, the rest exact), *refused* (the run failed the
file and said why; nothing silent), or *wrong* (a row lost or a cell changed while the
run said it loaded). Wrong must be 0. The columns are loaded as text: the reading is
under test here, the types are tested in test_infer.py.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from csvpg import Option, Transform, hookimpl
from csvpg.api import run
from csvpg.infer.guess import infer_file, job_for, to_toml
from csvpg.interfaces import Batch, Relation
from tests.conftest import CORPUS


@dataclass(frozen=True)
class Truth:
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8-sig"
    header: bool = True
    skip: int = 0


NO_HEADER = Truth(header=False)
TRUTH: dict[str, Truth] = {
    "duckdb/auto/backslash_escape.csv": Truth("|", escape="\\", header=False),
    "duckdb/auto/pipe_delim_quote.csv": Truth("|", header=False),
    "duckdb/auto/semicolon_quote.csv": Truth(";", header=False),
    "duckdb/auto/tab.csv": Truth("\t", header=False),
    "duckdb/encodings/latin1.csv": Truth(encoding="latin-1"),
    "duckdb/encodings/shift_jis.csv": Truth(encoding="shift_jis"),
    "duckdb/encodings/utf16.csv": Truth(encoding="utf-16"),
    "duckdb/test/invalid_utf.csv": Truth("|", header=False),
    "duckdb/test/quoted_newline.csv": NO_HEADER,
    "duckdb/nullpadding.csv": NO_HEADER,
    "duckdb/mixed_new_line.csv": NO_HEADER,
    "duckdb/test/mixed_line_endings.csv": NO_HEADER,
    "duckdb/test/force_not_null.csv": NO_HEADER,
    "duckdb/lineitem-carriage.csv": Truth("|"),
    "duckdb/nullbyte.csv": Truth("|"),
    "duckdb/nullpadding_header.csv": Truth(skip=1),
    "duckdb/real/greek_utf8.csv": Truth("|", header=False),
    "duckdb/unescaped_quotes/unescaped_quote.csv": Truth(";"),
    "csvw/test019.csv": NO_HEADER,
    "csvw/test051.csv": Truth(skip=2),
    "csvw/test057.csv": Truth(skip=1),
    "csvw/tree-ops.tsv": Truth("\t"),
    "messy/messytables/null.csv": NO_HEADER,
    "messy/messytables/simple.ssv": Truth(";"),
    "messy/messytables/simple.psv": Truth("|"),
    "messy/messytables/spanish_chars.csv": Truth(encoding="cp1252"),
    "messy/messytables/weird_head_padding.csv": Truth(";", skip=11),
    "messy/messytables/excel_pasting.csv": Truth(skip=3),
    "messy/messytables/mixedGLB.csv": Truth(skip=3),
}
#: The cases built for each way a file was misread (see test_reading.py), beside the
#: public corpora.
CASES = CORPUS.parent / "cases"
TRUTH.update(
    {
        "../cases/literal_quotes.tsv": Truth("\t", quote="\x00"),
        "../cases/no_header.csv": NO_HEADER,
        "../cases/preamble.csv": Truth(";", skip=3),
        "../cases/bad_byte_utf8.csv": Truth(encoding="utf-8"),
        "../cases/all_quoted.tsv": Truth("\t"),
        "../cases/single_quote.csv": Truth(";", quote="'"),
        "../cases/backslash_escape.csv": Truth("|", escape="\\"),
        "../cases/space_delimited.txt": Truth(" "),
        "../cases/banner_preamble.csv": Truth(skip=3),
    }
)
FILES = sorted(
    str(p.relative_to(CORPUS)) if p.is_relative_to(CORPUS) else f"../cases/{p.name}"
    for p in [*CORPUS.rglob("*"), *CASES.iterdir()]
    if p.suffix in (".csv", ".tsv", ".psv", ".ssv", ".txt") and p.is_file()
)
RESULTS: dict[str, str] = {}
WHY: dict[str, str] = {}


def expected_records(path: str) -> list[tuple[int, list[str]]]:
    """(line, fields) of every data record, by the true dialect (or the JSON)."""
    raw = (CORPUS / path).read_bytes()
    if path.startswith("csv-spectrum/"):
        rows = json.loads((CORPUS / path.replace("csvs", "json")).with_suffix(".json").read_text())
        return [(0, list(r.values())) for r in rows]
    t = TRUTH.get(path, Truth())
    text = raw.decode(t.encoding, errors="surrogateescape")
    lines = io.StringIO(text, newline="")
    for _ in range(t.skip):
        lines.readline()
    reader = csv.reader(
        lines,
        delimiter=t.delimiter,
        quotechar=t.quote,
        escapechar=t.escape,
        doublequote=t.escape is None,
    )
    out: list[tuple[int, list[str]]] = []
    start = t.skip + 1
    try:
        for record in reader:
            line, start = start, t.skip + reader.line_num + 1
            if record:
                out.append((line, record))
    except csv.Error:
        out.append((start, ["<unparseable>"]))
    return out[1:] if t.header else out


def judge(path: str, loaded: list[tuple], rejected: set[int], nulls: set[str]) -> str:
    records = expected_records(path)
    want = [[v for v in r] for _, r in records]
    got = [["" if v is None else str(v) for v in row] for row in loaded]
    if got == want:
        return "exact"
    # Every loaded row must be a record of the file (in any order: the careful path
    # loads from a staging table); every record that did not load, a reject.
    unused = list(range(len(want)))
    for row in got:
        match = next((i for i in unused if _same(row, want[i], nulls)), None)
        if match is None:
            WHY[path] = f"a loaded row is no record of the file: {row[:4]}"
            return "wrong"
        unused.remove(match)
    missing = [records[i][0] for i in unused if records[i][0] not in rejected]
    WHY[path] = f"lines {missing[:5]} neither loaded nor rejected"
    return "wrong" if missing else "explained"


def _same(row: list[str], want: list[str], nulls: set[str]) -> bool:
    return len(row) == len(want) and all(
        g == w or (g == "" and w in nulls) for g, w in zip(row, want, strict=True)
    )


class AsRead(Transform):
    """Every row on as it came: a transform that needs values puts the file on the row
    path (Python's csv, batches), which must read as right as COPY's."""

    type = "as_read"
    needs_rows = True
    one_to_one = True
    options: ClassVar[dict[str, Option]] = {"type": Option(str)}

    def wrap(self, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
        return batches


class RowPath:
    @hookimpl
    def register_transforms(self) -> list[type[Transform]]:
        return [AsRead]


#: The cases also go through the row path.
ROW_PATH = [f for f in FILES if f.startswith("../cases/")]


#: Files with a preamble, also run as a hand-written job would read them: without the
#: skip_rows infer wrote.
BY_HAND = ["../cases/banner_preamble.csv", "../cases/preamble.csv"]


@pytest.mark.parametrize("path", FILES)
def test_conformance(db, tmp_path: Path, path: str) -> None:
    conform(db, tmp_path, path)


@pytest.mark.parametrize("path", ROW_PATH)
def test_conformance_on_the_row_path(db, tmp_path: Path, path: str) -> None:
    conform(db, tmp_path, path, rows=True)


@pytest.mark.parametrize("path", BY_HAND)
def test_conformance_of_a_job_without_skip_rows(db, tmp_path: Path, path: str) -> None:
    conform(db, tmp_path, path, by_hand=True)


def conform(db, tmp_path: Path, path: str, *, rows: bool = False, by_hand: bool = False) -> None:
    """Infer the file's job, run it, judge the table (under ``path``, with `` (rows)``
    for the row path, `` (by hand)`` without skip_rows)."""
    key = f"{path} (rows)" if rows else f"{path} (by hand)" if by_hand else path
    guess = infer_file(str(CORPUS / path))
    job = job_for(guess)
    job.pop("columns", None)
    if by_hand:
        assert job["format"].pop("skip_rows", 0), "infer found the preamble"
    job["database"] = {"dsn": db.dsn, "schema": db.schema}
    # Every bad row is judged (in the rejects, or wrong), not cut short by the limit.
    job["sink"] = {"mode": "rebuild", "table": "t", "max_rejects": "100%"}
    if rows:
        job["transform"] = [{"type": "as_read"}]
    (tmp_path / "job.toml").write_text(to_toml(job))
    summary = run(tmp_path / "job.toml", force=True, plugins=[RowPath()] if rows else ())
    f = summary.files[0]
    if f.status != "loaded":
        RESULTS[key] = "refused"
        assert f.error, "a file that did not load says why"
        return
    rejected = {
        line
        for (line,) in db.execute(
            "SELECT line FROM csvpg.rejects WHERE run_id = %s", (summary.run_id,)
        ).fetchall()
    }
    loaded = db.rows("t") if "t" in db.tables() else []
    nulls = set(job["format"].get("null_values", [""]))
    RESULTS[key] = verdict = judge(path, loaded, rejected, nulls)
    assert verdict != "wrong", WHY[path]


def test_conformance_summary(capsys) -> None:
    """Runs last (by name order within the module): the summary line."""
    if not RESULTS:
        pytest.skip("the corpus files did not run")
    counts = {
        k: sum(v == k for v in RESULTS.values()) for k in ("exact", "explained", "refused", "wrong")
    }
    on_rows = sum(k.endswith(" (rows)") for k in RESULTS)
    by_hand = sum(k.endswith(" (by hand)") for k in RESULTS)
    with capsys.disabled():
        print(
            f"\nconformance: {len(RESULTS) - on_rows - by_hand} files (and {on_rows} on the "
            f"row path, {by_hand} without skip_rows): "
            f"{counts['exact']} exact / "
            f"{counts['explained']} with every non-loaded row in rejects / "
            f"{counts['refused']} refused with a reason / {counts['wrong']} wrong"
        )
    assert counts["wrong"] == 0


_ = tomllib  # the job is plain TOML: tomllib reads what to_toml writes
