"""One large file over several connections, still in the file's one transaction.

The file's bytes are cut into chunks at line ends outside quotes: where PostgreSQL's
own CSV reader ends a record, since it too reads every quote as a toggle. Each chunk is
one ``COPY``, on the file's connection or on one the run has spare, side by side. Only
the file's transaction ever writes the target:

* **staged** (upsert, or values converted in SQL): every connection COPYs into an
  UNLOGGED TEXT table of its own, committed as it goes; the file's transaction then runs
  the mode's one ``INSERT … SELECT`` over all of them. Each chunk's rows are numbered
  from ``chunk << 40``, so file order (last row wins) survives.
* **new table**: the connections COPY into the new table itself, made in a scratch
  schema; the file's transaction moves it into the target schema.

Appending to (or rebuilding) an existing table without staging is not split: its rows
would commit on several connections, and a failure could leave part of the file.

Scratch tables live in a schema ``csvpg_split_<run>_<n>``, dropped when the file's
transaction ends, or by the next run when this one's process died.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from csvpg.errors import FormatError
from csvpg.interfaces import LoadInput, LoadResult, Sink, Staged
from csvpg.pg.connect import qualified
from csvpg.pg.load import (
    STAGING_ROW,
    copy_statement,
    create_staging,
    create_table_sql,
    needs_staging,
    schema_ddl,
    stages_typed,
)
from csvpg.retry import is_transient

#: Chunks are about this large (smaller for smaller files, so every connection gets
#: several and they finish together).
CHUNK_MIN = 256 << 10
CHUNK_MAX = 8 << 20
#: Pieces (a block of the byte path each, ~256 KiB) a connection may have waiting: its
#: share of the client's memory.
DEPTH = 8
#: A chunk's rows are numbered from ``chunk << ORDINAL_BITS`` in staging.
ORDINAL_BITS = 40

SCRATCH = re.compile(r"csvpg_split_(?P<run>[0-9a-f]{32})_\d+")


class SplitFailed(Exception):
    """A chunk's COPY failed (a bad value, a duplicate key …). Its line number counts
    from the chunk, not the file: the file loads again on one connection, which finds
    the bad rows and says where they are."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


# -- where to cut -------------------------------------------------------------------


def row_chunks(blocks: Iterable[bytes], quote: bytes, size: int) -> Iterator[bytes | None]:
    """The blocks again, with ``None`` between chunks: each chunk ends at the first line
    end outside quotes once it holds ``size`` bytes. Nothing is copied but the two
    halves of a block that is cut."""
    quoted = False  # inside quotes at ``pos`` of the current block
    filled = 0  # bytes in the current chunk
    cut_pending = False  # a chunk ended; say so before the next byte
    for block in blocks:
        pos = 0
        while (start := pos + max(0, size - filled)) < len(block):
            at_start = quoted ^ bool(block.count(quote, pos, start) & 1)
            end = line_end(block, start, quote, at_start)
            if end < 0:
                break
            if cut_pending:
                yield None
            yield block[pos:end]
            pos, filled, quoted, cut_pending = end, 0, False, True
        if pos < len(block):
            if cut_pending:
                yield None
                cut_pending = False
            rest = block[pos:] if pos else block
            yield rest
            filled += len(rest)
            quoted ^= bool(rest.count(quote) & 1)


def line_end(block: bytes, i: int, quote: bytes, quoted: bool) -> int:
    """Just past the first ``\\n`` at or after ``i`` outside quotes; -1 if none."""
    while (nl := block.find(b"\n", i)) >= 0:
        quoted ^= bool(block.count(quote, i, nl) & 1)
        if not quoted:
            return nl + 1
        i = nl + 1
    return -1


def chunk_size(size: int, parts: int) -> int:
    return max(CHUNK_MIN, min(CHUNK_MAX, size // (parts * 4)))


# -- may this file split? -----------------------------------------------------------


def why_not(load: LoadInput, sink: Sink, exists: bool) -> str | None:
    """Why this load cannot be split, or ``None`` when it can."""
    d = load.dialect
    if d is None:
        return "its rows pass through a row transform"
    if not (sink.takes_staged or sink.copies_into_new_table):
        return f"sink {sink.mode!r} loads on one connection"
    if d.escape != d.quote or not d.quote.isascii():
        return "its quotes are escaped with another character"
    if sink.stages_in_table_types and stages_typed(load):
        # Measured on 2 connections: the one INSERT is most of an upsert's time, and
        # cast from TEXT it took longer than the split saved on COPY.
        return (
            f"{sink.mode} stages the file in the table's own types on one connection, "
            "faster than a split's TEXT chunks"
        )
    if not (stages(load, sink) or (not exists and sink.copies_into_new_table)):
        return (
            f"{sink.mode} into an existing table would commit on several connections; "
            "only files the sink stages and new tables split"
        )
    return None


def stages(load: LoadInput, sink: Sink) -> bool:
    """Whether the sink loads this file through a staging table anyway: it stages every
    file, or the file's columns are converted in SQL (``[columns]``)."""
    return sink.takes_staged and (sink.stages_every_file or needs_staging(load))


# -- the load -----------------------------------------------------------------------

_END = object()  # the part commits and ends
_STOP = object()  # the part rolls back and ends
_CHUNK_END = object()


class SplitLoad:
    """Loads one file over its own connection and ``parts - 1`` more."""

    def __init__(self, load: LoadInput, sink: Sink, scratch: str, parts: int, size: int) -> None:
        self.load = load
        self.sink = sink
        self.scratch = scratch
        self.parts = parts
        self.chunk = chunk_size(size, parts)
        self.chunks = 0
        #: Staged: each connection its own TEXT table; else the new table itself.
        self.staged = stages(load, sink)
        cols = load.relation.file_columns if self.staged else load.relation.columns
        self.names = {c.index: f"f{c.index}" for c in cols}
        self.columns = list(self.names.values()) if self.staged else [c.name for c in cols]

    def tables(self) -> list[sql.Composed]:
        if self.staged:
            return [qualified(self.scratch, f"part{k}") for k in range(self.parts)]
        return [qualified(self.scratch, self.load.table)] * self.parts

    def prepare(self, conn: psycopg.Connection[Any]) -> bool:
        """Make the scratch schema and tables (committed, so every connection sees them);
        ``False`` when the user may not create a schema: the file loads unsplit."""
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.scratch)))
                if self.staged:
                    for k in range(self.parts):
                        create_staging(cur, f"part{k}", self.columns, schema=self.scratch)
                else:
                    cur.execute(create_table_sql(replace(self.load, schema=self.scratch)))
        except psycopg.errors.InsufficientPrivilege:
            return False
        return True

    def run(
        self, conn: psycopg.Connection[Any], extra: list[psycopg.Connection[Any]]
    ) -> LoadResult:
        """COPY every chunk, then write the target in ``conn``'s transaction."""
        rows = self._copy_all([conn, *extra])
        details = {"split": {"connections": self.parts, "chunks": self.chunks}}
        if not self.staged:
            target = self.load.schema
            for statement in schema_ddl(self.load):
                conn.execute(statement)
            conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                    self.tables()[0], sql.Identifier(target)
                )
            )
            return LoadResult(rows=rows, inserted=rows, details=details)
        union = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT * FROM {}").format(t) for t in self.tables()
        )
        staged = Staged(sql.SQL("({}) AS split").format(union), self.names, rows)
        result = self.sink.load_staged(conn, self.load, staged)
        return replace(result, details={**result.details, **details})

    # -- side by side ---------------------------------------------------------------

    def _copy_all(self, conns: list[psycopg.Connection[Any]]) -> int:
        queues: list[queue.Queue[object]] = [queue.Queue(DEPTH) for _ in conns]
        rows = [0] * len(conns)
        #: In the order they happened: the first is the cause, the rest were stopped.
        errors: list[BaseException] = []
        failed = threading.Event()

        def part(k: int) -> None:
            try:
                rows[k] = self._part(k, conns[k], queues[k])
            except BaseException as exc:  # handed to the dealing thread
                errors.append(exc)
                failed.set()

        threads = [
            threading.Thread(target=part, args=(k,), name=f"csvpg-split-{k}", daemon=True)
            for k in range(len(conns))
        ]
        for t in threads:
            t.start()
        ok = False
        try:
            self._deal(queues, failed)
            ok = True
        except _PartFailed:
            pass
        except FormatError as exc:
            # The reader's error names a line of the file, but say it on one connection.
            raise SplitFailed(exc.message) from exc
        finally:
            for q in queues:
                if ok and not put_unless(q, _END, failed):
                    ok = False
                if not ok:
                    _stop(q)
            for t in threads:
                t.join()
        if errors and not isinstance(errors[0], _Stopped):
            error = errors[0]
            # Its "line" counts from the chunk: one connection says where in the file.
            if isinstance(error, psycopg.Error) and not is_transient(error):
                raise SplitFailed(str(error).strip().splitlines()[0]) from error
            raise error
        return sum(rows)

    def _deal(self, queues: list[queue.Queue[object]], failed: threading.Event) -> None:
        """Hand each chunk to the connection with the least waiting."""
        assert self.load.chunks is not None and self.load.dialect is not None
        quote = self.load.dialect.quote.encode("ascii")
        q: queue.Queue[object] | None = None
        for piece in row_chunks(self.load.chunks, quote, self.chunk):
            if piece is None:
                assert q is not None
                _put_or_fail(q, _CHUNK_END, failed)
                q = None
                continue
            if q is None:
                q = min(queues, key=lambda each: each.qsize())
                _put_or_fail(q, self.chunks, failed)
                self.chunks += 1
            _put_or_fail(q, piece, failed)
        if q is not None:
            _put_or_fail(q, _CHUNK_END, failed)

    def _part(self, k: int, conn: psycopg.Connection[Any], q: queue.Queue[object]) -> int:
        """One connection's chunks. The file's own connection (``k == 0``) writes in the
        file's transaction; another commits its scratch rows once the file is read."""
        dialect = self.load.dialect
        assert dialect is not None
        table = self.tables()[k]
        rows = 0
        with conn.cursor() as cur:
            sequence = None
            if self.staged:
                found = cur.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (table.as_string(conn), STAGING_ROW)
                ).fetchone()
                sequence = found[0] if found else None
            while (item := q.get()) is not _END:
                if item is _STOP:
                    raise _Stopped
                assert isinstance(item, int)
                if sequence is not None:
                    first = (item << ORDINAL_BITS) + 1
                    cur.execute("SELECT setval(%s, %s, false)", (sequence, first))
                header = dialect.header and item == 0
                statement = copy_statement(table, self.columns, replace(dialect, header=header))
                with cur.copy(statement) as copy:
                    while (piece := q.get()) is not _CHUNK_END:
                        if piece is _STOP:
                            raise _Stopped
                        copy.write(piece)  # type: ignore[arg-type]
                rows += cur.rowcount
        if k:
            conn.commit()
        return rows


class _PartFailed(Exception):
    """A connection failed: stop dealing."""


class _Stopped(Exception):
    """The load was stopped: this connection rolls back."""


def put_unless(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Wait for room, unless ``stop`` is set meanwhile (a connection failed, say)."""
    while True:
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            if stop.is_set():
                return False


def _put_or_fail(q: queue.Queue[object], item: object, failed: threading.Event) -> None:
    if failed.is_set() or not put_unless(q, item, failed):
        raise _PartFailed


def _stop(q: queue.Queue[object]) -> None:
    """Drop what waits and tell the connection to roll back: it never blocks, as only
    the dealing thread puts."""
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
    q.put_nowait(_STOP)


# -- scratch left by a process that died ----------------------------------------------


def scratch_schemas(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Every split file's scratch schema in the database → the run it belongs to."""
    rows = conn.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'csvpg\\_split\\_%'"
    ).fetchall()
    return {name: m["run"] for (name,) in rows if (m := SCRATCH.fullmatch(name))}


def drop(conn: psycopg.Connection[Any], scratch: str) -> None:
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(scratch)))
