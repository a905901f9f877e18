"""One large file over several connections ([run] split_mb): chunks cut where
PostgreSQL ends a record, the same table as a load on one connection, nothing left
behind, and the file's one transaction kept."""

from __future__ import annotations

import csv
import io
import random
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from csvpg import events as ev
from csvpg.hookspecs import hookimpl
from csvpg.pg.connect import free_connections
from csvpg.pg.split import row_chunks
from csvpg.spec import SpecError, load_job

# -- where the cuts fall ---------------------------------------------------------------


def chunks_of(data: bytes, block: int, size: int) -> list[bytes]:
    blocks = [data[i : i + block] for i in range(0, len(data), block)]
    chunks, current = [], b""
    for piece in row_chunks(blocks, b'"', size):
        if piece is None:
            chunks.append(current)
            current = b""
        else:
            assert piece, "no empty pieces"
            current += piece
    return [*chunks, current] if current or not chunks else chunks


field = st.text(alphabet='ab,"\n\r é;', max_size=12)


@given(
    rows=st.lists(st.lists(field, min_size=1, max_size=4), min_size=1, max_size=40),
    block=st.integers(1, 64),
    size=st.integers(1, 200),
    crlf=st.booleans(),
)
def test_chunks_are_whole_records(rows: list[list[str]], block: int, size: int, crlf: bool) -> None:
    """Every chunk parses to whole records: the chunks' records are the file's records."""
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    data = out.getvalue().encode()
    chunks = chunks_of(data, block, size)
    assert b"".join(chunks) == data

    def records(text: bytes) -> list[list[str]]:
        return list(csv.reader(io.StringIO(text.decode(), newline="")))

    assert [r for c in chunks for r in records(c)] == records(data)
    assert all(len(c) >= size for c in chunks[:-1]), "a chunk ends only once it is full"


@given(data=st.binary(max_size=300), block=st.integers(1, 50), size=st.integers(1, 80))
def test_cuts_fall_after_a_line_end_outside_quotes(data: bytes, block: int, size: int) -> None:
    """Any bytes at all (stray quotes too): each cut follows a \\n with an even number
    of quotes before it, which is where PostgreSQL's CSV reader ends a record."""
    data = data.replace(b"\x00", b'"')  # more quotes, more chances to be wrong
    chunks = chunks_of(data, block, size)
    assert b"".join(chunks) == data
    for chunk in chunks[:-1]:
        assert chunk.endswith(b"\n") and chunk.count(b'"') % 2 == 0


def test_split_mb_must_not_be_negative(tmp_path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "x"\n[source]\nurl = "."\n[run]\nsplit_mb = -1\n')
    with pytest.raises(SpecError) as err:
        load_job(job)
    assert err.value.key == "run.split_mb"


# -- loads -------------------------------------------------------------------------------

ROWS = 70_000  # about 2.4 MB: with split_mb = 1 and 2 connections, 8 or 9 chunks


def export(rows: int = ROWS, *, bad: dict[int, str] | None = None, seed: int = 7) -> bytes:
    """An ERP-like export: repeated keys far apart (the last one wins), quoted newlines,
    commas and quotes, accents, empty fields. ``bad`` replaces the amount of data row n."""
    rng = random.Random(seed)
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["id", "name", "note", "amount"])
    notes = ["", "plain", 'said "yes"', "two\nlines", "a, b", "Müller & Söhne"]
    for n in range(1, rows + 1):
        amount = f"{rng.randint(0, 99999) / 100:.2f}"
        if bad and n in bad:
            amount = bad[n]
        w.writerow([n % (rows - 5000) or rows, f"name {n}", rng.choice(notes), amount])
    return out.getvalue().encode()


class Warnings:
    def __init__(self) -> None:
        self.messages: list[str] = []

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Warned):
            self.messages.append(event.message)


#: An upsert splits when its values are converted in SQL (here a thousands separator the
#: amounts never hold); one COPY could stage in the table's types loads on one connection.
CONVERTED = 'amount = { type = "numeric(8,2)", thousands = "," }'


def job(
    table: str,
    mode: str,
    *,
    split_mb: int = 1,
    workers: int = 2,
    key: bool = True,
    columns: str = "",
) -> str:
    pk = 'primary_key = ["id"]' if key else ""
    return (
        f'[source]\nurl = "files/export.csv"\n'
        f'[sink]\nmode = "{mode}"\ntable = "{table}"\n{pk}\n'
        f"[run]\nworkers = {workers}\nsplit_mb = {split_mb}\n"
        + (f"[columns]\n{columns}\n" if columns else "")
    )


def scratch_schemas(db: Any) -> list[str]:
    rows = db.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'csvpg\\_split\\_%'"
    ).fetchall()
    return [name for (name,) in rows]


def split_of(summary: Any) -> dict[str, Any]:
    (file,) = summary.files
    assert file.status == "loaded", file.error
    return file.details["split"]


def test_upsert_split_matches_one_connection(csvpg_run, csvpg_db) -> None:
    data = {"export.csv": export()}
    alone = csvpg_run(job("alone", "upsert", split_mb=0), files=data)
    split = csvpg_run(job("split", "upsert", columns=CONVERTED), files=data)

    assert split_of(split)["connections"] == 2 and split_of(split)["chunks"] >= 4
    assert "split" not in alone.files[0].details  # split_mb = 0 never even considers it
    as_text = csvpg_db.execute(
        f"SELECT id, name, note, amount::text FROM {csvpg_db.schema}.split ORDER BY id"
    ).fetchall()
    assert as_text == csvpg_db.rows("alone", "id")
    (a,), (s,) = alone.files, split.files
    counts = ("rows_read", "inserted", "updated", "collapsed", "unchanged", "rejected")
    assert [getattr(s, c) for c in counts] == [getattr(a, c) for c in counts]
    assert s.collapsed == 5000 and s.inserted == ROWS - 5000
    # The key repeated 65 000 rows later holds its last row, not its first.
    assert csvpg_db.rows("split", "id")[0][1] == f"name {ROWS - 5000 + 1}"
    assert scratch_schemas(csvpg_db) == []

    again = csvpg_run(job("split", "upsert", columns=CONVERTED), force=True)
    assert (again.files[0].unchanged, again.files[0].inserted) == (ROWS - 5000, 0)


def test_an_upsert_copy_could_stage_in_the_table_types_is_not_split(csvpg_run, csvpg_db) -> None:
    """Staged in the table's own types on one connection, an upsert is faster than split
    into TEXT chunks for its one INSERT to cast: it does not split, and says why."""
    typed = job("typed", "upsert", columns='amount = "numeric(8,2)"')
    summary = csvpg_run(typed, files={"export.csv": export()})
    assert split_of(summary) == {
        "connections": 1,
        "why": "upsert stages the file in the table's own types on one connection, "
        "faster than a split's TEXT chunks",
    }
    assert csvpg_db.count("typed") == ROWS - 5000
    assert scratch_schemas(csvpg_db) == []


def test_new_table_is_moved_into_place(csvpg_run, csvpg_db) -> None:
    data = {"export.csv": export(seed=3)}
    summary = csvpg_run(job("fresh", "append", key=False), files=data)
    assert split_of(summary)["connections"] == 2
    assert csvpg_db.count("fresh") == ROWS
    alone = csvpg_run(job("alone", "append", key=False, split_mb=0), files=data)
    assert alone.files[0].inserted == ROWS
    ordered = "id::int, name"
    fresh = csvpg_db.execute(f"SELECT * FROM {csvpg_db.schema}.fresh ORDER BY {ordered}")
    alone_rows = csvpg_db.execute(f"SELECT * FROM {csvpg_db.schema}.alone ORDER BY {ordered}")
    assert fresh.fetchall() == alone_rows.fetchall()
    assert scratch_schemas(csvpg_db) == []


def test_new_table_keeps_its_key_name(csvpg_run, csvpg_db) -> None:
    """The primary key made in the scratch schema is named as if made in place."""
    summary = csvpg_run(
        job("keyed", "rebuild", columns='id = "integer"'),
        files={"export.csv": export(rows=40_000, seed=5).replace(b"\r\n", b"\n")},
    )
    # Repeated ids fail the rebuild's key: the file loads again on one connection and
    # fails there, saying which line; nothing is left of it.
    (file,) = summary.files
    assert file.status == "failed" and "line" in (file.error or "")
    assert csvpg_db.columns("keyed") == {}

    unique = "\n".join(f"{n},name {n}" for n in range(1, 120_001))
    summary = csvpg_run(
        '[sink]\nmode = "rebuild"\ntable = "keyed"\nprimary_key = ["id"]\n'
        "[run]\nworkers = 2\nsplit_mb = 1\n"
        '[columns]\nid = "integer"\n',
        files={"export.csv": "id,name\n" + unique + "\n"},
    )
    assert split_of(summary)["connections"] == 2
    key = csvpg_db.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
        (f"{csvpg_db.schema}.keyed",),
    ).fetchone()
    assert key == ("keyed_pkey",)
    assert csvpg_db.count("keyed") == 120_000


def test_existing_table_append_is_not_split(csvpg_run, csvpg_db) -> None:
    data = {"export.csv": export(rows=40_000)}
    csvpg_run(job("log", "append", key=False, split_mb=0), files=data)
    summary = csvpg_run(job("log", "append", key=False), force=True)
    assert split_of(summary)["connections"] == 1
    assert "existing table" in split_of(summary)["why"]
    assert csvpg_db.count("log") == 80_000

    one = csvpg_run(job("other", "upsert", workers=1, columns=CONVERTED), files=data)
    assert split_of(one) == {"connections": 1, "why": "the run has one connection ([run] workers)"}


def test_bad_rows_in_a_split_file_are_rejected_with_their_file_lines(csvpg_run, csvpg_db) -> None:
    """A chunk's COPY fails with a line of its own: the file loads again on one
    connection, and the rejects name the file's lines."""
    bad = {12: "twelve", 61_000: "1e999999"}
    warnings = Warnings()
    summary = csvpg_run(
        job("typed", "append", key=False, columns='amount = "numeric(8,2)"'),
        files={"export.csv": export(bad=bad)},
        plugins=[warnings],
    )
    (file,) = summary.files
    assert file.status == "loaded" and file.rejected == 2
    assert file.rows_read == file.inserted + file.rejected == ROWS
    assert csvpg_db.count("typed") == ROWS - 2
    rejects = csvpg_db.execute(
        "SELECT line, reason FROM csvpg.rejects WHERE run_id = %s ORDER BY line",
        (summary.run_id,),
    ).fetchall()
    # Lines of the file: quoted newlines before a row push its line past 1 + its number.
    text = export(bad=bad).decode()
    lines = [text[: text.index(word)].count("\n") + 1 for word in bad.values()]
    assert [line for line, _ in rejects] == lines
    # Each reject keeps its record as the file has it, and where its bytes are.
    data = export(bad=bad)
    for raw, offset, length in csvpg_db.execute(
        "SELECT raw, byte_offset, byte_length FROM csvpg.rejects WHERE run_id = %s",
        (summary.run_id,),
    ).fetchall():
        assert data[offset : offset + length].decode() == raw and raw.endswith("\n")
        assert any(word in raw for word in bad.values())
    assert any("loading it again on one connection" in m for m in warnings.messages)
    assert file.details["split"]["why"].startswith("split, it failed: ")
    assert scratch_schemas(csvpg_db) == []


def test_upsert_casts_fail_once_then_careful(csvpg_run, csvpg_db) -> None:
    """Staged chunks hold text: a value that does not cast fails the one INSERT, and the
    careful path sets it aside without loading the file a third time."""
    warnings = Warnings()
    summary = csvpg_run(
        job("up", "upsert", columns=CONVERTED),
        files={"export.csv": export(bad={30_000: "n/a"})},
        plugins=[warnings],
    )
    (file,) = summary.files
    assert file.status == "loaded" and file.rejected == 1 and file.details["careful"]
    assert not any("one connection" in m for m in warnings.messages)
    assert scratch_schemas(csvpg_db) == []


def test_a_connection_killed_mid_split_is_retried(csvpg_run, csvpg_db) -> None:
    """One of the COPY connections is terminated while the file streams: everything
    rolls back, the file is tried again, and the table holds each row once."""
    killed = threading.Event()
    started = threading.Event()
    warnings = Warnings()

    def kill_a_copy() -> None:
        # From a thread of its own, so the file keeps streaming while it looks: a COPY
        # is in flight for most, not all, of the time (none between two chunks).
        with psycopg.connect(csvpg_db.dsn, autocommit=True) as admin:
            for _ in range(2000):
                found = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid"
                    " FROM pg_stat_activity WHERE application_name = 'csvpg'"
                    " AND query LIKE 'COPY%%' AND state = 'active' LIMIT 1) one"
                ).fetchone()
                if found and found[0]:
                    killed.set()
                    return
                time.sleep(0.005)

    class Killer:
        @hookimpl
        def track_event(self, event: ev.Event) -> None:
            big = isinstance(event, ev.BytesRead) and event.bytes_read >= 1 << 20
            if big and not started.is_set():
                started.set()
                threading.Thread(target=kill_a_copy, daemon=True).start()

    summary = csvpg_run(
        job("killed", "upsert", columns=CONVERTED).replace(
            "[run]\n", "[run]\nretry_delay = 0.05\n"
        ),
        files={"export.csv": export()},
        plugins=[Killer(), warnings],
    )
    assert killed.is_set(), "a COPY connection was terminated mid-file"
    assert split_of(summary)["connections"] == 2
    assert any("retry 1 of 3" in m for m in warnings.messages)
    assert csvpg_db.count("killed") == ROWS - 5000
    assert scratch_schemas(csvpg_db) == []


def test_dry_run_leaves_nothing(csvpg_run, csvpg_db) -> None:
    files = {"export.csv": export()}
    summary = csvpg_run(job("dry", "upsert", columns=CONVERTED), files=files, dry_run=True)
    assert split_of(summary)["connections"] == 2
    assert csvpg_db.columns("dry") == {}
    assert scratch_schemas(csvpg_db) == []


def test_scratch_of_a_dead_run_is_dropped_by_the_next(csvpg_run, csvpg_db) -> None:
    dead, live = uuid.uuid4().hex, uuid.uuid4().hex
    for run_id in (dead, live):
        csvpg_db.execute(f"CREATE SCHEMA csvpg_split_{run_id}_0")
        csvpg_db.execute(f"CREATE TABLE csvpg_split_{run_id}_0.part0 (f0 text)")
    with psycopg.connect(csvpg_db.dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('csvpg.run'), hashtext(%s))", (live,))
        csvpg_run("", files={"a.csv": "id\n1\n"})
        assert scratch_schemas(csvpg_db) == [f"csvpg_split_{live}_0"]
    csvpg_db.execute(f"DROP SCHEMA csvpg_split_{live}_0 CASCADE")


@pytest.fixture
def loader(csvpg_run, csvpg_db) -> Any:
    """A least-privileged loading user (no CREATE on the database, at most 2
    connections) whose csvpg schema an administrator made: its DSN."""
    csvpg_run("", files={"warm.csv": "id\n1\n"})  # csvpg.* made and migrated (as admin)
    role = "csvpg_loader_" + uuid.uuid4().hex[:8]
    grants = [
        f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 2",
        f"GRANT USAGE, CREATE ON SCHEMA {csvpg_db.schema} TO {role}",
        f"GRANT USAGE ON SCHEMA csvpg TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA csvpg TO {role}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA csvpg TO {role}",
    ]
    for statement in grants:
        csvpg_db.execute(statement)
    try:
        yield role, make_conninfo(csvpg_db.dsn, user=role)
    finally:
        csvpg_db.execute(f"DROP OWNED BY {role} CASCADE")
        csvpg_db.execute(f"DROP ROLE {role}")


def test_a_user_without_create_on_the_database(csvpg_run, csvpg_db, loader) -> None:
    """It loads into a schema it may create tables in; a large file loads unsplit (no
    spare connection under its limit, then no right to a scratch schema)."""
    role, dsn = loader
    csvpg_db.execute(f"ALTER ROLE {role} CONNECTION LIMIT 3")
    held: list[psycopg.Connection[Any]] = []

    class Crowd:
        """Takes the role's last free connection once the run has counted them."""

        @hookimpl
        def track_event(self, event: ev.Event) -> None:
            if isinstance(event, ev.FileStarted):
                held.append(psycopg.connect(dsn))

    try:
        summary = csvpg_run(
            job("limited", "upsert", columns=CONVERTED),
            files={"export.csv": export()},
            dsn=dsn,
            plugins=[Crowd()],
        )
    finally:
        for conn in held:
            conn.close()
    assert split_of(summary)["why"].startswith("no more connections")
    assert csvpg_db.count("limited") == ROWS - 5000
    csvpg_db.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
    summary = csvpg_run(job("limited", "upsert", columns=CONVERTED), dsn=dsn, force=True)
    assert split_of(summary) == {"connections": 1, "why": "the user may not create a schema"}
    assert summary.files[0].unchanged == ROWS - 5000


def test_workers_stay_within_the_connection_limit(csvpg_run, loader) -> None:
    _, dsn = loader
    with psycopg.connect(dsn) as conn:
        assert free_connections(conn) == 1  # 2 allowed, this one used
    files = {"export.csv": export(rows=40_000)}
    summary = csvpg_run(job("auto", "upsert", workers=0, columns=CONVERTED), files=files, dsn=dsn)
    assert split_of(summary)["why"] == "the run has one connection ([run] workers)"

    warnings = Warnings()
    many = job("many", "upsert", workers=8, columns=CONVERTED)
    summary = csvpg_run(many, dsn=dsn, plugins=[warnings])
    assert split_of(summary)["why"] == "the run has one connection ([run] workers)"
    assert "[run] workers = 8, but the server allows 1 more connection" in warnings.messages[0]
    # The end is recorded at once: the files' kept connections are closed for it.
    assert not any("cannot record the run's end" in m for m in warnings.messages), warnings


def test_check_says_whether_a_large_file_splits(csvpg_run, capsys) -> None:
    from csvpg.cli.main import main

    csvpg_run(job("shown", "append", key=False), files={"export.csv": export(rows=40_000)})
    assert main(["check", str(csvpg_run.job_path)]) == 0
    assert "split: no: append into an existing table" in capsys.readouterr().out
    csvpg_run(job("shown_new", "append", key=False), dry_run=True)
    assert main(["check", str(csvpg_run.job_path)]) == 0
    out = capsys.readouterr().out
    assert "split: over the run's idle connections (a new table, moved into place)" in out


def test_a_run_with_its_history_elsewhere_is_alive_in_the_target_too(csvpg_run, csvpg_db) -> None:
    """Scratch lives in the target database: a run holds its lock there as well, so a
    run of another job (another history) never takes its scratch for a dead run's."""
    name = "csvpg_hist_" + uuid.uuid4().hex[:8]
    csvpg_db.execute(f'CREATE DATABASE "{name}"')
    history_dsn = make_conninfo(csvpg_db.dsn, dbname=name)
    seen: list[bool] = []

    class Probe:
        @hookimpl
        def track_event(self, event: ev.Event) -> None:
            if isinstance(event, ev.BytesRead) and not seen:
                with psycopg.connect(csvpg_db.dsn) as conn:
                    taken = conn.execute(
                        "SELECT pg_try_advisory_xact_lock(hashtext('csvpg.run'), hashtext(%s))",
                        (event.run_id,),
                    ).fetchone()
                seen.append(bool(taken and not taken[0]))

    try:
        summary = csvpg_run(
            job("elsewhere", "upsert", columns=CONVERTED) + f'[history]\ndsn = "{history_dsn}"\n',
            files={"export.csv": export(rows=40_000)},
            plugins=[Probe()],
        )
        assert split_of(summary)["connections"] == 2
        assert seen == [True], "the run's lock is held in the target database"
    finally:
        csvpg_db.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_latin1_semicolon_export_splits_and_keeps_its_accents(csvpg_run, csvpg_db) -> None:
    """The nightly ERP dump: Latin-1, semicolons, decimal commas; cut on bytes, each
    chunk COPYed with ENCODING 'LATIN1'."""
    rows = list(csv.reader(io.StringIO(export().decode(), newline="")))
    out = io.StringIO(newline="")
    erp = csv.writer(out, delimiter=";", lineterminator="\r\n")
    erp.writerows([*rows[:1], *([i, n, note, a.replace(".", ",")] for i, n, note, a in rows[1:])])
    summary = csvpg_run(
        job("erp", "upsert", columns='amount = { type = "numeric(8,2)", decimal = "," }'),
        files={"export.csv": out.getvalue().encode("latin-1")},
    )
    assert split_of(summary)["connections"] == 2
    notes = {r[0] for r in csvpg_db.execute(f"SELECT note FROM {csvpg_db.schema}.erp")}
    assert "Müller & Söhne" in notes and "two\nlines" in notes
    assert csvpg_db.count("erp") == ROWS - 5000
    total = csvpg_db.execute(f"SELECT sum(amount) FROM {csvpg_db.schema}.erp").fetchone()
    assert total is not None and total[0] > 0
