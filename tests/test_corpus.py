"""Public CSV test files written by others, loaded into PostgreSQL and read back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from csvpg.api import run
from csvpg.naming import safe_names
from tests.conftest import CORPUS, job_toml

SPECTRUM = CORPUS / "csv-spectrum"
CASES = sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv"))


def test_corpus_is_present() -> None:
    assert len(CASES) == 11, f"expected csv-spectrum's 11 files under {SPECTRUM}"


@pytest.mark.parametrize("case", CASES)
def test_csv_spectrum_rows_arrive_exactly(db, tmp_path: Path, case: str) -> None:
    expected = json.loads((SPECTRUM / "json" / f"{case}.json").read_text(encoding="utf-8"))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(SPECTRUM / "csvs" / f"{case}.csv"), sink='mode = "rebuild"'))
    result = run(job)
    assert result.exit_code == 0, result.files[0].error
    headers = list(expected[0])
    names = safe_names(headers)
    got = db.rows(case)
    want = [tuple(row[h] for h in headers) for row in expected]
    assert got == want
    assert list(db.columns(case)) == names


@pytest.mark.parametrize(
    "path",
    [
        "duckdb/auto/utf8bom.csv",
        "duckdb/encodings/latin1.csv",
        "duckdb/encodings/utf16.csv",
        "messy/messytables/spanish_chars.csv",
        "messy/messytables/simple.ssv",
        "messy/country-codes/country-codes.csv",
        "csvw/tree-ops.tsv",
    ],
)
def test_real_world_files_load_every_row(db, tmp_path: Path, path: str) -> None:
    """Encoding and dialect detected; every record of the file is in the table."""
    from csvpg.detect import detect_delimiter, detect_encoding

    raw = (CORPUS / path).read_bytes()
    enc = detect_encoding(raw)
    text = raw[len(enc.bom) :].decode(enc.codec)
    # Python's csv module is the independent reader the count is checked against.
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=detect_delimiter(text)))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(CORPUS / path), sink='mode = "rebuild"\ntable = "t"'))
    result = run(job)
    assert result.exit_code == 0, result.files[0].error
    assert db.count("t") == len(records) - 1
    assert result.files[0].rows_read == len(records) - 1


def test_mixed_line_endings_load_on_the_careful_path(db, tmp_path: Path) -> None:
    """CRLF lines and a last line ending in a bare LF: COPY refuses the mix, so the
    file is parsed in Python instead, and every row arrives."""
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(CORPUS / "messy/messytables/simple.psv"), sink='table = "t"'))
    result = run(job)
    assert result.exit_code == 0, result.files[0].error
    assert result.files[0].details["careful"]
    assert result.files[0].rejected == 0
    assert db.count("t") == result.files[0].rows_read == 28


def test_ragged_records_become_rejects(db, tmp_path: Path) -> None:
    """csvw's manifest.csv: from line 161 on, its records have 8 fields, not 11."""
    job = tmp_path / "job.toml"
    sink = 'table = "t"\nmax_rejects = 93'
    job.write_text(job_toml(db, str(CORPUS / "csvw/manifest.csv"), sink=sink))
    result = run(job)
    f = result.files[0]
    assert result.exit_code == 0, f.error
    assert f.rejected == 93
    assert f.rows_read == f.inserted + f.rejected == db.count("t") + 93 == 301
    rejects = db.execute(
        "SELECT line, reason FROM csvpg.rejects WHERE run_id = %s ORDER BY line", (result.run_id,)
    ).fetchall()
    lines = [line for line, _ in rejects]
    assert len(lines) == 93 and lines[0] == 161 and lines == sorted(set(lines))
    assert {reason for _, reason in rejects} == {"8 fields where the header has 11"}


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("messy/messytables/simple.psv", "simple.psv, line 29: unquoted newline found in data"),
        ("csvw/manifest.csv", "manifest.csv, line 161: missing data for column"),
    ],
)
def test_strict_jobs_fail_malformed_files_whole(db, tmp_path: Path, path: str, words: str) -> None:
    """With max_rejects = 0 a malformed file fails as a whole and says where."""
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(CORPUS / path), sink='table = "t"\nmax_rejects = 0'))
    result = run(job)
    assert result.exit_code == 1
    assert words in result.files[0].error
    assert result.files[0].hint
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.t",)).fetchone()[0] is None
