"""Bad rows set aside COPY by COPY (csvpg.pg.resume): the same rejects and the same
loaded rows as the careful path, on every server (ON_ERROR on 17+, restarts before)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csvpg.engine import fileload
from csvpg.events import Warned
from csvpg.hookspecs import hookimpl
from csvpg.pg import resume
from tests.engine.test_run import CountedSource

DDL = "id integer, name text, born date"
HEADER = "id,name,born\n"
GOOD = ["1,ada,1815-12-10", "2,grace,1906-12-09", "3,alan,1912-06-23", "4,edsger,1930-05-11"]


def rejects(db: Any, run_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT line, column_name, value, reason, sqlstate, raw, byte_offset, byte_length"
        " FROM csvpg.rejects"
        " WHERE run_id = %s ORDER BY line NULLS LAST, id",
        (run_id,),
    ).fetchall()


class Both:
    """Loads a file twice into a fresh ``t``: COPY by COPY (the careful path would fail
    the test), then on the careful path; what each loaded and set aside."""

    def __init__(self, db: Any, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.db, self.run, self.mp = db, run, monkeypatch
        self.resumed = 0

    def once(self, data: str | bytes, fmt: str, careful: bool) -> tuple[Any, ...]:
        self.db.execute(f"DROP TABLE IF EXISTS {self.db.schema}.t")
        self.db.execute(f"CREATE TABLE {self.db.schema}.t ({DDL})")
        with self.mp.context() as mp:
            if careful:
                mp.setattr(fileload, "resumable", lambda load: False)
            else:

                def no_careful(*_: Any) -> Any:
                    raise AssertionError("the careful path ran")

                mp.setattr(fileload.FileLoad, "_careful", no_careful)
            job = f'[sink]\ntable = "t"\nmax_rejects = "100%"\n[format]\n{fmt}'
            summary = self.run(job, files={"f.csv": data}, force=True)
        (file,) = summary.files
        assert file.status == "loaded", file.error
        rows = self.db.rows("t", ["id", "name", "born"])
        return (
            (file.rows_read, file.inserted, file.rejected),
            rows,
            rejects(self.db, summary.run_id),
        )

    def __call__(self, data: str | bytes, fmt: str = "") -> tuple[Any, ...]:
        new = self.once(data, fmt, careful=False)
        old = self.once(data, fmt, careful=True)
        assert new == old
        return new


@pytest.fixture
def both(csvpg_db: Any, csvpg_run: Any, monkeypatch: pytest.MonkeyPatch) -> Both:
    return Both(csvpg_db, csvpg_run, monkeypatch)


def test_bad_values_first_last_and_adjacent(both: Both) -> None:
    lines = ["x1,bad,2000-01-01", *GOOD[:2], "5,e,2000-02-30", "six,f,2000-01-01", *GOOD[2:]]
    lines.append("7,g,notadate")
    counts, rows, found = both(HEADER + "\n".join(lines) + "\n")
    assert counts == (8, 4, 4)
    assert [(r[0], r[1], r[2], r[4]) for r in found] == [
        (2, "id", "x1", "22P02"),
        (5, "born", "2000-02-30", "22008"),
        (6, "id", "six", "22P02"),
        (9, "born", "notadate", "22007"),
    ]
    assert found[0][3] == 'invalid input syntax for type integer: "x1"'
    assert found[0][5] == "x1,bad,2000-01-01\n", "the record as the file has it"
    assert [r[0] for r in rows] == [1, 2, 3, 4]


def test_wrong_field_counts_and_a_file_without_a_final_line_end(both: Both) -> None:
    data = HEADER + "1,a,2000-01-01\n2,b\n3,c,2000-01-01,extra\n4,d,2000-01-01\n5,e,x"
    counts, rows, found = both(data)
    assert counts == (5, 2, 3)
    assert [(r[0], r[3]) for r in found] == [
        (3, "2 fields where the header has 3"),
        (4, "4 fields where the header has 3"),
        (6, 'invalid input syntax for type date: "x"'),
    ]
    assert [r[0] for r in rows] == [1, 4]


def test_quoted_line_ends_before_and_in_a_bad_row(both: Both) -> None:
    data = (
        HEADER + '1,"two\nlines",2000-01-01\n2,"three\n\nlines",2000-01-02\n'
        'x,"bad\nrow",2000-01-03\n3,ok,2000-01-04\n4,"a ""quote""\nhere",2000-13-01\n'
        "5,last,2000-01-05\n"
    )
    counts, rows, found = both(data)
    assert counts == (6, 4, 2)
    assert [(r[0], r[1], r[2]) for r in found] == [(7, "id", "x"), (10, "born", "2000-13-01")]
    assert found[0][5] == 'x,"bad\nrow",2000-01-03\n', "the record as the file has it"
    assert [r[1] for r in rows] == ["two\nlines", "three\n\nlines", "ok", "last"]


def test_a_header_and_skip_rows_and_blank_lines(both: Both) -> None:
    data = "exported today\nby someone\n" + HEADER + "1,a,2000-01-01\n\nx,b,2000-01-01\n"
    data += "\n2,c,2000-01-0x\n3,d,2000-01-03\n"
    counts, rows, found = both(data, "skip_rows = 2\n")
    assert counts == (4, 2, 2)
    assert [(r[0], r[1]) for r in found] == [(6, "id"), (8, "born")]
    assert [r[0] for r in rows] == [1, 3]


def test_crlf_line_ends(both: Both) -> None:
    counts, _, found = both(
        (HEADER + "1,a,2000-01-01\nx,b,2000-01-01\n2,c,2000-01-02\n").replace("\n", "\r\n")
    )
    assert counts == (3, 2, 1)
    assert found[0][0] == 3


def test_batches_cut_between_records_find_every_bad_row(
    both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches far smaller than the file: bad rows on both sides of each cut."""
    monkeypatch.setattr(resume, "BATCH_MAX", 64)
    monkeypatch.setattr(resume, "BATCH_MIN", 16)
    lines = [f'{i},"n\n{i}",2000-01-01' if i % 7 else f"{i}x,n,2000-01-01" for i in range(60)]
    counts, _, found = both(HEADER + "\n".join(lines) + "\n")
    assert counts == (60, 51, 9)
    assert [r[2] for r in found] == [f"{i}x" for i in range(0, 60, 7)]


def test_a_not_null_violation_takes_the_careful_path(csvpg_db: Any, csvpg_run: Any) -> None:
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.t (id integer, name text NOT NULL)")
    job = '[sink]\ntable = "t"\nmax_rejects = 5\n'
    summary = csvpg_run(job, files={"f.csv": "id,name\n1,a\n2,\nx,c\n3,d\n"})
    (file,) = summary.files
    assert (file.status, file.inserted, file.rejected) == ("loaded", 2, 2)
    assert [r[:2] for r in rejects(csvpg_db, summary.run_id)] == [(3, "name"), (4, "id")]


def test_past_max_rejects_the_table_stays_as_it_was(csvpg_db: Any, csvpg_run: Any) -> None:
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.t ({DDL})")
    csvpg_db.execute(f"INSERT INTO {csvpg_db.schema}.t VALUES (0, 'before', NULL)")
    data = HEADER + "1,a,2000-01-01\nx,b,2000-01-01\ny,c,2000-01-01\n2,d,2000-01-01\n"
    summary = csvpg_run('[sink]\ntable = "t"\nmax_rejects = 1\n', files={"f.csv": data})
    (file,) = summary.files
    assert file.status == "failed" and "max_rejects" in (file.error or "")
    assert csvpg_db.rows("t", "id") == [(0, "before", None)]


BAD = {0: ["x", "1.5", "9999999999"], 2: ["2000-02-30", "soon", "2000-1-"]}


@st.composite
def files(draw: st.DrawFn) -> tuple[str, set[int], int]:
    """A CSV of (id, name, born) rows, some with a bad cell or a field too many; the
    lines the bad records start on."""
    n = draw(st.integers(1, 40))
    out = io.StringIO()
    out.write(HEADER)
    line, bad = 2, set()
    for i in range(n):
        name = draw(st.sampled_from(["a", "b c", 'say "hi"', "two\nlines", "x,y", "é"]))
        row = [str(i), name, "2001-02-03"]
        kind = draw(st.sampled_from(["good"] * 4 + ["value", "width"]))
        if i == n - 1 and len(bad) == i:
            kind = "good"  # a file of bad rows only fails (tested in test_fileload)
        if kind == "value":
            col = draw(st.sampled_from(sorted(BAD)))
            row[col] = draw(st.sampled_from(BAD[col]))
        elif kind == "width":
            row.append("extra")
        if kind != "good":
            bad.add(line)
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(row)
        out.write(text.getvalue())
        line += text.getvalue().count("\n")
    return out.getvalue(), bad, n


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=files(), batch=st.sampled_from([32, 200, 1 << 20]))
def test_loaded_plus_rejected_is_read_and_the_rejects_are_the_bad_lines(
    both: Both, case: tuple[str, set[int], int], batch: int
) -> None:
    data, bad, n = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(resume, "BATCH_MAX", batch)
        mp.setattr(resume, "BATCH_MIN", min(batch, 16))
        counts, rows, found = both(data)
    read, inserted, rejected = counts
    assert read == n
    assert inserted + rejected == read
    assert len(rows) == inserted
    assert {r[0] for r in found} == bad


@pytest.mark.pg(">= 17")  # before 17 COPY skips nothing and sends no NOTICE
def test_many_skipped_rows_do_not_stall_the_copy(csvpg_db: Any, csvpg_run: Any) -> None:
    """A NOTICE per skipped row (PostgreSQL 17+) is megabytes here: the client reads
    them while it sends, or client and server would each wait for the other."""
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.t ({DDL})")
    data = HEADER + "1,a,2000-01-01\n" + "x,b,2000-01-01\n" * 20_000 + "2,c,2000-01-02\n"
    summary = csvpg_run('[sink]\ntable = "t"\nmax_rejects = "100%"\n', files={"f.csv": data})
    (file,) = summary.files
    assert (file.status, file.inserted, file.rejected) == ("loaded", 2, 20_000)
    lines = csvpg_db.execute(
        "SELECT min(line), max(line), count(DISTINCT line) FROM csvpg.rejects WHERE run_id = %s",
        (summary.run_id,),
    ).fetchone()
    assert lines == (3, 20_002, 20_000)


class Told:
    """The run's warnings, as a user reads them."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @hookimpl
    def track_event(self, event: Any) -> None:
        if isinstance(event, Warned):
            self.messages.append(event.message)


@pytest.mark.parametrize("careful", [False, True], ids=["resumed", "careful"])
def test_the_first_warning_names_the_physical_line(
    csvpg_db: Any, csvpg_run: Any, monkeypatch: pytest.MonkeyPatch, careful: bool
) -> None:
    """Records with line ends inside quotes come first: the bad one is COPY's record 4,
    on the file's line 8, and the warning says line 8."""
    if careful:
        monkeypatch.setattr(fileload, "resumable", lambda load: False)
    notes = ['1,"two\nlines",1815-12-10', '2,"three\nmore\nlines",1906-12-09', "3,ok,1912-06-23"]
    data = HEADER + "\n".join([*notes, "4,bad,not a date", "5,fine,1930-05-11"]) + "\n"
    told = Told()
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.t ({DDL})")
    summary = csvpg_run(
        '[sink]\ntable = "t"\nmax_rejects = 5\n', files={"f.csv": data}, plugins=[told]
    )
    (file,) = summary.files
    assert (file.status, file.rejected) == ("loaded", 1)
    aside = [m for m in told.messages if "setting bad rows aside" in m]
    assert len(aside) == 1, told.messages
    assert "f.csv, line 8, column born: " in aside[0]
    assert rejects(csvpg_db, summary.run_id)[0][0] == 8


class Counted:
    """The plugin that adds the ``counted://`` source (bytes read by each open)."""

    @hookimpl
    def register_sources(self) -> list[type[Any]]:
        return [CountedSource]


def test_a_bad_value_reads_the_file_again_only_as_far_as_it(
    csvpg_db: Any, csvpg_run: Any, tmp_path: Any
) -> None:
    """On PostgreSQL 17+ the file's one COPY skips the rows of bad values; the file is
    read again only as far as the last of them, for their records. Before 17 the fast
    COPY fails on the first, and the file loads again, all of it, COPY by COPY. The first
    record holds a line end in quotes: every line after it is one more than its row."""
    rows, bad = 700_000, (50, 420_000)  # about 20 MB; the second past a batch (8 MiB)
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write('id,name,amount\n1,"two\nlines",1.25\n')
        for i in range(2, rows + 1):
            out.write(f"{i},name {i},{'n/a' if i in bad else i}.25\n")
    size = path.stat().st_size
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.t (id integer, name text, amount numeric)")
    CountedSource.reads = []
    summary = csvpg_run(
        f'[source]\nurl = "counted://{path}"\n[sink]\ntable = "t"\nmax_rejects = 5\n',
        plugins=[Counted()],
    )
    (file,) = summary.files
    assert (file.status, file.inserted, file.rejected) == ("loaded", rows - 2, 2)
    found = rejects(csvpg_db, summary.run_id)
    assert [r[:3] for r in found] == [(52, "amount", "n/a.25"), (420_002, "amount", "n/a.25")]
    assert [r[5] for r in found] == [f"{i},name {i},n/a.25\n" for i in bad]
    with path.open("rb") as f:  # the offsets are the records' own
        for r in found:
            f.seek(r[6])
            assert f.read(r[7]).decode() == r[5]
    first, again = CountedSource.reads
    assert first[0] == size
    if csvpg_db.conn.info.server_version >= resume.SKIPS_FROM:
        assert again[0] < size * 0.9, f"read again: {again[0]:,} of {size:,} bytes"
    else:
        assert again[0] == size


def test_blocks_cut_inside_records_find_every_skipped_row(
    both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file read in blocks far smaller than its records (quoted line ends, records
    over several blocks): each row COPY skipped is found as it is in the file."""
    from csvpg.builtin import format_csv

    monkeypatch.setattr(format_csv, "BLOCK_SIZE", 50)
    lines = [
        f'{i},"{"word " * (i % 5 * 9)}\n{i}",{"2000-01-01" if i % 6 else "2000-02-31"}'
        for i in range(1, 60)
    ]
    counts, rows, found = both(HEADER + "\n".join(lines) + "\n")
    assert counts == (59, 50, 9)
    assert [r[2] for r in found] == ["2000-02-31"] * 9
    assert [r[0] for r in found] == [2 + 2 * (i - 1) for i in range(6, 60, 6)]
    assert [r[0] for r in rows] == [i for i in range(1, 60) if i % 6]


@pytest.mark.parametrize("block", [1 << 20, 7], ids=["1MiB", "7B"])
def test_wrong_widths_blank_lines_and_bad_values_after_them(
    both: Both, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Records of the wrong width (with and without quotes, over two lines), a blank
    line and bad values after them, the file read in blocks of any size: the same
    rejects, on their own lines, as the careful path's."""
    from csvpg.builtin import format_csv

    monkeypatch.setattr(format_csv, "BLOCK_SIZE", block)
    data = (
        HEADER + '1,a,2000-01-01\n2,b,2000-01-02,extra\n3,"c, quoted",2000-01-03\n\n'
        '4,d\n5,e,2000-13-01\n6,"f\ng",2000-01-06\n7,h,2000-01-07\n'
        '8,"i, j",2000-01-08,extra\n9,"k\nl",x,y\n10,m,2000-02-30\n11,n,2000-01-11\n'
    )
    counts, rows, found = both(data)
    assert counts == (11, 5, 6)
    assert [(r[0], r[1], r[3]) for r in found] == [
        (3, None, "4 fields where the header has 3"),
        (6, None, "2 fields where the header has 3"),
        (7, "born", 'date/time field value out of range: "2000-13-01"'),
        (11, None, "4 fields where the header has 3"),
        (12, None, "4 fields where the header has 3"),
        (14, "born", 'date/time field value out of range: "2000-02-30"'),
    ]
    assert [r[0] for r in rows] == [1, 3, 6, 7, 11]
    assert found[0][5] == "2,b,2000-01-02,extra\n"
