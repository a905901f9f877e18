"""csvpg.pg.load: the DDL of a new target, COPY into it, staging tables, and the SQL that
turns a staged TEXT value into its column's type (or refuses its row, saying why)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import Column, ColumnType, CsvDialect, FileRef, LoadInput, Relation
from csvpg.pg.load import (
    GUARD_PIECE,
    RELATIVE_REASON,
    RELATIVE_WORDS,
    STAGING_ROW,
    MayHoldRelativeDates,
    cast_list,
    checked_type,
    copy_in,
    create_staging,
    guard_relative_dates,
    has_relative_word,
    is_datetime,
    needs_staging,
    own_reason,
    schema_exists,
    table_columns,
    table_ddl,
    value_expr,
)

URL = "/data/orders.csv"
COMMAS = CsvDialect()


def orders(
    db: Any,
    *,
    data: bytes | None = None,
    dialect: CsvDialect | None = COMMAS,
    schema: str | None = None,
    **types: ColumnType,
) -> LoadInput:
    """orders(id, amount, day) in the test's schema as a load of orders.csv sees it;
    ``types`` replace bigint, text, date for the columns named."""
    cols = tuple(Column(i, h, h) for i, h in enumerate(["id", "amount", "day"]))
    default = {"id": ColumnType("bigint"), "amount": ColumnType("text"), "day": ColumnType("date")}
    return LoadInput(
        ref=FileRef(URL, "orders.csv"),
        schema=schema or db.schema,
        table="orders",
        relation=Relation(file_columns=cols, columns=cols),
        types={**default, **types},
        primary_key=["id"],
        create=True,
        dialect=dialect,
        chunks=iter([data]) if data is not None else None,
    )


def create(db: Any, load: LoadInput) -> None:
    with db.conn.transaction():
        for statement in table_ddl(load, exists=False):
            db.execute(statement)


# -- what is there ------------------------------------------------------------------------


def test_table_columns_are_the_tables_names_and_types_in_order(db) -> None:
    assert table_columns(db.conn, db.schema, "orders") is None
    db.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint, gone text, amount numeric(12,2), at timestamptz)"
        ).format(db.table("orders"))
    )
    db.execute(sql.SQL("ALTER TABLE {} DROP COLUMN gone").format(db.table("orders")))
    assert table_columns(db.conn, db.schema, "orders") == {
        "id": "bigint",
        "amount": "numeric(12,2)",
        "at": "timestamp with time zone",
    }


def test_a_view_is_no_table_to_load_into(db) -> None:
    db.execute(sql.SQL("CREATE VIEW {} AS SELECT 1 AS id").format(db.table("orders")))
    assert table_columns(db.conn, db.schema, "orders") is None


def test_schema_exists(db) -> None:
    assert schema_exists(db.conn, db.schema)
    assert not schema_exists(db.conn, db.schema + "_not_there")


def test_checked_type_takes_what_postgresql_knows_in_one_spelling(db) -> None:
    assert checked_type(db.conn, "numeric( 12,  2 )", "columns.amount") == "numeric( 12, 2 )"
    assert checked_type(db.conn, "timestamp  with time zone", "columns.at") == (
        "timestamp with time zone"
    )
    assert checked_type(db.conn, "text[]", "columns.tags") == "text[]"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("integr", "names a type PostgreSQL does not know"),
        ("text); DROP TABLE orders; --", "is not a PostgreSQL type name"),
        ("text'", "is not a PostgreSQL type name"),
    ],
)
def test_checked_type_refuses_others_naming_the_key(db, name: str, says: str) -> None:
    with pytest.raises(SinkError) as err:
        checked_type(db.conn, name, "columns.amount")
    assert says in err.value.message and err.value.key == "columns.amount"
    assert err.value.hint and "numeric(12,2)" in err.value.hint


# -- DDL ----------------------------------------------------------------------------------


def test_table_ddl_creates_the_table_with_its_types_and_key(db) -> None:
    load = orders(db, amount=ColumnType("numeric(12,2)"))
    create(db, load)
    assert table_columns(db.conn, db.schema, "orders") == {
        "id": "bigint",
        "amount": "numeric(12,2)",
        "day": "date",
    }
    key = db.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
        " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (f'"{db.schema}".orders',),
    ).fetchall()
    assert key == [("id",)]


def test_table_ddl_is_nothing_for_a_table_that_exists_or_may_not_be_created(db) -> None:
    load = orders(db)
    assert table_ddl(load, exists=True) == []
    assert table_ddl(replace(load, create=False), exists=False) == []


def test_a_missing_schema_is_created_first_and_only_then(db) -> None:
    schema = db.schema + "_new"
    load = orders(db, schema=schema)
    assert len(table_ddl(load, exists=False)) == 1, "the schema is said to exist"
    missing = replace(load, schema_exists=False)
    try:
        create(db, missing)
        assert table_columns(db.conn, schema, "orders") == {
            "id": "bigint",
            "amount": "text",
            "day": "date",
        }
    finally:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- COPY ---------------------------------------------------------------------------------


def test_copy_in_loads_the_bytes_as_the_dialect_says(db) -> None:
    data = b'id;amount;day\n1;10,50;2024-01-15\n2;"a;b";\n'
    load = orders(db, data=data, dialect=CsvDialect(delimiter=";"))
    create(db, load)
    with db.conn.transaction(), db.conn.cursor() as cur:
        rows = copy_in(cur, db.table("orders"), ["id", "amount", "day"], load)
    assert rows == 2
    assert db.rows("orders", "id") == [
        (1, "10,50", dt.date(2024, 1, 15)),
        (2, "a;b", None),
    ]


def test_copy_in_writes_the_row_paths_rows(db) -> None:
    load = orders(db, dialect=None)
    load.batches = iter([[["1", "x", None]], [["2", None, "2024-02-29"]]])
    create(db, load)
    with db.conn.transaction(), db.conn.cursor() as cur:
        assert copy_in(cur, db.table("orders"), ["id", "amount", "day"], load) == 2
    assert [r[:2] for r in db.rows("orders", "id")] == [(1, "x"), (2, None)]


def test_a_bad_value_fails_the_copy_and_leaves_the_table_as_it_was(db) -> None:
    load = orders(db, data=b"id,amount,day\n7,x,2024-01-01\n")
    create(db, load)
    with db.conn.transaction(), db.conn.cursor() as cur:
        copy_in(cur, db.table("orders"), ["id", "amount", "day"], load)
    bad = orders(db, data=b"id,amount,day\n8,y,2024-01-02\nnine,z,2024-01-03\n")
    with (
        pytest.raises(psycopg.errors.InvalidTextRepresentation) as err,
        db.conn.transaction(),
        db.conn.cursor() as cur,
    ):
        copy_in(cur, db.table("orders"), ["id", "amount", "day"], bad)
    assert "nine" in str(err.value)
    assert [r[:2] for r in db.rows("orders")] == [(7, "x")]


def test_needs_staging_when_copy_cannot_fill_the_target_itself(db) -> None:
    plain = orders(db)
    assert not needs_staging(plain)
    assert not needs_staging(replace(plain, dialect=None)), "the row path writes its rows"
    assert needs_staging(replace(plain, dialect=CsvDialect(nulls=("", "NA"))))
    assert needs_staging(orders(db, amount=ColumnType("numeric", decimal=",")))
    dropped = replace(plain.relation, columns=plain.relation.columns[:2])
    assert needs_staging(replace(plain, relation=dropped))


def test_staging_is_text_in_file_order_gone_at_commit_or_in_a_schema(db) -> None:
    load = orders(db, data=b"id,amount,day\n3,c,\n1,a,\n2,b,\n")
    with db.conn.transaction(), db.conn.cursor() as cur:
        table = create_staging(cur, "csvpg_test", ["f0", "f1", "f2"])
        copy_in(cur, table, ["f0", "f1", "f2"], load)
        rows = cur.execute(
            sql.SQL("SELECT {}, f0, f1 FROM {} ORDER BY 1").format(
                sql.Identifier(STAGING_ROW), table
            )
        ).fetchall()
    assert rows == [(1, "3", "c"), (2, "1", "a"), (3, "2", "b")]
    assert db.execute("SELECT to_regclass('csvpg_test')").fetchone() == (None,)
    with db.conn.transaction(), db.conn.cursor() as cur:
        create_staging(cur, "scratch", ["f0"], schema=db.schema)
    assert table_columns(db.conn, db.schema, "scratch") == {"f0": "text", STAGING_ROW: "bigint"}


# -- from TEXT to the column's type -------------------------------------------------------


def converted(db: Any, text: str | None, ct: ColumnType, nulls: tuple[str, ...] = ("",)) -> Any:
    """The value PostgreSQL makes of ``text`` (NULLIF "" like COPY's CSV), or the reason
    its row is refused."""
    expr = value_expr(sql.SQL("NULLIF(%(v)s::text, '')"), ct, nulls)
    try:
        with db.conn.transaction():
            row = db.execute(sql.SQL("SELECT {}").format(expr), {"v": text}).fetchone()
    except psycopg.errors.DataError as exc:
        return ("refused", own_reason(exc.diag.message_primary or ""))
    return row[0] if row else None


def test_conversions_read_numbers_booleans_and_dates_as_the_job_wrote_them(db) -> None:
    money = ColumnType("numeric(12,2)", decimal=",", thousands=".")
    assert converted(db, "1.234,56", money) == Decimal("1234.56")
    yes_no = ColumnType("boolean", true=("ja",), false=("nein",))
    assert [converted(db, v, yes_no) for v in ("Ja", "nein", "true")] == [True, False, True]
    german = ColumnType("date", format="DD.MM.YYYY")
    assert converted(db, "1.2.2024", german) == dt.date(2024, 2, 1)
    assert converted(db, "-", ColumnType("integer"), nulls=("", "-")) is None


def test_values_that_would_load_as_another_date_are_refused_saying_why(db) -> None:
    german = ColumnType("date", format="DD.MM.YYYY")
    refused, reason = converted(db, "15.01.24", german)
    assert refused == "refused" and reason.startswith("does not match the format DD.MM.YYYY")
    assert converted(db, "yesterday", ColumnType("date")) == ("refused", RELATIVE_REASON)
    assert converted(db, "Today", ColumnType("timestamptz")) == ("refused", RELATIVE_REASON)
    assert converted(db, "today", ColumnType("date", allow_relative=True)) is not None
    assert converted(db, "now", ColumnType("text")) == "now"


def test_cast_list_fills_a_table_from_staging(db) -> None:
    load = orders(db, data=b'id,amount,day\n1,"1.000,5",NA\n', dialect=CsvDialect(nulls=("", "NA")))
    load = replace(
        load, types={**load.types, "amount": ColumnType("numeric", decimal=",", thousands=".")}
    )
    create(db, load)
    with db.conn.transaction(), db.conn.cursor() as cur:
        staging = create_staging(cur, "s", ["f0", "f1", "f2"])
        copy_in(cur, staging, ["f0", "f1", "f2"], load)
        cur.execute(
            sql.SQL("INSERT INTO {} (id, amount, day) SELECT {} FROM {}").format(
                db.table("orders"),
                sql.SQL(", ").join(cast_list(load, {0: "f0", 1: "f1", 2: "f2"})),
                staging,
            )
        )
    assert db.rows("orders") == [(1, Decimal("1000.5"), None)]


@pytest.mark.parametrize(
    ("name", "datetime"),
    [
        ("date", True),
        ("timestamp(3) with time zone", True),
        ("TIME", True),
        ("date[]", False),
        ("text", False),
        ("interval", False),
        ("datestamp", False),
    ],
)
def test_is_datetime(name: str, datetime: bool) -> None:
    assert is_datetime(name) is datetime


# -- relative date words in the bytes -----------------------------------------------------


@given(
    word=st.sampled_from(RELATIVE_WORDS),
    before=st.sampled_from(["", " ", "1,", "x;\n", '"']),
    after=st.sampled_from(["", " ", ",2", "\r\n", '"']),
    upper=st.booleans(),
)
def test_a_relative_word_between_separators_is_seen(
    word: str, before: str, after: str, upper: bool
) -> None:
    text = before + (word.upper() if upper else word) + after
    assert has_relative_word(text.lower().encode())


@given(
    word=st.sampled_from(RELATIVE_WORDS),
    glue=st.text(alphabet="ab1_é", min_size=1, max_size=4),
    glued_before=st.booleans(),
)
def test_a_relative_word_inside_a_longer_word_is_not(
    word: str, glue: str, glued_before: bool
) -> None:
    text = glue + word if glued_before else word + glue
    assert not has_relative_word(f"1,{text},x".encode())


def test_nowak_holds_no_now() -> None:
    assert not has_relative_word(b"nowak,todayish,_yesterday")
    assert has_relative_word(b"1,now\n")


def test_guarded_bytes_fail_at_a_relative_word_for_a_date_even_across_chunks(db) -> None:
    load = orders(db)
    guarded = guard_relative_dates(
        replace(load, chunks=iter([b"1,a,2024-01-01\n2,b,yes", b"terday\n"]))
    )
    with pytest.raises(MayHoldRelativeDates) as err:
        list(guarded.chunks or ())
    assert err.value.file == URL


@pytest.mark.parametrize(
    ("blocks", "found"),
    [
        ([b"1,j\xc3\xb6rg now", b"ak,2024-01-01\n"], False),  # "Nowak" cut after "now"
        ([b"1,know", b",2024-01-01\n"], False),
        ([b"1,k", b"now,2024-01-01\n"], False),  # "know" cut before "now"
        ([b"1,", b"now,2024-01-01\n"], True),
        ([b"1,x,no", b"w\n"], True),
        ([b"1,x,", b"today"], True),  # at the very end of the data
        ([b"1,x,to", b"day"], True),
    ],
)
def test_a_word_cut_at_a_block_edge_is_judged_whole(db, blocks: list[bytes], found: bool) -> None:
    guarded = guard_relative_dates(replace(orders(db), chunks=iter(blocks)))
    if found:
        with pytest.raises(MayHoldRelativeDates):
            list(guarded.chunks or ())
    else:
        assert list(guarded.chunks or ()) == blocks


@pytest.mark.parametrize(
    ("word", "found"), [(b"yesterday", True), (b"now", True), (b"nowak", False), (b"", False)]
)
@pytest.mark.parametrize("shift", [-5, -1, 0, 3])
def test_a_large_block_goes_on_in_pieces_and_a_word_across_their_edge_is_seen(
    db, word: bytes, found: bool, shift: int
) -> None:
    """The guard hands on a large block in pieces (COPY is fed while the next is
    looked at): they are the block, and a word astride a piece's edge is judged whole."""
    line = b"1,j\xc3\xb6rg,2024-01-01\n"
    filler = line * ((GUARD_PIECE * 3) // len(line))
    at = GUARD_PIECE + shift - len(word) // 2 - 1  # the word's line end, then the word
    block = filler[:at] + b"\n" + word + b",x,2024-01-01\n" + filler[at:]
    guarded = guard_relative_dates(replace(orders(db), chunks=iter([block])))
    if found:
        with pytest.raises(MayHoldRelativeDates):
            list(guarded.chunks or ())
        return
    pieces = list(guarded.chunks or ())
    assert b"".join(pieces) == block
    assert len(pieces) > 1 and max(map(len, pieces)) <= GUARD_PIECE


def test_bytes_go_unwatched_when_no_date_column_could_take_a_word(db) -> None:
    chunks = iter([b"1,today,\n"])
    text_only = orders(db, day=ColumnType("text"))
    assert guard_relative_dates(replace(text_only, chunks=chunks)).chunks is chunks
    allowed = orders(db, day=ColumnType("date", allow_relative=True))
    assert guard_relative_dates(replace(allowed, chunks=chunks)).chunks is chunks
