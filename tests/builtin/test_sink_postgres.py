"""The three modes against real PostgreSQL: what the tables hold afterwards."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import psycopg
import pytest

from csvpg.api import run
from csvpg.summary import RunSummary
from tests.conftest import job_toml


def load(
    db, tmp_path: Path, files: dict[str, str], sink: str, *, extra: str = "", fmt: str = ""
) -> RunSummary:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for name, text in files.items():
        (data / name).write_bytes(text.encode())
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink=sink, extra=extra, fmt=fmt))
    # force: these tests reload the same file on purpose; the manifest would skip it.
    return run(job, force=True)


CUSTOMERS = "id,name,city\n1,Ada,London\n2,Grace,Arlington\n3,Zoë,Zürich\n"


def test_append_adds_rows_each_run(db, tmp_path: Path) -> None:
    first = load(db, tmp_path, {"people.csv": CUSTOMERS}, 'mode = "append"')
    assert first.exit_code == 0
    assert first.files[0].inserted == 3
    load(db, tmp_path, {"people.csv": CUSTOMERS}, 'mode = "append"')
    assert db.count("people") == 6
    assert db.columns("people") == {"id": "text", "name": "text", "city": "text"}


def test_upsert_inserts_then_updates(db, tmp_path: Path) -> None:
    sink = 'mode = "upsert"\nprimary_key = ["id"]'
    extra = '[columns]\nid = "integer"\n'
    first = load(db, tmp_path, {"people.csv": CUSTOMERS}, sink, extra=extra)
    assert (first.files[0].inserted, first.files[0].updated) == (3, 0)

    # An idempotent re-run: every key is there already, with the same values.
    again = load(db, tmp_path, {"people.csv": CUSTOMERS}, sink, extra=extra)
    f = again.files[0]
    assert (f.inserted, f.updated, f.unchanged) == (0, 0, 3)
    assert db.count("people") == 3

    changed = "id,name,city\n3,Zoë,Basel\n4,Edsger,Nuenen\n"
    third = load(db, tmp_path, {"people.csv": changed}, sink, extra=extra)
    f = third.files[0]
    assert (f.inserted, f.updated, f.unchanged) == (1, 1, 0)
    assert db.rows("people", "id") == [
        (1, "Ada", "London"),
        (2, "Grace", "Arlington"),
        (3, "Zoë", "Basel"),
        (4, "Edsger", "Nuenen"),
    ]


def test_upsert_last_duplicate_in_a_file_wins(db, tmp_path: Path) -> None:
    text = "id,v\n1,first\n2,only\n01,second\n1,last\n"
    result = load(
        db,
        tmp_path,
        {"d.csv": text},
        'mode = "upsert"\nprimary_key = ["id"]',
        extra='[columns]\nid = "int"\n',
    )
    f = result.files[0]
    assert (f.rows_read, f.inserted, f.updated, f.collapsed) == (4, 2, 0, 2)
    assert f.rows_read == f.inserted + f.updated + f.unchanged + f.collapsed
    assert db.rows("d", "id") == [(1, "last"), (2, "only")]


def test_upsert_last_duplicate_wins_with_dates_read_by_a_template(db, tmp_path: Path) -> None:
    """A repeated key sorts the converted rows (DISTINCT ON): the template's dates come
    along with their rows, and the last row's date is the one loaded."""
    text = "id,day\n1,31.01.2024\n2,29.02.2024\n1,01.03.2024\n"
    result = load(
        db,
        tmp_path,
        {"d.csv": text},
        'mode = "upsert"\nprimary_key = ["id"]',
        extra='[columns]\nid = "int"\nday = { type = "date", format = "DD.MM.YYYY" }\n',
    )
    assert result.files[0].collapsed == 1
    assert db.rows("d", "id") == [(1, dt.date(2024, 3, 1)), (2, dt.date(2024, 2, 29))]


def test_upsert_duplicates_of_the_tables_row_are_collapsed_not_unchanged(
    db, tmp_path: Path
) -> None:
    """A file whose keys are unique loads without DISTINCT ON; one whose repeated key's
    rows all equal the table's row still counts the repeats as collapsed."""
    sink = 'mode = "upsert"\nprimary_key = ["id"]'
    extra = '[columns]\nid = "int"\n'
    load(db, tmp_path, {"d.csv": "id,v\n1,a\n2,b\n"}, sink, extra=extra)
    same = load(db, tmp_path, {"d.csv": "id,v\n1,a\n01,a\n2,b\n3,c\n"}, sink, extra=extra)
    f = same.files[0]
    assert (f.inserted, f.updated, f.unchanged, f.collapsed) == (1, 0, 2, 1)
    unique = load(db, tmp_path, {"d.csv": "id,v\n1,z\n2,b\n4,d\n"}, sink, extra=extra)
    f = unique.files[0]
    assert (f.inserted, f.updated, f.unchanged, f.collapsed) == (1, 1, 1, 0)
    assert db.rows("d", "id") == [(1, "z"), (2, "b"), (3, "c"), (4, "d")]


def test_upsert_composite_key(db, tmp_path: Path) -> None:
    sink = 'mode = "upsert"\nprimary_key = ["kontonr", "jahr"]'
    text = "kontonr;jahr;saldo\n1000;2023;5\n1000;2024;7\n2000;2024;9\n"
    load(db, tmp_path, {"konto.csv": text}, sink)
    second = load(
        db, tmp_path, {"konto.csv": "kontonr;jahr;saldo\n1000;2024;8\n3000;2024;1\n"}, sink
    )
    assert (second.files[0].inserted, second.files[0].updated) == (1, 1)
    assert db.rows("konto", "kontonr,jahr") == [
        ("1000", "2023", "5"),
        ("1000", "2024", "8"),
        ("2000", "2024", "9"),
        ("3000", "2024", "1"),
    ]
    pk = db.execute(
        "SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (f"{db.schema}.konto",),
    ).fetchone()[0]
    assert sorted(pk) == ["jahr", "kontonr"]


def test_rebuild_replaces_contents(db, tmp_path: Path) -> None:
    load(db, tmp_path, {"people.csv": CUSTOMERS}, 'mode = "rebuild"')
    second = load(
        db, tmp_path, {"people.csv": "id,name,city\n9,Alan,Wilmslow\n"}, 'mode = "rebuild"'
    )
    assert second.files[0].inserted == 1
    assert db.rows("people") == [("9", "Alan", "Wilmslow")]


def test_rebuild_readers_wait_for_the_commit_then_see_the_new_rows(db, tmp_path: Path) -> None:
    """TRUNCATE locks the table: a reader during the rebuild waits (it never sees an
    empty or half-loaded table), and once the file commits it sees every new row."""
    load(db, tmp_path, {"people.csv": CUSTOMERS}, 'mode = "rebuild"')
    gate, release = threading.Event(), threading.Event()
    seen: list[int] = []

    class Pause:
        from csvpg import hookimpl

        @hookimpl
        def track_event(self, event):  # pause once the new rows are written, before commit
            from csvpg.events import BytesRead

            # Past the sample csvpg reads first: the COPY is under way.
            late = isinstance(event, BytesRead) and event.bytes_read >= 3 << 20
            if late and not gate.is_set():
                gate.set()
                release.wait(30)

    rows = 200_000  # about 5 MiB
    data = tmp_path / "data" / "people.csv"
    data.write_text("id,name,city\n" + "".join(f"{i},n{i},city {i}\n" for i in range(rows)))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='mode = "rebuild"'))
    worker = threading.Thread(target=run, args=(job,), kwargs={"plugins": [Pause()]})
    worker.start()
    assert gate.wait(30)

    def read() -> None:
        with psycopg.connect(db.dsn, application_name="reader") as conn:
            seen.append(conn.execute(f'SELECT count(*) FROM "{db.schema}".people').fetchone()[0])

    reader = threading.Thread(target=read)
    reader.start()
    waiting = False
    for _ in range(300):  # until PostgreSQL says the reader waits for a lock
        row = db.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = 'reader'"
            " AND state = 'active'"
        ).fetchone()
        if row and row[0] == "Lock":
            waiting = True
            break
        reader.join(0.02)
    assert waiting, "the reader waits for the rebuild's lock"
    assert seen == []  # nothing was read meanwhile
    release.set()
    worker.join(30)
    reader.join(30)
    assert seen == [rows]
    assert db.count("people") == rows


def test_failed_file_leaves_table_as_it_was(db, tmp_path: Path) -> None:
    load(db, tmp_path, {"people.csv": CUSTOMERS}, 'mode = "rebuild"')
    broken = "id,name,city\n7,Ok,Row\n8,too,many,fields\n"
    result = load(db, tmp_path, {"people.csv": broken}, 'mode = "rebuild"\nmax_rejects = 0')
    assert result.exit_code == 1
    failed = result.files[0]
    assert failed.status == "failed"
    assert "line 3" in failed.error and "people.csv" in failed.error
    assert db.rows("people", "id") == [
        ("1", "Ada", "London"),
        ("2", "Grace", "Arlington"),
        ("3", "Zoë", "Zürich"),
    ]


def test_columns_give_types_when_creating(db, tmp_path: Path) -> None:
    extra = '[columns]\nid = "bigint"\namount = "numeric(12,2)"\nday = "date"\n'
    text = "id,amount,day\n1,12.50,2024-01-31\n2,,2024-02-29\n"
    result = load(db, tmp_path, {"pay.csv": text}, 'mode = "append"', extra=extra)
    assert result.exit_code == 0
    assert db.columns("pay") == {"id": "bigint", "amount": "numeric", "day": "date"}
    assert [str(r[1]) for r in db.rows("pay", "id")] == ["12.50", "None"]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_bad_value_for_type_fails_with_line_and_column(db, tmp_path: Path, mode: str) -> None:
    """An upsert too: its staging table has the table's types, so COPY names the place."""
    extra = '[columns]\nid = "integer"\n'
    sink = f'mode = "{mode}"\nprimary_key = ["id"]\nmax_rejects = 0'
    result = load(db, tmp_path, {"n.csv": "id,v\n1,a\nx2,b\n"}, sink, extra=extra)
    error = result.files[0].error
    assert "n.csv, line 3, column id" in error
    assert "x2" in error
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.n",)).fetchone()[0] is None, (
        "the table created for the failed file is rolled back too"
    )


def test_missing_table_without_create(db, tmp_path: Path) -> None:
    result = load(db, tmp_path, {"t.csv": "a\n1\n"}, "create = false")
    assert result.files[0].status == "failed"
    assert "does not exist" in result.files[0].error
    assert "create = true" in result.files[0].hint


def test_existing_table_missing_a_column(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".t (a text)')
    result = load(db, tmp_path, {"t.csv": "a,b\n1,2\n"}, 'mode = "append"')
    assert "has no column 'b'" in result.files[0].error
    assert db.count("t") == 0


def test_existing_typed_table_is_loaded_through_its_types(db, tmp_path: Path) -> None:
    db.execute(
        f"CREATE TABLE \"{db.schema}\".t (id int PRIMARY KEY, seen date, extra text DEFAULT 'x')"
    )
    text = "ID,Seen\n1,2024-05-01\n2,2024-05-02\n"
    result = load(db, tmp_path, {"t.csv": text}, 'mode = "upsert"\nprimary_key = ["id"]')
    assert result.files[0].inserted == 2
    assert [(r[0], r[1].isoformat(), r[2]) for r in db.rows("t", "id")] == [
        (1, "2024-05-01", "x"),
        (2, "2024-05-02", "x"),
    ]


def test_rename_and_select_keep_the_byte_path(db, tmp_path: Path) -> None:
    extra = """
    [[transform]]
    type = "rename"
    columns = { "Kunden Nr" = "customer_id", "E-Mail" = "email" }

    [[transform]]
    type = "select"
    columns = ["customer_id", "email"]
    """
    text = "Kunden Nr,Name,E-Mail\n1,Ada,ada@example.org\n2,Grace,grace@example.org\n"
    result = load(db, tmp_path, {"kunden.csv": text}, 'mode = "append"', extra=extra)
    assert result.files[0].details["path"] == "bytes"
    assert db.columns("kunden") == {"customer_id": "text", "email": "text"}
    assert db.rows("kunden", "customer_id") == [
        ("1", "ada@example.org"),
        ("2", "grace@example.org"),
    ]


def test_many_files_many_tables(db, tmp_path: Path) -> None:
    files = {
        "IxExpKunde.csv": "nr;name\n1;A\n",
        "IxExpKonto.csv": "nr;jahr\n1;2024\n2;2024\n",
        "notes.txt": "x",
    }
    extra = '[naming]\nstrip_prefix = "IxExp"\n'
    data = tmp_path / "data"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(data), sink='mode = "rebuild"', extra=extra).replace(
            f'url = "{data}"', f'url = "{data}"\npattern = "IxExp*.csv"'
        )
    )
    result = run(job)
    assert sorted(f.table for f in result.files) == [f"{db.schema}.konto", f"{db.schema}.kunde"]
    assert db.count("konto") == 2 and db.count("kunde") == 1


def test_dry_run_writes_nothing(db, tmp_path: Path) -> None:
    data = tmp_path / "p.csv"
    data.write_text(CUSTOMERS)
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='mode = "append"'))
    result = run(job, dry_run=True)
    assert result.files[0].inserted == 3
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.p",)).fetchone()[0] is None


@pytest.mark.parametrize("mode", ["append", "upsert", "rebuild"])
def test_row_path_plugin_in_every_mode(db, tmp_path: Path, mode: str) -> None:
    """The example third-party plugin forces the row path; every mode takes it."""
    extra = '[[transform]]\ntype = "upper"\ncolumns = ["city"]\n'
    sink = f'mode = "{mode}"\nprimary_key = ["id"]'
    result = load(db, tmp_path, {"people.csv": CUSTOMERS}, sink, extra=extra)
    assert result.exit_code == 0, result.files[0].error
    assert result.files[0].details["path"] == "rows"
    assert [r[2] for r in db.rows("people", "id")] == ["LONDON", "ARLINGTON", "ZÜRICH"]


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_value_too_long_for_varchar_is_a_reject_never_cut_short(
    db, tmp_path: Path, mode: str
) -> None:
    """The careful path casts in SQL: an explicit cast to varchar(3) would cut "abcd" to
    "abc"; the column's own cast refuses it, as COPY does."""
    db.execute(f'CREATE TABLE "{db.schema}".v (id integer PRIMARY KEY, code varchar(3))')
    sink = f'mode = "{mode}"\nprimary_key = ["id"]\nmax_rejects = 5'
    result = load(db, tmp_path, {"v.csv": "id,code\n1,ab\n2,abcd\n3,xyz\n"}, sink)
    (f,) = result.files
    assert f.status == "loaded" and f.rejected == 1, f.error
    assert db.rows("v", "id") == [(1, "ab"), (3, "xyz")]
    (reason,) = db.execute(
        "SELECT reason FROM csvpg.rejects WHERE run_id = %s", (result.run_id,)
    ).fetchone()
    assert "too long" in reason
