"""mode = "csv": rows to a CSV file, formula-safe, atomic, one per file or appended."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from csvpg_records.csvfile import CsvFileSink, protect, safe_stem

from csvpg import SpecError
from csvpg.api import run
from csvpg.options import validate
from tests.conftest import job_toml


def csv_job(csvpg_db, tmp_path: Path, options: str, source: str = "in") -> Path:
    path = tmp_path / "job.toml"
    sink = f'mode = "csv"\n[sink.options]\n{options}'
    path.write_text(job_toml(csvpg_db, str(tmp_path / source), sink=sink))
    return path


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_inputs(tmp_path: Path, **files: str) -> None:
    (tmp_path / "in").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "in" / name).write_text(text, encoding="utf-8")


DANGEROUS = '=HYPERLINK("http://x","y")|+49 30 123|-5|@SUM(A1)|\tTAB|\rCR|plain|'


def test_formulas_are_defused_by_default(csvpg_db, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    with (tmp_path / "in" / "cells.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "value"], *enumerate(DANGEROUS.split("|"))])
    out = tmp_path / "out"
    summary = run(csv_job(csvpg_db, tmp_path, f'path = "{out}/{{name}}.csv"'))
    assert summary.exit_code == 0, summary.files[0].error
    rows = read(out / "cells.csv")
    assert rows[0] == ["id", "value"]
    assert [r[1] for r in rows[1:]] == [
        '\'=HYPERLINK("http://x","y")',
        "'+49 30 123",
        "'-5",
        "'@SUM(A1)",
        "'\tTAB",
        "'\rCR",
        "plain",
        "",  # NULL
    ]
    f = summary.files[0]
    assert (f.rows_read, f.inserted) == (8, 8)
    assert csvpg_db.execute("SELECT to_regclass(%s)", (f"{csvpg_db.schema}.cells",)).fetchone() == (
        None,
    )


def test_protection_can_be_turned_off(csvpg_db, tmp_path: Path) -> None:
    write_inputs(tmp_path, **{"a.csv": "v\n=1+1\n"})
    out = tmp_path / "out.csv"
    summary = run(
        csv_job(csvpg_db, tmp_path, f'path = "{out}"\nprotect_formulas = false\nnull = "NULL"')
    )
    assert summary.exit_code == 0, summary.files[0].error
    assert read(out) == [["v"], ["=1+1"]]


def test_append_merges_files_into_one_csv_with_one_header(csvpg_db, tmp_path: Path) -> None:
    write_inputs(tmp_path, **{"a.csv": "k,v\n1,x\n", "b.csv": "k,v\n2,y\n3,\n"})
    out = tmp_path / "all.csv"
    job = csv_job(csvpg_db, tmp_path, f'path = "{out}"\nappend = true')
    summary = run(job)
    assert summary.exit_code == 0, [f.error for f in summary.files]
    assert sorted(read(out)[1:]) == [["1", "x"], ["2", "y"], ["3", ""]]
    assert read(out)[0] == ["k", "v"]
    # A file of another shape is not mixed in.
    write_inputs(tmp_path, **{"c.csv": "k,w\n4,z\n"})
    again = run(job)
    failed = [f for f in again.files if f.status == "failed"]
    assert len(failed) == 1 and "has the columns ['k', 'v'], not ['k', 'w']" in failed[0].error
    assert len(read(out)) == 4


def test_a_failed_file_leaves_the_output_as_it_was(csvpg_db, tmp_path: Path) -> None:
    write_inputs(tmp_path, **{"a.csv": "k,v\n1,x\n"})
    out = tmp_path / "out"
    job = csv_job(csvpg_db, tmp_path, f'path = "{out}/{{name}}.csv"')
    assert run(job).exit_code == 0
    write_inputs(tmp_path, **{"a.csv": "k,v\n1,y\n2,z,extra\n"})
    assert run(job).exit_code == 1
    assert read(out / "a.csv") == [["k", "v"], ["1", "x"]]
    assert [p.name for p in out.iterdir()] == ["a.csv"]  # no temporary file left


def test_names_from_files_are_made_safe() -> None:
    assert safe_stem("we ird;name.csv") == "we_ird_name"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("...csv") == "csv"
    assert safe_stem("..") == "file"
    assert protect("-") == "'-" and protect("a=b") == "a=b"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "x.csv", "delimiter": ";;"}, "must be one character"),
        ({"path": "x.csv", "encoding": "klingon"}, "unknown encoding"),
    ],
)
def test_bad_options(options, message) -> None:
    with pytest.raises(SpecError, match=message):
        CsvFileSink(**validate("sink.options", options, CsvFileSink.options))


def test_a_dry_run_writes_nothing_and_paths_follow_the_job(tmp_path: Path) -> None:
    """Once csvpg hands sinks ``dry_run`` and the job's folder (``base_dir``)."""
    from csvpg import FileRef, LoadInput
    from csvpg.engine.plan import file_relation

    def load(**extra) -> LoadInput:
        li = LoadInput(
            ref=FileRef(url="file:///in/a b.csv", name="a b.csv"),
            schema="public",
            table="t",
            relation=file_relation(["x"]),
            types={},
            primary_key=[],
            create=False,
            dialect=None,
            batches=iter([[["1"], ["2"]]]),
        )
        for k, v in extra.items():
            setattr(li, k, v)
        return li

    s = CsvFileSink(**validate("sink.options", {"path": "out/{name}.csv"}, CsvFileSink.options))
    result = s.load(None, load(dry_run=True, base_dir=tmp_path))
    assert (result.rows, result.inserted) == (2, 2)
    assert not (tmp_path / "out").exists()
    s.load(None, load(base_dir=tmp_path))
    assert read(tmp_path / "out" / "a_b.csv") == [["x"], ["1"], ["2"]]
