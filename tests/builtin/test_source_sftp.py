"""The sftp:// source against a real SFTP server on loopback (tests/fix_sftp.py):
several files into several tables, re-runs, every way to log in, host keys, and a
connection cut (or a server stopped) in the middle of a file."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from csvpg import hookimpl
from csvpg.api import run
from csvpg.errors import SourceError
from csvpg.events import BytesRead, Event, FileFailed, Warned
from csvpg.reporters import EventLog
from tests.conftest import source_job
from tests.fix_sftp import SftpServer

ROWS = 200_000  # about 6 MiB: BytesRead fires while the file streams


def write_job(
    path: Path,
    db: Any,
    url: str,
    options: dict[str, Any],
    *,
    pattern: str | None = None,
    mode: str = "append",
    table: str = "{name}",
    extra: dict[str, Any] | None = None,
) -> Path:
    source: dict[str, Any] = {"url": url, "options": options}
    if pattern:
        source["pattern"] = pattern
    return source_job(path, db, "sftp", source, {"mode": mode, "table": table}, extra)


def exports(server: SftpServer, files: dict[str, str]) -> Path:
    folder = server.root / "exports"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home: no ~/.ssh/known_hosts, no default keys, no agent."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return folder


def no_secrets(secret: str, summary: Any, log: EventLog | None, db: Any) -> None:
    """``secret`` appears nowhere: summary, events, manifest, history."""
    assert secret not in repr(summary.to_dict())
    if log is not None:
        assert secret not in repr(log.events)
    for table in ("manifest", "files", "runs"):
        exists = db.execute("SELECT to_regclass(%s) IS NOT NULL", (f"csvpg.{table}",)).fetchone()
        if exists[0]:
            assert secret not in repr(db.execute(f"SELECT * FROM csvpg.{table}").fetchall())


# -- a directory of files ----------------------------------------------------------------


def test_a_directory_into_several_tables_and_re_runs(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    folder = exports(
        sftp_server,
        {
            "IxExpKunden.csv": "id,name\n1,Anna\n2,Ben\n",
            "IxExpKonto.csv": "nr;saldo\n10;1,5\n11;2,5\n12;3,5\n",
            "IxExpOrt name#1.csv": "plz,ort\n10115,Berlin\n",
            "readme.txt": "not data\n",
        },
    )
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(),
        pattern="IxExp*.csv",
        extra={"naming": {"strip_prefix": "IxExp"}},
    )
    log = EventLog()
    first = run(job, plugins=[log])
    assert {f.status for f in first.files} == {"loaded"}, [f.error for f in first.files]
    assert db.tables() == {"kunden", "konto", "ort_name_1"}
    assert db.rows("kunden", order_by="id") == [("1", "Anna"), ("2", "Ben")]
    assert db.count("konto") == 3
    base = sftp_server.url("exports/")
    assert sorted(f.file for f in first.files) == [
        base + "IxExpKonto.csv",
        base + "IxExpKunden.csv",
        base + "IxExpOrt name%231.csv",
    ]
    assert base.startswith(f"sftp://{sftp_server.user}@127.0.0.1:{sftp_server.port}/")
    no_secrets(sftp_server.passphrase, first, log, db)

    again = run(job)
    assert [f.status for f in again.files] == ["skipped"] * 3
    assert all(f.error.startswith("unchanged since run") for f in again.files)

    changed = folder / "IxExpKunden.csv"
    changed.write_text("id,name\n3,Cem\n")
    later = time.time() + 10
    os.utime(changed, (later, later))
    third = run(job)
    assert {Path(f.file).name: f.status for f in third.files} == {
        "IxExpKonto.csv": "skipped",
        "IxExpKunden.csv": "loaded",
        "IxExpOrt name%231.csv": "skipped",
    }
    assert db.count("kunden") == 3
    assert db.count("konto") == 3


def test_one_file_by_url_and_a_home_relative_path(db, sftp_server: SftpServer, tmp_path: Path):
    exports(sftp_server, {"one.csv": "a\n1\n", "two.csv": "b\n2\n"})
    url = sftp_server.url("exports/one.csv")
    job = write_job(tmp_path / "job.toml", db, url, sftp_server.options())
    summary = run(job)
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert summary.files[0].file == url
    assert db.count("one") == 1
    if sftp_server.kind != "asyncssh":
        return  # sshd logs in to the real home folder, not the served one
    # "/~/…" is under the login folder (the served root here), as scp has it.
    home_url = sftp_server.url().rstrip("/") + "/~/exports/"
    job = write_job(tmp_path / "home.toml", db, home_url, sftp_server.options(), pattern="t*")
    summary = run(job)
    assert [f.file for f in summary.files] == [home_url + "two.csv"]
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert db.count("two") == 1


def test_a_new_source_reopens_what_another_listed(sftp_server: SftpServer, home: Path) -> None:
    import io
    import zipfile

    from csvpg.builtin.source_sftp import SftpSource

    folder = exports(sftp_server, {"a b#1.csv": "x\n1\n"})
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as zf:
        zf.writestr("in/m.csv", "m\n2\n")
    (folder / "p.zip").write_bytes(packed.getvalue())
    url = sftp_server.url("exports/")
    refs = SftpSource(url=url, options=sftp_server.options()).list(None)
    assert [r.url for r in refs] == [url + "a b%231.csv", url + "p.zip#in/m.csv"]
    fresh = SftpSource(url=url, options=sftp_server.options())
    contents = []
    for ref in refs:
        with fresh.open(ref) as stream:
            contents.append(stream.read())
    assert contents == [b"x\n1\n", b"m\n2\n"]


# -- logging in --------------------------------------------------------------------------


def test_password_from_the_environment_is_never_shown(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sftp_server.password is None:
        pytest.skip("sshd checks the system's passwords")
    exports(sftp_server, {"a.csv": "x\n1\n"})
    monkeypatch.setenv("SFTP_PASSWORD", sftp_server.password)
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        {"password": "${SFTP_PASSWORD}", "known_hosts": str(sftp_server.known_hosts)},
    )
    log = EventLog()
    summary = run(job, plugins=[log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    no_secrets(sftp_server.password, summary, log, db)


def test_a_password_in_the_url_stays_out_of_file_urls(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    if sftp_server.password is None:
        pytest.skip("sshd checks the system's passwords")
    exports(sftp_server, {"a.csv": "x\n1\n"})
    url = sftp_server.url("exports/").replace("@", f":{sftp_server.password}@", 1)
    job = write_job(tmp_path / "job.toml", db, url, {"known_hosts": str(sftp_server.known_hosts)})
    log = EventLog()
    summary = run(job, plugins=[log])
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert summary.files[0].file == sftp_server.url("exports/a.csv")
    no_secrets(sftp_server.password, summary, log, db)


def test_a_wrong_password_fails_at_once_with_a_hint(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    if sftp_server.password is None:
        pytest.skip("sshd checks the system's passwords")
    exports(sftp_server, {"a.csv": "x\n1\n"})
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        {"password": "not-it-at-all", "known_hosts": str(sftp_server.known_hosts)},
    )
    started = time.perf_counter()
    with pytest.raises(SourceError) as info:
        run(job)
    assert "refused the login of 'csvpg'" in info.value.message
    assert "password" in (info.value.hint or "")
    assert "not-it-at-all" not in info.value.message + (info.value.hint or "")
    assert time.perf_counter() - started < 5, "no retries for a refused login"
    assert db.tables() == set()


def test_a_wrong_passphrase_names_the_key_problem(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    exports(sftp_server, {"a.csv": "x\n1\n"})
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(passphrase="wrong-passphrase"),
    )
    with pytest.raises(SourceError) as info:
        run(job)
    assert "cannot read the private key" in info.value.message
    assert "passphrase" in (info.value.hint or "")
    assert "wrong-passphrase" not in str(info.value) + (info.value.hint or "")


def test_a_key_in_openssh_format_with_a_passphrase(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    key = sftp_server.keys.client_key_openssh
    if not key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY"):
        pytest.skip("neither bcrypt nor ssh-keygen could make an encrypted OpenSSH key")
    exports(sftp_server, {"a.csv": "x\n1\n"})
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(key_file=str(key)),
    )
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError) as info:
            run(job)
        assert "bcrypt" in (info.value.hint or "")
        return
    assert run(job).files[0].status == "loaded"


@pytest.mark.skipif(not shutil.which("ssh-agent"), reason="no ssh-agent")
def test_the_agent_logs_in(db, sftp_server: SftpServer, tmp_path: Path, home: Path, monkeypatch):
    exports(sftp_server, {"a.csv": "x\n1\n"})
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 5
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(
            ["ssh-add", str(sftp_server.keys.client_key_plain)],
            env=env,
            check=True,
            capture_output=True,
        )
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        job = write_job(
            tmp_path / "job.toml",
            db,
            sftp_server.url("exports/"),
            {"known_hosts": str(sftp_server.known_hosts)},
        )
        assert run(job).files[0].status == "loaded"
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(5)


# -- host keys ---------------------------------------------------------------------------


def test_an_unknown_host_key_is_a_clear_error_and_nothing_loads(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exports(sftp_server, {"a.csv": "x\n1\n"})
    options = sftp_server.options()
    del options["known_hosts"]
    job = write_job(tmp_path / "job.toml", db, sftp_server.url("exports/"), options)
    started = time.perf_counter()
    with pytest.raises(SourceError) as info:
        run(job)
    port = sftp_server.port
    assert f"the host key of [127.0.0.1]:{port} is unknown" in info.value.message
    hint = info.value.hint or ""
    assert f"ssh-keyscan -p {port} 127.0.0.1 >> ~/.ssh/known_hosts" in hint
    assert 'known_hosts = "path"' in hint
    assert "insecure_skip_host_key = true" in hint
    assert time.perf_counter() - started < 5, "an unknown host key is not retried"
    assert db.tables() == set()

    from csvpg.cli.main import main

    assert main(["run", str(job)]) == 1
    err = capsys.readouterr().err
    assert "is unknown" in err and "hint: if you trust this server" in err


def test_the_key_in_home_known_hosts_is_trusted(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    exports(sftp_server, {"a.csv": "x\n1\n"})
    (home / ".ssh").mkdir()
    shutil.copy(sftp_server.known_hosts, home / ".ssh" / "known_hosts")
    options = sftp_server.options()
    del options["known_hosts"]
    job = write_job(tmp_path / "job.toml", db, sftp_server.url("exports/"), options)
    assert run(job).files[0].status == "loaded"


def test_a_changed_host_key_is_refused(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    import asyncssh

    exports(sftp_server, {"a.csv": "x\n1\n"})
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sftp_server.port} {other}\n")
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(known_hosts=str(known)),
    )
    with pytest.raises(SourceError) as info:
        run(job)
    assert "does not match the one in" in info.value.message
    assert "ssh-keygen -R" in (info.value.hint or "")
    assert db.tables() == set()


def test_insecure_skip_host_key_only_when_written(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    exports(sftp_server, {"a.csv": "x\n1\n"})
    options = sftp_server.options(insecure_skip_host_key=True)
    del options["known_hosts"]
    job = write_job(tmp_path / "job.toml", db, sftp_server.url("exports/"), options)
    assert run(job).files[0].status == "loaded"


def test_a_misspelt_option_is_a_spec_error(db, sftp_server: SftpServer, tmp_path: Path) -> None:
    from csvpg.errors import SpecError

    job = write_job(tmp_path / "job.toml", db, sftp_server.url("x/"), {"known_host": "x"})
    with pytest.raises(SpecError) as info:
        run(job)
    assert "did you mean 'known_hosts'" in (info.value.hint or "")


# -- connections that drop ---------------------------------------------------------------


def big_file(server: SftpServer, name: str = "big.csv") -> None:
    folder = server.root / "exports"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("id,v\n" + "".join(f"{i},{'y' * 20}\n" for i in range(ROWS)))


class At2MiB:
    """Calls ``action`` once, when a file has streamed 2 MiB."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = threading.Event()

    @hookimpl
    def track_event(self, event: Event) -> None:
        if isinstance(event, BytesRead) and event.bytes_read >= 2 << 20 and not self.done.is_set():
            self.done.set()
            self.action()


def test_a_connection_cut_mid_file_is_retried_and_nothing_is_duplicated(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    big_file(sftp_server, "big.csv")
    big_file(sftp_server, "big2.csv")
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(),
        extra={"run": {"retry_delay": 0.02, "workers": 2}},
    )
    cut = At2MiB(sftp_server.drop_connections)
    log = EventLog()
    summary = run(job, plugins=[cut, log])
    assert cut.done.is_set()
    assert [f.status for f in summary.files] == ["loaded", "loaded"], [
        f.error for f in summary.files
    ]
    retries = [w.message for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert retries and all("connection" in r.lower() for r in retries), retries
    assert db.count("big") == ROWS and db.count("big2") == ROWS
    assert [f.status for f in run(job).files] == ["skipped", "skipped"]
    assert db.count("big") == ROWS and db.count("big2") == ROWS


def test_a_server_gone_mid_file_fails_it_whole_and_a_re_run_finishes(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    big_file(sftp_server)
    job = write_job(tmp_path / "job.toml", db, sftp_server.url("exports/"), sftp_server.options())
    stop = At2MiB(sftp_server.stop)
    log = EventLog()
    summary = run(job, plugins=[stop, log])
    assert stop.done.is_set()
    failed = summary.files[0]
    assert failed.status == "failed"
    assert "cannot connect" in (failed.error or ""), failed.error
    assert len([w for w in log.of(Warned) if "retry" in w.message]) == 3
    assert log.of(FileFailed)
    assert "big" not in db.tables(), "the file's transaction rolled back whole"

    sftp_server.start()
    again = run(job)
    assert again.files[0].status == "loaded", again.files[0].error
    assert db.count("big") == ROWS
    assert db.execute(f'SELECT count(DISTINCT id) FROM "{db.schema}".big').fetchone() == (ROWS,)


def test_key_and_known_hosts_paths_start_at_the_job_folder(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path, monkeypatch
) -> None:
    """A job kept with its key and known_hosts beside it runs from any folder (cron)."""
    exports(sftp_server, {"a.csv": "x\n1\n"})
    folder = tmp_path / "jobs"
    (folder / "keys").mkdir(parents=True)
    shutil.copy(sftp_server.client_key, folder / "keys" / "id_etl")
    shutil.copy(sftp_server.known_hosts, folder / "known_hosts")
    options = sftp_server.options(key_file="keys/id_etl", known_hosts="known_hosts")
    job = write_job(folder / "job.toml", db, sftp_server.url("exports/"), options)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded"]
    assert db.count("a") == 1


def test_each_run_closes_its_connection(db, sftp_server: SftpServer, tmp_path: Path, home: Path):
    """A long-lived process (csvpg serve, the dashboard) keeps no SSH connection per run."""
    exports(sftp_server, {"a.csv": "x\n1\n"})
    job = write_job(tmp_path / "job.toml", db, sftp_server.url("exports/"), sftp_server.options())
    for _ in range(3):
        assert run(job, force=True).files[0].status == "loaded"
        deadline = time.monotonic() + 15  # the server notices a close when it next runs
        while sftp_server.connections and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sftp_server.connections == 0


def test_a_file_split_over_connections_survives_an_sftp_cut(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    """One 6 MiB export over 2 connections ([run] split_mb = 1) into a new table: the
    SFTP connection drops at 2 MiB, the split rolls back, the retry loads it whole."""
    big_file(sftp_server)
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("exports/"),
        sftp_server.options(),
        extra={"run": {"retry_delay": 0.02, "workers": 2, "split_mb": 1}},
    )
    cut = At2MiB(sftp_server.drop_connections)
    log = EventLog()
    summary = run(job, plugins=[cut, log])
    assert cut.done.is_set()
    (file,) = summary.files
    assert file.status == "loaded", file.error
    assert file.details["split"]["connections"] == 2
    assert any("retry 1 of 3" in w.message for w in log.of(Warned))
    assert db.count("big") == ROWS
    assert db.execute(
        "SELECT count(DISTINCT id) FROM {}".format(f'"{db.schema}".big')
    ).fetchone() == (ROWS,)


def test_a_file_that_grows_while_read_is_never_loaded_half(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    big_file(sftp_server, "live.csv")
    path = sftp_server.root / "exports" / "live.csv"
    job = write_job(
        tmp_path / "job.toml", db, sftp_server.url("exports/live.csv"), sftp_server.options()
    )

    def append() -> None:
        with path.open("a") as out:
            out.write(f"{ROWS},half a ro")

    log = EventLog()
    summary = run(job, plugins=[At2MiB(append), log])
    assert summary.exit_code == 1
    assert summary.files[0].status == "failed"
    assert "changed while it was read" in (summary.files[0].error or "")
    assert [w for w in log.of(Warned) if "retry 1 of 3" in w.message]
    assert "live" not in db.tables()
    again = run(job)
    assert again.files[0].status == "loaded", again.files[0].error
    assert db.count("live") == ROWS + 1


def test_a_missing_folder_with_a_pattern_is_not_found(
    db, sftp_server: SftpServer, tmp_path: Path, home: Path
) -> None:
    job = write_job(
        tmp_path / "job.toml",
        db,
        sftp_server.url("nowhere/"),
        sftp_server.options(),
        pattern="*.csv",
    )
    with pytest.raises(SourceError, match="source not found"):
        run(job)
