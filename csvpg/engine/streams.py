"""The source stream as the engine sees it: counted and hashed while it is read."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from typing import Any, BinaryIO

PROGRESS_STEP = 1 << 20  # BytesRead fires at most once per MiB


class CountingStream(io.RawIOBase):
    """Wraps a source stream: counts and hashes (sha256) the bytes as they are read, so
    progress is pushed and the checksum is made by the one read that happens anyway."""

    def __init__(
        self,
        inner: BinaryIO,
        on_progress: Callable[[int], None] | None = None,
        *,
        hashed: bool = True,
    ) -> None:
        self.inner = inner
        self.count = 0
        self._reported = 0
        self._on_progress = on_progress
        #: None: a reading whose checksum nobody needs (the file read again for rejects).
        self._sha = hashlib.sha256() if hashed else None
        self.eof = False
        #: ``time.perf_counter()`` when the end was read: what followed was PostgreSQL's.
        self.eof_at: float | None = None

    @property
    def sha256(self) -> str | None:
        """The checksum of the whole stream, once it was read to its end."""
        return self._sha.hexdigest() if self.eof and self._sha is not None else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        data = self.inner.read(-1 if size is None else size)
        n = len(data)
        if n:
            if self._sha is not None:
                self._sha.update(data)
            self.count += n
        elif size != 0 and not self.eof:
            self.eof, self.eof_at = True, time.perf_counter()
        due = n == 0 or self.count - self._reported >= PROGRESS_STEP
        if due and self.count != self._reported and self._on_progress is not None:
            self._reported = self.count
            self._on_progress(self.count)
        return data

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()
