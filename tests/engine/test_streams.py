"""The source stream as the engine reads it: counted, hashed, progress per MiB."""

from __future__ import annotations

import hashlib
import io

from csvpg.engine.streams import PROGRESS_STEP, CountingStream


def test_a_stream_read_to_its_end_has_the_checksum_of_its_bytes() -> None:
    data = b"id,name\n" + b"1,x\n" * 500_000
    seen: list[int] = []
    stream = CountingStream(io.BytesIO(data), seen.append)
    assert stream.read(100) == data[:100]
    assert stream.sha256 is None  # not read to its end yet
    rest = b"".join(iter(lambda: stream.read(65536), b""))
    assert data[:100] + rest == data and stream.count == len(data)
    assert stream.sha256 == hashlib.sha256(data).hexdigest()
    assert seen[-1] == len(data) and len(seen) == len(data) // PROGRESS_STEP + 1


def test_a_reading_for_rejects_only_makes_no_checksum() -> None:
    data = b"id\n1\n"
    stream = CountingStream(io.BytesIO(data), hashed=False)
    assert stream.read() == data and stream.read() == b""
    assert stream.count == len(data) and stream.sha256 is None
