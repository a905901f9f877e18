"""Messy real-world files read as a careful person would: each case is one way a file
used to load with rows lost or cells changed while the run said "succeeded"."""

from __future__ import annotations

from pathlib import Path

from csvpg.cli import main
from csvpg.engine import RunSummary, run
from csvpg.infer import explain, infer_file
from tests.conftest import job_toml


def load(db, tmp_path: Path, data: bytes, fmt: str = "", name: str = "t.csv") -> RunSummary:
    path = tmp_path / name
    path.write_bytes(data)
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(path), sink='mode = "rebuild"\ntable = "t"', fmt=fmt))
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
