"""The careful path: a file the fast path could not load, row by row set aside.

It runs only after the fast COPY failed, so clean files never pay for it. The file is
read again and parsed in Python with line numbers: records that are not CSV (an
unclosed quote, the wrong number of fields, undecodable bytes, a NUL) become rejects
at once. The rest go to a TEXT staging table keyed by line number, where PostgreSQL
itself finds the rows whose values do not fit their types: a probe INSERT over a range
either succeeds or is split in halves until the bad rows stand alone. The sink then
loads what is left from the staging table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import LoadInput, Record, Staged
from csvpg.pg.connect import qualified
from csvpg.pg.load import STAGING_ROW, create_staging, value_expr
from csvpg.pg.rejects import Reject


def is_row_error(exc: psycopg.Error) -> bool:
    """Errors a row can cause by itself: bad values (class 22), a NULL in a NOT NULL
    column, a failed CHECK. Anything else (a lost connection, a missing privilege)
    fails the file as it is."""
    state = exc.sqlstate or ""
    return state.startswith("22") or state in ("23502", "23514")


#: Rows probed at once before a failing range is bisected.
CHUNK = 8192
#: A failing range this small is probed row by row.
FEW = 64


class TooManyRejects(Exception):
    def __init__(self, rejects: list[Reject], read: int) -> None:
        super().__init__(f"{len(rejects)} rejects")
        self.rejects = rejects
        self.read = read


def careful_stage(
    conn: psycopg.Connection[Any],
    load: LoadInput,
    records: Iterator[Record],
    stop: Callable[[int, int], bool],
) -> tuple[Staged, list[Reject], int]:
    """Stage the well-formed records; return the staged table, the rejects so far and
    the number of records read. ``stop(rejected, read)`` ends early (too many)."""
    width = len(load.relation.file_columns)
    names = {c.index: f"f{c.index}" for c in load.relation.file_columns}
    rejects: list[Reject] = []
    read = 0
    with conn.cursor() as cur:
        staging = create_staging(cur, "csvpg_careful", list(names.values()))
        columns = sql.SQL(", ").join(map(sql.Identifier, [*names.values(), STAGING_ROW]))
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(staging, columns)
        with cur.copy(stmt) as copy:
            for record in records:
                read += 1
                if record.fields is None:
                    rejects.append(Reject(record.line, record.problem or "unreadable", record.raw))
                elif len(record.fields) != width:
                    n = len(record.fields)
                    reason = f"{n} field{'s' if n != 1 else ''} where the header has {width}"
                    rejects.append(Reject(record.line, reason, record.raw))
                else:
                    copy.write_row([*record.fields, record.line])
                    continue
                if stop(len(rejects), read):
                    raise TooManyRejects(rejects, read)
        rows = read - len(rejects)
        cur.execute(sql.SQL("CREATE INDEX ON {} ({})").format(staging, sql.Identifier(STAGING_ROW)))
        cur.execute(sql.SQL("ANALYZE {}").format(staging))
    return Staged(staging, names, rows), rejects, read


class Prober:
    """Finds the staged rows PostgreSQL refuses, by probe INSERTs into a copy of the
    target's shape (types, NOT NULL, CHECK) that each run in a savepoint."""

    def __init__(self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged) -> None:
        self.conn = conn
        self.load = load
        self.staged = staged
        self.row = sql.Identifier(STAGING_ROW)
        self.exprs = {
            c.name: value_expr(
                sql.Identifier(staged.names[c.index]),
                load.types[c.name],
                load.dialect.nulls if load.dialect else ("",),
            )
            for c in load.relation.columns
        }
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE csvpg_probe (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                " ON COMMIT DROP"
            ).format(qualified(load.schema, load.table))
        )
        targets = sql.SQL(", ").join(sql.Identifier(n) for n in self.exprs)
        values = sql.SQL(", ").join(self.exprs.values())
        self.insert = sql.SQL("INSERT INTO csvpg_probe ({}) SELECT {} FROM {} ").format(
            targets, values, staged.table
        )

    def _try(self, query: sql.Composed) -> psycopg.Error | None:
        try:
            with self.conn.transaction():
                self.conn.execute(query)
        except psycopg.Error as exc:
            if not is_row_error(exc):
                raise
            return exc
        return None

    def _range(self, lo: int, hi: int) -> sql.Composed:
        return sql.SQL("WHERE {} BETWEEN {} AND {}").format(
            self.row, sql.Literal(lo), sql.Literal(hi)
        )

    def _few_lines(self, lo: int, hi: int) -> list[int] | None:
        """The line numbers in a range when it holds at most ``FEW`` rows, else None."""
        query = sql.SQL("SELECT {} FROM {} {} ORDER BY 1 LIMIT {}").format(
            self.row, self.staged.table, self._range(lo, hi), sql.Literal(FEW + 1)
        )
        lines = [r[0] for r in self.conn.execute(query).fetchall()]
        return lines if len(lines) <= FEW else None

    def bad_rows(self, stop: Callable[[int], bool]) -> list[Reject]:
        """Every refused row, in file order; ``stop(n)`` ends the search at n rejects."""
        found: list[Reject] = []
        pending = list(reversed(self._chunk_bounds()))
        while pending:
            lo, hi = pending.pop()
            if self._try(self.insert + self._range(lo, hi)) is None:
                continue
            lines = self._few_lines(lo, hi)
            if lines is None:
                mid = self._median(lo, hi)
                pending += [(mid + 1, hi), (lo, mid)]
                continue
            for line in lines:
                error = self._try(self.insert + self._range(line, line))
                if error is not None:
                    found.append(self._explain(line, error))
                    if stop(len(found)):
                        return found
        return found

    def _chunk_bounds(self) -> list[tuple[int, int]]:
        query = sql.SQL(
            "SELECT min({0}), max({0}) FROM (SELECT {0}, (row_number() OVER (ORDER BY {0}) - 1)"
            " / {1} AS chunk FROM {2}) s GROUP BY chunk ORDER BY 1"
        ).format(self.row, sql.Literal(CHUNK), self.staged.table)
        return [(lo, hi) for lo, hi in self.conn.execute(query).fetchall()]

    def _median(self, lo: int, hi: int) -> int:
        query = sql.SQL(
            "SELECT {0} FROM {1} {2} ORDER BY 1 OFFSET (SELECT count(*) / 2 - 1 FROM {1} {2})"
            " LIMIT 1"
        ).format(self.row, self.staged.table, self._range(lo, hi))
        row = self.conn.execute(query).fetchone()
        return int(row[0]) if row else lo

    def _explain(self, line: int, error: psycopg.Error) -> Reject:
        """One refused row: which column, which value, and PostgreSQL's reason."""
        where = sql.SQL("WHERE {} = {}").format(self.row, sql.Literal(line))
        raw_cols = sql.SQL(", ").join(map(sql.Identifier, self.staged.names.values()))
        raw_row = self.conn.execute(
            sql.SQL("SELECT {} FROM {} ").format(raw_cols, self.staged.table) + where
        ).fetchone()
        values = dict(zip(self.staged.names, raw_row or (), strict=False))
        raw = ",".join("" if v is None else str(v) for v in (raw_row or ()))
        for col in self.load.relation.columns:
            probe = sql.SQL("SELECT {} FROM {} ").format(self.exprs[col.name], self.staged.table)
            failed = self._try(probe + where)
            if failed is not None:
                return Reject(
                    line, _reason(failed), raw, col.name, values.get(col.index), failed.sqlstate
                )
        column = error.diag.column_name
        index = next((c.index for c in self.load.relation.columns if c.name == column), None)
        value = values.get(index) if index is not None else None
        return Reject(line, _reason(error), raw, column, value, error.sqlstate)


def _reason(exc: psycopg.Error) -> str:
    return exc.diag.message_primary or str(exc).strip().splitlines()[0]


def too_many(file: str, rejects: list[Reject], read: int, limit: int | str) -> SinkError:
    first = "; ".join(f"line {r.line}: {r.reason}" for r in rejects[:3])
    return SinkError(
        f"{file}: {len(rejects)} of {read} rows rejected, more than max_rejects = {limit!r} "
        f"allows (first: {first}) — loading was rolled back",
        file=file,
        line=rejects[0].line if rejects else None,
        hint=(
            'the file is probably in another encoding: set encoding = "latin-1" (or the '
            "right one) in [format]"
            if rejects and rejects[0].reason.startswith("bytes that are not valid")
            else "fix the file, or raise max_rejects in [sink]; the rejects are in csvpg.rejects"
        ),
    )
