"""COPY, staging tables and the DDL the sinks share."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import ColumnType, CsvDialect, LoadInput

STAGING_ROW = "__csvpg_row"

#: Feed COPY in blocks this large; fewer round trips than psycopg's default.
_WRITE_BLOCK = 1 << 20


def table_columns(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str] | None:
    """Column name → type of an existing table, or ``None`` when there is no such table."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    return {name: typ for name, typ in rows} if rows else None


# Letters, digits, spaces, one dot, a numeric modifier, "with/without time zone", "[]":
# nothing that could end a statement or open a quote, so it is safe as SQL text.
_TYPE_NAME = re.compile(
    r"[A-Za-z_][A-Za-z0-9_ ]*(\.[A-Za-z_][A-Za-z0-9_]*)?"
    r"(\s*\(\s*\d+\s*(,\s*-?\d+\s*)?\))?"
    r"(\s+with(out)?\s+time\s+zone)?(\s*\[\s*\])*"
)


def checked_type(conn: psycopg.Connection[Any], type_name: str, key: str) -> str:
    """A type name from the job, checked by shape and by PostgreSQL itself."""
    name = " ".join(type_name.split())
    if not _TYPE_NAME.fullmatch(name):
        raise SinkError(
            f"'{key}' is not a PostgreSQL type name: {type_name!r}",
            key=key,
            hint="use a type such as text, bigint, numeric(12,2), date, timestamptz",
        )
    try:
        with conn.transaction():
            conn.execute("SELECT %s::regtype", (name,))
    except psycopg.Error as exc:
        raise SinkError(
            f"'{key}' names a type PostgreSQL does not know: {type_name!r}",
            key=key,
            hint="use a type such as text, bigint, numeric(12,2), date, timestamptz",
        ) from exc
    return name


def create_table_sql(load: LoadInput) -> sql.Composed:
    cols = [
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(load.types[c.name].type))
        for c in load.relation.columns
    ]
    if load.primary_key:
        keys = sql.SQL(", ").join(map(sql.Identifier, load.primary_key))
        cols.append(sql.SQL("PRIMARY KEY ({})").format(keys))
    return sql.SQL("CREATE TABLE {}.{} ({})").format(
        sql.Identifier(load.schema), sql.Identifier(load.table), sql.SQL(", ").join(cols)
    )


def table_ddl(load: LoadInput, exists: bool) -> list[sql.Composed]:
    """What creates the target when it is missing and the job may create it."""
    if exists or not load.create:
        return []
    return [*schema_ddl(load), create_table_sql(load)]


def schema_ddl(load: LoadInput) -> list[sql.Composed]:
    """``CREATE SCHEMA`` for a target schema that is missing (only then: see
    :attr:`LoadInput.schema_exists`)."""
    if load.schema_exists:
        return []
    return [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(load.schema))]


def schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)", (schema,)
    ).fetchone()
    return bool(row and row[0])


def needs_staging(load: LoadInput) -> bool:
    """COPY can fill the target itself only when every file column goes there as it is."""
    if load.dialect is None:
        return False
    if not load.relation.is_identity or load.dialect.nulls != ("",):
        return True
    return any(load.types[c.name].converts for c in load.relation.columns)


def copy_options(dialect: CsvDialect | None) -> sql.Composed:
    """``(FORMAT csv, …)`` for the byte path; text format for rows psycopg writes."""
    if dialect is None:
        return sql.SQL("(FORMAT text)").format()
    parts = [
        sql.SQL("FORMAT csv"),
        sql.SQL("DELIMITER {}").format(sql.Literal(dialect.delimiter)),
        sql.SQL("QUOTE {}").format(sql.Literal(dialect.quote)),
        sql.SQL("ESCAPE {}").format(sql.Literal(dialect.escape)),
        sql.SQL("HEADER {}").format(sql.SQL("true" if dialect.header else "false")),
        sql.SQL("ENCODING {}").format(sql.Literal(dialect.encoding)),
    ]
    return sql.SQL("({})").format(sql.SQL(", ").join(parts))


def copy_statement(
    table: sql.Composable, columns: list[str], dialect: CsvDialect | None
) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns)), copy_options(dialect)
    )


def copy_in(
    cur: psycopg.Cursor[Any], table: sql.Composable, columns: list[str], load: LoadInput
) -> int:
    """COPY one file into ``table`` (bytes when the format gave a dialect, else rows)."""
    with cur.copy(copy_statement(table, columns, load.dialect)) as copy:
        if load.dialect is not None:
            assert load.chunks is not None
            for chunk in load.chunks:
                copy.write(chunk)
        else:
            for row in load.rows():
                copy.write_row(row)
    return cur.rowcount


def create_staging(
    cur: psycopg.Cursor[Any], name: str, columns: list[str], *, schema: str | None = None
) -> sql.Identifier:
    """A TEXT table that keeps file order in ``__csvpg_row``: session-local and gone at
    commit, or (with ``schema``) an UNLOGGED table other connections can fill too."""
    ident = sql.Identifier(name) if schema is None else sql.Identifier(schema, name)
    cols = [sql.SQL("{} text").format(sql.Identifier(c)) for c in columns]
    # BY DEFAULT: the careful path supplies line numbers; the fast path lets it count.
    row = sql.Identifier(STAGING_ROW)
    cols.append(sql.SQL("{} bigint GENERATED BY DEFAULT AS IDENTITY").format(row))
    create = (
        "CREATE TEMP TABLE {} ({}) ON COMMIT DROP"
        if schema is None
        else "CREATE UNLOGGED TABLE {} ({})"
    )
    cur.execute(sql.SQL(create).format(ident, sql.SQL(", ").join(cols)))
    return ident


def _in(value: sql.Composable, words: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("{} IN ({})").format(value, sql.SQL(", ").join(map(sql.Literal, words)))


def null_markers_sql(column: sql.Composable, nulls: tuple[str, ...]) -> sql.Composable:
    """A staged TEXT value with the format's extra null markers (beyond "") as NULL."""
    markers = tuple(n for n in nulls if n != "")
    if not markers:
        return column
    return sql.SQL("CASE WHEN {} THEN NULL ELSE {} END").format(_in(column, markers), column)


def convert_sql(value: sql.Composable, ct: ColumnType) -> sql.Composed:
    """TEXT → the column's type, with the [columns] conversions (thousands separator,
    decimal comma, boolean words, a to_date/to_timestamp template)."""
    if ct.thousands:
        value = sql.SQL("replace({}, {}, '')").format(value, sql.Literal(ct.thousands))
    if ct.decimal and ct.decimal != ".":
        value = sql.SQL("replace({}, {}, '.')").format(value, sql.Literal(ct.decimal))
    if ct.true or ct.false:
        low = sql.SQL("lower({})").format(value)
        whens = [
            sql.SQL("WHEN {} THEN {}").format(_in(low, words), sql.Literal(word))
            for words, word in ((ct.true, "true"), (ct.false, "false"))
            if words
        ]
        value = sql.SQL("CASE {} ELSE {} END").format(sql.SQL(" ").join(whens), value)
    if ct.format:
        func = "to_date" if ct.type.split("(")[0].strip().lower() == "date" else "to_timestamp"
        value = sql.SQL(func + "({}, {})").format(value, sql.Literal(ct.format))
    return sql.SQL("CAST({} AS {})").format(value, sql.SQL(ct.type))


def value_expr(column: sql.Composable, ct: ColumnType, nulls: tuple[str, ...]) -> sql.Composed:
    """SQL that turns one staged TEXT value into the target type, conversions included.

    Everything is set-based: PostgreSQL does the work for the whole file in one query.
    """
    return convert_sql(null_markers_sql(column, nulls), ct)


def cast_list(load: LoadInput, staged_name: dict[int, str]) -> list[sql.Composed]:
    """``<converted staging column> AS target_col`` for each target column."""
    nulls = load.dialect.nulls if load.dialect is not None else ("",)
    return [
        sql.SQL("{} AS {}").format(
            value_expr(sql.Identifier(staged_name[c.index]), load.types[c.name], nulls),
            sql.Identifier(c.name),
        )
        for c in load.relation.columns
    ]
