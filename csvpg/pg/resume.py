"""Bad rows set aside at COPY speed: a file whose fast COPY failed loads again COPY by COPY.

The file's bytes go to the target in batches cut at record ends, each batch one COPY in
a savepoint. When a COPY fails, its error names the line it failed on: the batch is
rolled back, the records before that line are sent again, the bad record becomes a
reject and the COPY goes on after it. The cost grows with the number of bad rows, not
with the file: only a failing batch is sent twice, and batches shrink as bad rows get
dense (see :func:`batch_size`).

On PostgreSQL 17 and later, each COPY also runs with ``ON_ERROR ignore, LOG_VERBOSITY
verbose``: a value its column's type refuses skips its row in place, and the server says
which line, column and value in a NOTICE. Only errors COPY cannot skip (a record with
the wrong number of fields) restart a batch then. The reason of a skipped value is the
server's own (``pg_input_error_info``).

Each bad record is read with Python's CSV parser alone, for the reject's values; the
rest of the file never is. What this cannot say as :mod:`csvpg.pg.careful` would (a
NOT NULL or CHECK failure, a record Python reads otherwise than PostgreSQL, counts that
disagree) raises :class:`Declined`, and the file takes the careful path instead.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, cast

import psycopg
from psycopg import pq
from psycopg.abc import Buffer, PQGen
from psycopg.copy import LibpqWriter
from psycopg.generators import fetch_many
from psycopg.pq.abc import PGconn
from psycopg.waiting import Ready, Wait

from csvpg.interfaces import LoadInput, Reject, wrong_width
from csvpg.pg.careful import TooManyRejects
from csvpg.pg.connect import sink_error
from csvpg.pg.load import needs_staging, own_reason, table_copy_statement
from csvpg.pg.split import line_end

#: Batches start this large, and never grow past it.
BATCH_MAX = 8 << 20
BATCH_MIN = 64 << 10
#: What a batch costs beyond its bytes (a savepoint, a COPY), in bytes sent: with bad
#: rows every ``d`` bytes, a batch of ``sqrt(2 * OVERHEAD * d)`` costs least.
OVERHEAD = 32 << 10
#: The first release with ``COPY … (ON_ERROR ignore, LOG_VERBOSITY verbose)``.
SKIPS_FROM = 170000

_SKIPPED = "skipping row due to data type incompatibility at line "
_SUMMARY = re.compile(r"(\d+) rows? (?:was|were) skipped due to data type incompatibility")


#: Bytes handed to libpq at once.
PIECE = 128 << 10


class _ReadingWriter(LibpqWriter):
    """Sends COPY data, reading what the server says meanwhile: a COPY that skips many
    rows sends a NOTICE for each, and a client that only writes would wait for a
    server that waits for it to read them (libpq reads them in when it is asked to
    flush again; they are handed on when the COPY ends)."""

    #: The rows the COPY loaded, once it ended.
    rows = -1

    def write(self, data: Buffer) -> None:
        for i in range(0, len(data), PIECE):
            self.connection.wait(_send(self._pgconn, data[i : i + PIECE]))

    def finish(self, exc: BaseException | None = None) -> None:
        if exc is not None:
            super().finish(exc)
            return
        result = self.connection.wait(_end(self._pgconn))
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding=self.connection.info.encoding)
        self.rows = result.command_tuples if result.command_tuples is not None else -1


def _flushed(pgconn: PGconn) -> PQGen[None]:
    """Until libpq has sent what it holds, reading in what the server sends meanwhile."""
    while True:
        ready = yield Wait.RW
        if ready & Ready.R:
            pgconn.consume_input()
        if ready and pgconn.flush() == 0:
            return


def _send(pgconn: PGconn, data: Buffer) -> PQGen[None]:
    while pgconn.put_copy_data(data) == 0:
        yield from _flushed(pgconn)
    yield from _flushed(pgconn)


def _end(pgconn: PGconn) -> PQGen[pq.abc.PGresult]:
    while pgconn.put_copy_end(None) == 0:
        yield from _flushed(pgconn)
    yield from _flushed(pgconn)
    (result,) = yield from fetch_many(pgconn)
    return cast(pq.abc.PGresult, result)


class Declined(Exception):
    """This file's bad rows need the careful path (:mod:`csvpg.pg.careful`)."""


def resumable(load: LoadInput) -> bool:
    """Whether the file's bytes go to the target as they are, with quotes this module
    can follow (a quote escaped by doubling it)."""
    d = load.dialect
    return (
        d is not None
        and not needs_staging(load)
        and len(d.quote) == 1
        and d.quote.isascii()
        and d.escape == d.quote
        and d.delimiter.isascii()
    )


def batch_size(done: int, failures: int) -> int:
    """The next batch's size, from the bytes loaded and the COPYs that failed so far."""
    if not failures:
        return BATCH_MAX
    size = math.isqrt(2 * OVERHEAD * done // failures)
    return max(BATCH_MIN, min(BATCH_MAX, size))


class ResumedCopy:
    """One file into its target, bad records set aside; inside the caller's transaction."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        load: LoadInput,
        *,
        line_offset: int,
        codec: str,
        stop: Callable[[int], bool],
        data_offset: int | None = None,
        found: Callable[[Reject], None] | None = None,
    ) -> None:
        """``data_offset``: where the bytes handed on start in the file (None when they
        are not the file's own, transcoded): a reject's ``offset`` and ``length``.
        ``found`` is told of each reject as it is found."""
        assert load.dialect is not None
        self.conn = conn
        self.load = load
        self.dialect = load.dialect
        self.codec = codec
        self.stop = stop
        self.found = found
        self.quote = self.dialect.quote.encode()
        self.skips = conn.info.server_version >= SKIPS_FROM
        self.columns = [c.name for c in load.relation.columns]
        self.width = len(load.relation.file_columns)
        self.statement = table_copy_statement(
            load.schema, load.table, tuple(self.columns), self.dialect, self.skips
        )
        #: Physical lines before the batch being loaded, and its first byte's place.
        self.lines = line_offset
        self.data_offset = data_offset
        self.at = 0
        self.loaded = 0
        self.read = 0
        self.rejects: list[Reject] = []
        self.failures = 0
        self.done = 0
        self._notices: list[str] = []
        #: The bytes after a bad record, to cut into batches again.
        self.back = b""

    def run(self, chunks: Iterator[bytes]) -> tuple[int, list[Reject], int]:
        """Rows loaded, rejects (in file order) and records read."""

        self.conn.add_notice_handler(self._notice)
        try:
            for batch in self._batches(chunks):
                self._batch(batch)
        finally:
            self.conn.remove_notice_handler(self._notice)
        return self.loaded, self.rejects, self.read

    def _batches(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The bytes, cut after a line end outside quotes once a batch is large enough
        (each byte is copied once into the buffer, once into its batch)."""
        buf, pos, ended = b"", 0, False
        while True:
            if self.back:  # what followed a bad record: cut again, at the new size
                buf, pos, self.back = self.back + buf[pos:], 0, b""
            size = batch_size(self.done, self.failures)
            if len(buf) - pos > size:
                quoted = bool(buf.count(self.quote, pos, pos + size) & 1)
                cut = line_end(buf, pos + size, self.quote, quoted)
                if cut >= 0:
                    yield buf[pos:cut]
                    pos = cut
                    continue
            if ended:
                if pos == len(buf):
                    return
                yield buf[pos:]
                pos = len(buf)
                continue
            chunk = next(chunks, None)  # more bytes, or a record longer than the batch
            if chunk is None:
                ended = True
            else:
                buf, pos = buf[pos:] + chunk, 0

    def _batch(self, batch: bytes, *, again: bool = False) -> None:
        """One batch in; when its COPY fails, the records before the bad one go in
        ``again`` (they went through once), the bad one is set aside, and the rest goes
        back to be cut anew (:attr:`back`)."""
        self._notices.clear()
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                writer = _ReadingWriter(cur)
                with cur.copy(self.statement, writer=writer) as copy:
                    copy.write(batch)
                loaded = writer.rows
        except psycopg.Error as exc:
            if again:
                raise Declined(f"records that went through failed again: {exc}") from exc
            start, end = self._failed(batch, exc)
            if start:
                self._batch(batch[:start], again=True)  # counts their lines and bytes
            self._reject(batch[start:end], self.lines + 1, exc)
            self.lines += batch.count(b"\n", start, end)
            self.at += end - start
            self.failures += 1
            self.back = batch[end:]
            return
        self._loaded(batch, loaded)

    def _loaded(self, batch: bytes, loaded: int) -> None:
        """A COPY that went through: its skipped rows (PostgreSQL 17+) are rejects."""
        skipped = self._skips_said()
        self.loaded += loaded
        self.read += loaded
        if skipped:
            self._set_aside_in(batch, _Lines(batch, self.quote), skipped, self.lines, self.at)
        self.done += len(batch)
        self.lines += batch.count(b"\n")
        self.at += len(batch)

    def _skips_said(self) -> list[tuple[int, str, str]]:
        """The rows the COPY skipped, as its NOTICEs say (line, column, value shown)."""
        skipped = [n for n in self._notices if n.startswith(_SKIPPED)]
        said = [_SUMMARY.fullmatch(n) for n in self._notices if not n.startswith(_SKIPPED)]
        # Every skipped row has its NOTICE, and the count the server gives at the end
        # agrees. A NOTICE not understood (a server speaking another language) declines.
        if not all(said) or sum(int(m.group(1)) for m in said if m) != len(skipped):
            raise Declined(f"NOTICEs of skipped rows not understood: {self._notices[:3]}")
        return [self._skipped(n) for n in skipped]

    def _set_aside_in(
        self,
        batch: bytes,
        walker: _Lines,
        skipped: list[tuple[int, str, str]],
        lines: int,
        at: int,
    ) -> None:
        """Rejects of the rows skipped in ``batch`` (``at`` bytes into the data, after
        ``lines`` physical lines of the file), each named by the line ``walker`` counts."""
        rows = []
        for line, column, shown in skipped:
            start, end, first = walker.record(line)
            rows.append(self._skipped_row(batch, start, end, lines + first, column, shown, at))
        self._skipped_rejects(rows)

    # -- the whole file in one COPY (PostgreSQL 17+) ---------------------------------

    def copy_whole(self, chunks: Iterator[bytes]) -> list[tuple[int, str, str]]:
        """The file in one COPY that skips each row with a value its type refuses: what
        it skipped, for :meth:`set_aside_skipped` (after it, :attr:`loaded` counts the
        rows loaded). More skipped rows than ``stop`` allows decline, to the batches
        that stop at the limit."""
        assert self.skips, "ON_ERROR needs PostgreSQL 17"
        self._notices.clear()
        self.conn.add_notice_handler(self._notice)
        try:
            with self.conn.cursor() as cur:
                writer = _ReadingWriter(cur)
                with cur.copy(self.statement, writer=writer) as copy:
                    for chunk in chunks:
                        copy.write(chunk)
                        if self.stop(len(self._notices)):
                            raise Declined("more rows skipped than max_rejects allows")
        finally:
            self.conn.remove_notice_handler(self._notice)
        skipped = self._skips_said()
        self.loaded = self.read = writer.rows
        return skipped

    def set_aside_skipped(
        self, chunks: Iterator[bytes], skipped: list[tuple[int, str, str]]
    ) -> None:
        """The rows :meth:`copy_whole` skipped as rejects: the file read again up to the
        last of them, sending nothing. A block without one is only counted (its line
        ends and quotes); a block with one is walked from the first record that starts
        in the block before it."""
        pending = sorted(skipped)
        uncounted: int | None = None  # line ends COPY did not count in the first record
        lines, at = 0, 0  # the data's physical lines and bytes before ``block``
        quoted = False  # inside quotes where ``block`` starts
        # The data from the last record start before ``block`` (its lines and place).
        tail = (b"", 0, 0)
        for block in chunks:
            if uncounted is None:
                uncounted = _Lines(block, self.quote).uncounted
            ends = block.count(b"\n")
            # COPY's line n is the data's physical line n + uncounted.
            last = lines + ends + (0 if block.endswith(b"\n") else 1) - uncounted
            # (pending is sorted: its rows in this block are a prefix, found by bisection)
            here = pending[: bisect.bisect_right(pending, last, key=lambda p: p[0])]
            if here:
                before, before_lines, before_at = tail if tail[0] else (b"", lines, at)
                batch = before + block
                rows = [(n + uncounted - before_lines, c, v) for n, c, v in here]
                walker = _Lines(batch, self.quote, first=False)
                self._set_aside_in(batch, walker, rows, self.lines + before_lines, before_at)
                pending = pending[len(here) :]
                if not pending:
                    return
            start = line_end(block, 0, self.quote, quoted)
            if start >= 0:
                tail = (block[start:], lines + block.count(b"\n", 0, start), at + start)
            else:  # one record goes on through the block: it starts where it did
                tail = (tail[0] + block, tail[1], tail[2]) if tail[0] else (block, lines, at)
            quoted ^= bool(block.count(self.quote) & 1)
            lines, at = lines + ends, at + len(block)
        raise Declined(f"no line {pending[0][0]} in the file read again")

    def _notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if diag.message_primary:
            self._notices.append(diag.message_primary)

    def _failed(self, batch: bytes, exc: psycopg.Error) -> tuple[int, int]:
        """Where the record the COPY failed on starts and ends in ``batch``."""
        state = exc.sqlstate or ""
        if state in ("23502", "23514"):  # NOT NULL, CHECK: the careful path's reasons
            raise Declined(exc.diag.message_primary or state) from exc
        if state.startswith("23"):  # a duplicate key, say: the file fails at its line
            table = f"{self.load.schema}.{self.load.table}"
            raise sink_error(exc, file=self.load.ref.url, table=table, line_offset=self.lines)
        if not state.startswith("22"):
            raise exc
        prefix = f"COPY {self.load.table}, line "
        context = (exc.diag.context or "").split("\n")[0]
        m = re.match(r"(\d+)", context[len(prefix) :]) if context.startswith(prefix) else None
        if m is None:
            raise Declined(f"no line in the error: {context!r}") from exc
        start, end, _ = _Lines(batch, self.quote).record(int(m.group(1)))
        return start, end

    def _skipped(self, message: str) -> tuple[int, str, str]:
        """The line, column and value (as shown) of a NOTICE of a skipped row."""
        rest = message[len(_SKIPPED) :]
        m = re.match(r'(\d+) for column "', rest)
        if m is None:
            raise Declined(f"cannot read the notice {message!r}")
        tail = rest[m.end() :]
        names = [n for n in self.columns if tail.startswith(n + '": ')]
        if not names:
            raise Declined(f"no column in the notice {message!r}")
        name = max(names, key=len)
        return int(m.group(1)), name, tail[len(name) + 4 : -1]

    def _fields(self, raw: str) -> list[str] | None:
        """The record's fields as Python's CSV parser reads them; ``None`` for a blank
        line (no record, as on the careful path)."""
        if not raw.strip("\r\n"):
            return None
        d = self.dialect
        text = io.StringIO(raw, newline="")
        try:
            rows = list(csv.reader(text, delimiter=d.delimiter, quotechar=d.quote, strict=True))
        except csv.Error as exc:
            raise Declined(f"a record Python cannot parse: {exc}") from None
        if len(rows) != 1 or "\x00" in raw or re.search("[\udc80-\udcff]", raw):
            raise Declined("a record the careful path reads in its own way")
        return rows[0]

    def _reject(self, record: bytes, line: int, exc: psycopg.Error) -> None:
        """The record a COPY failed on (at :attr:`at`), as the careful path would set it
        aside."""
        raw = record.decode(self.codec, "surrogateescape")
        fields = self._fields(raw)
        if fields is None:
            return
        if len(fields) != self.width:
            reject = Reject(line, wrong_width(len(fields), self.width), raw)
            self._add(self._placed(reject, self.at, len(record)))
            return
        if exc.sqlstate == "22P04":
            raise Declined(exc.diag.message_primary or "a malformed record") from exc
        context = (exc.diag.context or "").split("\n")[0]
        at = context.find(", column ")
        tail = context[at + len(", column ") :] if at >= 0 else ""
        names = [n for n in self.columns if tail.startswith(n + ": ")]
        column = max(names, key=len) if names else None
        reason = own_reason(exc.diag.message_primary or str(exc))
        reject = self._value(line, raw, fields, column, reason, exc.sqlstate)
        self._add(self._placed(reject, self.at, len(record)))

    def _skipped_row(
        self, batch: bytes, start: int, end: int, line: int, column: str, shown: str, at: int
    ) -> _Skipped:
        """A row COPY skipped for a value of ``column`` (``shown`` in its NOTICE, cut
        short when long), ``batch[start:end]``: where, what, and its value."""
        raw = batch[start:end].decode(self.codec, "surrogateescape")
        fields = self._fields(raw)
        if fields is None or len(fields) != self.width:
            raise Declined("a skipped row that is no record of the file's width")
        index = next(c.index for c in self.load.relation.columns if c.name == column)
        value = fields[index]
        if not value:  # a quoted "": the careful path reads it as NULL
            raise Declined("an empty quoted value skipped")
        if value != shown and not (shown.endswith("...") and value.startswith(shown[:-3])):
            raise Declined(f"line {line} holds {value!r} where the server skipped {shown!r}")
        return _Skipped(line, raw, fields, column, value, at + start, end - start)

    def _skipped_rejects(self, rows: list[_Skipped]) -> None:
        """The skipped rows as rejects, with the server's reasons (one query for all)."""
        values = [row.value for row in rows]
        types = [self.load.types[row.column].type for row in rows]
        reasons = self.conn.execute(
            "SELECT e.message, e.sql_error_code FROM unnest(%s::text[], %s::text[])"
            " WITH ORDINALITY AS u(v, t, n), LATERAL pg_input_error_info(u.v, u.t) e"
            " ORDER BY u.n",
            (values, types),
        ).fetchall()
        for row, (message, state) in zip(rows, reasons, strict=True):
            if message is None:
                raise Declined(
                    f"the server takes {row.value!r} as {self.load.types[row.column].type}"
                )
            reject = self._value(
                row.line, row.raw, row.fields, row.column, own_reason(message), state
            )
            self._add(self._placed(reject, row.offset, row.length))

    def _value(
        self,
        line: int,
        raw: str,
        fields: list[str],
        column: str | None,
        reason: str,
        state: str | None,
    ) -> Reject:
        """A value's reject; ``raw``: its record as the file has it."""
        values: list[str | None] = [v or None for v in fields]
        index = next((c.index for c in self.load.relation.columns if c.name == column), None)
        value = values[index] if index is not None else None
        return Reject(line, reason, raw, column, value, state)

    def _placed(self, reject: Reject, at: int, length: int) -> Reject:
        """The reject with its record's place in the file, when the bytes are the file's."""
        if self.data_offset is None:
            return reject
        return replace(reject, offset=self.data_offset + at, length=length)

    def _add(self, reject: Reject) -> None:
        self.rejects.append(reject)
        if self.found is not None:
            self.found(reject)
        self.read += 1
        if self.stop(len(self.rejects)):
            raise TooManyRejects(self.rejects, self.read)


@dataclass(frozen=True)
class _Skipped:
    """A row COPY skipped (PostgreSQL 17+), before its reason is asked for."""

    line: int
    raw: str
    fields: list[str]
    column: str
    value: str
    offset: int
    length: int


class _Lines:
    """Records in a batch that starts at a record's start, found by the line COPY names,
    walking forward through the batch once.

    COPY names the last physical line of a record, but it does not count the line ends
    inside quotes before it has seen the first line end outside them (it does not know
    yet which kind they are): the line ends inside the batch's first record are added
    back. A file whose line ends are not all LF or all CRLF is declined.
    """

    def __init__(self, batch: bytes, quote: bytes, *, first: bool = True) -> None:
        """``first``: the batch starts its COPY's data (else the quirk is not its own)."""
        self.batch = batch
        self.quote = quote
        self.line = 1  # the line that starts at ``pos``
        self.pos = 0
        self.quotes = 0  # quotes before ``pos``
        if b"\r" in batch and not (
            batch.count(b"\r") == batch.count(b"\r\n") == batch.count(b"\n")
        ):
            raise Declined("line ends of more than one kind")
        self.uncounted = 0
        if first:
            end = line_end(batch, 0, quote, False)
            self.uncounted = max(0, batch.count(b"\n", 0, len(batch) if end < 0 else end) - 1)

    def record(self, line: int) -> tuple[int, int, int]:
        """Where the record COPY names ``line`` starts and ends, and the physical line
        (counted from 1 at the batch's start) it starts on."""
        batch = self.batch
        line += self.uncounted
        if line < self.line:
            self.line, self.pos, self.quotes = 1, 0, 0
        if line > self.line:
            m = _nth(line - self.line).match(batch, self.pos)
            if m is None:
                raise Declined(f"no line {line} in the batch")
            self.quotes += batch.count(self.quote, self.pos, m.end())
            self.pos, self.line = m.end(), line
        nl = batch.find(b"\n", self.pos)
        end = len(batch) if nl < 0 else nl + 1
        start, quotes, first = self.pos, self.quotes, self.line
        while start and quotes & 1:  # inside quotes: the record began on a line before
            back = batch.rfind(b"\n", 0, start - 1) + 1
            quotes -= batch.count(self.quote, back, start)
            start, first = back, first - 1
        return start, end, first


def _nth(n: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?:[^\n]*\n){%d}" % n)
