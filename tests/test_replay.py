"""Rejects you can act on, end to end through the command line: a dirty ERP export
(Latin-1, semicolons, CRLF) loads with rejects; ``csvpg rejects RUN --export`` writes
them in the file's own dialect and encoding; they are fixed, replayed
(``--replay``), and the table ends complete with every reject resolved."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from csvpg.rejectfile import ID_COLUMN, unprotect

HEADER = ["Nr", "Kunde", "Betrag", "Datum"]
#: The ERP's export: the good rows, and the bad ones (with why).
GOOD = [
    ["1", "Müller GmbH", "1.234,50", "01.02.2024"],
    ["2", "Bäckerei Öztürk", "99,00", "15.03.2024"],
    ["4", "Straße & Co\r\nHinterhaus", "12,00", "02.01.2024"],  # a quoted line end
    ["7", "Zoë", "-5,00", "30.06.2024"],
]
BAD = [
    ["3x", "Jürgen", "10,00", "01.01.2024"],  # no integer
    ["5", '=HYPERLINK("x")', "7,50", "31.02.2024"],  # no such day; a formula
    ["6", "Søren;Ærø", "1,00"],  # ragged: a field short (the ; is in quotes)
    ["8", "Grüße\r\nzweite Zeile", "abc", "01.01.2024"],  # not a number, two lines
]


def erp_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([HEADER, *rows])
    return out.getvalue().encode("latin-1")


def csvpg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csvpg", *args], capture_output=True, text=True, cwd=cwd
    )


def job_file(db: Any, folder: Path, name: str) -> Path:
    (folder / "jobs").mkdir(exist_ok=True)
    path = folder / "jobs" / f"{name}.toml"
    path.write_text(
        f"""
[job]
name = "{name}"

[database]
dsn = "{db.dsn}"
schema = "{db.schema}"

[source]
url = "../data/erp.csv"

[sink]
table = "{name.replace("-", "_")}"
mode = "append"
max_rejects = 10

[columns]
nr = "integer"
betrag = {{ type = "numeric", decimal = ",", thousands = "." }}
datum = {{ type = "date", format = "DD.MM.YYYY" }}
""",
        encoding="utf-8",
    )
    return path


def read_export(path: Path) -> list[list[str]]:
    """The export as the source file's dialect reads it: Latin-1, semicolons."""
    text = path.read_bytes().decode("latin-1")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))


def write_fixed(path: Path, rows: list[list[str]]) -> None:
    """The file saved back, as a spreadsheet set to the ERP's dialect writes it."""
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    path.write_bytes(out.getvalue().encode("latin-1"))


def fix(row: list[str]) -> list[str]:
    """What the person fixing the file does to each bad row."""
    fixed = list(row)
    if fixed[1] == "3x":
        fixed[1] = "3"
    if len(fixed) == 4:  # the ragged row: its date was missing
        fixed.append("01.05.2024")
    if fixed[4] == "31.02.2024":
        fixed[4] = "29.02.2024"
    return fixed  # row 8's amount "abc" is left for a second round


def rejects_state(db: Any, run_id: str) -> list[tuple[int, str | None]]:
    import psycopg

    with psycopg.connect(db.dsn) as conn:
        return conn.execute(
            "SELECT line, resolved_by FROM csvpg.rejects WHERE run_id = %s ORDER BY line",
            (run_id,),
        ).fetchall()


def test_a_dirty_latin1_export_is_fixed_and_replayed_until_complete(db, tmp_path: Path) -> None:
    name = f"erp-{uuid.uuid4().hex[:8]}"
    table = name.replace("-", "_")
    (tmp_path / "data").mkdir()
    source = erp_file([GOOD[0], BAD[0], GOOD[1], BAD[1], GOOD[2], BAD[2], GOOD[3], BAD[3]])
    (tmp_path / "data" / "erp.csv").write_bytes(source)
    job = job_file(db, tmp_path, name)

    ran = csvpg("run", str(job), "--json", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert db.count(table) == 4
    assert len(rejects_state(db, run_id)) == 4

    # Each reject's raw text is its record's bytes in the file, decoded.
    import psycopg

    with psycopg.connect(db.dsn) as conn:
        raws = conn.execute(
            "SELECT raw, byte_offset, byte_length FROM csvpg.rejects WHERE run_id = %s",
            (run_id,),
        ).fetchall()
    for raw, offset, length in raws:
        assert source[offset : offset + length].decode("latin-1") == raw
        assert raw.endswith("\r\n")

    export = tmp_path / "fix.csv"
    out = csvpg("rejects", run_id[:8], "--dsn", db.dsn, "--export", str(export), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"--replay {export}" in out.stdout
    data = export.read_bytes()
    assert b"\r\n" in data and "Jürgen".encode("latin-1") in data, "Latin-1, CRLF"
    rows = read_export(export)
    assert rows[0] == [ID_COLUMN, *HEADER]
    assert [r[0][0] for r in rows[1:]] == ["R"] * 4
    assert rows[2][2] == '\'=HYPERLINK("x")', "a formula is shown, never run"
    assert [[unprotect(v) for v in r[1:]] for r in rows[1:]] == BAD, "the file's own fields"

    fixed = tmp_path / "fixed.csv"
    write_fixed(fixed, [rows[0], *(fix(r) for r in rows[1:])])
    first = csvpg("rejects", run_id[:8], "--replay", str(fixed), "--dsn", db.dsn, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 loaded and resolved, 1 rejected again, 0 already resolved" in first.stdout
    assert db.count(table) == 7
    assert [by is not None for _line, by in rejects_state(db, run_id)] == [True, True, True, False]

    again = csvpg("rejects", run_id[:8], "--replay", str(fixed), "--dsn", db.dsn, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 loaded and resolved, 1 rejected again, 3 already resolved" in again.stdout
    assert db.count(table) == 7, "a row a replay loaded is never loaded twice"

    listed = csvpg("rejects", run_id[:8], "--dsn", db.dsn, cwd=tmp_path)
    assert "1 open, 3 resolved" in listed.stdout
    assert sum(" open " in line for line in listed.stdout.splitlines()) == 1

    second = tmp_path / "fix2.csv"
    assert csvpg("rejects", run_id, "--dsn", db.dsn, "--export", str(second), cwd=tmp_path)
    left = read_export(second)
    assert [r[1] for r in left[1:]] == ["8"], "only the open reject"
    left[1][3] = "3,25"
    write_fixed(second, left)
    last = csvpg("rejects", run_id[:8], "--replay", str(second), "--dsn", db.dsn, cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert "1 loaded and resolved, 0 rejected again" in last.stdout
    assert db.count(table) == 8, "the table is complete"
    assert all(by is not None for _line, by in rejects_state(db, run_id))
    assert ("8", "Grüße\r\nzweite Zeile") in {(str(r[0]), r[1]) for r in db.rows(table)}

    runs = csvpg("runs", "--dsn", db.dsn, "--job", name, cwd=tmp_path).stdout.splitlines()
    assert runs[0].split()[-3:] == ["REJECTED", "OPEN", "RESOLVED"]
    original = next(line for line in runs if line.startswith(run_id))
    assert original.split()[-3:] == ["4", "0", "4"]
    shown = csvpg("runs", run_id, "--dsn", db.dsn, cwd=tmp_path).stdout
    assert "rejects: 0 open, 4 resolved by a replay" in shown


def test_a_replay_refuses_rows_without_their_id(db, tmp_path: Path) -> None:
    name = f"erp-{uuid.uuid4().hex[:8]}"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "erp.csv").write_bytes(erp_file([GOOD[0], BAD[0]]))
    job = job_file(db, tmp_path, name)
    ran = csvpg("run", str(job), "--json", cwd=tmp_path)
    run_id = json.loads(ran.stdout)["run_id"]
    export = tmp_path / "fix.csv"
    csvpg("rejects", run_id, "--dsn", db.dsn, "--export", str(export), cwd=tmp_path)
    rows = read_export(export)
    write_fixed(export, [rows[0], ["", *rows[1][1:]]])
    out = csvpg("rejects", run_id, "--replay", str(export), "--dsn", db.dsn, cwd=tmp_path)
    assert out.returncode == 1
    assert f"line 2: '' is not a {ID_COLUMN}" in out.stderr
    assert "Traceback" not in out.stderr
    write_fixed(export, [rows[0], ["R999999999", *rows[1][1:]]])
    out = csvpg("rejects", run_id, "--replay", str(export), "--dsn", db.dsn, cwd=tmp_path)
    assert out.returncode == 1 and "R999999999 is no reject of" in out.stderr
    assert db.count(name.replace("-", "_")) == 1


def test_a_rebuild_job_does_not_replay(db, tmp_path: Path) -> None:
    name = f"erp-{uuid.uuid4().hex[:8]}"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "erp.csv").write_bytes(erp_file([GOOD[0], BAD[0]]))
    job = job_file(db, tmp_path, name)
    job.write_text(job.read_text().replace('mode = "append"', 'mode = "rebuild"'))
    run_id = json.loads(csvpg("run", str(job), "--json", cwd=tmp_path).stdout)["run_id"]
    export = tmp_path / "fix.csv"
    assert csvpg("rejects", run_id, "--dsn", db.dsn, "--export", str(export), cwd=tmp_path)
    rows = read_export(export)
    write_fixed(export, [rows[0], [rows[1][0], "3", *rows[1][2:]]])
    out = csvpg("rejects", run_id, "--replay", str(export), "--dsn", db.dsn, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "mode 'rebuild', which empties the table first" in out.stderr
    assert db.count(name.replace("-", "_")) == 1


def test_two_replays_at_once_load_a_row_once(db, tmp_path: Path) -> None:
    """A second replay of the same export, while the first holds its rejects, waits
    for it, finds them resolved and rolls its own rows back."""
    import threading
    import time

    import psycopg

    from csvpg.replay import replay
    from csvpg.spec import load_job

    name = f"erp-{uuid.uuid4().hex[:8]}"
    table = name.replace("-", "_")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "erp.csv").write_bytes(erp_file([GOOD[0], BAD[0]]))
    job = job_file(db, tmp_path, name)
    run_id = json.loads(csvpg("run", str(job), "--json", cwd=tmp_path).stdout)["run_id"]
    export = tmp_path / "fix.csv"
    assert csvpg("rejects", run_id, "--dsn", db.dsn, "--export", str(export), cwd=tmp_path)
    rows = read_export(export)
    write_fixed(export, [rows[0], [rows[1][0], "3", *rows[1][2:]]])
    reject = int(rows[1][0][1:])

    with psycopg.connect(db.dsn) as other:  # the first replay, holding the reject
        other.execute("SELECT 1 FROM csvpg.rejects WHERE id = %s FOR UPDATE", (reject,))
        xid = other.execute("SELECT pg_current_xact_id()::text").fetchone()
        done: list = []
        second = threading.Thread(
            target=lambda: done.append(replay(load_job(job), run_id, export, dsn=db.dsn))
        )
        second.start()
        for _ in range(1200):  # until the second replay waits for the reject's lock
            waiting = other.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
                " AND locktype = 'transactionid' AND transactionid::text = %s",
                xid,
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.1)
        other.execute(
            "UPDATE csvpg.rejects SET resolved_by = 'first', resolved_at = now() WHERE id = %s",
            (reject,),
        )
        other.commit()
        second.join()
    (result,) = done
    (file,) = result.summary.files
    assert file.status == "failed" and "resolved by another replay meanwhile" in file.error
    assert result.resolved == 0
    assert db.count(table) == 1, "the second replay's row is rolled back"
