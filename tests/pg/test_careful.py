"""csvpg.pg.careful: a file's records staged by line, the rows PostgreSQL refuses found
by probe INSERTs (line, column, value and PostgreSQL's reason), the target untouched."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import (
    Column,
    ColumnType,
    CsvDialect,
    FileRef,
    LoadInput,
    NumberedBatch,
    Record,
    Reject,
    Relation,
)
from csvpg.pg import careful
from csvpg.pg.careful import CHUNK, FEW, LINE, Prober, TooManyRejects
from csvpg.pg.load import RELATIVE_REASON, STAGING_ROW

URL = "/data/people.csv"
COMMAS = CsvDialect()


def never(*_: int) -> bool:
    return False


#: The types of people's columns (see :func:`create_people`).
TYPES = {"id": "integer", "name": "text", "born": "date"}


def people(db: Any, *, dialect: CsvDialect | None = COMMAS) -> LoadInput:
    """people(id, name, born) in the test's schema, as a load of people.csv sees it."""
    cols = tuple(Column(i, h, h) for i, h in enumerate(["id", "name", "born"]))
    return LoadInput(
        ref=FileRef(URL, "people.csv"),
        schema=db.schema,
        table="people",
        relation=Relation(file_columns=cols, columns=cols),
        types={c.name: ColumnType(TYPES[c.name]) for c in cols},
        primary_key=[],
        create=False,
        dialect=dialect,
    )


def create_people(db: Any, ddl: str = "id integer, name text NOT NULL, born date") -> None:
    db.execute(sql.SQL("CREATE TABLE {} (" + ddl + ")").format(db.table("people")))


def record(line: int, *fields: str | None) -> Record:
    return Record(line, ",".join(f or "" for f in fields), list(fields))


def staged_rows(db: Any, table: sql.Composable, *columns: str) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), table, sql.Identifier(STAGING_ROW)
    )
    return db.conn.execute(query).fetchall()


# -- is_row_error -------------------------------------------------------------------------


def server_error(db: Any, statement: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as err, db.conn.transaction():
        db.execute(statement)
    return err.value


def test_bad_values_a_missing_not_null_and_a_failed_check_are_row_errors(db) -> None:
    create_people(db, "id integer CHECK (id > 0), name text NOT NULL, born date")
    people_table = db.table("people").as_string(db.conn)
    assert careful.is_row_error(server_error(db, "SELECT 'ten'::integer"))
    assert careful.is_row_error(server_error(db, f"INSERT INTO {people_table} (id) VALUES (1)"))
    assert careful.is_row_error(server_error(db, f"INSERT INTO {people_table} VALUES (-1, 'x')"))


def test_a_missing_table_or_a_syntax_error_fails_the_file_as_it_is(db) -> None:
    assert not careful.is_row_error(server_error(db, "SELECT * FROM no_such_table_here"))
    assert not careful.is_row_error(server_error(db, "SELEKT 1"))


# -- careful_stage ------------------------------------------------------------------------


def test_well_formed_records_are_staged_by_line_and_the_others_are_rejects(db) -> None:
    records = [
        record(2, "1", "ada", "1815-12-10"),
        Record(3, '2,"grace', None, "an unclosed quote"),
        record(5, "3", "alan"),  # one field short
        record(6, "4", None, "1906-12-09"),
    ]
    with db.conn.transaction(force_rollback=True):
        staged, rejects, read = careful.careful_stage(db.conn, people(db), iter(records), never)
        rows = staged_rows(db, staged.table, STAGING_ROW, *staged.names.values())
    assert read == 4
    assert staged.rows == 2
    assert rows == [(2, "1", "ada", "1815-12-10"), (6, "4", None, "1906-12-09")]
    assert rejects == [
        Reject(3, "an unclosed quote", '2,"grace'),
        Reject(5, "2 fields where the header has 3", "3,alan"),
    ]


def test_careful_stage_stops_when_told_with_the_rejects_so_far(db) -> None:
    records = [Record(n, "x", None, "unreadable bytes") for n in range(2, 12)]
    with pytest.raises(TooManyRejects) as err, db.conn.transaction(force_rollback=True):
        careful.careful_stage(
            db.conn, people(db), iter(records), lambda rejected, read: rejected > 3
        )
    assert [r.line for r in err.value.rejects] == [2, 3, 4, 5]
    assert err.value.read == 4


# -- Prober -------------------------------------------------------------------------------


def probe(db: Any, records: list[Record], load: LoadInput, stop: Any = never) -> list[Reject]:
    """The refused rows of ``records``, checking that the probes leave people empty."""
    with db.conn.transaction(force_rollback=True):
        staged, _, _ = careful.careful_stage(db.conn, load, iter(records), never)
        prober = Prober(db.conn, load, staged)
        found = prober.bad_rows(stop)
        assert prober.keys == [r.line for r in found]
        assert db.count("people") == 0, "probing never writes the target"
    return found


def test_each_refused_row_is_named_by_line_column_value_and_reason(db) -> None:
    create_people(db)
    load = people(db)
    found = probe(
        db,
        [
            record(2, "1", "ada", "1815-12-10"),
            record(3, "two", "grace", "1906-12-09"),
            record(4, "3", "alan", "1912-06-31"),
            record(5, "4", None, "1930-05-11"),  # name is NOT NULL
            record(6, "5", "edsger", "yesterday"),
        ],
        load,
    )
    assert [(r.line, r.column, r.value, r.sqlstate) for r in found] == [
        (3, "id", "two", "22P02"),
        (4, "born", "1912-06-31", "22008"),
        (5, "name", None, "23502"),
        (6, "born", "yesterday", "22007"),
    ]
    assert found[0].reason == 'invalid input syntax for type integer: "two"'
    assert "out of range" in found[1].reason
    assert "not-null" in found[2].reason
    assert found[3].reason == RELATIVE_REASON, "csvpg's own reason, without the cast around it"
    assert found[0].raw == "two,grace,1906-12-09"


def test_a_failed_check_names_the_row_and_its_reason(db) -> None:
    create_people(db, "id integer CHECK (id > 0), name text, born date")
    load = people(db)
    found = probe(db, [record(2, "1", "a", None), record(3, "-1", "b", None)], load)
    (reject,) = found
    assert (reject.line, reject.sqlstate) == (3, "23514")
    assert "check constraint" in reject.reason


def test_the_search_ends_at_the_number_stop_says(db) -> None:
    create_people(db)
    records = [record(n, "x", "n", None) for n in range(2, 40)]
    found = probe(db, records, people(db), stop=lambda n: n >= 5)
    assert [r.line for r in found] == [2, 3, 4, 5, 6]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.integers(1, 3 * FEW),
    bad=st.sets(st.integers(0, 3 * FEW - 1), max_size=12),
)
def test_bisection_finds_exactly_the_bad_rows_in_file_order(db, rows: int, bad: set[int]) -> None:
    """Ranges are split until the bad rows stand alone: every bad row is found once, no
    good one, in file order (lines with gaps, as quoted newlines make them)."""
    db.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (id integer, name text, born date)").format(
            db.table("people")
        )
    )
    lines = [2 + 3 * n for n in range(rows)]
    records = [record(line, "x" if n in bad else str(n), "n", None) for n, line in enumerate(lines)]
    found = probe(db, records, people(db))
    assert [r.line for r in found] == [lines[n] for n in sorted(bad) if n < rows]


def test_a_bad_row_among_more_than_a_chunk_is_found(db) -> None:
    create_people(db)
    bad = {17, CHUNK + 5, 2 * CHUNK + 1}
    records = [
        record(line, "x" if line in bad else str(line), "n", None)
        for line in range(2, 2 * CHUNK + 100)
    ]
    found = probe(db, records, people(db))
    assert [r.line for r in found] == sorted(bad)


def test_null_markers_of_the_format_are_nulls_to_the_probe(db) -> None:
    create_people(db)
    load = people(db, dialect=CsvDialect(nulls=("", "NULL")))
    assert probe(db, [record(2, "NULL", "ada", None), record(3, "n/a", "b", None)], load) == [
        Reject(3, 'invalid input syntax for type integer: "n/a"', "n/a,b,", "id", "n/a", "22P02")
    ]


# -- stage_rows: the row path -------------------------------------------------------------


def row_load(db: Any, batches: list[Any]) -> LoadInput:
    load = people(db, dialect=None)
    load.batches = iter(batches)
    return load


def test_rows_are_staged_by_position_with_their_line_when_known(db) -> None:
    batches = [
        NumberedBatch([["1", "ada", None], ["2", "grace", "1906-12-09"]], [2, 4]),
        [["3", "alan", "1912-06-23"], ["4", "too", "many", "values"]],
    ]
    with db.conn.transaction(force_rollback=True):
        staged, rejects, read = careful.stage_rows(db.conn, row_load(db, batches), never)
        rows = staged_rows(db, staged.table, STAGING_ROW, LINE, *staged.names.values())
    assert (read, staged.rows) == (4, 3)
    assert rows == [
        (1, 2, "1", "ada", None),
        (2, 4, "2", "grace", "1906-12-09"),
        (3, None, "3", "alan", "1912-06-23"),
    ]
    assert rejects == [Reject(None, "4 values where the table takes 3", "4,too,many,values")]


def test_rows_the_reader_set_aside_are_rejects_in_their_place(db) -> None:
    aside: deque[Reject] = deque()

    def batches() -> Iterator[Any]:
        aside.append(Reject(3, "2 fields where the header has 3", "x,y"))
        yield NumberedBatch([["1", "ada", None]], [2])
        yield NumberedBatch([["2", "grace", None]], [4])

    load = people(db, dialect=None)
    load.batches = batches()
    with db.conn.transaction(force_rollback=True):
        staged, rejects, read = careful.stage_rows(db.conn, load, never, aside)
    assert (read, staged.rows) == (3, 2)
    assert rejects == [Reject(3, "2 fields where the header has 3", "x,y")]
    assert not aside, "taken as they came"


def test_the_prober_of_staged_rows_names_their_lines(db) -> None:
    create_people(db)
    batches = [NumberedBatch([["1", "ada", None], ["two", "grace", None]], [2, 5])]
    load = row_load(db, batches)
    with db.conn.transaction(force_rollback=True):
        staged, _, _ = careful.stage_rows(db.conn, load, never)
        prober = Prober(db.conn, load, staged, lines=True)
        (reject,) = prober.bad_rows(never)
        assert prober.keys == [2], "the row's position, to delete it from staging"
    assert (reject.line, reject.column, reject.value) == (5, "id", "two")


# -- too_many -----------------------------------------------------------------------------


def test_too_many_names_the_file_the_count_the_limit_and_the_first_rejects() -> None:
    rejects = [Reject(n, f"bad {n}") for n in (3, 5, 8, 9)]
    error = careful.too_many(URL, rejects, 100, 3)
    assert isinstance(error, SinkError)
    assert error.message == (
        f"{URL}: 4 of 100 rows rejected, more than max_rejects = 3 allows "
        "(first: line 3: bad 3; line 5: bad 5; line 8: bad 8) — loading was rolled back"
    )
    assert (error.file, error.line) == (URL, 3)
    assert error.hint and "max_rejects" in error.hint


def test_all_rows_rejected_points_at_the_format_or_the_encoding() -> None:
    shape = careful.too_many(URL, [Reject(2, "bad"), Reject(3, "bad")], 2, "10%")
    assert "all 2 rows rejected, none could be loaded" in shape.message
    assert shape.hint and "[format]" in shape.hint
    bytes_ = careful.too_many(URL, [Reject(2, "bytes that are not valid UTF-8: 0xe9")], 1, 0)
    assert bytes_.hint and "encoding" in bytes_.hint
