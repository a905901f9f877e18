"""A run's rejects as a file to fix (``csvpg rejects RUN --export``), and the fixed file
read back (``--replay``).

The export is a CSV in the source file's own dialect (delimiter, quote, escape) and
encoding, with the file's header: each reject is its record as the file had it, split
into fields, behind a first column ``csvpg_reject_id`` (``R`` and the reject's id) that
ties the row to its reject. A spreadsheet keeps ``R17`` as text (a bare number it might
reformat), sorting or filtering moves it with its row, and a replay refuses a file whose
ids are missing, repeated, unknown or of another run, naming the line.

Every cell a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``, a tab or a
carriage return first) gets a leading apostrophe, as the csv sink writes them; a replay
takes exactly one apostrophe off such a cell again (one already starting with
apostrophes and then such a character gets one more on export), so the round trip gives
back the file's own values.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from csvpg.detect import csv_options
from csvpg.errors import CsvpgError

#: The first column of an export: which reject a row is.
ID_COLUMN = "csvpg_reject_id"
#: What a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARDED = re.compile(r"'*[=+\-@\t\r]")
_TOKEN = re.compile(r"\s*[Rr]\s*(\d{1,18})\s*")


def spreadsheet_safe(value: Any) -> str:
    """A cell for a report a person opens (the web app's rejects.csv): a formula start
    gets a leading apostrophe; nothing reads it back."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def protect(value: str) -> str:
    """A cell of an export: ``=SUM(A1)`` → ``'=SUM(A1)``, ``'=x`` → ``''=x`` (undone by
    :func:`unprotect`)."""
    return "'" + value if _GUARDED.match(value) else value


def unprotect(value: str) -> str:
    """The value :func:`protect` was given."""
    return value[1:] if value.startswith("'") and _GUARDED.match(value[1:]) else value


def token(reject_id: int) -> str:
    return f"R{reject_id}"


def reject_id(text: str) -> int | None:
    """``R17`` (any case, spaces around) → 17; anything else → None."""
    m = _TOKEN.fullmatch(text)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class FileDialect:
    """How a source file was written, as its load found it (``run_files.details``)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    #: A Python codec name.
    encoding: str = "utf-8"
    line_end: str = "\n"

    @classmethod
    def of(cls, details: dict[str, Any], raws: Iterable[str | None] = ()) -> FileDialect:
        """The dialect a file's details name (a format without one, Parquet say, gets
        plain CSV in UTF-8); the line end is the one its rejects' records end with."""
        if "delimiter" not in details:
            return cls()
        ends = [r for r in raws if r and r.endswith(("\n", "\r"))]
        end = "\n"
        if ends:
            end = "\r\n" if ends[0].endswith("\r\n") else ends[0][-1]
        return cls(
            delimiter=str(details["delimiter"]),
            quote=str(details.get("quote") or ""),
            escape=details.get("escape") or None,
            encoding=_writable(str(details.get("encoding") or "utf-8")),
            line_end=end,
        )

    def reader_options(self) -> dict[str, Any]:
        return csv_options(self.delimiter, self.quote, self.escape)

    def writer_options(self) -> dict[str, Any]:
        """``csv.writer`` keywords: the file's quote (a file read with quotes as text
        gets ``"``, so a delimiter inside a value survives)."""
        options = csv_options(self.delimiter, self.quote or '"', self.escape)
        options.pop("strict")
        return {**options, "lineterminator": self.line_end}


def _writable(codec: str) -> str:
    """A codec that writes no BOM of its own in the middle of nowhere: ``utf-16`` → LE."""
    return {"utf-16": "utf-16-le", "utf-32": "utf-32-le", "utf-8-sig": "utf-8"}.get(codec, codec)


def fields_of(raw: str | None, dialect: FileDialect, *, joined: bool = False) -> list[str]:
    """A reject's record split into the file's fields: read in the file's dialect (a
    quote never closed ends the last field), or by commas for the values of a row a
    transform made (``joined``)."""
    if raw is None:
        return []
    text = raw.rstrip("\r\n") if not joined else raw
    options = {"delimiter": ","} if joined else dialect.reader_options()
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), **options) if r]
    except csv.Error:
        rows = []
    if len(rows) != 1:  # not one record: the text, whole, in one field
        return [text]
    return rows[0]


@dataclass(frozen=True)
class Exported:
    """One reject to write: its id and its record's fields."""

    reject_id: int
    fields: list[str]


def record_text(fields: list[str], options: dict[str, Any]) -> str:
    """One record as ``csv.writer`` with ``options`` writes it; a row with a line end
    in a value has every value quoted (the writer would leave a lone CR bare when the
    line end is LF, and it would read as the record's end)."""
    out = io.StringIO(newline="")
    if any("\r" in v or "\n" in v for v in fields):
        options = {**options, "quoting": csv.QUOTE_ALL}
    csv.writer(out, **options).writerow(fields)
    return out.getvalue()


def export_text(headers: list[str], rows: Iterable[Exported], dialect: FileDialect) -> str:
    """The export's text: header and rows, formula-safe, in the file's dialect."""
    options = dialect.writer_options()
    parts = [record_text([ID_COLUMN, *map(protect, headers)], options)]
    parts += [record_text([token(r.reject_id), *map(protect, r.fields)], options) for r in rows]
    return "".join(parts)


def write_export(path: Path, text: str, dialect: FileDialect) -> str:
    """The export in the file's encoding (bytes the file had that did not decode are
    written back as they were); in UTF-8 with a BOM when a value fixed in an earlier
    replay is not in that encoding (a replay reads that too). Returns the encoding."""
    try:
        data = text.encode(dialect.encoding, "surrogateescape")
    except UnicodeEncodeError:
        path.write_bytes(text.encode("utf-8-sig", "surrogateescape"))
        return "utf-8"
    path.write_bytes(data)
    return dialect.encoding


@dataclass(frozen=True)
class Fixed:
    """One row of a fixed export: the reject it fixes, the line it starts on in the
    fixed file, and its values (apostrophes :func:`protect` added taken off)."""

    reject_id: int
    line: int
    fields: list[str]


def read_fixed(path: Path, dialect: FileDialect) -> tuple[list[str], list[Fixed]]:
    """The header (without the id column) and the rows of a fixed export. Read in the
    file's dialect and encoding; a file saved otherwise by a spreadsheet (UTF-8, or
    commas) is tried so too. Refused, naming the line: no id column, a row without a
    readable id, an id twice."""
    data = path.read_bytes()
    last: CsvpgError | None = None
    for attempt in _readings(dialect, utf8=_utf8(data)):
        try:
            return _read(path, data, attempt)
        except CsvpgError as exc:
            last = last or exc
    assert last is not None
    raise last


def _utf8(data: bytes) -> bool:
    """Bytes beyond ASCII that are valid UTF-8: a file saved as UTF-8 (text in a
    single-byte code page almost never is)."""
    try:
        return not data.isascii() and bool(data.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def _readings(dialect: FileDialect, *, utf8: bool) -> Iterator[FileDialect]:
    """The dialects a fixed export is tried in: as written (a file read with quotes as
    text is exported with ``"``; UTF-8 first when the bytes are), then as a spreadsheet
    may have saved it."""
    quoted = replace(dialect, quote=dialect.quote or '"')
    if utf8:
        yield replace(quoted, encoding="utf-8-sig")
    yield quoted
    for encoding in ("utf-8-sig", dialect.encoding):
        for delimiter in (dialect.delimiter, ",", ";", "\t"):
            yield FileDialect(delimiter, dialect.quote or '"', dialect.escape, encoding)


def _read(path: Path, data: bytes, dialect: FileDialect) -> tuple[list[str], list[Fixed]]:
    try:
        text = data.decode(dialect.encoding)
    except UnicodeDecodeError as exc:
        raise CsvpgError(
            f"{path}: bytes that are not {dialect.encoding} at byte {exc.start}",
            hint=f"save the file as {dialect.encoding} (the source file's encoding) or UTF-8",
        ) from None
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), **dialect.reader_options())
    header = next(reader, [])
    if not header or header[0].strip().lstrip("\ufeff") != ID_COLUMN:
        raise CsvpgError(
            f"{path}: the first column is not {ID_COLUMN}",
            hint="replay the file csvpg rejects RUN --export wrote, with its first column kept",
        )
    rows: list[Fixed] = []
    seen: dict[int, int] = {}
    start = 2
    for record in reader:
        line, start = start, reader.line_num + 1
        if not record or record == [""]:
            continue
        found = reject_id(record[0])
        if found is None:
            raise CsvpgError(
                f"{path}, line {line}: {record[0]!r} is not a {ID_COLUMN} (R and a number)",
                hint="every row keeps the id it was exported with; a row of your own is "
                "loaded with csvpg run, not replayed",
            )
        if found in seen:
            raise CsvpgError(
                f"{path}, line {line}: {token(found)} is there twice (also line {seen[found]})",
                hint="keep one row for each reject",
            )
        seen[found] = line
        rows.append(Fixed(found, line, [unprotect(v) for v in record[1:]]))
    return [unprotect(h) for h in header[1:]], rows


def replay_text(headers: list[str], rows: Iterable[Fixed]) -> tuple[str, dict[int, int]]:
    """The fixed rows as the file a replay loads (plain CSV, UTF-8, with the header),
    and which of its lines is which reject."""
    parts: list[str] = []
    lines: dict[int, int] = {}
    line = 1
    for reject, values in [(None, headers), *((r.reject_id, r.fields) for r in rows)]:
        if reject is not None:
            lines[line] = reject
        parts.append(record_text(values, {"lineterminator": "\n"}))
        line += _breaks(parts[-1])
    return "".join(parts), lines


def _breaks(text: str) -> int:
    """Physical line ends (LF, CRLF or a lone CR), as the csv format counts lines."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")
