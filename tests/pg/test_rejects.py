"""Rejects instead of failures: every bad row is set aside with its line and reason,
the rest loads, and the counts prove nothing was lost."""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csvpg.api import run
from csvpg.cli.main import main
from csvpg.pg.rejects import over_limit, reject_limit
from csvpg.summary import RunSummary
from tests.conftest import job_toml

DIRTY = {
    "ragged": (
        b"id,name\n1,a\n2,b,extra\n3\n4,d\n",
        "",
        [(3, None, "3 fields where the header has 2"), (4, None, "1 field where the header has 2")],
    ),
    "unclosed_quote": (
        b'id,name\n1,a\n2,"never closed\n3,c\n',
        "",
        [(3, None, "malformed CSV: a quoted field is never closed")],
    ),
    "bad_dates": (
        b"id,day\n1,2024-01-31\n2,2024-02-30\n3,someday\n4,2024-12-01\n",
        'day = "date"',
        [
            (3, "day", 'date/time field value out of range: "2024-02-30"'),
            (4, "day", 'invalid input syntax for type date: "someday"'),
        ],
    ),
    "int_overflow": (
        b"id,v\n1,a\n99999999999,b\n3,c\n",
        'id = "integer"',
        [(3, "id", 'value "99999999999" is out of range for type integer')],
    ),
    "invalid_utf8": (
        b"id,name\n1,Zo\xc3\xab\n2,bad\xff\xfe\n3,ok\n",
        "",
        [(3, None, "bytes that are not valid utf-8")],
    ),
    "nul_byte": (
        b"id,name\n1,a\x00b\n2,c\n",
        "",
        [(2, None, "a NUL byte (PostgreSQL text cannot hold one)")],
    ),
}


def run_dirty(db, tmp_path: Path, data: bytes, columns: str, sink: str = "", fmt: str = ""):
    path = tmp_path / "dirty.csv"
    path.write_bytes(data)
    job = tmp_path / "job.toml"
    extra = f"[columns]\n{columns}\n" if columns else ""
    if "max_rejects" not in sink:  # these small files reject more than the default allows
        sink = f"{sink}\nmax_rejects = 10"
    job.write_text(job_toml(db, str(path), sink=sink, extra=extra, fmt=fmt or 'encoding = "utf-8"'))
    return run(job, force=True)  # the same path holds new content each time


def rejects_of(db, summary: RunSummary) -> list[tuple]:
    return db.execute(
        "SELECT line, column_name, reason, file, raw FROM csvpg.rejects"
        " WHERE run_id = %s ORDER BY line",
        (summary.run_id,),
    ).fetchall()


@pytest.mark.parametrize("case", sorted(DIRTY))
def test_dirty_file_keeps_good_rows_and_names_bad_ones(db, tmp_path: Path, case: str) -> None:
    data, columns, expected = DIRTY[case]
    summary = run_dirty(db, tmp_path, data, columns)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    got = rejects_of(db, summary)
    assert [(line, col, reason) for line, col, reason, _, _ in got] == expected
    assert all(file == f.file for _, _, _, file, _ in got)
    assert all(raw for *_, raw in got), "each reject keeps its raw line"
    assert f.rejected == len(expected)
    assert f.rows_read == f.inserted + f.updated + f.unchanged + f.collapsed + f.rejected
    assert db.count("dirty") == f.inserted


def test_three_bad_rows_among_100000(db, tmp_path: Path) -> None:
    bad = {2_001: "x1", 50_002: "1.5", 99_999: "99999999999"}
    lines = ["id,amount"] + [f"{bad.get(n, n)},{n % 97}.25" for n in range(2, 100_002)]
    summary = run_dirty(
        db,
        tmp_path,
        ("\n".join(lines) + "\n").encode(),
        'id = "integer"\namount = "numeric(8,2)"',
        sink='mode = "upsert"\nprimary_key = ["id"]',
    )
    f = summary.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (100_000, 99_997, 3)
    assert db.count("dirty") == 99_997
    assert [(line, col) for line, col, *_ in rejects_of(db, summary)] == [
        (2_001, "id"),
        (50_002, "id"),
        (99_999, "id"),
    ]


def test_too_many_rejects_fail_the_file_and_keep_the_table(db, tmp_path: Path) -> None:
    data, columns, _ = DIRTY["bad_dates"]
    first = run_dirty(db, tmp_path, b"id,day\n9,2020-01-01\n", columns)
    assert first.exit_code == 0
    summary = run_dirty(db, tmp_path, data, columns, sink="max_rejects = 1")
    f = summary.files[0]
    assert summary.exit_code == 1
    assert "more than max_rejects = 1 allows" in f.error
    assert "line 3: date/time field value out of range" in f.error
    assert db.count("dirty") == 1, "the failed file added nothing"
    assert len(rejects_of(db, summary)) == 2, "its rejects are kept to say why"


@pytest.mark.parametrize(("limit", "ok"), [('"10%"', False), ('"50%"', True)])
def test_percentage_limit(db, tmp_path: Path, limit: str, ok: bool) -> None:
    data, columns, _ = DIRTY["bad_dates"]  # 2 of 4 rows are bad: 50 %
    summary = run_dirty(db, tmp_path, data, columns, sink=f"max_rejects = {limit}")
    assert (summary.exit_code == 0) is ok


def test_clean_files_take_the_fast_path(db, tmp_path: Path) -> None:
    summary = run_dirty(db, tmp_path, b"id,day\n1,2024-01-31\n", 'day = "date"')
    assert summary.files[0].details["careful"] is False


def test_rejects_csv_beside_the_job(db, tmp_path: Path) -> None:
    data, columns, expected = DIRTY["bad_dates"]
    summary = run_dirty(db, tmp_path, data, columns, sink="rejects_csv = true")
    (path,) = (tmp_path / "rejects").glob("*.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(int(r["line"]), r["column"], r["reason"]) for r in rows] == expected
    assert rows[0]["value"] == "2024-02-30"
    assert summary.run_id[:8] in path.name


def test_converted_columns_reject_what_does_not_convert(db, tmp_path: Path) -> None:
    data = (
        "kontonr;datum;saldo\n1;31.01.2024;1.234,56\n2;30.02.2024;7,5\n3;01.03.2024;zwölf\n".encode(
            "latin-1"
        )
    )
    columns = (
        'kontonr = "integer"\n'
        'datum = { type = "date", format = "DD.MM.YYYY" }\n'
        'saldo = { type = "numeric(12,2)", decimal = ",", thousands = "." }'
    )
    summary = run_dirty(db, tmp_path, data, columns, fmt='encoding = "latin-1"')
    f = summary.files[0]
    assert (f.inserted, f.rejected) == (1, 2)
    assert [(line, col) for line, col, *_ in rejects_of(db, summary)] == [
        (3, "datum"),
        (4, "saldo"),
    ]
    (row,) = db.rows("dirty")
    assert (row[0], row[1].isoformat(), str(row[2])) == (1, "2024-01-31", "1234.56")


row = st.one_of(
    st.tuples(st.integers(0, 30), st.text("abc", max_size=3)).map(lambda t: f"{t[0]},{t[1]}"),
    st.sampled_from(["x,bad-id", "99999999999,overflow", "1,2,3", "7"]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=st.lists(row, max_size=30), second=st.lists(row, max_size=30))
def test_every_row_is_accounted_for(
    db, tmp_path: Path, first: list[str], second: list[str]
) -> None:
    """Property: read = inserted + updated + unchanged + collapsed + rejected, and the table
    holds the last good value of every good key, over two upserts of dirty files."""
    table = "acc_" + uuid.uuid4().hex[:8]
    expected: dict[int, str] = {}
    for lines in (first, second):
        summary = run_dirty(
            db,
            tmp_path,
            ("id,v\n" + "".join(f"{line}\n" for line in lines)).encode(),
            'id = "integer"',
            sink=f'mode = "upsert"\nprimary_key = ["id"]\ntable = "{table}"\nmax_rejects = "100%"',
        )
        f = summary.files[0]
        good = {}
        for line in lines:
            fields = line.split(",")
            if len(fields) == 2 and fields[0].isdigit() and int(fields[0]) < 2**31:
                good[int(fields[0])] = fields[1]
        if lines and not good:  # every row rejected: the file fails, whatever the limit
            assert summary.exit_code == 1 and "none could be loaded" in (f.error or "")
        else:
            assert summary.exit_code == 0, f.error
            assert f.rows_read == len(lines)
            assert f.rows_read == f.inserted + f.updated + f.unchanged + f.collapsed + f.rejected
            expected.update(good)
        if table in db.tables():  # not when the first file already failed
            assert {k: v or "" for k, v in db.rows(table)} == expected


@pytest.mark.parametrize("limit", ['"100%"', "1000"])
def test_a_file_whose_every_row_is_rejected_fails(db, tmp_path: Path, limit: str, capsys) -> None:
    data, columns = b"id,day\n1,someday\n2,2024-02-30\n", 'day = "date"'
    path = tmp_path / "dirty.csv"
    path.write_bytes(data)
    job = tmp_path / "job.toml"
    extra = f"[columns]\n{columns}\n"
    job.write_text(job_toml(db, str(path), sink=f"max_rejects = {limit}", extra=extra))
    assert main(["run", str(job), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    (f,) = summary["files"]
    assert f["status"] == "failed" and summary["status"] == "failed"
    assert "all 2 rows rejected, none could be loaded (first: line 2: invalid input" in f["error"]
    assert "dirty" not in db.tables()
    assert [(line, col) for line, col, *_ in rejects_of(db, SimpleNamespace(**summary))] == [
        (2, "day"),
        (3, "day"),
    ], "its rejects say why"


@pytest.mark.parametrize(
    ("rows", "bad", "ok"),
    [(50, 1, False), (200, 2, True), (200, 3, False), (150_000, 1000, True)],
)
def test_the_default_max_rejects_is_1_percent_up_to_1000(
    db, tmp_path: Path, rows: int, bad: int, ok: bool
) -> None:
    lines = ["id"] + [f"x{n}" if n < bad else str(n) for n in range(rows)]
    path = tmp_path / "dirty.csv"
    path.write_text("\n".join(lines) + "\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(path), extra='[columns]\nid = "integer"\n'))
    f = run(job, force=True).files[0]
    assert (f.status == "loaded") is ok, f.error
    if not ok:
        assert "more than max_rejects = '1% up to 1000' allows" in (f.error or "")


def test_the_limit_caps_a_share_of_a_big_file() -> None:
    limit = reject_limit("1% up to 1000")
    assert limit == (1000, 0.01)
    assert not over_limit(1000, 1_000_000, limit) and over_limit(1001, 1_000_000, limit)
    assert not over_limit(2, 200, limit) and over_limit(1, 50, limit)
    assert over_limit(5, 5, reject_limit("100%")), "every row rejected"
    assert not over_limit(0, 0, reject_limit(0)), "an empty file rejects nothing"
