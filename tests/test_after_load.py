"""``[source] after_load``: loaded files deleted or moved from a local drop folder and
an SFTP server, only once their transaction committed; failed files and dry runs leave
them; a move that failed after the commit is done by the next run, which says so."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from csvpg.api import run
from csvpg.cli.runs import show_run
from csvpg.errors import SpecError
from csvpg.events import Warned
from csvpg.reporters import EventLog, LineReporter
from tests.conftest import source_job
from tests.fix_sftp import SftpServer

TODAY = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")


def drop_folder(root: Path, files: dict[str, str]) -> Path:
    folder = root / "drop"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def job_for(tmp_path: Path, db: Any, url: str, **source: Any) -> Path:
    return source_job(
        tmp_path / "job.toml",
        db,
        "drop",
        {"url": url, "pattern": "*.csv", **source},
        {"table": "orders", "max_rejects": 0},
        {"columns": {"id": "int", "amount": "int"}},
    )


def after_load(db: Any, run_id: str) -> dict[str, Any]:
    """Each file's ``details.after_load`` in the run's history rows (by file name)."""
    rows = db.execute(
        "SELECT file, details -> 'after_load' FROM csvpg.run_files WHERE run_id = %s",
        (run_id,),
    ).fetchall()
    return {Path(file).name: done for file, done in rows}


GOOD = "id,amount\n1,10\n2,20\n"
BAD = "id,amount\n3,x\n"


def test_move_with_a_dated_folder_keeps_the_failed_file(db, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path, {"a.csv": GOOD, "b.csv": BAD})
    job = job_for(tmp_path, db, str(folder), after_load="move", move_to="archive/{date:%Y-%m-%d}/")
    summary = run(job)
    status = {Path(f.file).name: f.status for f in summary.files}
    assert status == {"a.csv": "loaded", "b.csv": "failed"}
    archive = folder / "archive" / TODAY
    assert sorted(p.name for p in folder.iterdir()) == ["archive", "b.csv"]
    assert (archive / "a.csv").read_text() == GOOD
    assert db.count("orders") == 2
    done = after_load(db, summary.run_id)
    assert done["a.csv"] == {"action": "moved", "to": str(archive / "a.csv")}
    assert done["b.csv"] is None
    shown = io.StringIO()
    show_run(db.dsn, summary.run_id, shown)
    assert f"then moved to {archive / 'a.csv'}" in shown.getvalue()

    # The same name dropped again the same day is archived beside the first one.
    (folder / "a.csv").write_text("id,amount\n4,40\n")
    second = run(job)
    assert sorted(p.name for p in archive.iterdir()) == ["a-1.csv", "a.csv"]
    assert after_load(db, second.run_id)["a.csv"]["to"] == str(archive / "a-1.csv")
    assert db.count("orders") == 3


def test_delete_and_dry_run(db, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path, {"a.csv": GOOD, "c.csv": "id,amount\n5,50\n"})
    job = job_for(tmp_path, db, str(folder), after_load="delete")
    dry = run(job, dry_run=True)
    assert {f.status for f in dry.files} == {"loaded"}
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "c.csv"]

    summary = run(job)
    assert {f.status for f in summary.files} == {"loaded"}
    assert list(folder.iterdir()) == []
    assert db.count("orders") == 3
    assert after_load(db, summary.run_id) == {
        "a.csv": {"action": "deleted"},
        "c.csv": {"action": "deleted"},
    }


def test_a_move_that_failed_is_done_by_the_next_run_only(db, tmp_path: Path) -> None:
    folder = drop_folder(tmp_path, {"a.csv": GOOD})
    archive = tmp_path / "archive"
    # A file where the folder should be: the commit happens, the move cannot.
    archive.write_text("in the way\n")
    job = job_for(tmp_path, db, str(folder), after_load="move", move_to=str(archive))
    log = EventLog()
    first = run(job, plugins=[log])
    archive.unlink()
    assert [f.status for f in first.files] == ["loaded"]
    assert (folder / "a.csv").exists()
    warnings = [e.message for e in log.events if isinstance(e, Warned)]
    assert len(warnings) == 1 and "loaded, but moving it failed" in warnings[0], warnings
    kept = after_load(db, first.run_id)["a.csv"]
    assert kept["action"] == "kept" and "moving it failed" in kept["error"]

    out = io.StringIO()
    second = run(job, plugins=[LineReporter(out)])
    assert "  archived a.csv: loaded before and unchanged; moved to " in out.getvalue()
    [file] = second.files
    assert file.status == "skipped"
    assert file.error == f"archived: loaded before and unchanged; moved to {archive / 'a.csv'}"
    assert not (folder / "a.csv").exists()
    assert (archive / "a.csv").read_text() == GOOD
    assert db.count("orders") == 2  # loaded once
    assert after_load(db, second.run_id)["a.csv"] == {
        "action": "moved",
        "to": str(archive / "a.csv"),
    }


def test_sftp_move_to_a_url_and_delete(
    db, sftp_server: SftpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    drop_folder(sftp_server.root, {"a.csv": GOOD, "b.csv": BAD})
    job = job_for(
        tmp_path,
        db,
        sftp_server.url("drop/"),
        options=sftp_server.options(),
        after_load="move",
        move_to=sftp_server.url("done/{date:%Y}/"),
    )
    summary = run(job)
    assert {Path(f.file).name: f.status for f in summary.files} == {
        "a.csv": "loaded",
        "b.csv": "failed",
    }
    year = dt.datetime.now(dt.UTC).strftime("%Y")
    assert (sftp_server.root / "done" / year / "a.csv").read_text() == GOOD
    assert sorted(p.name for p in (sftp_server.root / "drop").iterdir()) == ["b.csv"]
    assert after_load(db, summary.run_id)["a.csv"] == {
        "action": "moved",
        "to": sftp_server.url(f"done/{year}/a.csv"),
    }

    (sftp_server.root / "drop" / "b.csv").write_text("id,amount\n3,30\n")
    job = job_for(
        tmp_path, db, sftp_server.url("drop/"), options=sftp_server.options(), after_load="delete"
    )
    again = run(job)
    assert [f.status for f in again.files] == ["loaded"]
    assert list((sftp_server.root / "drop").iterdir()) == []
    assert db.count("orders") == 3


@pytest.mark.parametrize(
    ("source", "key", "says"),
    [
        ({"after_load": "archive"}, "source.after_load", "archive"),
        ({"after_load": "move"}, "source.move_to", "not given"),
        ({"move_to": "done/"}, "source.after_load", "keep"),
        ({"after_load": "move", "move_to": "done/{day}/"}, "source.move_to", "day"),
        ({"after_load": "move", "move_to": "done/{date:%Y"}, "source.move_to", "template"),
    ],
)
def test_wrong_after_load_is_named(db, tmp_path: Path, source: dict, key: str, says: str) -> None:
    job = job_for(tmp_path, db, str(tmp_path), **source)
    with pytest.raises(SpecError) as err:
        run(job)
    assert err.value.key == key
    assert says in str(err.value)


def test_http_sources_refuse_after_load(db, tmp_path: Path) -> None:
    job = job_for(tmp_path, db, "https://example.invalid/drop/", after_load="delete")
    with pytest.raises(SpecError) as err:
        run(job)
    assert err.value.key == "source.after_load"
    assert "https://" in str(err.value)


def test_an_object_store_moves_by_url(db, tmp_path: Path) -> None:
    """fsspec's in-memory file system stands for an object store (keys, no folders)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/drop-{tmp_path.name}"
    fs.pipe(f"{root}/in/a.csv", GOOD.encode())
    job = job_for(
        tmp_path,
        db,
        f"memory://{root}/in/",
        after_load="move",
        move_to=f"memory://{root}/done/{{date:%Y-%m-%d}}/",
    )
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded"], [f.error for f in summary.files]
    moved = f"{root}/done/{TODAY}/a.csv"
    assert fs.cat(moved) == GOOD.encode()
    assert not fs.exists(f"{root}/in/a.csv")
    assert after_load(db, summary.run_id)["a.csv"] == {"action": "moved", "to": f"memory://{moved}"}
