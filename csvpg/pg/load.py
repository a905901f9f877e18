"""COPY, staging tables and the DDL the sinks share."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from csvpg.dateformat import FRACTION_PATTERNS, patterns, writes_back
from csvpg.errors import FormatError, SinkError
from csvpg.interfaces import Column, ColumnType, CsvDialect, LoadInput, Staged

STAGING_ROW = "__csvpg_row"

#: Feed COPY in blocks this large; fewer round trips than psycopg's default.
_WRITE_BLOCK = 1 << 20


TABLE_COLUMNS = """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
"""


def table_columns(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str] | None:
    """Column name → type of an existing table, or ``None`` when there is no such table."""
    return columns_of(conn.execute(TABLE_COLUMNS, (schema, table)).fetchall())


def columns_of(rows: list[tuple[Any, ...]]) -> dict[str, str] | None:
    """:data:`TABLE_COLUMNS`' rows as :func:`table_columns` returns them."""
    return {name: typ for name, typ in rows} if rows else None


def existing_tables(
    conn: psycopg.Connection[Any], tables: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of ``tables`` ((schema, table) pairs) are there, in one query."""
    if not tables:
        return set()
    pairs = sorted(tables)
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname
        FROM unnest(%s::text[], %s::text[]) AS t(nspname, relname)
        JOIN pg_namespace n ON n.nspname = t.nspname
        JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.relname
        WHERE c.relkind IN ('r', 'p')
        """,
        ([schema for schema, _ in pairs], [table for _, table in pairs]),
    ).fetchall()
    return {(schema, table) for schema, table in rows}


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


def lowers_ascii(conn: psycopg.Connection[Any]) -> bool:
    """The database's ``lower()`` maps ASCII letters to ASCII ones (a Turkish ctype
    lowers ``I`` to a dotless ı)."""
    row = conn.execute(
        "SELECT lower('ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'abcdefghijklmnopqrstuvwxyz'"
    ).fetchone()
    return bool(row and row[0])


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


def copy_options(dialect: CsvDialect | None, *, skip_bad: bool = False) -> sql.Composed:
    """``(FORMAT csv, …)`` for the byte path; text format for rows psycopg writes.
    ``skip_bad`` (PostgreSQL 17+): a value its type refuses skips its row, and a NOTICE
    names its line, column and value."""
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
    if skip_bad:
        parts += [sql.SQL("ON_ERROR ignore"), sql.SQL("LOG_VERBOSITY verbose")]
    return sql.SQL("({})").format(sql.SQL(", ").join(parts))


def copy_statement(
    table: sql.Composable,
    columns: list[str],
    dialect: CsvDialect | None,
    *,
    skip_bad: bool = False,
) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN {}").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        copy_options(dialect, skip_bad=skip_bad),
    )


@functools.lru_cache(maxsize=64)
def table_copy_statement(
    schema: str, table: str, columns: tuple[str, ...], dialect: CsvDialect, skip_bad: bool
) -> sql.SQL:
    """:func:`copy_statement` into ``schema.table``, composed once: the files of a run
    COPY into their table with the same statement, and composing it anew was 60 µs of a
    100-row file's 2.5 ms."""
    ident = sql.Identifier(schema, table)
    return sql.SQL(copy_statement(ident, list(columns), dialect, skip_bad=skip_bad).as_string())


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
    cur: psycopg.Cursor[Any],
    name: str,
    columns: list[str],
    *,
    schema: str | None = None,
    types: list[str] | None = None,
) -> sql.Identifier:
    """A TEXT table that keeps file order in ``__csvpg_row`` (or a table of ``types``,
    without it): session-local and gone at commit, or (with ``schema``) an UNLOGGED
    table other connections can fill too."""
    ident = sql.Identifier(name) if schema is None else sql.Identifier(schema, name)
    kinds = types or ["text"] * len(columns)
    cols = [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
        for c, t in zip(columns, kinds, strict=True)
    ]
    if types is None:
        # BY DEFAULT: the careful path supplies line numbers; the fast path lets it
        # count. A session-local table is filled by one session: a cached sequence
        # still counts 1, 2, 3 … and spares the sequence's page a write per row (a
        # sixth of the COPY). A typed table has none: one COPY fills it, so its ctid
        # keeps file order.
        row = sql.Identifier(STAGING_ROW)
        identity = "GENERATED BY DEFAULT AS IDENTITY" + (" (CACHE 1000)" if schema is None else "")
        cols.append(sql.SQL("{} bigint " + identity).format(row))
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


#: What PostgreSQL reads as a date relative to the day it reads it.
RELATIVE_WORDS = ("now", "today", "tomorrow", "yesterday", "allballs")
RELATIVE_REASON = "a relative date word; the value would change with the day of the load"
#: A reject's reason csvpg raises itself, as the text of a failing cast to date:
#: ``invalid input syntax for type date: "csvpg: <reason>"``.
_OWN = "csvpg: "
_OWN_REASON = re.compile(r'invalid input syntax for type [^:]+: "csvpg: (.*)"', re.S)
_DATETIME = re.compile(r"(date|time|timetz|timestamp|timestamptz)\b(?!.*\[)", re.I)


def is_datetime(type_name: str) -> bool:
    """``date``, ``time(3)``, ``timestamp with time zone`` …, not arrays of them."""
    return bool(_DATETIME.match(type_name.strip()))


def refused(reason: sql.Composable, value: sql.Composable) -> sql.Composed:
    """TEXT that fails its row with ``reason`` when evaluated (and only then: ``value``
    keeps PostgreSQL from evaluating it once while planning)."""
    text = sql.SQL("({} || {} || substr({}, 1, 0))").format(sql.Literal(_OWN), reason, value)
    return sql.SQL("CAST(CAST({} AS date) AS text)").format(text)


def own_reason(message: str) -> str:
    """A reason :func:`refused` raised, without the failed cast around it."""
    m = _OWN_REASON.fullmatch(message.strip())
    return m.group(1) if m else message


def relative_check_sql(value: sql.Composable) -> sql.Composed:
    """The value, unless it holds a relative date word: then its row fails. (A value
    without letters, as most are, is let through by the cheaper test alone.)"""
    words = "|".join(RELATIVE_WORDS)
    return sql.SQL("CASE WHEN {} !~ '[A-Za-z]' THEN {} WHEN {} ~* {} THEN {} ELSE {} END").format(
        value,
        value,
        value,
        sql.Literal(rf"\m({words})\M"),
        refused(sql.Literal(RELATIVE_REASON), value),
        value,
    )


class MayHoldRelativeDates(FormatError):
    """The fast COPY would take ``yesterday`` as a date: the file's rows are checked one
    by one instead (the careful path), which rejects the rows that hold one."""


#: Whole words only; a word in a text column only costs the careful path.
_WORDS = tuple(w.encode() for w in RELATIVE_WORDS)
_SEAM = max(map(len, _WORDS)) + 1
#: Bytes that continue a word: "Nowak" holds no "now". A byte of a UTF-8 letter does
#: too; PostgreSQL reads no date from "nowé" either.
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_") | frozenset(range(128, 256))


def has_relative_word(low: bytes) -> bool:
    """Whether lower-cased bytes hold one of :data:`RELATIVE_WORDS` as a whole word
    (``bytes.find`` per word: a regex over every byte costs far more)."""
    for word in _WORDS:
        i = low.find(word)
        while i >= 0:
            end = i + len(word)
            if (i == 0 or low[i - 1] not in _WORD_BYTES) and (
                end == len(low) or low[end] not in _WORD_BYTES
            ):
                return True
            i = low.find(word, i + 1)
    return False


def guard_relative_dates(load: LoadInput) -> LoadInput:
    """The file's bytes, watched for a relative date word, when COPY is to put them
    straight into a date or time column that does not allow one."""
    if load.chunks is None or not any(
        is_datetime(load.types[c.name].type) and not load.types[c.name].allow_relative
        for c in load.relation.columns
    ):
        return load
    return replace(load, chunks=_watched(load.chunks, load.ref.url))


#: The guard hands its bytes on in pieces this large, whatever the blocks it is given (a
#: format may hand on large ones). COPY is fed from what the socket holds (some
#: 200 KiB) while the client works on the next bytes: the guard's few milliseconds for
#: a 1 MiB block left the server waiting, and a rebuild of the bench's typed table
#: took a fifth longer than without the guard.
GUARD_PIECE = 128 << 10


def _pieces(chunks: Iterator[bytes]) -> Iterator[bytes]:
    for chunk in chunks:  # (a chunk no larger is itself: bytes slice whole to self)
        for i in range(0, len(chunk), GUARD_PIECE):
            yield chunk[i : i + GUARD_PIECE]


def _watched(chunks: Iterator[bytes], url: str) -> Iterator[bytes]:
    tail = b"\n"  # the data starts on a line of its own
    for chunk in _pieces(chunks):
        low = chunk.lower()
        # A "_" stands for the bytes beyond what is tested: a word touching it may go on
        # there ("now" + "ak" is "nowak") and is tested where it is whole: across the
        # seam with the block before, or the one after, or at the end of the data.
        if has_relative_word(b"_" + tail[-1:] + low + b"_") or has_relative_word(
            b"_" + tail + low[:_SEAM] + b"_"
        ):
            raise _relative(url)
        tail = low[-_SEAM:] if len(low) >= _SEAM else (tail + low)[-_SEAM:]
        yield chunk
    if has_relative_word(b"_" + tail):
        raise _relative(url)


def _relative(url: str) -> MayHoldRelativeDates:
    return MayHoldRelativeDates(
        f"{url} may hold a relative date word (now, today, tomorrow, yesterday, "
        "allballs) for a date or time column",
        file=url,
    )


def _comparable(text: sql.Composable, fraction: bool) -> sql.Composed:
    """Date text as compared: case, runs of spaces and a leading zero of a one- or
    two-digit number ("1.2.2024" is "01.02.2024") do not matter; with a fraction of a
    second in the template, nor do its trailing zeros (".5" is ".500000")."""
    out = sql.SQL(r"regexp_replace(btrim({}), '\s+', ' ', 'g')").format(text)
    out = sql.SQL(r"regexp_replace({}, '(^|\D)0(\d)(?!\d)', '\1\2', 'g')").format(out)
    if fraction:
        out = sql.SQL(r"regexp_replace({}, '([.,]\d*[1-9])0+(?!\d)', '\1', 'g')").format(out)
        out = sql.SQL(r"regexp_replace({}, '([.,])0+(?!\d)', '\1', 'g')").format(out)
    return sql.SQL("lower({})").format(out)


def format_check_sql(
    value: sql.Composable,
    func: str,
    template: str,
    parsed: sql.Composable | None = None,
    parsed_type: str = "",
) -> sql.Composed:
    """The value, if ``template`` reads all of it as the date it shows: written back with
    the template it is the same text. ``to_date`` skips what it does not read, so
    ``2024-01-15 junk`` would load as 2024-01-15, and ``15.01.24`` as the year 24.

    With ``parsed`` (the value read with the template beforehand, of type
    ``parsed_type``: see :func:`template_read_sql`) the result is that date itself,
    with the same checks and the same refusals: the value is not read a second time."""
    fmt = sql.Literal(template)
    read = sql.SQL(func + "({}, {})").format(value, fmt) if parsed is None else parsed
    back = sql.SQL("to_char({}, {})").format(read, fmt)
    reason = sql.SQL("{} || coalesce({}, '') || ')'").format(
        sql.Literal(f"does not match the format {template} (read with it, it is "), back
    )
    fraction = bool(FRACTION_PATTERNS.intersection(patterns(template)))
    refusal = refused(reason, value)
    if parsed is None:
        accepted: sql.Composable = value
    else:
        accepted = parsed
        # The refusal raises before its cast runs; the cast gives the CASE one type.
        refusal = sql.SQL("CAST({} AS {})").format(refusal, sql.SQL(parsed_type))
    # The same text as written back is the common case: compared first, it spares the
    # regular expressions for the rest (CASE keeps that order).
    return sql.SQL(
        "CASE WHEN {value} IS NULL OR {back} = {value} THEN {accepted}"
        " WHEN {loose_back} = {loose_value} THEN {accepted} ELSE {refused} END"
    ).format(
        value=value,
        back=back,
        accepted=accepted,
        loose_back=_comparable(back, fraction),
        loose_value=_comparable(value, fraction),
        refused=refusal,
    )


#: Types whose explicit cast cuts a longer value short: varchar(n), char(n), bit(n).
_LIMITED = re.compile(
    r"\s*(character\s+varying|varchar|character|char|bpchar|bit\s+varying|varbit|bit)\s*\(",
    re.I,
)


def _template_function(ct: ColumnType) -> str:
    return "to_date" if ct.type.split("(")[0].strip().lower() == "date" else "to_timestamp"


def _before_template(value: sql.Composable, ct: ColumnType) -> sql.Composable:
    """The TEXT value with the conversions that come before a template's reading."""
    if is_datetime(ct.type) and not ct.allow_relative and not ct.format:
        # (to_date and to_timestamp know no relative words: a template refuses them.)
        value = relative_check_sql(value)
    if ct.thousands:
        value = sql.SQL("replace({}, {}, '')").format(value, sql.Literal(ct.thousands))
    if ct.decimal and ct.decimal != ".":
        value = sql.SQL("replace({}, {}, '.')").format(value, sql.Literal(ct.decimal))
    if ct.true or ct.false:
        # A simple CASE: lower() runs once per value, not once per WHEN.
        whens = [
            sql.SQL("WHEN {} THEN {}").format(sql.Literal(w), sql.Literal(word))
            for words, word in ((ct.true, "true"), (ct.false, "false"))
            for w in dict.fromkeys(words)
        ]
        value = sql.SQL("CASE lower({}) {} ELSE {} END").format(
            value, sql.SQL(" ").join(whens), value
        )
    return value


def checks_template(ct: ColumnType) -> bool:
    """Whether the column's template reading is checked by writing the value back: the
    conversion that gains from reading each value once (:func:`template_read_sql`)."""
    return bool(ct.format) and writes_back(ct.format or "")


#: ``timestamp``, ``timestamp(3)``, ``timestamp without time zone``: no zone.
_NAIVE_TIMESTAMP = re.compile(
    r"\s*timestamp\s*(\(\s*\d+\s*\))?(\s+without\s+time\s+zone)?\s*", re.I
)


def template_read_type(ct: ColumnType) -> str:
    """What :func:`template_read_sql` gives: a date, or for a timestamp column without
    zone the session's wall clock of ``to_timestamp`` (what its cast makes of it anyway:
    written back from it, the value is what ``to_char`` writes of the timestamptz, in a
    DST gap too), else the timestamptz."""
    if _template_function(ct) == "to_date":
        return "date"
    return "timestamp" if _NAIVE_TIMESTAMP.fullmatch(ct.type) else "timestamptz"


def template_read_sql(value: sql.Composable, ct: ColumnType) -> sql.Composed:
    """The value read with the column's template, as :func:`convert_sql` reads it: to be
    computed once per row and passed back to it as ``parsed``."""
    assert ct.format
    read = sql.SQL(_template_function(ct) + "({}, {})").format(
        _before_template(value, ct), sql.Literal(ct.format)
    )
    if template_read_type(ct) == "timestamp":
        return sql.SQL("CAST({} AS timestamp)").format(read)
    return read


def convert_sql(
    value: sql.Composable, ct: ColumnType, parsed: sql.Composable | None = None
) -> sql.Composed:
    """TEXT → the column's type, with the [columns] conversions (thousands separator,
    decimal comma, boolean words, a to_date/to_timestamp template), and for a date or
    time column the checks that keep a value from loading as another date.

    ``parsed``: :func:`template_read_sql` of the same value, computed beforehand, for a
    column whose template is checked (:func:`checks_template`); the result is the same,
    refusals too, with the value read once instead of twice."""
    value = _before_template(value, ct)
    if ct.format:
        func = _template_function(ct)
        if writes_back(ct.format):
            value = format_check_sql(value, func, ct.format, parsed, template_read_type(ct))
        if parsed is None or not writes_back(ct.format):
            value = sql.SQL(func + "({}, {})").format(value, sql.Literal(ct.format))
    if _LIMITED.match(ct.type):
        # An explicit cast to varchar(n) cuts a longer value short; as text, the column's
        # own cast on INSERT refuses it, as COPY does (a reject, never a value cut).
        return sql.SQL("CAST({} AS text)").format(value)
    return sql.SQL("CAST({} AS {})").format(value, sql.SQL(ct.type))


def value_expr(column: sql.Composable, ct: ColumnType, nulls: tuple[str, ...]) -> sql.Composed:
    """SQL that turns one staged TEXT value into the target type, conversions included.

    Everything is set-based: PostgreSQL does the work for the whole file in one query.
    """
    return convert_sql(null_markers_sql(column, nulls), ct)


def stages_typed(load: LoadInput) -> bool:
    """COPY can fill a staging table of the target's types with this file (as it could
    fill the target): the staged values need no cast."""
    return load.dialect is not None and not needs_staging(load)


def staged_value(load: LoadInput, staged: Staged, column: Column) -> sql.Composable:
    """A target column's value from the staging table: converted from TEXT, or as it is
    when the staging table has the target's types."""
    ident = sql.Identifier(staged.names[column.index])
    if staged.typed:
        return ident
    nulls = load.dialect.nulls if load.dialect is not None else ("",)
    return value_expr(ident, load.types[column.name], nulls)


def staged_select(load: LoadInput, staged: Staged, *, row: bool = False) -> sql.Composed:
    """``SELECT`` of the target's values from a staging table: converted from TEXT
    (:func:`converted_select`), or as they are in a typed one. ``row``: with
    ``__csvpg_row`` too (a typed table's ctid, which one COPY left in file order)."""
    if not staged.typed:
        return converted_select(load, staged.names, staged.table, row=row)
    values: list[sql.Composable] = list(staged_values(load, staged))
    if row:
        values.append(sql.SQL("ctid AS {}").format(sql.Identifier(STAGING_ROW)))
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(values), staged.table)


def staged_values(load: LoadInput, staged: Staged) -> list[sql.Composed]:
    """``<value> AS target_col`` for each target column (see :func:`staged_value`)."""
    return [
        sql.SQL("{} AS {}").format(staged_value(load, staged, c), sql.Identifier(c.name))
        for c in load.relation.columns
    ]


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


def converted_select(
    load: LoadInput, staged_name: dict[int, str], table: sql.Composable, *, row: bool = False
) -> sql.Composed:
    """``SELECT <converted columns> FROM …`` over a staging table, its
    ``__csvpg_row`` at hand for ordering: :func:`cast_list`'s values, with each value of
    a checked template read once (a subquery computes ``to_date`` for the check and the
    result alike; reading twice cost a fifth of the INSERT of the bench's conversion
    file). ``row``: the staged ``__csvpg_row`` is selected too."""
    nulls = load.dialect.nulls if load.dialect is not None else ("",)
    reads: list[sql.Composed] = []
    casts: list[sql.Composed] = []
    for k, c in enumerate(load.relation.columns):
        ct = load.types[c.name]
        value = null_markers_sql(sql.Identifier(staged_name[c.index]), nulls)
        parsed: sql.Identifier | None = None
        if checks_template(ct):
            parsed = sql.Identifier(f"__csvpg_read{k}")
            reads.append(sql.SQL("{} AS {}").format(template_read_sql(value, ct), parsed))
        casts.append(
            sql.SQL("{} AS {}").format(convert_sql(value, ct, parsed), sql.Identifier(c.name))
        )
    if row:
        casts.append(sql.SQL("{}").format(sql.Identifier(STAGING_ROW)))
    source: sql.Composable = table
    if reads:
        # OFFSET 0 keeps the subquery a subquery: pulled up, its reads would be copied
        # into every place the outer query names them.
        source = sql.SQL("(SELECT *, {} FROM {} OFFSET 0) AS staged").format(
            sql.SQL(", ").join(reads), table
        )
    return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(casts), source)
