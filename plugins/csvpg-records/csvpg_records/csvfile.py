"""``[sink] mode = "csv"``: the file's rows, as the transforms left them, to a CSV file.

    [sink]
    mode = "csv"
    [sink.options]
    path = "out/{name}.csv"      # {name}: the input file's name without extension (made
                                 # safe); {table}: [sink] table. Folders are created.
    protect_formulas = true      # cells starting with = + - @ tab or CR get a leading '
    append = false               # true: add to the file (the header once) — one CSV for
                                 # many input files; false: replace it
    delimiter = ","
    encoding = "utf-8"

Output is written to a temporary file beside the target and moved into place (or, with
``append``, added under a lock) only once every row was read: a file that fails half way
leaves the previous output as it was.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, ClassVar

from csvpg import LoadInput, LoadResult, Option, Sink, SinkError, SpecError

log = logging.getLogger("csvpg_records")

#: What a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_locks: dict[str, threading.Lock] = {}
_locks_lock = threading.Lock()


def protect(value: str) -> str:
    """``=HYPERLINK(…)`` → ``'=HYPERLINK(…)``: a spreadsheet shows it as text."""
    return "'" + value if value.startswith(FORMULA_START) else value


def safe_stem(name: str) -> str:
    """A file name's stem as a path component: never a separator, never ``..``."""
    stem = name.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem.strip(".") else stem
    stem = _UNSAFE.sub("_", stem).strip("._")
    return stem or "file"


def _lock_for(path: Path) -> threading.Lock:
    with _locks_lock:
        return _locks.setdefault(str(path), threading.Lock())


class CsvFileSink(Sink):
    """Writes each file's rows to a CSV file (``{name}`` in the path: one per file)."""

    mode: ClassVar[str] = "csv"
    needs_rows: ClassVar[bool] = True
    writes_table: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {
        "path": Option(str, help='where to write, e.g. "out/{name}.csv"'),
        "protect_formulas": Option(bool, default=True),
        "append": Option(bool, default=False),
        "header": Option(bool, default=True),
        "delimiter": Option(str, default=","),
        "encoding": Option(str, default="utf-8"),
        "null": Option(str, default="", help="how NULL is written"),
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if len(settings["delimiter"]) != 1 or settings["delimiter"] in '"\r\n':
            raise SpecError(
                f"'sink.options.delimiter' must be one character (not a quote or line break), "
                f"not {settings['delimiter']!r}",
                key="sink.options.delimiter",
            )
        try:
            "".encode(settings["encoding"])
        except LookupError:
            raise SpecError(
                f"'sink.options.encoding': unknown encoding {settings['encoding']!r}",
                key="sink.options.encoding",
            ) from None
        #: Where the last load wrote.
        self.written: Path | None = None

    def target(self, load: LoadInput) -> Path:
        path = self.settings["path"]
        path = path.replace("{name}", safe_stem(load.ref.name))
        path = path.replace("{table}", safe_stem(load.table))
        target = Path(path).expanduser()
        # Relative to the job's folder once csvpg hands it to sinks, else the current one.
        return load.base_dir / target if load.base_dir is not None else target

    def load(self, conn: Any, load: LoadInput) -> LoadResult:
        target = self.target(load)
        if load.dry_run:
            rows = 0
            for batch in load.batches or ():
                rows += len(batch)
            return LoadResult(rows=rows, inserted=rows)
        target.parent.mkdir(parents=True, exist_ok=True)
        names = [c.name for c in load.relation.columns]
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        rows = 0
        try:
            with open(fd, "w", newline="", encoding=self.settings["encoding"]) as out:
                rows = self._write(out, load, names)
            if self.settings["append"]:
                self._append(Path(tmp), target, names)
            else:
                os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.written = target
        log.info("csv: %s: %d rows to %s", load.ref.name, rows, target)
        # Recorded in the file's history: GET /runs/{run_id}/output serves it from there.
        return LoadResult(rows=rows, inserted=rows, details={"output": str(target)})

    def _writer(self, out: Any) -> Any:
        return csv.writer(out, delimiter=self.settings["delimiter"], lineterminator="\r\n")

    def _write(self, out: Any, load: LoadInput, names: list[str]) -> int:
        writer = self._writer(out)
        guard = self.settings["protect_formulas"]
        null = self.settings["null"]
        if self.settings["header"] and not self.settings["append"]:
            writer.writerow([protect(n) if guard else n for n in names])
        rows = 0
        for row in load.rows():
            writer.writerow([null if v is None else protect(v) if guard else v for v in row])
            rows += 1
        return rows

    def _append(self, rows: Path, target: Path, names: list[str]) -> None:
        """Add ``rows`` to ``target``, the header first when it is new; one file at a time."""
        encoding = self.settings["encoding"]
        header = [protect(n) if self.settings["protect_formulas"] else n for n in names]
        with _lock_for(target.resolve()):
            fresh = not target.exists() or target.stat().st_size == 0
            if not fresh and self.settings["header"]:
                with target.open(newline="", encoding=encoding) as f:
                    first = next(csv.reader(f, delimiter=self.settings["delimiter"]), [])
                if first != header:
                    raise SinkError(
                        f"{target} has the columns {first!r}, not {header!r}",
                        hint="append only files of one shape (a canonical transform makes "
                        "them alike), or write one CSV per file with {name} in the path",
                    )
            with target.open("a", newline="", encoding=encoding) as out:
                if fresh and self.settings["header"]:
                    self._writer(out).writerow(header)
                with rows.open(newline="", encoding=encoding) as f:
                    for block in iter(lambda: f.read(1 << 20), ""):
                        out.write(block)
