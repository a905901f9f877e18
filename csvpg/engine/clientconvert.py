"""The ``[columns]`` conversions of a large file done by the client, at COPY speed.

On the server, a converted column costs a TEXT staging table and an ``INSERT …
SELECT`` that reads each value with ``to_date`` and writes it back to check it: about
five times a plain COPY. With pyarrow installed (``pip install 'csvpg[arrow]'``), a
file of :data:`MIN_SIZE` or more (in one of :data:`CODECS`) is parsed and converted by
Arrow's kernels on the client instead, and COPY puts the result straight into the table
(or the upsert's typed staging), on several connections when the file splits.

The client converts only where the result is the server's for sure:

* ``thousands`` and ``decimal`` are the same literal replacements as SQL's
  ``replace``; boolean words map as the SQL ``CASE lower(value)`` does, on ASCII values;
  the column's own input function (COPY's, which ``CAST`` uses too) reads the result;
* a template of ``DD``, ``MM``, ``YYYY`` (and ``HH24``, ``MI``, ``SS`` for a timestamp
  without zone, on a session in UTC) between fixed separators: a value must match it
  whole with every field in range (what ``to_date`` reads and the write-back check
  accepts unchanged); Arrow's ``strptime`` reads it, the month it read is checked
  against the text's, and the CSV writer hands COPY the ISO form.

Anything else (a value that does not match, line ends of two kinds outside quotes, a
field too many, bytes the file's encoding does not define, a COPY that refuses a value)
raises :class:`NotConverted` or fails the COPY; the file is then loaded again the
server's way, which sets aside the bad rows with their lines and reasons. The client
path never rejects a row itself.
"""

from __future__ import annotations

import io
import queue
import re
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from csvpg.errors import FormatError
from csvpg.interfaces import Column, ColumnType, CsvDialect, LoadInput, Relation
from csvpg.pg.load import is_datetime, template_read_type
from csvpg.pg.split import put_unless

#: Smaller files convert on the server: importing pyarrow alone takes ~0.1 s.
MIN_SIZE = 4 << 20
#: Arrow parses (on its own threads) and hands on blocks this large.
BLOCK = 1 << 20
#: What COPY reads from the client path: Arrow's CSV writer, strings quoted.
DIALECT = CsvDialect(delimiter=",", quote='"', escape='"', encoding="UTF8", header=False)
#: Encodings the client reads (PostgreSQL's name → Python's codec): UTF-8 and the
#: single-byte ones of European exports, whose every byte PostgreSQL maps as Python does
#: (tests/engine/test_clientconvert.py loads each byte both ways). COPY gets UTF-8.
CODECS = {"UTF8": "utf8", "LATIN1": "latin1", "LATIN9": "iso8859-15", "WIN1252": "cp1252"}
#: Session zones in which ``to_timestamp`` of a wall-clock time is that time (no DST).
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Zulu"})

#: Template patterns the client reads: the regular expression of a valid field (each
#: of fixed width) and its strptime code.
_FIELDS = {
    "YYYY": (r"\d{4}", "%Y"),
    "MM": (r"(?:0[1-9]|1[0-2])", "%m"),
    "DD": (r"(?:0[1-9]|[12]\d|3[01])", "%d"),
    "HH24": (r"(?:[01]\d|2[0-3])", "%H"),
    "MI": (r"[0-5]\d", "%M"),
    "SS": (r"[0-5]\d", "%S"),
}
#: Longer patterns PostgreSQL would read where one of the above starts (``DDD`` is the
#: day of the year, ``MON`` a month's name …): a template holding one stays on the server.
_LONGER = ("DDD", "DAY", "DY", "MON", "MS", "SSSS", "YYYYY")
_SEPARATOR = re.compile(r"[ .,:;/\-_]")


class NotConverted(FormatError):
    """The client path cannot promise the server's result for this file: it loads again
    with its conversions in SQL."""


@dataclass(frozen=True)
class Template:
    """A date template the client reads: ``pattern`` matches a valid value whole,
    ``strptime`` reads it, and the month is the two characters at ``month_at`` (strptime
    takes 31.04. for 01.05.: a month read otherwise is a day the month does not have)."""

    pattern: str
    strptime: str
    month_at: int
    timestamp: bool


def template(fmt: str, timestamp: bool) -> Template | None:
    """``DD.MM.YYYY`` → a pattern matching ``31.12.2024`` whole, ``%d.%m.%Y``, and the
    month at 3; None for a template the client does not read exactly as PostgreSQL."""
    regex, codes, width, month_at = ["^"], [], 0, -1
    seen: set[str] = set()
    i = 0
    while i < len(fmt):
        if any(fmt.startswith(longer, i) for longer in _LONGER):
            return None
        name = next((f for f in _FIELDS if fmt.startswith(f, i)), None)
        if name is not None:
            if name in seen:
                return None
            seen.add(name)
            month_at = width if name == "MM" else month_at
            regex.append(_FIELDS[name][0])
            codes.append(_FIELDS[name][1])
            width += 4 if name == "YYYY" else 2
            i += len(name)
        elif _SEPARATOR.fullmatch(fmt[i]):
            regex.append(re.escape(fmt[i]))
            codes.append(fmt[i])
            width += 1
            i += 1
        else:
            return None  # a letter of another pattern, quoted text, FM, TH …
    if not {"YYYY", "MM", "DD"} <= seen:
        return None
    if seen - {"YYYY", "MM", "DD"} and not timestamp:
        return None  # to_date drops the time, and the check refuses it: the server says so
    return Template("".join(regex) + "$", "".join(codes), month_at, timestamp)


@dataclass(frozen=True)
class Plan:
    """How each target column's text is rewritten (None: as it is)."""

    columns: tuple[Column, ...]
    conversions: tuple[tuple[ColumnType, Template | None] | None, ...]
    width: int


def plan(
    load: LoadInput,
    *,
    session_zone: str | None,
    size: int | None,
    lowers_ascii: Callable[[], bool],
) -> Plan | None:
    """The client path for this load, or None when it stays on the server.
    ``session_zone``: the session's TimeZone; ``lowers_ascii``: whether the database's
    ``lower()`` maps ASCII letters as ASCII does (not so in a Turkish ctype, whose
    ``I`` lowers to a dotless ı), asked only of a file with boolean words."""
    d = load.dialect
    if d is None or load.chunks is None or (size is not None and size < MIN_SIZE):
        return None
    if d.encoding not in CODECS or d.nulls != ("",) or d.escape != d.quote:
        return None
    converts = [load.types[c.name] for c in load.relation.columns]
    if not any(ct.converts for ct in converts):
        return None
    conversions: list[tuple[ColumnType, Template | None] | None] = []
    for ct in converts:
        if not ct.converts:
            conversions.append(None)
            continue
        if is_datetime(ct.type):
            found = _date_template(ct, session_zone)
            if found is None:
                return None
            conversions.append((ct, found))
        elif ct.format:
            return None  # a template for another type: the server says what it makes of it
        else:
            conversions.append((ct, None))
    if any(ct.true or ct.false for ct in converts) and not lowers_ascii():
        return None
    return Plan(load.relation.columns, tuple(conversions), len(load.relation.file_columns))


def _date_template(ct: ColumnType, session_zone: str | None) -> Template | None:
    if not ct.format or ct.decimal or ct.thousands or ct.true or ct.false:
        return None
    read = template_read_type(ct)
    if read == "date":
        return template(ct.format, timestamp=False)
    if read == "timestamp" and session_zone in UTC_ZONES:
        return template(ct.format, timestamp=True)
    return None  # a zone's DST gap: to_timestamp moves 02:30 on, and the check refuses it


def converted(load: LoadInput, how: Plan) -> LoadInput:
    """The load with its bytes converted on the client, as COPY takes them into the
    table's own types: its columns are the target's, in order, and convert no more."""
    columns = tuple(Column(k, c.header, c.name) for k, c in enumerate(how.columns))
    types = {
        c.name: ColumnType(type=ct.type, allow_relative=ct.allow_relative or bool(ct.format))
        for c in how.columns
        for ct in (load.types[c.name],)
    }
    assert load.chunks is not None and load.dialect is not None
    chunks = _ahead(_converted_chunks(load.chunks, load.dialect, how, load.ref.url))
    return replace(
        load,
        relation=Relation(columns, columns),
        types=types,
        dialect=DIALECT,
        chunks=chunks,
    )


# -- the bytes ----------------------------------------------------------------------


#: A string column's offsets (Arrow's ``string``: 32-bit, little-endian).
OFFSET = struct.Struct("<i")


@dataclass
class _LineEnds:
    cr: int = 0
    lf: int = 0
    crlf: int = 0

    def add(self, data: bytes) -> None:
        """Count the line ends in ``data`` (one scan for the many files without a CR)."""
        self.lf += data.count(b"\n")
        if b"\r" in data:
            self.cr += data.count(b"\r")
            self.crlf += data.count(b"\r\n")


class _Bytes(io.RawIOBase):
    """The chunks as a file for Arrow's reader, their line ends counted (see
    :func:`_check_line_ends`)."""

    def __init__(self, chunks: Iterator[bytes], url: str) -> None:
        self.chunks, self.url = chunks, url
        self.pending = memoryview(b"")  # (a view: what is left of a chunk is not copied)
        self.ends = _LineEnds()
        self.last = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self._count(chunk)
            self.pending = memoryview(chunk)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n

    def _count(self, chunk: bytes) -> None:
        if not self.last and chunk.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
            raise NotConverted(f"{self.url}: a byte order mark", file=self.url)
        ends = self.ends
        ends.crlf += self.last == b"\r" and chunk.startswith(b"\n")  # across the seam
        self.last = chunk[-1:]
        ends.add(chunk)


def _count_values(batch: Any, inside: _LineEnds) -> None:
    """The line ends within the batch's values (quoted ones: Arrow ends a record at
    any other), counted in each column's bytes at once (a kernel per value costs four
    times as much)."""
    for column in batch.columns:
        _, offsets, data = column.buffers()
        if data is None:
            continue
        first, last = (
            OFFSET.unpack_from(offsets, i * 4)[0]
            for i in (column.offset, column.offset + len(column))
        )
        inside.add(memoryview(data)[first:last].tobytes())


def _check_line_ends(data: _LineEnds, inside: _LineEnds | None, url: str) -> None:
    """Arrow ends a record at a CR, an LF or a CRLF alike; PostgreSQL takes the kind the
    first line ends with and refuses any other outside quotes. The line ends outside the
    values must all be of one kind (``inside``: None when the values were not counted,
    as a file whose first CR comes late is not)."""
    if not data.cr:
        return  # LFs only
    if inside is not None:
        outside = (
            data.crlf - inside.crlf,
            data.lf - data.crlf - (inside.lf - inside.crlf),
            data.cr - data.crlf - (inside.cr - inside.crlf),
        )
        if sum(n > 0 for n in outside) <= 1:
            return
    raise NotConverted(f"{url}: line ends of more than one kind", file=url)


#: Converted blocks made ahead of the COPY that sends them (their share of memory).
AHEAD = 4
_DONE = object()


def _ahead(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The blocks, made on a thread of their own while COPY sends the ones before:
    Arrow's kernels and the socket's wait release the GIL, so the client converts the
    next block while the server reads this one (in turn, they took a third longer)."""
    made: queue.Queue[object] = queue.Queue(AHEAD)
    stop = threading.Event()

    def make() -> None:
        try:
            for block in blocks:
                if not put_unless(made, block, stop):
                    return
            put_unless(made, _DONE, stop)
        except BaseException as exc:  # handed on to the COPY's thread
            put_unless(made, exc, stop)
        finally:
            blocks.close()  # type: ignore[attr-defined]

    maker = threading.Thread(target=make, name="csvpg-convert", daemon=True)
    maker.start()
    try:
        while (item := made.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        maker.join()


def _arrow() -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    return pa, pc, pacsv


#: The oldest pyarrow whose CSV writer and kernels the client path uses (the ``arrow``
#: extra asks for it; an older one installed beside csvpg leaves conversions to SQL).
ARROW_MIN = (16, 0)


def available() -> bool:
    """pyarrow, new enough, can be imported (the ``arrow`` extra or the Parquet plugin
    brings it)."""
    try:
        pa, _, _ = _arrow()
    except ImportError:
        return False
    version = tuple(int(part) for part in re.findall(r"\d+", pa.__version__)[:2])
    return version >= ARROW_MIN


def _converted_chunks(
    chunks: Iterator[bytes], dialect: CsvDialect, how: Plan, url: str
) -> Iterator[bytes]:
    pa, pc, pacsv = _arrow()
    names = [f"f{i}" for i in range(how.width)]
    out_names = [c.name for c in how.columns]
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    header = dialect.header
    source = _Bytes(chunks, url)
    inside: _LineEnds | None = _LineEnds()
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=BLOCK, encoding=CODECS[dialect.encoding]
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=dialect.delimiter,
                quote_char=dialect.quote,
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=False,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                null_values=[""],
            ),
        )
        for batch in reader:
            if not source.ends.cr:
                inside = None  # not counted: a CR found later stops the client path
            elif inside is not None:  # (the batch's bytes are read: a CR in them is seen)
                _count_values(batch, inside)
            if header:  # COPY's HEADER skips the first record, as this does
                batch, header = batch.slice(1), False
            if how.width == 1 and pc.any(pc.equal(batch.column(0), "\\.")).as_py():
                raise NotConverted(f"{url}: a line \\. (COPY's end of data)", file=url)
            values = [
                _column(pa, pc, batch.column(c.index), conversion, url)
                for c, conversion in zip(how.columns, how.conversions, strict=True)
            ]
            sink = io.BytesIO()
            pacsv.write_csv(pa.record_batch(values, names=out_names), sink, write_options=options)
            yield sink.getvalue()
        _check_line_ends(source.ends, inside, url)  # (before COPY's end: it fails then)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise NotConverted(f"{url}: {exc}", file=url) from exc


def _column(
    pa: Any, pc: Any, values: Any, conversion: tuple[ColumnType, Template | None] | None, url: str
) -> Any:
    if conversion is None:
        return values
    ct, tpl = conversion
    if tpl is not None:
        return _dates(pa, pc, values, ct, tpl, url)
    if ct.thousands:
        values = pc.replace_substring(values, ct.thousands, "")
    if ct.decimal and ct.decimal != ".":
        values = pc.replace_substring(values, ct.decimal, ".")
    if ct.true or ct.false:
        if not pc.all(pc.string_is_ascii(values), min_count=0).as_py():
            raise NotConverted(f"{url}: a boolean value beyond ASCII", file=url)
        low = pc.ascii_lower(values)
        words = [(w, "true") for w in ct.true] + [(w, "false") for w in ct.false]
        for word, meaning in reversed(words):  # the first word listed wins, as in SQL
            values = pc.if_else(pc.fill_null(pc.equal(low, word), False), meaning, values)
    return values


def text_for_copy(
    values: list[str | None], ct: ColumnType, *, session_zone: str = "UTC"
) -> list[str | None]:
    """The text the client path hands COPY for one column's ``values`` (what a
    ``[columns]`` entry makes of them); raises :class:`NotConverted` where it would
    leave the file to SQL, and ``ValueError`` for a column it does not convert."""
    pa, pc, _ = _arrow()
    tpl = _date_template(ct, session_zone) if is_datetime(ct.type) else None
    if (is_datetime(ct.type) and tpl is None) or not ct.converts:
        raise ValueError(f"the client path does not convert {ct}")
    out = _column(pa, pc, pa.array(values, pa.string()), (ct, tpl), "values")
    return out.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]


def _dates(pa: Any, pc: Any, values: Any, ct: ColumnType, tpl: Template, url: str) -> Any:
    """A template column's values as dates (or timestamps), which Arrow's CSV writer
    writes in ISO form."""
    if not pc.all(pc.match_substring_regex(values, tpl.pattern), min_count=0).as_py():
        raise NotConverted(f"{url}: a value the template {ct.format} reads loosely", file=url)
    read = pc.strptime(values, format=tpl.strptime, unit="s")
    month = pc.utf8_slice_codeunits(values, tpl.month_at, tpl.month_at + 2).cast(pa.int64())
    if not pc.all(pc.equal(pc.month(read), month), min_count=0).as_py():
        raise NotConverted(f"{url}: a day its month does not have", file=url)
    return read if tpl.timestamp else read.cast(pa.date32())
