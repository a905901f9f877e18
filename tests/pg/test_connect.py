"""csvpg.pg.connect: connections, masked DSNs, PostgreSQL errors as csvpg errors."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csvpg.errors import DatabaseError
from csvpg.pg.connect import connect, free_connections, mask_dsn, sink_error

secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789!$%^*()-_", min_size=6, max_size=20)


@given(password=secret)
def test_a_password_never_survives_masking(password: str) -> None:
    for dsn in (
        f"postgresql://etl:{password}@db.example/erp",
        f"host=db user=etl password={password} dbname=erp",
        f"postgresql://etl@db.example/erp?password={password}&sslmode=require",
    ):
        masked = mask_dsn(dsn)
        assert password not in masked, masked
        assert "***" in masked


def test_a_refused_connection_is_one_masked_paragraph() -> None:
    dsn = "postgresql://etl:S3cret@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(DatabaseError) as info:
        connect(dsn)
    message = info.value.message
    assert "S3cret" not in message and "\n" not in message
    assert message.startswith("cannot connect to PostgreSQL at postgresql://etl:***@127.0.0.1:1/db")


def test_free_connections_counts_the_ones_in_use(db) -> None:
    before = free_connections(db.conn)
    with psycopg.connect(db.dsn):
        assert free_connections(db.conn) == before - 1


def test_a_copy_error_names_the_file_line_and_column(db) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".n (id integer, v text)')
    with (
        pytest.raises(psycopg.Error) as info,
        db.conn.cursor() as cur,
        cur.copy(f'COPY "{db.schema}".n FROM STDIN (FORMAT csv)') as copy,
    ):
        copy.write(b"1,a\nx,b\n")
    error = sink_error(info.value, file="n.csv", table="n", line_offset=1)
    assert (error.line, error.column, error.sqlstate) == (3, "id", "22P02")
    assert error.message.startswith("n.csv, line 3, column id: invalid input syntax")
    assert error.hint and "[columns]" in error.hint
