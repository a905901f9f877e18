"""What a job takes from its source: nothing found is a failure (unless allow_empty), a
folder without a pattern gives its data files only, a file that is not text fails as
such, a file that changes while it is read is never loaded half, and min_age leaves
files still being written for the next run."""

from __future__ import annotations

import codecs
import gzip
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csvpg import hookimpl
from csvpg.api import run
from csvpg.binary import SIGNATURES, binary_kind
from csvpg.cli.main import main
from csvpg.engine.plan import is_data_file
from csvpg.events import BytesRead, Event, FileSkipped, Warned
from csvpg.interfaces import FileRef
from csvpg.reporters import EventLog
from tests.conftest import CORPUS, source_job

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4


def local_job(tmp_path: Path, db: Any, source: dict[str, Any], **extra: Any) -> Path:
    return source_job(tmp_path / "job.toml", db, "listing", source, {"mode": "append"}, extra)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# -- nothing found ------------------------------------------------------------------------


def test_a_pattern_that_matches_nothing_fails_run_and_check(
    db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text("id\n1\n")
    job = local_job(tmp_path, db, {"url": "in/", "pattern": "export_*.csv"})
    code, out = cli(capsys, "run", str(job))
    assert code == 1
    assert f"no file in {folder} matches pattern 'export_*.csv'" in out
    assert "allow_empty" in out
    code, out = cli(capsys, "check", str(job))
    assert code == 1
    assert "matches pattern 'export_*.csv'" in out


@pytest.mark.parametrize("pattern", [None, "*.csv"])
def test_a_folder_that_does_not_exist_fails_run_and_check(
    db, tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str | None
) -> None:
    source = {"url": "nowhere/"} | ({"pattern": pattern} if pattern else {})
    job = local_job(tmp_path, db, source)
    for command in ("run", "check"):
        code, out = cli(capsys, command, str(job))
        assert code == 1, out
        assert f"source not found: {tmp_path / 'nowhere'}" in out, out


def test_an_empty_folder_fails_unless_allow_empty(
    db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "drop").mkdir()
    job = local_job(tmp_path, db, {"url": "drop/"})
    code, out = cli(capsys, "run", str(job))
    assert code == 1
    assert f"{tmp_path / 'drop'} has no files" in out
    allowed = local_job(tmp_path, db, {"url": "drop/", "pattern": "*.csv", "allow_empty": True})
    code, out = cli(capsys, "run", str(allowed))
    assert code == 0, out
    assert "succeeded: 0 files found" in out
    code, out = cli(capsys, "check", str(allowed))
    assert code == 0, out


# -- a folder without a pattern -----------------------------------------------------------


def test_a_folder_without_pattern_takes_only_data_files(db, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "orders.csv").write_text("id\n1\n2\n")
    (folder / "prices.TSV").write_text("id\tp\n1\t2\n")
    (folder / "history.csv.gz").write_bytes(gzip.compress(b"id\n7\n"))
    (folder / "README.md").write_text("# exports\nid\n")
    (folder / "photo.png").write_bytes(PNG)
    (folder / "settings.toml").write_text('a = "b"\n')
    (folder / ".hidden.csv").write_text("id\n1\n")
    summary = run(local_job(tmp_path, db, {"url": "in"}))
    assert summary.exit_code == 0
    assert sorted(Path(f.file).name for f in summary.files) == [
        "history.csv.gz",
        "orders.csv",
        "prices.TSV",
    ]
    assert db.tables() == {"orders", "prices", "history"}


def test_a_folder_of_no_data_file_says_what_it_found(db, tmp_path: Path) -> None:
    from csvpg.errors import SourceError

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "notes.md").write_text("x\n")
    with pytest.raises(SourceError) as info:
        run(local_job(tmp_path, db, {"url": "in/"}))
    assert "has no data file: only notes.md, none named *.csv" in info.value.message
    assert "pattern" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("a.csv", True),
        ("a.CSV.GZ", True),
        ("a.dat.bz2", True),
        ("a.tsv.zst", True),
        ("a.psv.xz", True),
        ("a.txt", True),
        ("a.csv.md", False),
        ("a.md", False),
        ("a.png", False),
        ("a.gz", False),
        ("csv", False),
    ],
)
def test_data_file_names(name: str, taken: bool) -> None:
    assert is_data_file(name, (".csv", ".tsv", ".txt", ".psv", ".dat")) is taken


# -- not a text file ----------------------------------------------------------------------


def test_a_png_named_in_the_url_fails_as_not_a_csv_file(db, tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(PNG)
    summary = run(local_job(tmp_path, db, {"url": "photo.png"}))
    assert summary.exit_code == 1
    assert "not a CSV file: looks like PNG" in (summary.files[0].error or "")
    assert "photo" not in db.tables()


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("scan.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
        ("pic.csv", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        ("packed.csv", gzip.compress(b"id\n1\n"), "gzip"),
        ("bundle.csv", b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "ZIP"),
        ("book.xlsx", b"PK\x03\x04\x14\x00\x06\x00\x08\x00", "Excel (.xlsx)"),
        ("old.xls", bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 64, "Excel 97-2003"),
        ("blob.csv", bytes(range(32)) * 200, "binary data"),
    ],
    ids=["pdf", "jpeg", "gzip", "zip", "xlsx", "xls", "control-bytes"],
)
def test_binary_files_fail_with_what_they_look_like(
    db, tmp_path: Path, name: str, data: bytes, kind: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / name).write_bytes(data)
    summary = run(local_job(tmp_path, db, {"url": "in/", "pattern": "*"}))
    assert summary.files[0].status == "failed"
    assert f"not a CSV file: looks like {kind}" in (summary.files[0].error or "")
    assert not db.tables()


def test_utf16_and_a_stray_nul_still_load(db, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "utf16.csv").write_bytes((CORPUS / "duckdb/encodings/utf16.csv").read_bytes())
    (folder / "bomless.csv").write_bytes("id,name\n1,José\n2,Ana\n".encode("utf-16-le"))
    (folder / "nullbyte.csv").write_bytes((CORPUS / "duckdb/nullbyte.csv").read_bytes())
    summary = run(local_job(tmp_path, db, {"url": "in/"}))
    by_name = {Path(f.file).name: f for f in summary.files}
    assert by_name["utf16.csv"].status == "loaded", by_name["utf16.csv"].error
    assert "not a CSV file" not in (by_name["nullbyte.csv"].error or "")
    assert "not a CSV file" not in (by_name["bomless.csv"].error or "")


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=400),
    codec=st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-16", "utf-32", "cp1252"]),
)
def test_text_is_never_taken_for_binary(text: str, codec: str) -> None:
    try:
        data = ("id,name\n" + text + "\n").encode(codec)
    except UnicodeEncodeError:
        data = ("id,name\n" + text + "\n").encode("utf-8")
    if codec.startswith("utf-16") and codec != "utf-16":
        data = (codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE) + data
    assert binary_kind(data, "x.csv") is None


@given(st.sampled_from(SIGNATURES), st.binary(max_size=200))
def test_every_signature_is_told(signature: tuple[bytes, str], rest: bytes) -> None:
    magic, kind = signature
    assert binary_kind(magic + rest, "x.csv") == kind


def test_a_single_nul_is_not_binary() -> None:
    sample = (CORPUS / "duckdb/nullbyte.csv").read_bytes()
    assert binary_kind(sample, "nullbyte.csv") is None
    assert binary_kind(b"id,v\n" + b"1,\x00\n" * 3, "x.csv") is None


# -- a file that changes while it is read -------------------------------------------------


class AtFirstMiB:
    """Calls ``action`` the first time a file has streamed 1 MiB."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.calls = 0

    @hookimpl
    def track_event(self, event: Event) -> None:
        if isinstance(event, BytesRead) and event.bytes_read >= 1 << 20 and not self.calls:
            self.calls += 1
            self.action()


def big_csv(path: Path, rows: int = 120_000) -> None:
    path.write_text("id,v\n" + "".join(f"{i},{'q' * 20}\n" for i in range(rows)))


def grow(path: Path) -> None:
    with path.open("a") as out:
        out.write("120000,half a ro")  # a writer in the middle of its last row


def touch(path: Path) -> None:
    st_ = path.stat()
    os.utime(path, (st_.st_atime, st_.st_mtime + 5))


@pytest.mark.parametrize("change", [grow, touch], ids=["grows", "rewritten"])
def test_a_local_file_that_changes_while_read_is_retried_then_fails(
    db, tmp_path: Path, change: Any
) -> None:
    path = tmp_path / "live.csv"
    big_csv(path)
    job = local_job(tmp_path, db, {"url": "live.csv"})
    log = EventLog()
    summary = run(job, plugins=[AtFirstMiB(lambda: change(path)), log])
    assert summary.exit_code == 1
    failed = summary.files[0]
    assert failed.status == "failed"
    assert "changed while it was read" in (failed.error or "")
    retries = [w.message for w in log.of(Warned) if "retry" in w.message]
    assert len(retries) == 3 and "changed while it was read" in retries[0], retries
    assert "live" not in db.tables(), "no row of a changing file is committed"
    # Listed again, the file is whole: the next run loads all of it, as it is now.
    again = run(job)
    assert again.files[0].status == "loaded", again.files[0].error
    expected = 120_001 if change is grow else 120_000
    assert db.count("live") == expected


class RestoreBeforeRetry:
    """Moves the file's mtime back to the listed one when a retry is announced."""

    def __init__(self, path: Path, mtime: float) -> None:
        self.path, self.mtime = path, mtime

    @hookimpl
    def track_event(self, event: Event) -> None:
        if isinstance(event, Warned) and "changed while it was read" in event.message:
            os.utime(self.path, (self.mtime, self.mtime))


def test_a_retry_that_finds_the_file_as_listed_loads_it(db, tmp_path: Path) -> None:
    path = tmp_path / "live.csv"
    big_csv(path)
    listed = path.stat().st_mtime
    plugins = [AtFirstMiB(lambda: touch(path)), RestoreBeforeRetry(path, listed)]
    summary = run(local_job(tmp_path, db, {"url": "live.csv"}), plugins=plugins)
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert db.count("live") == 120_000


# -- min_age ------------------------------------------------------------------------------


def test_min_age_leaves_files_still_being_written_for_the_next_run(
    db, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "old.csv").write_text("id\n1\n")
    (folder / "new.csv").write_text("id\n2\n")
    an_hour_ago = time.time() - 3600
    os.utime(folder / "old.csv", (an_hour_ago, an_hour_ago))
    job = local_job(tmp_path, db, {"url": "drop/", "min_age": 600})
    code, out = cli(capsys, "run", str(job))
    assert code == 0, out
    assert db.tables() == {"old"}
    assert "skipped new.csv: modified 0 s ago, less than [source] min_age = 600 s" in out
    assert "left for the next run" in out
    os.utime(folder / "new.csv", (an_hour_ago, an_hour_ago))
    log = EventLog()
    summary = run(job, plugins=[log])
    assert [f.status for f in summary.files if Path(f.file).name == "new.csv"] == ["loaded"]
    assert not [e for e in log.of(FileSkipped) if "min_age" in e.reason]


def test_refs_without_mtime_are_not_held_back() -> None:
    from csvpg.engine.plan import _too_young

    assert _too_young(FileRef(url="x", name="x.csv"), 600, time.time()) is None
    young = FileRef(url="x", name="x.csv", mtime=time.time() - 10)
    assert "min_age = 600 s" in (_too_young(young, 600, time.time()) or "")
    assert _too_young(young, 0, time.time()) is None


def test_an_object_store_file_rewritten_while_read_is_retried_then_fails(
    db, tmp_path: Path
) -> None:
    """fsspec's in-memory file system stands in for an object store: each read gets its
    own copy of the object, so only the look after reading sees the new one."""
    import uuid

    import fsspec

    fs = fsspec.filesystem("memory")
    key = f"/csvpg-{uuid.uuid4().hex}/live.csv"
    data = ("id,v\n" + "".join(f"{i},{'q' * 20}\n" for i in range(120_000))).encode()
    fs.pipe(key, data)
    try:
        job = local_job(tmp_path, db, {"url": f"memory://{key}"})
        summary = run(job, plugins=[AtFirstMiB(lambda: fs.pipe(key, data + b"120000,x\n"))])
        assert summary.files[0].status == "failed"
        assert "changed while it was read" in (summary.files[0].error or "")
        assert "live" not in db.tables()
        assert run(job).files[0].status == "loaded"
        assert db.count("live") == 120_001
    finally:
        fs.rm(key)
