"""Constant memory: the CSV reader and a whole load hold a few blocks, never the file.

Not a timing test. ``tracemalloc`` counts what Python allocates (libpq's own buffers are
outside it), which is where a file held whole would show: the peak must not grow with
the file's size.
"""

from __future__ import annotations

import gc
import io
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from csvpg.api import run
from csvpg.builtin.format_csv import CsvFormat
from csvpg.interfaces import FileRef
from tests.benchmark import csv_lines
from tests.conftest import job_toml

MB = 1 << 20
TEMPLATE_ROWS = 4_000


@pytest.fixture(scope="module")
def template() -> tuple[bytes, bytes]:
    """The benchmark's header and a block of its rows (quoted commas, newlines, UTF-8)."""
    lines = csv_lines(TEMPLATE_ROWS)
    header = next(lines).encode()
    return header, "".join(lines).encode()


class SyntheticCsv(io.RawIOBase):
    """About ``size`` bytes of CSV: the header, then ``body`` over and over. Not
    seekable, and never more than the template in memory."""

    def __init__(self, header: bytes, body: bytes, size: int) -> None:
        self._header = memoryview(header)
        self._body = memoryview(body)
        self.repeats = max(1, (size - len(header)) // len(body))
        self.size = len(header) + self.repeats * len(body)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = 0
        while n < len(out) and self._pos < self.size:
            if self._pos < len(self._header):
                src, offset = self._header, self._pos
            else:
                src, offset = self._body, (self._pos - len(self._header)) % len(self._body)
            take = min(len(out) - n, len(src) - offset, self.size - self._pos)
            out[n : n + take] = src[offset : offset + take]
            n += take
            self._pos += take
        return n


def traced_peak(work: Callable[[], Any]) -> tuple[int, Any]:
    """The peak of Python's traced allocations while ``work`` runs, and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def _bytes_through(stream: SyntheticCsv) -> int:
    reader = CsvFormat().open(stream, FileRef(url="mem://synthetic.csv", name="synthetic.csv"))  # type: ignore[arg-type]
    total = 0
    for block in reader.iter_bytes():
        total += len(block)
    return total


def _rows_through(stream: SyntheticCsv) -> int:
    reader = CsvFormat().open(stream, FileRef(url="mem://synthetic.csv", name="synthetic.csv"))  # type: ignore[arg-type]
    rows = 0
    for batch in reader.iter_batches():
        rows += len(batch)
    return rows


def test_iter_bytes_memory_does_not_grow_with_the_file(template: tuple[bytes, bytes]) -> None:
    peaks = {}
    for size in (8 * MB, 64 * MB):
        stream = SyntheticCsv(*template, size)
        peaks[size], total = traced_peak(partial(_bytes_through, stream))
        # Every byte passed on but the header's, which csvpg reads and skips itself.
        assert total == stream.size - len(template[0])
    small, large = peaks[8 * MB], peaks[64 * MB]
    # Measured: 7.8 MiB for both, all of it in open() (the 1 MiB sample decoded, and
    # copied again into a StringIO for the header); less while streaming after it.
    assert large < 1.5 * small + 1 * MB, peaks
    assert max(small, large) < 16 * MB, peaks


def test_iter_batches_memory_does_not_grow_with_the_file(template: tuple[bytes, bytes]) -> None:
    peaks = {}
    for size in (4 * MB, 32 * MB):
        stream = SyntheticCsv(*template, size)
        peaks[size], rows = traced_peak(partial(_rows_through, stream))
        assert rows == stream.repeats * TEMPLATE_ROWS
    small, large = peaks[4 * MB], peaks[32 * MB]
    # Measured: 22 MiB. The row path is bounded by rows, not bytes: the batch the
    # consumer holds and the one being built (10 000 rows, ~10 MiB each at ~175 bytes a
    # row) plus a 256 KiB block as a UCS-4 StringIO (~1 MiB).
    assert large < 1.5 * small + 1 * MB, peaks
    assert max(small, large) < 32 * MB, peaks


def _write_csv(path: Path, template: tuple[bytes, bytes], size: int) -> int:
    """A file of about ``size`` bytes; returns its data rows."""
    header, body = template
    repeats = max(1, (size - len(header)) // len(body))
    with path.open("wb") as handle:
        handle.write(header)
        for _ in range(repeats):
            handle.write(body)
    return repeats * TEMPLATE_ROWS


def test_a_real_load_holds_blocks_not_the_file(
    db: Any, tmp_path: Path, template: tuple[bytes, bytes]
) -> None:
    peaks = {}
    for name, size in (("warm", MB // 4), ("small", 4 * MB), ("large", 40 * MB)):
        folder = tmp_path / name
        folder.mkdir()
        rows = _write_csv(folder / f"{name}.csv", template, size)
        job = tmp_path / f"{name}.toml"
        job.write_text(job_toml(db, str(folder), sink='mode = "append"'))
        if name == "warm":  # imports and entry points once, outside the measurement
            summary = run(job)
        else:
            peaks[name], summary = traced_peak(partial(run, job))
        assert summary.exit_code == 0, summary.files[0].error
        assert summary.files[0].rows_read == rows
        assert db.count(name) == rows
    # Measured: 9.7 MiB for either file, set by the reader's open() (see above).
    assert peaks["large"] < 1.5 * peaks["small"] + 1 * MB, peaks
    assert peaks["large"] < 16 * MB, peaks


def test_a_split_load_holds_a_few_blocks_per_connection(
    db: Any, tmp_path: Path, template: tuple[bytes, bytes]
) -> None:
    """Over two connections, each holds at most a few blocks waiting for its COPY."""
    peaks = {}
    # Both cut into the largest chunks (8 MiB), so each queue can fill; one twice the other.
    for name, size in (("warm", 2 * MB), ("small", 64 * MB), ("large", 128 * MB)):
        folder = tmp_path / name
        folder.mkdir()
        rows = _write_csv(folder / f"{name}.csv", template, size)
        job = tmp_path / f"{name}.toml"
        split = "[run]\nworkers = 2\nsplit_mb = 1\n"
        job.write_text(job_toml(db, str(folder), sink='mode = "append"', extra=split))
        if name == "warm":
            summary = run(job)
        else:
            peaks[name], summary = traced_peak(partial(run, job))
        (file,) = summary.files
        assert file.status == "loaded", file.error
        assert file.details["split"]["connections"] == 2
        assert file.rows_read == rows == db.count(name)
    # The reader's 9.7 MiB (see above) plus up to DEPTH blocks queued per connection:
    # how full the queues got differs from run to run, but never by more than they hold,
    # and twice the file (64 MiB more) costs nothing like 64 MiB more.
    from csvpg.pg.split import DEPTH

    assert peaks["large"] < peaks["small"] + 2 * DEPTH * MB, peaks
    assert peaks["large"] < 32 * MB, peaks
