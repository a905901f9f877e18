"""The ``csv`` format: delimited text, read as a stream.

The stream may be a remote, non-seekable file, so the reader reads one sample at open
(for the encoding, the delimiter and the header), keeps it, and then chains it with the
rest of the stream; nothing ever holds the whole file. Two ways out:

* :meth:`CsvReader.iter_bytes`, the fast path: the file's own bytes for PostgreSQL's
  ``COPY … (FORMAT csv)``, minus the BOM and the ``skip_rows`` lines (UTF-16/32 are
  transcoded to UTF-8 block by block, since PostgreSQL cannot read them);
* :meth:`CsvReader.iter_batches`, the row path, parsed by Python's ``csv`` module.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
from collections.abc import Callable, Collection, Iterator
from typing import Any, BinaryIO, ClassVar

from csvpg.binary import refuse_binary
from csvpg.detect import (
    UNDECODED,
    Dialect,
    Encoding,
    QuoteCheck,
    csv_options,
    detect_dialect,
    detect_encoding,
    resolve_encoding,
    stray_column,
    stray_quote,
    stray_rx,
)
from csvpg.errors import FormatError, SpecError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import (
    Batch,
    CsvDialect,
    FileRef,
    Format,
    NumberedBatch,
    Original,
    Reader,
    Record,
    Reject,
)
from csvpg.options import Option

_SURROGATE = UNDECODED
#: Codecs whose ASCII text is not one byte a character.
_WIDE = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")
#: Why the byte path hands a file to the careful one: COPY would read such a quote as
#: the start of a quoted run, gluing the lines after it together.
_MISPLACED_QUOTE = "a quote inside or at the end of an unquoted field"
#: The reject reason of a record with such a quote (on the careful and the row path).
AMBIGUOUS = "a quote inside an unquoted field (ambiguous)"

SAMPLE_SIZE = 1 << 20
SNIFF_CHARS = 64 << 10
#: The byte path reads, checks and hands on blocks this large. COPY is fed from what
#: the socket holds (some 200 KiB) while the client works on the next block: 1 MiB
#: blocks left the server waiting a few milliseconds each (an append to a TEXT table
#: took a tenth longer); smaller ones cost more Python per byte.
BLOCK_SIZE = 256 << 10
#: The sample is read in steps this large: a read asked for 1 MiB makes a 1 MiB buffer,
#: 65 µs of the ~2.5 ms a small file of a job of many costs.
READ_STEP = 64 << 10
BATCH_ROWS = 10_000
BATCH_CHARS = 4 << 20
#: The header record must end within this many bytes of the sample's start.
HEADER_LIMIT = 64 << 20
#: PostgreSQL takes fields up to 1 GB; ``csv``'s 128 KiB default would fail the row path.
FIELD_LIMIT = (1 << 31) - 1


def _breaks(text: str | bytes) -> int:
    """Physical line ends (LF, CRLF or a lone CR) in ``text``."""
    if isinstance(text, bytes):
        return text.count(b"\n") + text.count(b"\r") - text.count(b"\r\n")
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _skip_lines(data: bytes, n: int, final: bool) -> int | None:
    """Offset after the ``n``-th line end of ``data``; ``None`` until more data decides."""
    pos = 0
    for _ in range(n):
        lf, cr = data.find(b"\n", pos), data.find(b"\r", pos)
        if cr != -1 and (lf == -1 or cr < lf):
            if cr + 1 == len(data) and not final:
                return None  # a CR at the edge may be half of a CRLF
            pos = cr + 2 if data[cr + 1 : cr + 2] == b"\n" else cr + 1
        elif lf != -1:
            pos = lf + 1
        else:
            return None if not final else len(data)
    return pos


def _decode_error(ref: FileRef, codec: str, line: int, exc: UnicodeDecodeError) -> FormatError:
    bad = exc.object[exc.start : exc.start + 4]
    hint = (
        'set encoding = "latin-1" (or "windows-1252") in [format]'
        if codec.startswith("utf")
        else 'set encoding = "utf-8" in [format], or the encoding the file was written in'
    )
    return FormatError(
        f"bytes {bad!r} on line {line} do not decode as {codec}",
        hint=hint,
        file=ref.url,
        line=line,
    )


def _encoding(sample: bytes, ref: FileRef, setting: str, detected: list[str]) -> Encoding:
    """The encoding ``[format] encoding`` names, or the one detected in the sample for
    ``auto`` (then ``detected`` says so); an error names the file."""
    try:
        if setting == "auto":
            encoding = detect_encoding(sample)
            detected.append("encoding")
            return encoding
        return resolve_encoding(setting, sample)
    except FormatError as exc:
        exc.file = ref.url
        raise


class CsvReader(Reader):
    """One CSV file: headers and dialect from the sample, then bytes or rows once."""

    def __init__(self, stream: BinaryIO, ref: FileRef, settings: dict[str, Any]) -> None:
        if csv.field_size_limit() < FIELD_LIMIT:
            csv.field_size_limit(FIELD_LIMIT)
        self.ref = ref
        self._stream = stream
        self._used = False
        sample = self._read(SAMPLE_SIZE)
        self._eof = len(sample) < SAMPLE_SIZE
        refuse_binary(sample, ref, settings["encoding"])
        detected: list[str] = []
        encoding = _encoding(sample, ref, settings["encoding"], detected)
        self.encoding: Encoding = encoding
        #: The codec of the bytes this reader hands on (UTF-8 after transcoding).
        self._codec = "utf-8" if encoding.transcode else encoding.codec
        #: The Python codec of the bytes :meth:`iter_bytes` yields.
        self.codec = self._codec
        self._skip = int(settings["skip_rows"] or 0)
        self._header = bool(settings["header"])
        #: The preamble lines skipped without the job saying so (see :meth:`_past_preamble`).
        self.preamble: list[str] = []
        self.quote: str = '"' if settings["quote"] == "auto" else settings["quote"]
        self.escape: str = settings["escape"] or self.quote
        self.delimiter: str = "," if settings["delimiter"] == "auto" else settings["delimiter"]
        self.nulls: tuple[str, ...] = tuple(settings["null_values"])
        #: :meth:`iter_batches` leaves out records with bytes that do not decode (and
        #: counts them here) instead of failing: ``csvpg infer`` samples so.
        self.skip_undecodable = False
        self.undecodable = 0
        #: Whether :meth:`iter_bytes` handed on anything but line ends: a load of 0 rows
        #: from such a file is a misreading, never a success.
        self.saw_data = False
        self._blocks = self._converted(sample[len(encoding.bom) :])
        head, final = self._head()
        head, text = self._past_blank_lines(head, self._decode_head(head, final))
        before = self._skip  # the lines before the sniffed text
        sniffed = self._sniff(text, final, settings, detected)
        head, text = self._past_preamble(head, text, sniffed, settings)
        #: Quotes inside unquoted fields beside quoted ones: read row by row, and the
        #: records with such quotes are rejects (they read one way here, another in COPY).
        self._mixed = bool(sniffed and sniffed.mixed) or bool(
            self.quote and stray_rx(self.delimiter, self.quote).search(text)
        )
        first = self._take_header(head, text, final)
        self._data_offset = self._data_start()
        #: Physical lines before the first data line: COPY's line 1 is line this + 1.
        self.line_offset = self._skip
        self.headers: list[str] = self._column_names(first)
        #: With quoting off, COPY gets a quote byte the sample never holds; a block
        #: holding it sends the file row by row (:meth:`iter_bytes`).
        self._copy_quote = "" if self.quote else _absent_byte(text)
        self.dialect = CsvDialect(
            delimiter=self.delimiter,
            quote=self.quote or self._copy_quote,
            escape=self.escape or self._copy_quote,
            encoding=encoding.pg or "UTF8",
            header=False,
            nulls=self.nulls,
        )
        self.details: dict[str, Any] = self._details(settings, detected, sniffed, before, first)

    # -- opening: what the sample says -----------------------------------------------

    def _past_blank_lines(self, head: bytes, text: str) -> tuple[bytes, str]:
        """The head without the blank lines before the header: they are no records
        (ASCII: 1 byte each), only lines to skip."""
        blank = len(text) - len(text.lstrip("\r\n"))
        if blank:
            self._skip += _breaks(text[:blank])
            head, text = head[blank:], text[blank:]
        return head, text

    def _sniff(
        self, text: str, final: bool, settings: dict[str, Any], detected: list[str]
    ) -> Dialect | None:
        """The delimiter and quote detected in ``text`` where the settings say ``auto``
        (None when neither does)."""
        delimiter_auto = settings["delimiter"] == "auto"
        quote_auto = settings["quote"] == "auto"
        if not (delimiter_auto or quote_auto or _preamble_auto(settings)):
            return None
        # A few hundred records decide the dialect; the whole sample is looked over
        # for quotes inside fields.
        cut = text[:SNIFF_CHARS]
        sniffed = detect_dialect(
            cut,
            final=final and cut == text,
            delimiter=None if delimiter_auto else self.delimiter,
        )
        if delimiter_auto:
            self.delimiter = sniffed.delimiter
            detected.append("delimiter")
        if quote_auto:
            self.quote = sniffed.quote
            self.escape = settings["escape"] or sniffed.escape
            detected.append("quote")
        return sniffed

    def _past_preamble(
        self, head: bytes, text: str, sniffed: Dialect | None, settings: dict[str, Any]
    ) -> tuple[bytes, str]:
        """The head without a preamble (a banner, a title, notes before the header) that
        detection is sure of, when the job sets neither ``skip_rows`` nor
        ``header = false``.

        The rule, so that no data line is ever dropped unseen: the lines are skipped
        only when the records after them agree on one width of two or more (nine in
        ten of the 20 after the preamble, three at least, as
        :func:`~csvpg.detect.detect_dialect` asks of a table), and *every* record of
        the preamble is of another width than that and holds one value at most (a
        title, a note, a date line: text no delimiter splits; a ``Title,,,`` padded to
        the table's width, or a line of several values, might be a row: it stays), and
        no line of it holds a quote (a quoted line end there could take in a line of
        the table). A job that sets ``skip_rows`` (0 too) or ``header = false`` is read
        as it says.
        What was skipped is in the details (``preamble``) and said as a warning.
        """
        if not (_preamble_auto(settings) and sniffed and sniffed.skip_rows and sniffed.banner):
            return head, text
        preamble = list(itertools.islice(io.StringIO(text, newline=""), sniffed.skip_rows))
        if self.quote and any(self.quote in line for line in preamble):
            return head, text  # a quote there may span lines: a record of the table too
        self.preamble = preamble
        cut = sum(map(len, preamble))
        self._skip += len(self.preamble)
        return head[len(text[:cut].encode(self._codec, "surrogateescape")) :], text[cut:]

    def _take_header(self, head: bytes, text: str, final: bool) -> list[str] | None:
        """The first record; when it is the header, its lines join those to skip and
        :attr:`_first` (the bytes handed on first) starts after it."""
        first, used = self._first_record(text, final)
        self._first = head
        if first is not None and self._header:
            # The header is csvpg's to read and skip, not COPY's: a stray quote in it
            # would make COPY's HEADER skip one "line" as long as the file.
            self._skip += _breaks(text[:used])
            self._first = head[len(text[:used].encode(self._codec, "surrogateescape")) :]
        return first

    def _data_start(self) -> int:
        """Where the first data record's bytes start in the file (see :meth:`originals`):
        past the BOM and what the head leaves out before :attr:`_first`."""
        before = self._head_full[: len(self._head_full) - len(self._first)]
        del self._head_full
        return len(self.encoding.bom) + self._byte_length(
            before.decode(self._codec, "surrogateescape")
        )

    def _column_names(self, first: list[str] | None) -> list[str]:
        """The header's names (bytes that do not decode as U+FFFD), or ``column_1`` …
        for a file without a header."""
        if first is None:
            return []
        if self._header:
            return [_SURROGATE.sub("\ufffd", h) for h in first] or [""]
        return [f"column_{i}" for i in range(1, max(len(first), 1) + 1)]

    def _details(
        self,
        settings: dict[str, Any],
        detected: list[str],
        sniffed: Dialect | None,
        before: int,
        first: list[str] | None,
    ) -> dict[str, Any]:
        """What the reader found and chose, with its doubts (the file's ``details``)."""
        encoding = self.encoding
        details: dict[str, Any] = {
            "encoding": encoding.codec,
            "pg_encoding": encoding.pg,
            "delimiter": self.delimiter,
            "quote": self.quote,
            "escape": self.escape,
            "header": self._header,
            "skip_rows": int(settings["skip_rows"] or 0) + len(self.preamble),
            "bom": bool(encoding.bom),
            "detected": detected,
            "transcoded": encoding.transcode,
            "doubts": [encoding.doubt] if encoding.doubt else [],
            "null_values": list(self.nulls),
        }
        if sniffed is not None:
            details["sniffed"] = {
                "skip_rows": before + sniffed.skip_rows,
                "header": sniffed.header,
                "evidence": list(sniffed.evidence),
            }
        if first is not None and self._header and self.headers != list(first):
            details["doubts"].append(
                f"bytes in the header that are not valid {encoding.codec} are U+FFFD in "
                "the column names"
            )
        if self.preamble:
            details["preamble"] = _preamble_note(self.preamble)
            details["warnings"] = [details["preamble"]["said"]]
        if self._mixed:
            details["doubts"].append(
                "quotes inside unquoted fields: records holding one are rejects "
                '(set quote = "" in [format] if every quote in the file is text)'
            )
        return details

    def _width(self, text: str) -> int | None:
        """The one width of the first records (three or more) of ``text``, else ``None``."""
        reader = csv.reader(io.StringIO(text, newline=""), **self._fmt())
        with contextlib.suppress(csv.Error):
            widths = [len(r) for r in itertools.islice(reader, 50) if r]
            if len(widths) >= 3 and len(set(widths)) == 1:
                return widths[0]
        return None

    def _first_record(self, text: str, final: bool) -> tuple[list[str] | None, int]:
        """The first record and the characters it takes, line end included.

        A header whose quotes do not pair (``…,""URL",Comments``) would run on into the
        data: when its first line alone is as wide as the records after it, that line is
        the header. A file without a header has data there: its quotes are the record's.
        """
        used = 0

        def lines(text: str) -> Iterator[str]:
            nonlocal used
            for line in io.StringIO(text, newline=""):
                used += len(line)
                yield line

        try:
            first = next(csv.reader(lines(text), **self._fmt()), None)
        except csv.Error as exc:
            raise FormatError(
                f"cannot parse the first record: {exc}", file=self.ref.url, line=self._skip + 1
            ) from None
        line = next(io.StringIO(text, newline=""), "")
        if first is None or used <= len(line) or not self.quote or not self._header:
            return first, used
        alone = next(csv.reader([line], **self._fmt()), [])
        after_line, after_record = self._width(text[len(line) :]), self._width(text[used:])
        if after_line == len(alone) > 1 and after_record != len(first):
            return alone, len(line)
        return first, used

    # -- the byte stream ---------------------------------------------------------------

    def _read(self, size: int) -> bytes:
        """Exactly ``size`` bytes unless the stream ends: remote reads may come up short."""
        parts: list[bytes] = []
        got = 0
        while got < size:
            part = self._stream.read(min(size - got, READ_STEP))
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def _raw(self, first: bytes) -> Iterator[bytes]:
        if first:
            yield first
        while not self._eof:
            block = self._stream.read(BLOCK_SIZE)
            if not block:
                self._eof = True
                return
            yield block

    def _converted(self, first: bytes) -> Iterator[bytes]:
        """The file's blocks in an encoding PostgreSQL reads: as they are, or as UTF-8."""
        if not self.encoding.transcode:
            yield from self._raw(first)
            return
        decoder = codecs.getincrementaldecoder(self.encoding.codec)()
        lines = 1
        try:
            for block in self._raw(first):
                text = decoder.decode(block)
                lines += _breaks(text)
                if text:
                    yield text.encode("utf-8")
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            lines += _breaks(exc.object[: exc.start].decode(self.encoding.codec, "replace"))
            raise _decode_error(self.ref, self.encoding.codec, lines, exc) from None
        if tail:
            yield tail.encode("utf-8")

    def _head(self) -> tuple[bytes, bool]:
        """The first converted bytes past ``skip_rows`` lines holding one whole record.

        Returns the bytes and whether they are the whole (rest of the) file. The check
        runs again only once the bytes have doubled, so a long first record costs O(n).
        """
        parts: list[bytes] = []
        size = checked = 0
        final = False
        while True:
            if final or size >= 2 * checked:
                head = b"".join(parts)
                parts, checked = [head], max(size, 1)
                offset = _skip_lines(head, self._skip, final)
                if offset is not None and (final or self._record_done(head[offset:])):
                    self._head_full = head
                    return head[offset:], final
            if size > HEADER_LIMIT:
                raise FormatError(
                    f"no complete record in the first {HEADER_LIMIT >> 20} MiB",
                    hint="check the quote setting: an unclosed quote swallows the file",
                    file=self.ref.url,
                )
            block = next(self._blocks, None)
            if block is None:
                final = True
            else:
                parts.append(block)
                size += len(block)

    def _record_done(self, data: bytes) -> bool:
        """Whether ``data`` holds a complete first record (a quoted newline is not one)."""
        try:
            text = codecs.getincrementaldecoder(self._codec)(errors="replace").decode(data)
        except UnicodeDecodeError:  # pragma: no cover - errors="replace" never raises
            return True
        # Record boundaries depend on the quote and escape only, not on the delimiter.
        reader = csv.reader(io.StringIO(text, newline=""), **self._fmt())
        return next(reader, None) is not None and next(reader, None) is not None

    def _decode_head(self, head: bytes, final: bool) -> str:
        """The head as text for sniffing. A bad byte in a data row is that row's problem
        (a reject later), so it is only kept aside here; in the header it becomes U+FFFD
        in the column's name, and a doubt (see ``__init__``)."""
        try:  # the common case, and the quickest: every byte decodes
            return codecs.getincrementaldecoder(self._codec)().decode(head, final=final)
        except UnicodeDecodeError:
            pass
        text = codecs.getincrementaldecoder(self._codec)(errors="surrogateescape").decode(
            head, final=final
        )
        return text

    def _take(self) -> Iterator[bytes]:
        if self._used:
            raise RuntimeError("a CsvReader's data can be read only once")
        self._used = True
        if self._first:
            yield self._first
        self._first = b""
        yield from self._blocks

    def iter_bytes(self) -> Iterator[bytes]:
        """Blocks of at least 256 KiB (but the last) for COPY with :attr:`dialect`.

        A block COPY would read otherwise than csvpg's own parser raises
        :class:`FormatError`, so the file is read row by row instead: a quote out of
        place (inside an unquoted field, or ending one: see :class:`QuoteCheck`), the
        stand-in quote byte of a file read with quoting off, or a blank line in a
        one-column file (COPY reads it as a NULL row).
        """
        return self._copy_blocks(checked=True)

    def iter_bytes_again(self) -> Iterator[bytes]:
        """The blocks of :meth:`iter_bytes` without its checks of quotes and bytes: the
        first reading of the file made them (for the rejects' records, on PostgreSQL
        17+, they were a third of that reading)."""
        return self._copy_blocks(checked=False)

    def _copy_blocks(self, *, checked: bool) -> Iterator[bytes]:
        if self._mixed:
            raise FormatError(
                "quotes stand inside unquoted fields, beside quoted fields",
                hint='set quote = "" in [format] if every quote in the file is text',
                file=self.ref.url,
            )
        checks = self._byte_checks() if checked else []
        quotes = self._quote_check(binary=True) if checked else None
        parts: list[bytes] = []
        size = 0
        tail = b"\n"  # the data starts on a line of its own
        for block in self._take():
            for why, found in checks:
                if found(tail + block):  # a block boundary hides nothing
                    raise FormatError(why, file=self.ref.url)
            if quotes is not None and quotes.feed(block):
                raise FormatError(_MISPLACED_QUOTE, file=self.ref.url)
            tail = block[-2:]
            if not self.saw_data and block.strip(b"\r\n"):
                self.saw_data = True
            parts.append(block)
            size += len(block)
            if size >= BLOCK_SIZE:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
                parts, size = [], 0
        if size:
            yield parts[0] if len(parts) == 1 else b"".join(parts)

    def _quote_check(self, *, binary: bool) -> QuoteCheck | None:
        """The check of every quote's place (see :class:`QuoteCheck`); ``None`` with
        quoting off, or a dialect the byte scan cannot read (a non-ASCII delimiter)."""
        if not self.quote or (binary and not (self.delimiter + self.quote).isascii()):
            return None
        return QuoteCheck(self.delimiter, self.quote, self.escape, binary=binary)

    def _byte_checks(self) -> list[tuple[str, Callable[[bytes], object]]]:
        checks: list[tuple[str, Callable[[bytes], object]]] = []
        if self._copy_quote:
            byte = self._copy_quote.encode()
            checks.append(
                (f"a {byte!r} byte, the stand-in quote of quoting off", lambda b: byte in b)
            )
        if len(self.headers) == 1:
            blank = re.compile(rb"(?:\r\n|\n|\r(?!\n))(?:\r\n|\n|\r)")
            checks.append(("a blank line in a one-column file", blank.search))
        return checks

    # -- the row path ------------------------------------------------------------------

    def _fmt(self) -> dict[str, Any]:
        return csv_options(self.delimiter, self.quote, self.escape)

    def _lines(self, errors: str = "strict") -> Iterator[str]:
        """Whole physical lines, line ends kept, as ``csv.reader`` needs them."""
        return _split_lines(self._texts(errors))

    def _texts(self, errors: str = "strict") -> Iterator[str]:
        """The data decoded, block by block, each cut after its last line end."""
        decoder = codecs.getincrementaldecoder(self._codec)(errors=errors)
        line = self._skip + 1  # the physical line the next decoded text starts on
        carry = ""
        blocks = self._take()
        final = False
        while not final:
            block = next(blocks, None)
            final = block is None
            try:
                text = carry + decoder.decode(block or b"", final=final)
            except UnicodeDecodeError as exc:
                line += _breaks(carry) + _breaks(exc.object[: exc.start])
                raise _decode_error(self.ref, self.encoding.codec, line, exc) from None
            if final:
                cut = len(text)
            else:
                # Up to the last line end, but a CR at the edge may be half of a CRLF.
                end = text[:-1] if text.endswith("\r") else text
                cut = max(end.rfind("\n"), end.rfind("\r")) + 1
            if cut:
                done = text[:cut]
                line += _breaks(done)
                yield done
            carry = text[cut:]

    def iter_batches(self) -> Iterator[Batch]:
        """Rows in batches of up to 10 000 (fewer when rows are wide), no header record.

        Every empty field becomes ``None``: Python 3.11's ``csv`` cannot tell a quoted
        ``""`` from an empty field. Blank lines are no records (on the byte path too).
        Ragged rows are passed on as they are. With :attr:`set_aside` set, a record
        with a quote out of place goes there (as on the careful path), not into a batch.
        """
        # Batches end at 10 000 rows or 4 Mi characters, whichever comes first, so wide
        # rows cannot make a batch (and the client's memory) grow without bound.
        size = [0]
        texts = self._texts("surrogateescape" if self.skip_undecodable else "strict")
        watch = self._watch()

        def lines() -> Iterator[str]:
            for text in watch.lines(texts) if watch else _split_lines(texts):
                size[0] += len(text)
                yield text

        reader = csv.reader(lines(), **self._fmt())
        batch = NumberedBatch([], [])
        nulls = self.nulls
        start = self._skip + 1  # the physical line the next record starts on
        try:
            for record in reader:
                line, start = start, self._skip + reader.line_num + 1
                if watch is not None and watch.set_aside(line):
                    continue
                if not record:
                    continue  # a blank line is no record
                if self.skip_undecodable and any(_SURROGATE.search(v) for v in record):
                    self.undecodable += 1
                    continue
                if nulls == ("",):
                    batch.append([v or None for v in record])
                else:
                    batch.append([None if v in nulls else v for v in record])
                batch.lines.append(line)
                if len(batch) >= BATCH_ROWS or size[0] >= BATCH_CHARS:
                    yield batch
                    batch = NumberedBatch([], [])
                    size[0] = 0
        except csv.Error as exc:
            raise FormatError(
                f"cannot parse the CSV: {exc}",
                hint="check the delimiter, quote and escape settings in [format]",
                file=self.ref.url,
                line=self._skip + reader.line_num,
            ) from None
        if batch:
            yield batch

    def _watch(self) -> _Ambiguous | None:
        """The row path's check for ambiguous records, when someone takes rejects."""
        if self.set_aside is None or not self.quote:
            return None
        return _Ambiguous(self, self.set_aside, every=self._mixed)

    def _byte_length(self, text: str) -> int:
        """How many bytes ``text`` takes in the file (in its own encoding, before any
        transcoding; a BOM-writing codec's BOM left out)."""
        if text.isascii() and self.encoding.codec not in _WIDE:
            return len(text)
        codec = self.encoding.codec
        return len(text.encode(codec, "surrogateescape")) - len("".encode(codec))

    @property
    def data_offset(self) -> int | None:
        """Where the bytes :meth:`iter_bytes` hands on start in the file; None when they
        are not the file's own (transcoded to UTF-8)."""
        return None if self.encoding.transcode else self._data_offset

    def originals(self, lines: Collection[int]) -> dict[int, Original]:
        """The records starting on ``lines`` as the file has them: their text (decoded,
        line ends kept) and their bytes' offset and length in the file."""
        wanted = set(lines)
        found: dict[int, Original] = {}
        if not wanted:
            return found
        for record in self.iter_records():
            if record.line in wanted:
                assert record.offset is not None and record.length is not None
                found[record.line] = Original(record.raw, record.offset, record.length)
                if len(found) == len(wanted):
                    break
        return found

    def iter_records(self) -> Iterator[Record]:
        """Every data record with the physical line it starts on and its raw text.

        A record Python's strict CSV parser refuses (an unclosed quote, text after a
        closing quote), one with bytes that do not decode, or one holding a NUL byte
        comes with ``fields = None`` and the reason; parsing goes on after it. Blank
        lines are not records.
        """
        consumed: list[str] = []

        def lines() -> Iterator[str]:
            for text in self._lines(errors="surrogateescape"):
                consumed.append(text)
                yield text

        reader = csv.reader(lines(), **{**self._fmt(), "strict": True})
        nulls = self.nulls
        quote, escape = (self.quote, self.escape) if self.quote else ("", None)
        offset = self._data_offset
        while True:
            start = self._skip + reader.line_num + 1
            try:
                record: list[str] | None = next(reader)
                problem = None
            except StopIteration:
                return
            except csv.Error as exc:
                reason = "a quoted field is never closed" if "end of data" in str(exc) else str(exc)
                record, problem = None, f"malformed CSV: {reason}"
            raw = "".join(consumed)
            consumed.clear()
            at, length = offset, self._byte_length(raw)
            offset += length
            if record == []:
                continue  # a blank line is no record
            if record is None:
                yield Record(start, raw, None, problem, offset=at, length=length)
            elif quote and stray_quote(raw, self.delimiter, quote, escape):
                yield Record(start, raw, None, AMBIGUOUS, self._stray_header(raw), at, length)
            elif _SURROGATE.search(raw):
                why = f"bytes that are not valid {self.encoding.codec}"
                yield Record(start, raw, None, why, offset=at, length=length)
            elif "\x00" in raw:
                why = "a NUL byte (PostgreSQL text cannot hold one)"
                yield Record(start, raw, None, why, offset=at, length=length)
            else:
                fields = [None if v in nulls else v for v in record]
                yield Record(start, raw, fields, offset=at, length=length)

    def _stray_header(self, raw: str) -> str | None:
        """The header of the field of ``raw`` whose quote is out of place."""
        at = stray_column(raw, self.delimiter, self.quote, self.escape)
        return self.headers[at] if at is not None and at < len(self.headers) else None

    def close(self) -> None:
        """Nothing to release: the engine owns the stream."""


def _split_lines(texts: Iterator[str]) -> Iterator[str]:
    for text in texts:
        yield from io.StringIO(text, newline="")


class _Ambiguous:
    """The row path's records with a quote out of place, handed to the reader's
    ``set_aside`` as rejects, as the careful path makes them.

    Checking every record costs a parse of its quotes, so only the records of decoded
    blocks that :class:`QuoteCheck` finds a quote out of place in are checked (every
    record of a file the sample showed as mixed); a block that starts inside a record
    (a quoted line end across the cut) is checked record by record too.
    """

    def __init__(self, reader: CsvReader, out: Callable[[Reject], None], *, every: bool) -> None:
        self._reader, self._out, self._every = reader, out, every
        self._consumed: list[str] = []  # the physical lines of the record being read
        self._suspect = every  # the block being read may hold a quote out of place
        self._hot = every  # the record being read has (or may have) a line of such a block

    def lines(self, texts: Iterator[str]) -> Iterator[str]:
        r = self._reader
        for text in texts:
            if not self._every:
                # A fresh check: the block starts a record (else it is suspect anyway).
                fresh = QuoteCheck(r.delimiter, r.quote, r.escape, binary=False)
                self._suspect = bool(self._consumed) or fresh.feed(text)
            self._hot = self._hot or self._suspect  # the record going on, or the next
            for line in io.StringIO(text, newline=""):
                self._consumed.append(line)
                yield line

    def set_aside(self, line: int) -> bool:
        """Whether the record just read (starting on ``line``) went to the rejects."""
        if not self._hot:  # the common case, kept cheap
            self._consumed.clear()
            return False
        raw = "".join(self._consumed)
        self._consumed.clear()
        self._hot = self._suspect  # the next record starts in the block being read
        r = self._reader
        if not stray_quote(raw, r.delimiter, r.quote, r.escape):
            return False
        self._out(Reject(line, AMBIGUOUS, raw, column=r._stray_header(raw)))
        return True


def _preamble_auto(settings: dict[str, Any]) -> bool:
    """Whether a preamble detection is sure of is skipped: the job set neither
    ``skip_rows`` nor ``header = false``."""
    return settings["skip_rows"] is None and settings["header"] is not False


def _preamble_note(lines: list[str]) -> dict[str, Any]:
    """What the details and the file's log say of a preamble skipped."""
    shown = [line.rstrip("\r\n")[:60] for line in lines if line.strip()][:3]
    n = len(lines)
    said = (
        f"skipped {n} line{'s' if n != 1 else ''} before the header as a preamble "
        f"({'; '.join(repr(s) for s in shown)}): one value a line, unlike the table's "
        "records; set skip_rows in [format] to read them otherwise"
    )
    return {"lines": n, "text": shown, "said": said}


def _absent_byte(text: str) -> str:
    """A control character ``text`` never holds: COPY's quote when quoting is off."""
    for code in (*range(1, 9), *range(14, 32)):
        if chr(code) not in text:
            return chr(code)
    return "\x7f"


def _char(key: str, value: Any, *, auto: bool = False) -> str:
    if auto and value == "auto":
        return "auto"
    if value in ("\\t", "tab"):
        return "\t"
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise SpecError(
            f"'format.{key}' must be one character, not {value!r}",
            key=f"format.{key}",
            hint='e.g. ";" or "\\t"' + (' or "auto"' if auto else ""),
        )
    return value


class CsvFormat(Format):
    """Delimited text files (CSV, TSV, SSV …)."""

    name = "csv"
    extensions = (".csv", ".tsv", ".txt", ".psv", ".dat")
    options: ClassVar[dict[str, Option]] = {
        "type": Option(str, "csv", help="the format's name"),
        "encoding": Option(
            str, "auto", help='"auto", or a codec name such as "utf-8", "latin-1", "utf-16"'
        ),
        "delimiter": Option(str, "auto", help='"auto" picks among , ; tab |'),
        "quote": Option(
            str,
            "auto",
            help='the quote character; "" when quotes are text; "auto" reads the file',
        ),
        "escape": Option(
            str, None, help='escapes a quote in quotes; default: the quote, or "\\\\"'
        ),
        "header": Option(bool, True, help="the first record names the columns"),
        "skip_rows": Option(
            int,
            None,
            help="physical lines dropped before the header or data; unset: a preamble "
            "whose lines are all of another width than the table is skipped",
        ),
        "null_values": Option(
            list, [""], item=str, help='values read as NULL, e.g. ["", "NULL", "\\N", "NA"]'
        ),
    }

    def __init__(self, **settings: Any) -> None:
        merged = {k: o.default for k, o in self.options.items()} | settings
        merged["delimiter"] = _char("delimiter", merged["delimiter"], auto=True)
        if merged["quote"] != "":
            merged["quote"] = _char("quote", merged["quote"], auto=True)
        if merged["escape"] is not None:
            merged["escape"] = _char("escape", merged["escape"])
            if merged["quote"] == "":
                raise SpecError(
                    "'format.escape' needs a quote: quote = \"\" reads quotes as text",
                    key="format.escape",
                )
        if merged["delimiter"] == merged["quote"] != "auto" or (
            merged["quote"] == "auto" and merged["delimiter"] in "\"'"
        ):
            raise SpecError(
                "'format.delimiter' and 'format.quote' must differ", key="format.delimiter"
            )
        skip = merged["skip_rows"]
        if skip is not None and (not isinstance(skip, int) or skip < 0):
            raise SpecError("'format.skip_rows' must be 0 or more", key="format.skip_rows")
        if merged["encoding"] != "auto":
            try:
                resolve_encoding(merged["encoding"])
            except FormatError as exc:
                exc.key = "format.encoding"
                raise
        super().__init__(**merged)

    def open(self, stream: BinaryIO, ref: FileRef) -> CsvReader:
        return CsvReader(stream, ref, self.settings)


@hookimpl
def register_formats() -> list[type[Format]]:
    return [CsvFormat]
