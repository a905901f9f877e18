"""Messy real-world files read as a careful person would: each case is one way a file
used to load with rows lost or cells changed while the run said "succeeded"."""

from __future__ import annotations

from pathlib import Path

import pytest

from csvpg.api import run
from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.infer.guess import explain, infer_file
from csvpg.summary import RunSummary
from tests.conftest import job_toml


def load(db, tmp_path: Path, data: bytes, fmt: str = "", name: str = "t.csv") -> RunSummary:
    path = tmp_path / name
    path.write_bytes(data)
    job = tmp_path / "job.toml"
    # Small files with a bad row or two: more than the default max_rejects allows.
    sink = 'mode = "rebuild"\ntable = "t"\nmax_rejects = 100'
    job.write_text(job_toml(db, str(path), sink=sink, fmt=fmt))
    return run(job, force=True)


def rejects_of(db, summary: RunSummary) -> list[tuple]:
    return db.execute(
        "SELECT line, reason FROM csvpg.rejects WHERE run_id = %s ORDER BY line",
        (summary.run_id,),
    ).fetchall()


# -- 6: encoding ---------------------------------------------------------------------


def test_one_bad_byte_keeps_a_utf8_file_utf8(db, tmp_path: Path) -> None:
    """The good accented rows stay right; the line with the bad byte is a reject."""
    good = "".join(f"{i},café {i}\n" for i in range(2, 60)).encode()
    data = b"id,name\n" + good + b"60,bad\xe9 byte\n61,cr\xc3\xa8me\n"
    summary = load(db, tmp_path, data)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert f.details["encoding"] == "utf-8"
    assert any("do not decode" in d for d in f.details["doubts"])
    rows = dict(db.rows("t"))
    assert rows["2"] == "café 2" and rows["61"] == "crème"
    assert "60" not in rows
    assert rejects_of(db, summary) == [(60, "bytes that are not valid utf-8")]


def test_infer_says_a_low_confidence_encoding(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("id,name\n1,café\n2,thé\n".encode() + b"3,bad\xe9\n")
    guess = infer_file(str(path))
    assert guess.details["encoding"] == "utf-8"
    assert "do not decode" in explain(guess)
    assert main(["infer", str(path), "-o", str(tmp_path / "job.toml")]) == 0
    assert "uncertain" in (tmp_path / "job.toml").read_text()


# -- 1: a stray quote in the header --------------------------------------------------


def test_a_stray_quote_in_the_header_loses_no_row(db, tmp_path: Path) -> None:
    """COPY's HEADER skip would read the header's open quote to the end of the file
    and load 0 rows "successfully"; csvpg reads the header line itself."""
    rows = "".join(f"{i},Widget {i},https://example.com/{i},fine\n" for i in range(1, 41))
    data = ('ProductID,"ProductDescription",""URL",Comments\n' + rows).encode()
    summary = load(db, tmp_path, data)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert (f.rows_read, f.inserted, f.rejected) == (40, 40, 0)
    assert db.count("t") == 40
    assert db.rows("t")[0] == ("1", "Widget 1", "https://example.com/1", "fine")


# -- 2: quotes inside unquoted fields ------------------------------------------------


def test_literal_quotes_load_as_written(db, tmp_path: Path) -> None:
    """No field opens with a quote: the quotes are text, read with quoting off."""
    titles = [f'Song {i}\tRobert "Bumps" Blackwell {i}\t{i}"' for i in range(1, 301)]
    data = ("title\tartist\tnote\n" + "\n".join(titles) + "\n").encode()
    summary = load(db, tmp_path, data, name="titles.tsv")
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert f.details["quote"] == "" and f.details["path"] == "bytes"
    assert f.inserted == 300 and f.rejected == 0
    assert db.rows("t")[0] == ("Song 1", 'Robert "Bumps" Blackwell 1', '1"')


def test_ambiguous_quotes_become_rejects_never_merged(db, tmp_path: Path) -> None:
    """Quoted fields and quotes inside unquoted fields in one file: the ambiguous
    records are rejects with their line; the others load exactly."""
    data = (
        b'id,name,note\n1,"Smith, Ann",ok\n2,Robert "Bumps" Blackwell,odd\n'
        b'3,"Lee, Bo","say ""hi"""\n4,plain,x\n'
    )
    summary = load(db, tmp_path, data)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert db.rows("t") == [
        ("1", "Smith, Ann", "ok"),
        ("3", "Lee, Bo", 'say "hi"'),
        ("4", "plain", "x"),
    ]
    assert rejects_of(db, summary) == [(3, "a quote inside an unquoted field (ambiguous)")]


def test_a_stray_quote_past_the_sample_is_caught(db, tmp_path: Path) -> None:
    """The sample looked clean; the block holding the stray quote sends the file row
    by row, so the record is a reject and no row is glued to another."""
    from csvpg.builtin import format_csv

    good = "".join(f'{i},"n{i}"\n' for i in range(2, 3000))
    data = ("id,name\n" + good + '3000,Robert "Bumps" Blackwell\n3001,"last"\n').encode()
    old = format_csv.SAMPLE_SIZE
    format_csv.SAMPLE_SIZE = 4096
    try:
        summary = load(db, tmp_path, data)
    finally:
        format_csv.SAMPLE_SIZE = old
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert db.count("t") == 2999  # 2 … 2999 and 3001
    assert db.rows("t")[-1] == ("3001", "last")
    assert rejects_of(db, summary) == [(3000, "a quote inside an unquoted field (ambiguous)")]


# -- 4: blank lines ------------------------------------------------------------------


def test_blank_lines_in_a_one_column_file_are_no_rows(db, tmp_path: Path) -> None:
    summary = load(db, tmp_path, b"\n\n\nword\nalpha\n\nbeta\n\n\ngamma\n")
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert db.rows("t") == [("alpha",), ("beta",), ("gamma",)]
    assert f.rejected == 0


# -- 3 and 4: no header, a preamble, through infer + run ------------------------------


def infer_and_run(db, tmp_path: Path, data: bytes, name: str = "t.csv") -> tuple[str, RunSummary]:
    """``csvpg infer -o job.toml`` and ``csvpg run`` of that job, as a user does."""
    import tomllib

    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)
    job = tmp_path / "jobs" / "job.toml"
    job.parent.mkdir(exist_ok=True)
    assert main(["infer", str(folder / name), "-o", str(job)]) == 0
    text = job.read_text()
    spec = tomllib.loads(text)
    spec["database"] = {"dsn": db.dsn, "schema": db.schema}
    spec["sink"] = {"mode": "rebuild", "table": "t"}
    from csvpg.infer.guess import to_toml

    job.write_text(to_toml(spec))
    return text, run(job, force=True)


def test_a_file_without_header_keeps_its_first_row(db, tmp_path: Path, capsys) -> None:
    data = b"1,2.5,2024-01-01\n2,3.5,2024-01-02\n3,4.5,2024-02-01\n"
    text, summary = infer_and_run(db, tmp_path, data)
    assert "header = false" in text
    assert summary.exit_code == 0, summary.files[0].error
    assert db.count("t") == 3
    assert main(["infer", str(tmp_path / "data" / "t.csv"), "--explain"]) == 0
    assert "no header: the first record's values fit" in capsys.readouterr().err


def test_a_banner_and_blank_lines_before_the_header_are_skipped(db, tmp_path: Path) -> None:
    data = b"Sales report, generated 2024-01-31\n\n\nid;name;amount\n1;a;2\n2;b;3\n3;c;4\n"
    text, summary = infer_and_run(db, tmp_path, data)
    assert "skip_rows = 3" in text and 'delimiter = ";"' in text
    assert summary.exit_code == 0, summary.files[0].error
    assert db.columns("t") == {"id": "bigint", "name": "text", "amount": "integer"}
    assert db.rows("t", order_by="id") == [(1, "a", 2), (2, "b", 3), (3, "c", 4)]


# -- 11: a portable job --------------------------------------------------------------


def test_infer_writes_the_source_relative_to_the_job(db, tmp_path: Path) -> None:
    text, summary = infer_and_run(db, tmp_path, b"id,name\n1,a\n")
    assert 'url = "../data/t.csv"' in text
    assert summary.exit_code == 0 and db.count("t") == 1


def test_infer_refuses_a_sample_of_no_rows(tmp_path: Path, capsys) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id\n1\n")
    with pytest.raises(SystemExit) as info:  # a usage error, exit code 2
        main(["infer", str(path), "--sample-rows", "0"])
    assert info.value.code == 2
    assert "--sample-rows: must be 1 or more, not 0" in capsys.readouterr().err
    with pytest.raises(SpecError, match="--sample-rows must be 1 or more"):
        infer_file(str(path), sample_rows=0)  # the library says so too


# -- 9: a few misfits keep the type ----------------------------------------------------


def test_a_few_bad_values_keep_the_type_and_become_rejects(db, tmp_path: Path, capsys) -> None:
    lines = "".join(f"{i},{i}.25,2024-01-{i % 28 + 1:02d}\n" for i in range(1, 3000))
    data = ("id,amount,day\n" + lines + "3000,n/a?,someday\n").encode()
    text, summary = infer_and_run(db, tmp_path, data)
    assert 'amount = "numeric(12,2)"' in text and 'day = "date"' in text
    assert summary.exit_code == 0, summary.files[0].error
    assert db.count("t") == 2999
    assert [line for line, _ in rejects_of(db, summary)] == [3001]
    path = str(tmp_path / "data" / "t.csv")
    assert main(["infer", path, "--explain"]) == 0
    assert "1 value(s) would be rejected" in capsys.readouterr().err
    assert main(["infer", path, "--text-on-misfit"]) == 0
    assert 'amount = "text"' in capsys.readouterr().out


def test_a_quote_ending_an_unquoted_field_past_2_mib_glues_no_rows(db, tmp_path: Path) -> None:
    """``5",`` opens a quoted run in COPY's reading; two such lines in a row make one
    row of three fields out of two lines, which COPY would load without a word. The
    block check sees a quote that ends an unquoted field, so the file is read record
    by record: both lines are rejects, every other row loads as written."""
    good = "".join(f'{i},"item number {i}",{i % 97}\n' for i in range(1, 80_000))
    assert len(good) > 2 << 20
    data = "id,name,qty\n" + good + '80000,bolt,5"\n80001,nut,6"\n80002,"last",7\n'
    summary = load(db, tmp_path, data.encode())
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert (f.rows_read, f.inserted, f.rejected) == (80_002, 80_000, 2)
    rows = {r[0]: r[1:] for r in db.rows("t")}
    assert len(rows) == 80_000 and "80000" not in rows and "80001" not in rows
    assert rows["79999"] == ("item number 79999", str(79999 % 97)) and rows["80002"] == (
        "last",
        "7",
    )
    reason = "a quote inside an unquoted field (ambiguous)"
    assert rejects_of(db, summary) == [(80_001, reason), (80_002, reason)]


# -- a preamble in a hand-written job ---------------------------------------------------

BANNER = b"Sales report, generated 2024-01-31\nRegion: north\n\nid;name;amount\n"
BODY = b"".join(b"%d;n%d;%d\n" % (i, i, i * 3) for i in range(1, 41))


def test_a_hand_written_job_skips_a_preamble_and_says_so(db, tmp_path: Path, capsys) -> None:
    """No skip_rows in the job: the banner lines (none as wide as the table) are
    skipped, the file's log says so, and every data line loads."""
    summary = load(db, tmp_path, BANNER + BODY)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert (f.rows_read, f.inserted, f.rejected) == (40, 40, 0)
    assert db.rows("t")[0] == ("1", "n1", "3")
    assert f.details["skip_rows"] == 3 and f.details["preamble"]["lines"] == 3
    path = tmp_path / "job.toml"
    assert main(["run", str(path), "--force"]) == 0
    said = capsys.readouterr()
    assert "skipped 3 lines before the header as a preamble" in said.out + said.err
    assert main(["check", str(path)]) == 0
    assert "'Sales report, generated 2024-01-31'" in capsys.readouterr().out


def test_the_jobs_own_skip_rows_or_header_wins(db, tmp_path: Path) -> None:
    """skip_rows = 0 reads the first line as the header, as written (the data rows
    are then too wide: rejects, each with its line; nothing guessed over the job)."""
    summary = load(db, tmp_path, BANNER + BODY, fmt="skip_rows = 0")
    f = summary.files[0]
    assert "preamble" not in f.details
    assert list(db.columns("t")) == ["sales_report_generated_2024_01_31"]
    assert db.rows("t") == [("Region: north",)] and f.rejected == 41


def test_header_false_reads_every_line_as_data(db, tmp_path: Path) -> None:
    """header = false: the first line is data, banner or not; no line is skipped."""
    summary = load(
        db, tmp_path, BANNER.replace(b"id;name;amount\n", b"") + BODY, fmt="header = false"
    )
    f = summary.files[0]
    assert "preamble" not in f.details and f.details["skip_rows"] == 0
    assert db.rows("t") == [("Sales report, generated 2024-01-31",), ("Region: north",)]
    assert f.rejected == 40  # as wide as the first line, the job's word: rejects, not lost


def test_a_title_as_wide_as_the_table_is_not_skipped(db, tmp_path: Path) -> None:
    """A line as wide as the table might be data: it is never dropped unseen."""
    data = b"Report;;\nid;name;amount\n" + BODY
    summary = load(db, tmp_path, data)
    f = summary.files[0]
    assert "preamble" not in f.details
    assert db.columns("t") == {"report": "text", "column_2": "text", "column_3": "text"}
    assert db.count("t") == 41  # the header line is a row: loaded, not lost
