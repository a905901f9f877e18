"""Reading Parquet and Arrow IPC files in bounded batches, as csvpg's three paths want.

The engine hands a format a binary stream that may not seek (a remote file, or the
engine's own counting wrapper). Parquet keeps its schema at the end of the file and
Arrow IPC files do too, so such a stream is first copied, 1 MiB at a time, to a
temporary file (``details["spooled"]``); a seekable one is read in place. Then:

* :meth:`ArrowReader.iter_bytes`, the fast path: each record batch written as CSV by
  ``pyarrow.csv.write_csv`` (C++), for ``COPY … (FORMAT csv)``;
* :meth:`ArrowReader.iter_batches`, the row path: the same text as Python lists;
* :meth:`ArrowReader.iter_records`, the careful path: each row with its row number.

Memory stays bounded by one batch (``batch_rows`` rows) for Parquet, and by the
largest record batch the writer made for Arrow IPC.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from csvpg import Batch, CsvDialect, FileRef, FormatError, Reader
from csvpg.interfaces import Record
from csvpg_parquet import ARROW_MAGIC
from csvpg_parquet.typemap import csv_line, pg_type, text_columns, writable_batch

#: Bytes copied at a time when spooling a stream that cannot seek.
SPOOL_BLOCK = 1 << 20
#: How much of a Parquet column chunk is read at a time.
READ_BUFFER = 1 << 20
#: COPY gets blocks of at least this size (but the last).
BLOCK_SIZE = 1 << 20
#: Rows per list batch on the row and careful paths.
ROW_BATCH = 10_000
#: CSV blocks made ahead of COPY by the reader's thread (memory: this many batches).
PREFETCH = 2

FEATHER_V1_MAGIC = b"FEA1"

#: What ``write_csv`` produces: comma, double quotes, UTF-8, no header, "" → NULL.
DIALECT = CsvDialect(
    delimiter=",", quote='"', escape='"', encoding="UTF8", header=False, nulls=("",)
)


def can_seek(stream: BinaryIO, ref: FileRef) -> bool:
    """Whether the stream seeks cheaply (a compressed one seeks by decompressing)."""
    if fsspec.utils.infer_compression(ref.name):
        return False
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def spool(stream: BinaryIO, ref: FileRef, directory: str | None) -> tuple[IO[bytes], int]:
    """Copy ``stream`` to a temporary file (deleted when closed), one block at a time.

    A failed read is the source's problem and propagates (the engine retries it); a
    failed write is a full or missing spool folder, and says so."""
    where = str(Path(directory).expanduser()) if directory else tempfile.gettempdir()
    hint = f'make room in {where}, or set spool_dir = "…" in [format] to a folder with room'
    try:
        # Kept open for the reader's life (it is deleted when closed): no `with` here.
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="csvpg-spool-", suffix=".tmp", dir=where
        )
    except OSError as exc:
        raise FormatError(
            f"{ref.url} cannot seek and no temporary file can be made to copy it into: {exc}",
            file=ref.url,
            hint=hint,
        ) from exc
    size = 0
    try:
        while True:
            block = stream.read(SPOOL_BLOCK)
            if not block:
                break
            try:
                tmp.write(block)
            except OSError as exc:
                raise FormatError(
                    f"spooling {ref.url} to {where} failed after {size} bytes: {exc}",
                    file=ref.url,
                    hint=hint,
                ) from exc
            size += len(block)
        tmp.flush()
    except BaseException:
        tmp.close()
        raise
    return tmp, size


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


class Prefetch:
    """Iterates ``items`` produced in a worker thread at most ``ahead`` items before they
    are taken. An error in the worker is raised to the consumer. :meth:`stop` (also
    called when the iteration is abandoned) ends the worker and closes ``items``."""

    def __init__(self, items: Iterator[bytes], ahead: int = PREFETCH) -> None:
        self._items = items
        self._box: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="csvpg-arrow-reader", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stopping.is_set():
            try:
                self._box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))
        finally:
            self._items.close()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[bytes]:
        self._worker.start()
        try:
            while True:
                item = self._box.get()
                if item is _DONE:
                    return
                if isinstance(item, _Failed):
                    raise item.exc
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """End the worker (after the item it is making) and wait for it."""
        self._stopping.set()
        worker = self._worker
        if worker.is_alive() and worker is not threading.current_thread():
            worker.join()


class ArrowReader(Reader):
    """One Parquet or Arrow IPC file: schema, types and batches.

    ``kind`` is ``"parquet"`` or ``"arrow"`` (IPC file or stream format; Feather v2 is
    the IPC file format)."""

    dialect = DIALECT

    def __init__(
        self,
        stream: BinaryIO,
        ref: FileRef,
        *,
        kind: str,
        preserve_types: bool = True,
        spool_dir: str | None = None,
        batch_rows: int = 16_384,
    ) -> None:
        self.ref = ref
        self.kind = kind
        self._batch_rows = batch_rows
        self._spool: IO[bytes] | None = None
        self._file: Any = None  # what pyarrow reads: ParquetFile, or an IPC reader's file
        self._used = False
        self._prefetch: Prefetch | None = None
        spooled: int | None = None
        source: Any = stream
        if not can_seek(stream, ref):
            self._spool, spooled = spool(stream, ref, spool_dir)
            source = self._spool.name
        try:
            if kind == "parquet":
                self._open_parquet(source)
            else:
                self._open_ipc(source)
        except pa.ArrowException as exc:
            self.close()
            raise self._error(exc, opening=True) from exc
        except BaseException:
            self.close()
            raise
        self.headers: list[str] = list(self.schema.names)
        self.types = {f.name: pg_type(f.type) for f in self.schema} if preserve_types else {}
        self.details: dict[str, Any] = {
            "format": kind,
            **self._facts,
            "arrow_types": {f.name: str(f.type) for f in self.schema},
            "preserve_types": preserve_types,
            # Parquet and Arrow IPC need to seek: a stream that cannot was copied first.
            "spooled": spooled is not None,
            "spooled_bytes": spooled,
        }

    # -- opening ------------------------------------------------------------------------

    def _open_parquet(self, source: Any) -> None:
        # Column chunks are read through a 1 MiB buffer, not whole: a large row group
        # would otherwise sit in memory compressed, next to its decoded batch.
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=READ_BUFFER)
        self._file = parquet
        self.schema: pa.Schema = parquet.schema_arrow
        meta = parquet.metadata
        self._facts: dict[str, Any] = {
            "rows": meta.num_rows,
            "row_groups": meta.num_row_groups,
            "created_by": meta.created_by,
        }
        # One core per file: the engine loads files in parallel, and PostgreSQL parses
        # the CSV on another core meanwhile.
        self._source = parquet.iter_batches(batch_size=self._batch_rows, use_threads=False)

    def _open_ipc(self, source: Any) -> None:
        file = pa.OSFile(source) if isinstance(source, str) else pa.PythonFile(source, mode="r")
        self._file = file
        magic = file.read(len(ARROW_MAGIC))
        file.seek(0)
        if magic.startswith(FEATHER_V1_MAGIC):
            raise FormatError(
                f"{self.ref.url} is a Feather version 1 file, which cannot be read in batches",
                file=self.ref.url,
                hint="write it again as Feather v2 (pyarrow.feather.write_feather) or Parquet",
            )
        if magic == ARROW_MAGIC:
            reader = ipc.open_file(file)
            self.schema = reader.schema
            self._facts = {"ipc": "file", "record_batches": reader.num_record_batches}
            self._source = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            stream_reader = ipc.open_stream(file)
            self.schema = stream_reader.schema
            self._facts = {"ipc": "stream"}
            self._source = iter(stream_reader)

    def _error(self, exc: Exception, *, opening: bool = False) -> FormatError:
        what = "a Parquet" if self.kind == "parquet" else "an Arrow IPC (Feather)"
        if opening:
            return FormatError(
                f"{self.ref.url} cannot be read as {what} file: {exc}",
                file=self.ref.url,
                hint='check [format] type, or set type = "auto" to let csvpg tell',
            )
        return FormatError(
            f"{self.ref.url}: reading {what} file failed: {exc}",
            file=self.ref.url,
            hint="the file may be truncated or written by a tool pyarrow cannot read",
        )

    # -- batches ------------------------------------------------------------------------

    def _take(self) -> Iterator[pa.RecordBatch]:
        """The file's record batches, each at most ``batch_rows`` rows; once only."""
        if self._used:
            raise RuntimeError("an ArrowReader's data can be read only once")
        self._used = True
        try:
            for batch in self._source:
                if batch.num_rows <= self._batch_rows:
                    yield batch
                    continue
                for start in range(0, batch.num_rows, self._batch_rows):
                    yield batch.slice(start, self._batch_rows)
        except pa.ArrowException as exc:
            raise self._error(exc) from exc
        finally:
            self._release()  # read to the end (or abandoned): the spooled copy can go

    def _row_chunks(self) -> Iterator[pa.RecordBatch]:
        for batch in self._take():
            for start in range(0, batch.num_rows, ROW_BATCH):
                yield batch.slice(start, ROW_BATCH)

    def iter_bytes(self) -> Iterator[bytes]:
        """CSV for COPY with :data:`DIALECT`, in blocks of at least 1 MiB (but the last).

        The blocks are made by a thread up to :data:`PREFETCH` blocks ahead: pyarrow
        releases the GIL while it decodes and writes, so that work overlaps PostgreSQL's
        parsing of the block before instead of adding to it."""
        self._prefetch = Prefetch(self._csv_blocks())
        return iter(self._prefetch)

    def _csv_blocks(self) -> Iterator[bytes]:
        # One write chunk per batch: fewer, larger calls into the C++ writer.
        options = pacsv.WriteOptions(include_header=False, batch_size=self._batch_rows)
        parts: list[bytes] = []
        size = 0
        for batch in self._take():
            out = pa.BufferOutputStream()
            try:
                pacsv.write_csv(writable_batch(batch), out, options)
            except pa.ArrowException as exc:
                raise self._error(exc) from exc
            data = out.getvalue().to_pybytes()
            parts.append(data)
            size += len(data)
            if size >= BLOCK_SIZE:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
                parts, size = [], 0
        if size:
            yield parts[0] if len(parts) == 1 else b"".join(parts)

    def iter_batches(self) -> Iterator[Batch]:
        """Rows of text (``None`` for null; an empty string stays ``""``), ≤ 10 000 a batch."""
        for chunk in self._row_chunks():
            yield [list(row) for row in zip(*text_columns(chunk), strict=True)]

    def iter_records(self) -> Iterator[Record]:
        """Every row with its row number (1 for the first row), for the careful path.

        ``raw`` is the row as one CSV line. A row holding a NUL character comes with
        ``fields = None``: PostgreSQL text cannot hold one."""
        line = 0
        for chunk in self._row_chunks():
            for row in zip(*text_columns(chunk), strict=True):
                line += 1
                fields = list(row)
                raw = csv_line(fields)
                if any(f is not None and "\x00" in f for f in fields):
                    yield Record(
                        line, raw, None, "a NUL character (PostgreSQL text cannot hold one)"
                    )
                else:
                    yield Record(line, raw, fields)

    def close(self) -> None:
        """Close what pyarrow opened and delete the spooled copy; safe to call twice."""
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None:
            prefetch.stop()  # the worker must not read a closed file
        self._release()

    def _release(self) -> None:
        file, self._file = self._file, None
        spooled, self._spool = self._spool, None
        try:
            if file is not None:
                file.close()
        finally:
            if spooled is not None:
                spooled.close()
