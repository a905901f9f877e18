"""Connections, masked DSNs, and PostgreSQL errors turned into csvpg errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from csvpg.errors import DatabaseError, SinkError
from csvpg.masking import mask_text
from csvpg.pg.load import own_reason


def mask_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL, key=value and query forms)."""
    return mask_text(dsn)


def same_server(a: str, b: str) -> bool:
    """Whether two DSNs reach the same database as the same user (host, port, database
    and user alike; password and other options may differ)."""

    def identity(dsn: str) -> tuple[str, ...]:
        try:
            info = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            return ("unparsable", dsn)
        return tuple(
            str(info.get(k) or default)
            for k, default in (("host", ""), ("port", "5432"), ("dbname", ""), ("user", ""))
        )

    return identity(a) == identity(b)


#: The ``application_name`` of the sessions opened here: a queued file's task names its
#: own (``csvpg task ID``), so that they can be ended if its worker is found stalled.
APPLICATION: ContextVar[str] = ContextVar("csvpg_application", default="csvpg")


def connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection; a failure is a :class:`DatabaseError` without the password."""
    try:
        return psycopg.connect(dsn, application_name=APPLICATION.get(), **kwargs)
    except psycopg.Error as exc:
        # libpq's text runs over several indented lines: one paragraph.
        text = mask_text(" ".join(str(exc).replace(dsn, mask_dsn(dsn)).split()))
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {text}",
            hint="check [database] dsn or --dsn (host, port, user, password) "
            "and that the server runs",
        ) from exc


def server_identity(conn: psycopg.Connection[Any]) -> tuple[str, str, str]:
    """(server version, user, database) of a connection: what ``csvpg connections
    test`` reports."""
    row = conn.execute(
        "SELECT current_setting('server_version'), current_user, current_database()"
    ).fetchone()
    assert row is not None
    return str(row[0]), str(row[1]), str(row[2])


def free_connections(conn: psycopg.Connection[Any]) -> int:
    """Connections this user may still open: the server's ``max_connections`` less the
    reserved and the used ones, and the role's own ``CONNECTION LIMIT`` if it has one.
    ``conn`` counts as used."""
    row = conn.execute(
        """
        SELECT current_setting('max_connections')::int
                 - current_setting('superuser_reserved_connections')::int
                 - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
               (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
               (SELECT count(*) FROM pg_stat_activity
                 WHERE backend_type = 'client backend' AND usename = current_user)
        """
    ).fetchone()
    assert row is not None
    server: int = row[0]
    limit: int | None = row[1]
    mine: int = row[2]
    return max(0, min(server, limit - mine) if limit is not None and limit >= 0 else server)


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


_COPY_WHERE = re.compile(r"COPY \S+, line (\d+)(?:, column ([^:]+))?")


def sink_error(exc: psycopg.Error, *, file: str, table: str, line_offset: int = 0) -> SinkError:
    """A PostgreSQL error during a load, as a message that names the file and line."""
    diag = exc.diag
    # A lost connection has no diagnostics, and libpq's text runs over several lines.
    lost = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    primary = own_reason(diag.message_primary or lost)
    line = column = None
    m = _COPY_WHERE.search(diag.context or "")
    if m:
        line = int(m.group(1)) + line_offset
        column = m.group(2)
    where = f"{file}, line {line}" if line else file
    if column:
        where += f", column {column}"
    hint = diag.message_hint or _hint_for(diag.sqlstate)
    detail = f" ({diag.message_detail})" if diag.message_detail else ""
    return SinkError(
        f"{where}: {primary}{detail} — loading into {table} was rolled back",
        hint=hint,
        file=file,
        line=line,
        column=column,
        sqlstate=diag.sqlstate,
    )


def _hint_for(sqlstate: str | None) -> str | None:
    return {
        "22P04": "the row does not match the header's column count, or a quote is not closed; "
        "check the delimiter and quote in [format]",
        "22021": 'the bytes do not match the encoding; set encoding = "latin-1" (or the right one) '
        "in [format]",
        "22P02": "a value does not fit its column's type; fix the value or the type in [columns]",
        "22003": "a number is too large for its column's type; choose a wider type in [columns]",
        "22007": "a date or time is not in a form PostgreSQL reads; "
        "fix the value or use a text column",
        "22008": "a date or time is out of range",
        "23505": 'two rows share a key; use mode = "upsert" or fix the key',
        "23502": "a required column is empty in the file",
        "42P01": "the table does not exist; set create = true in [sink]",
        "42703": "the table lacks a column the file has; "
        "rename or select columns, or alter the table",
        "42501": "the database user lacks a privilege; grant it or use another user",
    }.get(sqlstate or "")


@contextmanager
def load_savepoint(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A savepoint the block's failure rolls back to, so the file's transaction goes on
    (to its rejects). After success it is left to the transaction's end, which releases
    it: a RELEASE is a round trip of its own, one of a 100-row file's seven."""
    conn.execute("SAVEPOINT csvpg_load")
    try:
        yield
    except BaseException:
        if not conn.broken:
            # (A failed rollback leaves the transaction failed: the error raised is the
            # block's, and the file's transaction ends with it.)
            with suppress(psycopg.Error):
                conn.execute("ROLLBACK TO SAVEPOINT csvpg_load")
        raise
