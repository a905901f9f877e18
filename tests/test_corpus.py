"""Public CSV test files written by others, loaded into PostgreSQL and read back."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from csvpg.engine import run
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
    from csvpg.sniff import detect_delimiter, detect_encoding

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


@pytest.mark.parametrize(
    ("path", "words"),
    [
        # CRLF lines, then a last line ending in a bare LF.
        ("messy/messytables/simple.psv", "simple.psv, line 29: unquoted newline found in data"),
        # Record 161 has one field less than the header.
        ("csvw/manifest.csv", "manifest.csv, line 161: missing data for column"),
    ],
)
def test_malformed_files_fail_whole_and_say_where(
    db, tmp_path: Path, path: str, words: str
) -> None:
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(CORPUS / path), sink='mode = "rebuild"\ntable = "t"'))
    result = run(job)
    assert result.exit_code == 1
    assert words in result.files[0].error
    assert result.files[0].hint
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.t",)).fetchone()[0] is None
