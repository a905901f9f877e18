"""The http(s):// source against a real HTTP server on loopback (tests/fix_http.py):
one URL, a list, an index page, tokens, retries, refusals, compression, and index links
that try to climb out."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path
from typing import Any

import pytest

from csvpg import hookimpl
from csvpg.api import run
from csvpg.builtin import _remote
from csvpg.errors import SourceError
from csvpg.events import Event, FileFailed, JobStarted, Warned
from csvpg.reporters import EventLog
from tests.conftest import source_job
from tests.fix_http import HttpServer


def write_job(
    path: Path,
    db: Any,
    source: dict[str, Any],
    *,
    mode: str = "append",
    extra: dict[str, Any] | None = None,
) -> Path:
    return source_job(path, db, "http", source, {"mode": mode}, extra)


def serve(server: HttpServer, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = server.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)


class OnJobStarted:
    """Changes the server once the plan is made, before any file is read."""

    def __init__(self, action: Any) -> None:
        self.action = action

    @hookimpl
    def track_event(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self.action()


@pytest.fixture(autouse=True)
def quick_list_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_remote, "LIST_RETRY_DELAY", 0.01)


def test_one_url_and_a_re_run_that_skips_it(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"data/orders.csv": "id,total\n1,9.5\n2,3.0\n"})
    url = http_server.url("data/orders.csv")
    job = write_job(tmp_path / "job.toml", db, {"url": url})
    first = run(job)
    assert first.files[0].status == "loaded", first.files[0].error
    assert first.files[0].file == url
    assert db.rows("orders", order_by="id") == [("1", "9.5"), ("2", "3.0")]
    gets = len(http_server.paths("GET"))
    again = run(job)
    assert again.files[0].status == "skipped"
    assert again.files[0].error.startswith("unchanged since run")
    assert len(http_server.paths("GET")) == gets, "an unchanged file is not downloaded again"
    assert db.count("orders") == 2


def test_a_list_of_urls_local_paths_included(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"a.csv": "x\n1\n", "sub/b.csv": "y\n2\n3\n"})
    local = tmp_path / "c.csv"
    local.write_text("z\n4\n")
    job = write_job(
        tmp_path / "job.toml",
        db,
        {"urls": [http_server.url("a.csv"), http_server.url("sub/b.csv"), "c.csv"]},
    )
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded"] * 3, [f.error for f in summary.files]
    assert (db.count("a"), db.count("b"), db.count("c")) == (1, 2, 1)


def test_url_and_urls_together_are_a_spec_error(db, tmp_path: Path) -> None:
    from csvpg.errors import SpecError

    job = write_job(tmp_path / "job.toml", db, {"url": "a.csv", "urls": ["b.csv"]})
    with pytest.raises(SpecError, match="cannot both be given"):
        run(job)


def test_an_index_page_and_a_pattern(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(
        http_server,
        {
            "exports/IxExpKunden.csv": "id\n1\n2\n",
            "exports/IxExpKonto.csv": "nr\n7\n",
            "exports/notes.txt": "not data\n",
            "exports/other.csv": "q\n1\n",
            "outside.csv": "no\n1\n",
        },
    )
    job = write_job(
        tmp_path / "job.toml",
        db,
        {"url": http_server.url("exports/"), "pattern": "IxExp*.csv"},
        extra={"naming": {"strip_prefix": "IxExp"}},
    )
    summary = run(job)
    assert sorted(f.file for f in summary.files) == [
        http_server.url("exports/IxExpKonto.csv"),
        http_server.url("exports/IxExpKunden.csv"),
    ]
    assert db.tables() == {"kunden", "konto"}
    assert db.count("kunden") == 2


def test_a_bearer_token_from_the_environment(
    db, http_server: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "t0ken-that-is-secret"
    http_server.token = token
    serve(http_server, {"d/a.csv": "x\n1\n"})
    monkeypatch.setenv("TOKEN", token)
    job = write_job(
        tmp_path / "job.toml",
        db,
        {
            "url": http_server.url("d/"),
            "pattern": "*.csv",
            "options": {"headers": {"Authorization": "Bearer ${TOKEN}"}},
        },
    )
    log = EventLog()
    summary = run(job, plugins=[log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    sent = [h.get("Authorization") for _, _, h in http_server.requests]
    assert sent and set(sent) == {f"Bearer {token}"}
    assert token not in repr(summary.to_dict()) + repr(log.events)
    manifest = db.execute("SELECT * FROM csvpg.manifest").fetchall()
    assert token not in repr(manifest)


def test_401_fails_at_once_with_a_hint(db, http_server: HttpServer, tmp_path: Path) -> None:
    http_server.token = "needed"
    serve(http_server, {"a.csv": "x\n1\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})
    with pytest.raises(SourceError) as info:
        run(job)
    assert "HTTP 401" in info.value.message
    assert 'headers = { Authorization = "Bearer ${TOKEN}" }' in (info.value.hint or "")
    assert len(http_server.requests) == 1, "a refusal is not retried"
    assert db.tables() == set()


def test_401_while_loading_fails_the_file_without_retries(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    serve(http_server, {"a.csv": "x\n1\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})

    def lock() -> None:
        http_server.token = "now-needed"

    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(lock), log])
    failed = summary.files[0]
    assert failed.status == "failed"
    assert "HTTP 401" in (failed.error or "")
    assert "Authorization" in (failed.hint or "")
    assert not [w for w in log.of(Warned) if "retry" in w.message]
    assert log.of(FileFailed)
    assert db.tables() == set()


def test_503_then_success_is_retried(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"a.csv": "x\n1\n2\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})
    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(lambda: http_server.fail_next(2, 503)), log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    warned = [w.message for w in log.of(Warned) if "retry" in w.message]
    assert len(warned) == 2 and "HTTP 503" in warned[0], warned
    assert db.count("a") == 2


def test_503_and_429_while_listing_are_retried(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"d/a.csv": "x\n1\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("d/"), "pattern": "*.csv"})
    http_server.failures = [503, 429]
    summary = run(job)
    assert summary.files[0].status == "loaded", summary.files[0].error


def test_a_body_cut_short_is_retried(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"a.csv": "id,v\n" + "".join(f"{i},{'z' * 30}\n" for i in range(5000))})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})

    def cut() -> None:
        http_server.cut_next_after = 20_000

    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(cut), log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert [w for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert db.count("a") == 5000


def test_404_is_a_clear_error(db, http_server: HttpServer, tmp_path: Path) -> None:
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("missing.csv")})
    with pytest.raises(SourceError, match="HTTP 404"):
        run(job)
    assert len(http_server.requests) == 1


def test_csv_gz_and_gzip_transfer_encoding(db, http_server: HttpServer, tmp_path: Path) -> None:
    text = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(100))
    serve(http_server, {"d/packed.csv.gz": gzip.compress(text.encode()), "d/plain.csv": text})
    http_server.gzip_transfer = True
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("d/"), "pattern": "*.csv*"})
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded", "loaded"], [
        f.error for f in summary.files
    ]
    assert db.count("packed") == 100
    assert db.count("plain") == 100
    encodings = [h.get("Accept-Encoding", "") for m, _, h in http_server.requests if m == "GET"]
    assert any("gzip" in e for e in encodings)


MALICIOUS_INDEX = """<html><body>
<a href="good.csv">good</a>
<a href="../../x.csv">up twice</a>
<a href="%2e%2e/x.csv">encoded up</a>
<a href="..%2fx.csv">encoded slash</a>
<a href="evil%2F..%2F..%2Fpwn.csv">encoded climb</a>
<a href="/x.csv">absolute</a>
<a href="http://127.0.0.2:1/elsewhere.csv">another host</a>
<a href="Robert%27%29%3B%20DROP%20TABLE%20good%3B--.csv">bobby</a>
<a href="?C=N;O=D">sort</a>
</body></html>
"""


def test_index_links_that_climb_out_are_ignored_and_names_stay_safe(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    serve(
        http_server,
        {
            "pub/index.html": MALICIOUS_INDEX,
            "pub/good.csv": "id,v\n1,a\n2,b\nx,c\n",
            "pub/Robert'); DROP TABLE good;--.csv": "id\n9\n",
            "x.csv": "secret\n1\n",
            "pwn.csv": "secret\n1\n",
        },
    )
    jobdir = tmp_path / "jobdir"
    jobdir.mkdir()
    job = write_job(
        jobdir / "job.toml",
        db,
        {"url": http_server.url("pub/"), "pattern": "*.csv"},
        extra={"columns": {"id": "integer"}},
    )
    text = job.read_text().replace("[sink]\n", "[sink]\nrejects_csv = true\nmax_rejects = 1\n", 1)
    job.write_text(text)
    before = set(tmp_path.rglob("*"))
    summary = run(job)
    assert sorted(Path(f.file).name for f in summary.files) == [
        "Robert%27%29%3B%20DROP%20TABLE%20good%3B--.csv",
        "good.csv",
    ]
    assert all(f.status == "loaded" for f in summary.files), [f.error for f in summary.files]
    assert db.tables() == {"good", "robert_drop_table_good"}
    assert db.count("good") == 2  # the third row was rejected
    requested = http_server.paths("GET") + http_server.paths("HEAD")
    assert all(p.startswith("/pub/") for p in requested), requested
    # The only thing written locally: the rejects file, under a name of csvpg's own.
    after = set(tmp_path.rglob("*")) - before
    written = sorted(p.relative_to(jobdir).as_posix() for p in after if p.is_file())
    assert len(written) == 1, written
    assert written[0].startswith("rejects/http-") and written[0].endswith("-good_csv.csv")
    for name in ("x.csv", "pwn.csv"):
        assert not (tmp_path / name).exists() and not (tmp_path.parent / name).exists()


def test_a_signed_url_keeps_its_signature_out_of_sight(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    serve(http_server, {"a.csv": "x\n1\n"})
    signed = http_server.url("a.csv") + "?X-Amz-Signature=abcdef123456&part=1"
    job = write_job(tmp_path / "job.toml", db, {"url": signed})
    log = EventLog()
    summary = run(job, plugins=[log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert summary.files[0].file == http_server.url("a.csv") + "?X-Amz-Signature=***&part=1"
    assert "abcdef123456" not in repr(summary.to_dict()) + repr(log.events)
    assert "abcdef123456" not in repr(db.execute("SELECT * FROM csvpg.manifest").fetchall())
    assert http_server.paths("GET") == ["/a.csv?X-Amz-Signature=abcdef123456&part=1"]


# -- a body shorter than the listing said, and Retry-After (issue 13) -------------------

ROWS = 50_000


def fifty_thousand(server: HttpServer, name: str = "big.csv") -> bytes:
    data = ("id,v\n" + "".join(f"{i},{'w' * 20}\n" for i in range(ROWS))).encode()
    serve(server, {name: data})
    return data


def manifest_row(db: Any, url: str) -> tuple[Any, ...] | None:
    exists = db.execute("SELECT to_regclass('csvpg.manifest') IS NOT NULL").fetchone()[0]
    if not exists:
        return None
    return db.execute(
        "SELECT status, size, sha256, rows FROM csvpg.manifest WHERE url = %s", (url,)
    ).fetchone()


def test_a_body_without_length_closed_at_40_percent_is_retried_whole(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    data = fifty_thousand(http_server)
    http_server.omit_length = True
    url = http_server.url("big.csv")
    job = write_job(tmp_path / "job.toml", db, {"url": url})

    def cut() -> None:
        http_server.cut_next_after = len(data) * 2 // 5

    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(cut), log])
    assert summary.exit_code == 0 and summary.files[0].status == "loaded", summary.files[0].error
    warned = [w.message for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert warned and f"ended after {len(data) * 2 // 5} of {len(data)} bytes" in warned[0]
    assert db.count("big") == ROWS
    assert manifest_row(db, url) == ("loaded", len(data), hashlib.sha256(data).hexdigest(), ROWS)


def test_a_body_always_cut_without_length_fails_and_is_loaded_by_the_next_run(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    data = fifty_thousand(http_server)
    http_server.omit_length = True
    http_server.cut_every_after = len(data) * 2 // 5
    url = http_server.url("big.csv")
    job = write_job(tmp_path / "job.toml", db, {"url": url})
    first = run(job)
    assert first.exit_code == 1 and first.status == "failed"
    assert first.files[0].status == "failed"
    assert "ended after" in (first.files[0].error or "")
    assert "big" not in db.tables(), "nothing of a short body is committed"
    assert (manifest_row(db, url) or ("failed",))[0] == "failed"
    # The next run does not take the file for unchanged: it loads all of it.
    http_server.cut_every_after = None
    again = run(job)
    assert again.files[0].status == "loaded", again.files[0].error
    assert db.count("big") == ROWS


def test_a_get_shorter_than_the_head_said_fails_even_with_its_own_length(
    db, http_server: HttpServer, tmp_path: Path
) -> None:
    """The file is replaced by a shorter one between the listing (HEAD) and the GET: the
    GET is complete by its own Content-Length, but is not the file that was listed."""
    fifty_thousand(http_server)
    url = http_server.url("big.csv")
    job = write_job(tmp_path / "job.toml", db, {"url": url})
    shorter = "id,v\n1,a\n"
    summary = run(job, plugins=[OnJobStarted(lambda: serve(http_server, {"big.csv": shorter}))])
    assert summary.files[0].status == "failed"
    assert "ended after 9 of" in (summary.files[0].error or "")
    assert "big" not in db.tables()
    again = run(job)
    assert again.files[0].status == "loaded", again.files[0].error
    assert db.rows("big") == [("1", "a")]
    assert manifest_row(db, url)[:2] == ("loaded", len(shorter))


def test_a_429_waits_what_retry_after_says(db, http_server: HttpServer, tmp_path: Path) -> None:
    serve(http_server, {"a.csv": "x\n1\n2\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})
    http_server.retry_after = "1"
    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(lambda: http_server.fail_next(1, 429)), log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    warned = [w.message for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert len(warned) == 1, warned
    assert "HTTP 429" in warned[0]
    assert "in 1.0 s (the server's Retry-After)" in warned[0]


def test_a_long_retry_after_is_capped_and_the_message_says_so(
    db, http_server: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from csvpg import retry

    monkeypatch.setattr(retry, "MAX_RETRY_AFTER", 0.5)
    serve(http_server, {"a.csv": "x\n1\n"})
    job = write_job(tmp_path / "job.toml", db, {"url": http_server.url("a.csv")})
    http_server.retry_after = "3600"
    log = EventLog()
    summary = run(job, plugins=[OnJobStarted(lambda: http_server.fail_next(1, 503)), log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    warned = [w.message for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert "HTTP 503" in warned[0]
    assert "in 0.5 s (the server's Retry-After asked 3600 s; capped)" in warned[0], warned


def test_retry_after_as_an_http_date() -> None:
    import email.utils
    import time

    from csvpg.retry import parse_retry_after

    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(later) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0
    assert parse_retry_after("7") == 7
    assert parse_retry_after("soon") is None
