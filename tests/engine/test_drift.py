"""[sink] schema: a monthly series of exports that drift (a column added, an id past
2³¹, decimals appearing, a column dropped, a longer text, a time of day) loaded by each
rule (freeze, evolve, discard_new) into real PostgreSQL, checked cell by cell."""

from __future__ import annotations

import gzip
import io
import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from csvpg.api import run
from csvpg.engine.drift import SAMPLE_ROWS
from csvpg.pg.drift import Drift, alter_sql, is_widening, same_type, wider_types
from csvpg.preflight import check
from csvpg.summary import RunSummary, drift_lines
from tests.conftest import job_toml

TABLE = "sales (id integer, qty integer, day date, region varchar(8))"

#: Month → the export of that month.
MONTHS = {
    "2024-01.csv": "id,qty,day,region\n1,5,2024-01-03,north\n2,7,2024-01-09,south\n",
    # a column added
    "2024-02.csv": "id,qty,day,region,discount\n3,1,2024-02-01,east,0.50\n4,2,2024-02-02,west,\n",
    # an id past 2³¹
    "2024-03.csv": "id,qty,day,region\n3000000000,4,2024-03-05,north\n5,3,2024-03-06,south\n",
    # decimals appearing
    "2024-04.csv": (
        "id,qty,day,region,discount\n6,2.5,2024-04-01,east,1.25\n7,3,2024-04-02,west,0\n"
    ),
    # a column dropped
    "2024-05.csv": "id,qty,day,discount\n8,1,2024-05-01,0.10\n",
    # a longer text, a time of day
    "2024-06.csv": "id,qty,day,region\n9,2,2024-06-01 13:45:00,north-northwest\n",
}


def load_month(db: Any, tmp_path: Path, name: str, sink: str, extra: str = "") -> RunSummary:
    """One month's export, loaded by a job whose [sink] is ``sink`` (table ``sales``)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for old in data.iterdir():
        old.unlink()
    (data / name).write_text(MONTHS[name], encoding="utf-8")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink=f'table = "sales"\n{sink}', extra=extra))
    return run(job)


def series(db: Any, tmp_path: Path, sink: str) -> dict[str, Any]:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    return {name: load_month(db, tmp_path, name, sink).files[0] for name in MONTHS}


def test_evolve_loads_every_month_and_reports_each_change(db, tmp_path: Path) -> None:
    files = series(db, tmp_path, 'schema = "evolve"')
    assert [f.status for f in files.values()] == ["loaded"] * 6, [f.error for f in files.values()]
    drift = {name: f.details.get("drift") for name, f in files.items()}
    assert drift == {
        "2024-01.csv": None,
        "2024-02.csv": {"added": [{"column": "discount", "type": "numeric(12,2)"}]},
        "2024-03.csv": {
            "widened": [{"column": "id", "from": "integer", "to": "bigint"}],
            "missing": ["discount"],
        },
        "2024-04.csv": {"widened": [{"column": "qty", "from": "integer", "to": "numeric"}]},
        "2024-05.csv": {"missing": ["region"]},
        "2024-06.csv": {
            "widened": [
                {"column": "day", "from": "date", "to": "timestamp"},
                {"column": "region", "from": "character varying(8)", "to": "text"},
            ],
            "missing": ["discount"],
        },
    }
    assert db.columns("sales") == {
        "id": "bigint",
        "qty": "numeric",
        "day": "timestamp without time zone",
        "region": "text",
        "discount": "numeric",
    }
    d = datetime
    assert db.rows("sales", "day, id") == [
        (1, Decimal(5), d(2024, 1, 3), "north", None),
        (2, Decimal(7), d(2024, 1, 9), "south", None),
        (3, Decimal(1), d(2024, 2, 1), "east", Decimal("0.50")),
        (4, Decimal(2), d(2024, 2, 2), "west", None),
        (3000000000, Decimal(4), d(2024, 3, 5), "north", None),
        (5, Decimal(3), d(2024, 3, 6), "south", None),
        (6, Decimal("2.5"), d(2024, 4, 1), "east", Decimal("1.25")),
        (7, Decimal(3), d(2024, 4, 2), "west", Decimal("0.00")),
        (8, Decimal(1), d(2024, 5, 1), None, Decimal("0.10")),
        (9, Decimal(2), d(2024, 6, 1, 13, 45), "north-northwest", None),
    ]


def test_history_and_runs_keep_the_drift(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    summary = load_month(db, tmp_path, "2024-02.csv", 'schema = "evolve"')
    (drift,) = db.execute(
        "SELECT drift FROM csvpg.run_files WHERE run_id = %s", (summary.run_id,)
    ).fetchone()
    assert drift == {"added": [{"column": "discount", "type": "numeric(12,2)"}]}
    from csvpg.cli.runs import show_run

    out = io.StringIO()
    show_run(db.dsn, summary.run_id, out)
    assert "schema: added discount numeric(12,2)" in out.getvalue()
    assert drift_lines(drift) == ["added discount numeric(12,2)"]
    from csvpg.pg import history
    from csvpg.serve.models import FileResult

    (row,) = history.files(db.conn, summary.run_id)
    assert FileResult(**row.to_dict()).drift == drift, "GET /runs/{id} lists it per file"


def test_freeze_fails_a_new_column_and_a_value_too_large(db, tmp_path: Path) -> None:
    files = series(db, tmp_path, "")  # freeze is the default
    status = {name: f.status for name, f in files.items()}
    assert status == {
        "2024-01.csv": "loaded",
        "2024-02.csv": "failed",
        "2024-03.csv": "failed",
        "2024-04.csv": "failed",
        "2024-05.csv": "failed",
        "2024-06.csv": "failed",
    }
    feb = files["2024-02.csv"]
    assert "has no column 'discount'" in feb.error
    assert 'schema = "evolve"' in feb.hint
    assert "out of range" in files["2024-03.csv"].error
    assert db.columns("sales") == {
        "id": "integer",
        "qty": "integer",
        "day": "date",
        "region": "character varying",
    }
    assert db.rows("sales", "id") == [
        (1, 5, date(2024, 1, 3), "north"),
        (2, 7, date(2024, 1, 9), "south"),
    ]


def test_discard_new_leaves_new_columns_out_and_says_which(db, tmp_path: Path) -> None:
    files = series(db, tmp_path, 'schema = "discard_new"')
    status = {name: f.status for name, f in files.items()}
    assert status == {
        "2024-01.csv": "loaded",
        "2024-02.csv": "loaded",
        "2024-03.csv": "failed",  # discard_new widens nothing: 3000000000 is no integer
        "2024-04.csv": "failed",  # nor is 2.5
        "2024-05.csv": "loaded",
        "2024-06.csv": "failed",  # "north-northwest" is longer than varchar(8)
    }
    assert files["2024-02.csv"].details["drift"] == {"discarded": ["discount"]}
    assert files["2024-05.csv"].details["drift"] == {
        "discarded": ["discount"],
        "missing": ["region"],
    }
    assert db.columns("sales") == {
        "id": "integer",
        "qty": "integer",
        "day": "date",
        "region": "character varying",
    }
    assert db.rows("sales", "id") == [
        (1, 5, date(2024, 1, 3), "north"),
        (2, 7, date(2024, 1, 9), "south"),
        (3, 1, date(2024, 2, 1), "east"),
        (4, 2, date(2024, 2, 2), "west"),
        (8, 1, date(2024, 5, 1), None),
    ]


def test_override_sets_the_rule_for_its_files(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    extra = '[[override]]\nmatch = "2024-02*"\nschema = "discard_new"\n'
    feb = load_month(db, tmp_path, "2024-02.csv", 'schema = "evolve"', extra).files[0]
    assert feb.status == "loaded" and feb.details["drift"] == {"discarded": ["discount"]}
    apr = load_month(db, tmp_path, "2024-04.csv", 'schema = "evolve"', extra).files[0]
    assert apr.details["drift"]["added"] == [{"column": "discount", "type": "numeric(12,2)"}]


def test_missing_fail_makes_a_missing_column_an_error(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    may = load_month(db, tmp_path, "2024-05.csv", 'schema = "evolve"\nmissing = "fail"')
    (f,) = may.files
    assert f.status == "failed"
    assert "lacks column 'region'" in f.error and 'missing = "fail"' in f.error
    assert 'missing = "allow"' in f.hint
    assert db.count("sales") == 0
    assert "discount" not in db.columns("sales"), "the file's transaction rolled back"


def test_upsert_keeps_the_values_of_a_missing_column(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer PRIMARY KEY, a text, b text)')
    db.execute(f"INSERT INTO \"{db.schema}\".t VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2')")
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text("id,a\n2,A2\n3,A3\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='mode = "upsert"\nprimary_key = ["id"]'))
    (f,) = run(job).files
    assert f.status == "loaded" and f.details["drift"] == {"missing": ["b"]}
    assert db.rows("t", "id") == [(1, "a1", "b1"), (2, "A2", "b2"), (3, "A3", None)]


def big_export(rows: int, late: dict[int, str]) -> bytes:
    """``id,qty`` rows; ``late`` replaces the qty of row n (far past any sample)."""
    lines = ["id,qty"] + [f"{n},{late.get(n, str(n % 100))}" for n in range(1, rows + 1)]
    return gzip.compress(("\n".join(lines) + "\n").encode())


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_value_past_the_sample_widens_and_the_file_loads_again(
    db, tmp_path: Path, mode: str
) -> None:
    """A compressed file is sampled from its head: the value that outgrows ``qty``
    comes after it, so COPY fails, the whole file is read, and the load starts again."""
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer PRIMARY KEY, qty smallint)')
    rows = SAMPLE_ROWS + 500
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv.gz").write_bytes(big_export(rows, {rows - 10: "40000", rows - 5: "x"}))
    job = tmp_path / "job.toml"
    sink = f'mode = "{mode}"\nprimary_key = ["id"]\nschema = "evolve"\nmax_rejects = 5'
    job.write_text(job_toml(db, str(data), sink=sink))
    (f,) = run(job).files
    assert f.status == "loaded", f.error
    assert f.details["drift"] == {
        "widened": [{"column": "qty", "from": "smallint", "to": "integer"}]
    }
    assert f.rejected == 1, "a text value in a number column stays a reject"
    assert db.columns("t") == {"id": "integer", "qty": "integer"}
    got = dict(db.execute(f'SELECT id, qty FROM "{db.schema}".t').fetchall())
    want = {n: n % 100 for n in range(1, rows + 1) if n != rows - 5}
    want[rows - 10] = 40000
    assert got == want


def test_a_column_added_from_its_sample_is_retyped_by_the_whole_file(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer)')
    rows = SAMPLE_ROWS + 200
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv.gz").write_bytes(big_export(rows, {rows - 1: "not a number"}))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='schema = "evolve"\nmax_rejects = 0'))
    (f,) = run(job).files
    assert f.status == "loaded", f.error
    assert f.details["drift"] == {"added": [{"column": "qty", "type": "text"}]}
    assert db.columns("t") == {"id": "integer", "qty": "text"}
    assert db.execute(f'SELECT qty FROM "{db.schema}".t WHERE id = {rows - 1}').fetchone() == (
        "not a number",
    )
    assert db.count("t") == rows


def test_columns_spec_types_a_new_column(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    extra = '[columns]\ndiscount = "double precision"\nid = "bigint"\n'
    (f,) = load_month(db, tmp_path, "2024-02.csv", 'schema = "evolve"', extra).files
    assert f.details["drift"] == {
        "added": [{"column": "discount", "type": "double precision"}],
        "widened": [{"column": "id", "from": "integer", "to": "bigint"}],
    }
    assert db.columns("sales")["discount"] == "double precision"


def test_check_shows_the_ddl_without_applying_it(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    data = tmp_path / "data"
    data.mkdir()
    (data / "m.csv").write_text(MONTHS["2024-04.csv"].replace("6,2.5", "3000000000,2.5"))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='table = "sales"\nschema = "evolve"'))
    out = io.StringIO()
    assert check(str(job), dsn=None, out=out) == 0
    text = out.getvalue()
    table = f'"{db.schema}"."sales"'
    assert (
        f'DDL: ALTER TABLE {table} ADD COLUMN "discount" numeric(12,2), '
        'ALTER COLUMN "id" TYPE bigint, ALTER COLUMN "qty" TYPE numeric'
    ) in text
    assert "schema (evolve): added discount numeric(12,2)" in text
    assert "schema (evolve): missing" not in text
    assert db.columns("sales") == {
        "id": "integer",
        "qty": "integer",
        "day": "date",
        "region": "character varying",
    }


def test_a_reader_never_sees_a_half_altered_table(db, tmp_path: Path) -> None:
    """Another connection reads the table over and over while a file adds a column and
    widens two: each read is the table before the load or after it, never between."""
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer, qty smallint)')
    db.execute(f'INSERT INTO "{db.schema}".t SELECT n, 1 FROM generate_series(1, 1000) n')
    rows = 60_000
    text = "id,qty,note\n" + "".join(
        f"{3_000_000_000 + n},{40_000 + n},n{n}\n" for n in range(rows)
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_text(text)
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink='schema = "evolve"'))
    seen: set[tuple[Any, ...]] = set()
    done = threading.Event()

    def read() -> None:
        with psycopg.connect(db.dsn, autocommit=True, prepare_threshold=None) as conn:
            while not done.is_set():
                cur = conn.execute(f'SELECT * FROM "{db.schema}".t')
                got = cur.fetchall()
                names = tuple((c.name, c.type_code) for c in cur.description or ())
                seen.add((names, len(got)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        (f,) = run(job).files
    finally:
        done.set()
        reader.join()
    assert f.status == "loaded", f.error
    before = ((("id", 23), ("qty", 21)), 1000)
    after = ((("id", 20), ("qty", 23), ("note", 25)), 1000 + rows)
    assert seen <= {before, after}
    assert before in seen


def test_split_load_with_evolve_matches_one_connection(csvpg_run, csvpg_db) -> None:
    from tests.pg.test_split import export, split_of

    data = {"export.csv": export()}
    for table in ("alone", "split"):
        csvpg_db.execute(
            f'CREATE TABLE "{csvpg_db.schema}".{table} '
            "(id smallint PRIMARY KEY, name varchar(8), note text)"
        )

    def job(table: str, split_mb: int) -> str:
        return (
            '[source]\nurl = "files/export.csv"\n'
            f'[sink]\nmode = "upsert"\ntable = "{table}"\nprimary_key = ["id"]\n'
            f'schema = "evolve"\n[run]\nworkers = 2\nsplit_mb = {split_mb}\n'
            # Converted in SQL, so the upsert splits (staged typed, it would not).
            '[columns]\namount = { type = "numeric(12,2)", thousands = "," }\n'
        )

    alone = csvpg_run(job("alone", 0), files=data)
    split = csvpg_run(job("split", 1), files=data)
    assert split_of(split)["connections"] == 2
    want = {
        "added": [{"column": "amount", "type": "numeric(12,2)"}],
        "widened": [
            {"column": "id", "from": "smallint", "to": "integer"},
            {"column": "name", "from": "character varying(8)", "to": "text"},
        ],
    }
    assert alone.files[0].details["drift"] == split.files[0].details["drift"] == want
    assert csvpg_db.columns("split") == csvpg_db.columns("alone")
    assert csvpg_db.rows("split", "id") == csvpg_db.rows("alone", "id")


# -- the widenings themselves ------------------------------------------------------------

_NUMBER_TYPES = ["smallint", "integer", "bigint"]
CHAIN = ["smallint", "integer", "bigint", "numeric", "date", "timestamp", "varchar(5)", "text"]


@given(st.sampled_from(CHAIN), st.sampled_from(CHAIN))
def test_widening_is_never_a_narrowing(a: str, b: str) -> None:
    assert not (is_widening(a, b) and is_widening(b, a))
    assert not is_widening(a, a)
    for wider in wider_types(a):
        assert all(is_widening(a, w) for w in wider_types(wider)), "transitive"
    assert not is_widening("bigint", "numeric(12,2)"), "a modifier may not hold every value"
    assert is_widening("integer", "NUMERIC") and is_widening("character varying(8)", "text")


_VALUES = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.dates().map(str),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_VALUES, old=st.sampled_from(["smallint", "integer", "bigint", "date", "varchar(5)"]))
@example(value="30693-01-01", old="date")
@example(value="5000000-01-01", old="date")
def test_a_widened_type_takes_every_value_the_old_one_did(db, value: str, old: str) -> None:
    """Stored as ``old``, then the column widened: the same value as stored as the wider
    type directly (PostgreSQL decides both)."""
    conn = db.conn
    for wider in wider_types(old):
        with conn.transaction(force_rollback=True):
            conn.execute(f"CREATE TEMP TABLE w (v {old}) ON COMMIT DROP")
            try:
                with conn.transaction():
                    conn.execute("INSERT INTO w VALUES (%s)", (value,))
            except psycopg.errors.DataError:
                return  # the old type refuses it: nothing to keep
            statement = alter_sql("pg_temp", "w", retype={"v": wider})
            assert statement is not None
            # As text: PostgreSQL's dates reach past what Python's datetime holds.
            try:
                with conn.transaction():
                    direct = conn.execute(f"SELECT CAST(%s AS {wider})::text", (value,)).fetchone()
            except psycopg.errors.DataError:  # a date past timestamp's year 294276, say:
                with pytest.raises(psycopg.errors.DataError), conn.transaction():
                    conn.execute(statement)  # the widening fails; nothing is changed
                return
            conn.execute(statement)
            widened = conn.execute("SELECT v::text FROM w").fetchone()
            assert widened == direct


def test_a_type_written_two_ways_is_the_same_type() -> None:
    assert same_type("timestamp", "timestamp without time zone")
    assert same_type("numeric(12, 2)", "NUMERIC(12,2)")
    assert same_type("character varying(8)", "varchar(8)")
    assert not same_type("varchar(8)", "varchar(9)")
    assert not same_type("timestamp", "timestamptz")


def test_drift_merges_passes_and_reports_only_what_happened() -> None:
    d = Drift(missing=["b"])
    d.widen("id", "smallint", "integer")
    d.merge(Drift(missing=["b"], discarded=["x"]))
    d.widen("id", "integer", "bigint")
    assert d.to_dict() == {
        "widened": [{"column": "id", "from": "smallint", "to": "bigint"}],
        "discarded": ["x"],
        "missing": ["b"],
    }
    assert not Drift() and Drift().to_dict() == {}


def test_files_side_by_side_that_add_the_same_column_take_turns(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    data = tmp_path / "data"
    data.mkdir()
    for month in ("2024-02.csv", "2024-04.csv"):
        (data / month).write_text(MONTHS[month])
    job = tmp_path / "job.toml"
    sink = 'table = "sales"\nschema = "evolve"'
    job.write_text(job_toml(db, str(data), sink=sink, extra="[run]\nworkers = 2\n"))
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded", "loaded"], summary.files
    added = [a for f in summary.files for a in f.details.get("drift", {}).get("added", [])]
    assert len(added) == 1 and added[0]["column"] == "discount"
    assert db.columns("sales")["discount"] == "numeric"
    assert db.count("sales") == 4


def test_evolve_on_the_row_path(csvpg_run, csvpg_db) -> None:
    """A transform that needs values: the file's rows are profiled after it, and a value
    past the sample widens the column after the staged INSERT fails."""
    from csvpg import Option, Transform, hookimpl

    class Shout(Transform):
        type = "shout"
        needs_rows = True
        one_to_one = True
        options = {"type": Option(str)}

        def wrap(self, batches, relation):
            for batch in batches:
                yield [[v.upper() if v else v for v in row] for row in batch]

    class Plugin:
        @hookimpl
        def register_transforms(self):
            return [Shout]

    csvpg_db.execute(f'CREATE TABLE "{csvpg_db.schema}".t (id smallint, name text)')
    rows = SAMPLE_ROWS + 100
    text = "id,name,tag\n" + "".join(f"{n},n{n},t{n % 3}\n" for n in range(1, rows + 1))
    text = text.replace(f"\n{rows - 1},", f"\n{70_000},")
    summary = csvpg_run(
        '[sink]\ntable = "t"\nschema = "evolve"\n[[transform]]\ntype = "shout"\n',
        files={"t.csv.gz": gzip.compress(text.encode())},
        plugins=[Plugin()],
    )
    (f,) = summary.files
    assert f.status == "loaded", f.error
    assert f.details["path"] == "rows"
    assert f.details["drift"] == {
        "added": [{"column": "tag", "type": "text"}],
        "widened": [{"column": "id", "from": "smallint", "to": "integer"}],
    }
    assert csvpg_db.count("t") == rows
    got = csvpg_db.execute(f'SELECT name, tag FROM "{csvpg_db.schema}".t WHERE id = 70000')
    assert got.fetchall() == [(f"N{rows - 1}", f"T{(rows - 1) % 3}")]


@pytest.mark.parametrize(
    ("where", "key"),
    [("sink", "sink.schema"), ("override", "override[0].schema")],
)
def test_a_rule_that_is_none_of_the_three_is_a_spec_error(where: str, key: str) -> None:
    from csvpg.errors import SpecError
    from csvpg.spec import job_from_dict

    raw: dict[str, Any] = {"job": {"name": "x"}, "source": {"url": "."}}
    if where == "sink":
        raw["sink"] = {"schema": "grow"}
    else:
        raw["override"] = [{"match": "*.csv", "schema": "grow"}]
    with pytest.raises(SpecError) as err:
        job_from_dict(raw)
    assert err.value.key == key
    assert "'freeze', 'evolve', 'discard_new'" in err.value.message


def test_a_view_on_a_column_to_widen_fails_the_file_with_what_to_do(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".{TABLE}')
    db.execute(f'CREATE VIEW "{db.schema}".ids AS SELECT id FROM "{db.schema}".sales')
    (f,) = load_month(db, tmp_path, "2024-03.csv", 'schema = "evolve"').files
    assert f.status == "failed"
    assert "cannot alter type of a column used by a view or rule" in f.error
    assert "a view or rule uses the column" in f.hint
    assert db.count("sales") == 0


_NUMBERS = st.one_of(
    st.integers(-(2**66), 2**66).map(str),
    st.decimals(-(10**12), 10**12, allow_nan=False, places=2).map(str),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(values=st.lists(_NUMBERS, min_size=1, max_size=6), old=st.sampled_from(_NUMBER_TYPES))
def test_the_type_a_column_widens_to_takes_every_value(db, values: list[str], old: str) -> None:
    """What the profile decides (keep the type, or widen it to one), PostgreSQL agrees
    with: every value loads as that type."""
    from csvpg.engine.drift import fits, widen_to
    from csvpg.infer.types import Profile
    from csvpg.interfaces import ColumnType

    profile = Profile("qty")
    profile.feed(values)
    ct = ColumnType(old)
    to = widen_to(profile, ct) or (old if fits(profile, old, ct) else None)
    if to is None:
        return  # no number type in the chain takes them all (say, past every bigint)
    for value in values:
        assert db.conn.execute(f"SELECT CAST(%s AS {to})::text", (value,)).fetchone()
