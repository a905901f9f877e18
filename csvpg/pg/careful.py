"""The careful path: a file the fast path could not load, row by row set aside.

It runs only after the fast COPY failed, so clean files never pay for it. The file is
read again and parsed in Python with line numbers: records that are not CSV (an
unclosed quote, the wrong number of fields, undecodable bytes, a NUL) become rejects
at once. The rest go to a TEXT staging table keyed by line number, where PostgreSQL
itself finds the rows whose values do not fit their types: a probe INSERT over a range
either succeeds or is split in halves until the bad rows stand alone. The sink then
loads what is left from the staging table.

The row path (a transform that needs values) cannot read its file twice, as its
transforms would run twice: it always stages its rows first (:func:`stage_rows`), keyed
by position, with each row's line when the format and transforms keep it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import Column, LoadInput, Record, Staged, batch_lines, wrong_width
from csvpg.pg.connect import qualified
from csvpg.pg.load import STAGING_ROW, create_staging, own_reason, value_expr
from csvpg.pg.rejects import Reject, all_rejected, place


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
    """Stage the well-formed records, keyed by line; return the staged table, the
    rejects so far and the number of records read. ``stop(rejected, read)`` ends early
    (too many)."""
    width = len(load.relation.file_columns)

    def rows() -> Iterator[list[Any] | Reject]:
        for record in records:
            if record.fields is None or len(record.fields) != width:
                yield record_reject(record, width)
            else:
                yield [*record.fields, record.line]

    return _stage(conn, load.relation.file_columns, "csvpg_careful", rows(), stop)


def record_reject(record: Record, width: int) -> Reject:
    """A record that cannot be staged (unparseable, or not ``width`` fields) as a reject
    with the record's own text and place in the file."""
    if record.fields is None:
        reason = record.problem or "unreadable"
    else:
        reason = wrong_width(len(record.fields), width)
    return Reject(
        record.line,
        reason,
        record.raw,
        column=record.column,
        offset=record.offset,
        length=record.length,
    )


#: The staged column holding a row's line on the row path (``None`` when unknown).
LINE = "__csvpg_line"


def stage_rows(
    conn: psycopg.Connection[Any],
    load: LoadInput,
    stop: Callable[[int, int], bool],
    malformed: deque[Reject] | None = None,
) -> tuple[Staged, list[Reject], int]:
    """Stage the row path's rows (position in ``__csvpg_row``, line in ``__csvpg_line``);
    a row with the wrong number of values is a reject, and so is each one the reader set
    aside in ``malformed`` meanwhile. Returns as :func:`careful_stage`."""
    assert load.batches is not None
    batches = load.batches
    width = len(load.relation.columns)
    aside: deque[Reject] = deque() if malformed is None else malformed

    def rows() -> Iterator[list[Any] | Reject]:
        position = 0
        for batch in batches:
            while aside:
                yield aside.popleft()
            lines = batch_lines(batch)
            for i, row in enumerate(batch):
                position += 1
                line = lines[i] if lines is not None else None
                if len(row) == width:
                    yield [*row, position, line]
                else:
                    n = len(row)
                    reason = f"{n} value{'s' if n != 1 else ''} where the table takes {width}"
                    yield Reject(line, reason, ",".join("" if v is None else v for v in row))
        while aside:
            yield aside.popleft()

    return _stage(conn, load.relation.columns, "csvpg_rows", rows(), stop, lines=True)


def _stage(
    conn: psycopg.Connection[Any],
    columns: Sequence[Column],
    name: str,
    rows: Iterator[list[Any] | Reject],
    stop: Callable[[int, int], bool],
    *,
    lines: bool = False,
) -> tuple[Staged, list[Reject], int]:
    """COPY rows (values, ``__csvpg_row``, and with ``lines`` the line) into a new
    staging table; a :class:`Reject` in their place is kept aside."""
    names = {c.index: f"f{c.index}" for c in columns}
    extra = [STAGING_ROW, LINE] if lines else [STAGING_ROW]
    rejects: list[Reject] = []
    read = 0
    with conn.cursor() as cur:
        staging = create_staging(cur, name, list(names.values()))
        if lines:
            cur.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} bigint").format(staging, sql.Identifier(LINE))
            )
        targets = sql.SQL(", ").join(map(sql.Identifier, [*names.values(), *extra]))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, targets)) as copy:
            for row in rows:
                read += 1
                if not isinstance(row, Reject):
                    copy.write_row(row)
                    continue
                rejects.append(row)
                if stop(len(rejects), read):
                    raise TooManyRejects(rejects, read)
        cur.execute(sql.SQL("CREATE INDEX ON {} ({})").format(staging, sql.Identifier(STAGING_ROW)))
        cur.execute(sql.SQL("ANALYZE {}").format(staging))
    return Staged(staging, names, read - len(rejects)), rejects, read


class Prober:
    """Finds the staged rows PostgreSQL refuses, by probe INSERTs into a copy of the
    target's shape (types, NOT NULL, CHECK) that each run in a savepoint."""

    def __init__(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged, *, lines: bool = False
    ) -> None:
        """``lines``: the staged table keeps each row's line apart (:func:`stage_rows`);
        else its ``__csvpg_row`` is the line."""
        self.conn = conn
        self.load = load
        self.staged = staged
        self.row = sql.Identifier(STAGING_ROW)
        self.line = sql.Identifier(LINE if lines else STAGING_ROW)
        #: The ``__csvpg_row`` of every refused row, to delete them from staging.
        self.keys: list[int] = []
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
                    self.keys.append(line)
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

    def _explain(self, key: int, error: psycopg.Error) -> Reject:
        """One refused row: its line, which column, which value, and PostgreSQL's reason."""
        where = sql.SQL("WHERE {} = {}").format(self.row, sql.Literal(key))
        raw_cols = sql.SQL(", ").join(map(sql.Identifier, self.staged.names.values()))
        found = self.conn.execute(
            sql.SQL("SELECT {}, {} FROM {} ").format(self.line, raw_cols, self.staged.table) + where
        ).fetchone()
        line, *raw_row = found or (None,)
        values = dict(zip(self.staged.names, raw_row, strict=False))
        raw = ",".join("" if v is None else str(v) for v in raw_row)
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
    return own_reason(exc.diag.message_primary or str(exc).strip().splitlines()[0])


def too_many(file: str, rejects: list[Reject], read: int, limit: int | str) -> SinkError:
    first = "; ".join(f"{place(r.line, None)}: {r.reason}" for r in rejects[:3])
    how_many = (
        f"all {read} rows rejected, none could be loaded"
        if all_rejected(len(rejects), read)
        else f"{len(rejects)} of {read} rows rejected, more than max_rejects = {limit!r} allows"
    )
    return SinkError(
        f"{file}: {how_many} (first: {first}) — loading was rolled back",
        file=file,
        line=rejects[0].line if rejects else None,
        hint=(
            'the file is probably in another encoding: set encoding = "latin-1" (or the '
            "right one) in [format]"
            if rejects and rejects[0].reason.startswith("bytes that are not valid")
            else "no row fitting is a wrong [format] (delimiter, header) or [columns] type "
            "rather than bad rows; the rejects are in csvpg.rejects (csvpg runs <run> --rejects)"
            if all_rejected(len(rejects), read)
            else "fix the file, or raise max_rejects in [sink]; the rejects are in csvpg.rejects"
        ),
    )
