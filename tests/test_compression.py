"""Compressed files read transparently, wherever they come from: .gz, .bz2, .xz and
.zst while they stream, and each member of a .zip as a file of its own (from a local
folder, over SFTP with random access, over HTTP from one temporary download)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path
from typing import Any

import pytest

from csvpg.api import run
from tests.conftest import source_job
from tests.fix_http import HttpServer
from tests.fix_sftp import SftpServer

TEXT = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(1, 51))


def write_job(path: Path, db: Any, source: dict[str, Any], **sink: Any) -> Path:
    return source_job(path, db, "packed", source, {"mode": "append", **sink})


def zipped(members: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), "")
            else:
                zf.writestr(name, text)
    return out.getvalue()


BUNDLE = {
    "kunden.csv": TEXT,
    "sub/konten.csv": "nr\n1\n2\n3\n",
    "sub/": "",
    "__MACOSX/._kunden.csv": "junk",
    ".hidden.csv": "junk\n",
}


def has_zstd() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def test_gz_bz2_xz_and_zip_members_from_a_folder(db, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "g.csv.gz").write_bytes(gzip.compress(TEXT.encode()))
    (folder / "b.csv.bz2").write_bytes(bz2.compress(TEXT.encode()))
    (folder / "x.csv.xz").write_bytes(lzma.compress(TEXT.encode()))
    (folder / "bundle.zip").write_bytes(zipped(BUNDLE))
    job = write_job(tmp_path / "job.toml", db, {"url": "in/"})
    summary = run(job)
    assert {f.file.rsplit("/in/", 1)[1]: f.status for f in summary.files} == {
        "g.csv.gz": "loaded",
        "b.csv.bz2": "loaded",
        "x.csv.xz": "loaded",
        "bundle.zip#kunden.csv": "loaded",
        "bundle.zip#sub/konten.csv": "loaded",
    }, [f.error for f in summary.files]
    assert db.tables() == {"g", "b", "x", "kunden", "konten"}
    assert [db.count(t) for t in ("g", "b", "x", "kunden")] == [50] * 4
    assert db.count("konten") == 3

    again = run(job)
    assert {f.status for f in again.files} == {"skipped"}


def test_zst_loads_or_names_the_missing_package(db, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    if has_zstd():
        import zstandard

        data = zstandard.ZstdCompressor().compress(TEXT.encode())
    else:
        data = b"(\xb5/\xfd not really zstd"
    (folder / "z.csv.zst").write_bytes(data)
    job = write_job(tmp_path / "job.toml", db, {"url": "in/"})
    summary = run(job)
    if has_zstd():
        assert summary.files[0].status == "loaded", summary.files[0].error
        assert db.count("z") == 50
    else:
        failed = summary.files[0]
        assert failed.status == "failed"
        assert "'zstandard' is not installed" in (failed.error or "")
        assert "pip install zstandard" in (failed.hint or "")
        assert "z" not in db.tables()


def test_zip_members_over_http_and_names_that_climb(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    bundle = zipped({**BUNDLE, "../../evil.csv": "e\n1\n"})
    (http_server.root / "bundle.zip").write_bytes(bundle)
    (http_server.root / "b.csv.bz2").write_bytes(bz2.compress(TEXT.encode()))
    before = set(tmp_path.parent.iterdir())
    job = write_job(tmp_path / "job.toml", db, {"urls": [http_server.url("bundle.zip")]})
    summary = run(job)
    assert sorted(f.file for f in summary.files) == [
        http_server.url("bundle.zip#../../evil.csv"),
        http_server.url("bundle.zip#kunden.csv"),
        http_server.url("bundle.zip#sub/konten.csv"),
    ]
    assert {f.status for f in summary.files} == {"loaded"}, [f.error for f in summary.files]
    assert db.tables() == {"kunden", "konten", "evil"}
    assert db.count("kunden") == 50
    assert set(tmp_path.parent.iterdir()) == before, "nothing written beside the job"
    assert not (tmp_path / "evil.csv").exists()
    assert len(http_server.paths("GET")) == 1, "the archive was downloaded once"

    bz = write_job(tmp_path / "bz.toml", db, {"url": http_server.url("b.csv.bz2")})
    assert run(bz).files[0].status == "loaded"
    assert db.count("b") == 50


def test_zip_and_bz2_over_sftp(db, sftp_server: SftpServer, tmp_path: Path) -> None:
    folder = sftp_server.root / "exports"
    folder.mkdir()
    (folder / "bundle.zip").write_bytes(zipped(BUNDLE))
    (folder / "b.csv.bz2").write_bytes(bz2.compress(TEXT.encode()))
    job = write_job(
        tmp_path / "job.toml",
        db,
        {"url": sftp_server.url("exports/"), "options": sftp_server.options()},
    )
    summary = run(job)
    assert {f.status for f in summary.files} == {"loaded"}, [f.error for f in summary.files]
    assert sorted(f.file for f in summary.files) == [
        sftp_server.url("exports/b.csv.bz2"),
        sftp_server.url("exports/bundle.zip#kunden.csv"),
        sftp_server.url("exports/bundle.zip#sub/konten.csv"),
    ]
    assert db.tables() == {"b", "kunden", "konten"}
    assert db.count("b") == 50
    assert run(job).files[0].status == "skipped"


@pytest.mark.parametrize("codec", ["gzip", "bz2"])
def test_a_corrupt_archive_fails_that_file_only(db, tmp_path: Path, codec: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    ext = {"gzip": "gz", "bz2": "bz2"}[codec]
    (folder / f"bad.csv.{ext}").write_bytes(b"this is not compressed at all\n")
    (folder / "good.csv").write_text(TEXT)
    job = write_job(tmp_path / "job.toml", db, {"url": "in/"})
    summary = run(job)
    status = {Path(f.file).name: f.status for f in summary.files}
    assert status == {f"bad.csv.{ext}": "failed", "good.csv": "loaded"}
    bad = next(f for f in summary.files if f.status == "failed")
    assert "reading failed" in (bad.error or "") or "opening failed" in (bad.error or "")
