"""Encoding and delimiter detection: pure functions over a file's first bytes.

Detection only ever sees a sample, so every guess here is the cheapest one that is right
for the files people actually have: a BOM wins, then UTF-8 (which almost never decodes by
accident), then charset-normalizer, nudged towards Windows-1252 when it cannot tell
Western European code pages apart.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from csvpg.errors import FormatError

__all__ = [
    "DELIMITERS",
    "PG_ENCODINGS",
    "UNDECODED",
    "Encoding",
    "detect_delimiter",
    "detect_encoding",
    "pg_encoding",
    "resolve_encoding",
]

#: Candidate delimiters, in the order that breaks ties.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

BOM_UTF8 = codecs.BOM_UTF8
#: Longest first: the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

#: Normalised Python codec name (``codecs.lookup(x).name``) → PostgreSQL's COPY name.
#: Written normalised (a test checks): looking each up would import every codec
#: module, CJK ones included, at each start.
PG_ENCODINGS: dict[str, str] = {
    "utf-8": "UTF8",
    "ascii": "UTF8",  # ASCII bytes are valid UTF-8; SQL_ASCII would skip validation
    "iso8859-1": "LATIN1",
    "iso8859-2": "LATIN2",
    "iso8859-3": "LATIN3",
    "iso8859-4": "LATIN4",
    "iso8859-9": "LATIN5",
    "iso8859-10": "LATIN6",
    "iso8859-13": "LATIN7",
    "iso8859-14": "LATIN8",
    "iso8859-15": "LATIN9",
    "iso8859-16": "LATIN10",
    "iso8859-5": "ISO_8859_5",
    "iso8859-6": "ISO_8859_6",
    "iso8859-7": "ISO_8859_7",
    "iso8859-8": "ISO_8859_8",
    "cp1250": "WIN1250",
    "cp1251": "WIN1251",
    "cp1252": "WIN1252",
    "cp1253": "WIN1253",
    "cp1254": "WIN1254",
    "cp1255": "WIN1255",
    "cp1256": "WIN1256",
    "cp1257": "WIN1257",
    "cp1258": "WIN1258",
    "cp866": "WIN866",
    "cp874": "WIN874",
    "koi8-r": "KOI8R",
    "koi8-u": "KOI8U",
    "shift_jis": "SJIS",
    "cp932": "SJIS",  # PostgreSQL's SJIS is Microsoft's variant
    "shift_jis_2004": "SHIFT_JIS_2004",
    "euc_jp": "EUC_JP",
    "euc_jis_2004": "EUC_JIS_2004",
    "euc_kr": "EUC_KR",
    "cp949": "UHC",
    "johab": "JOHAB",
    "gb2312": "EUC_CN",
    "gbk": "GBK",
    "gb18030": "GB18030",
    "big5": "BIG5",
    "cp950": "BIG5",
}

# PostgreSQL spellings a user may write instead of a Python one.
_FROM_PG: dict[str, str] = {
    "utf8": "utf-8",
    "sql_ascii": "ascii",
    "sjis": "cp932",
    "uhc": "cp949",
    "euc_cn": "gb2312",
    **{f"win{n}": f"cp{n}" for n in (866, 874, *range(1250, 1259))},
    "latin5": "iso8859-9",
    "latin6": "iso8859-10",
    "latin7": "iso8859-13",
    "latin8": "iso8859-14",
    "latin9": "iso8859-15",
    "latin10": "iso8859-16",
    **{f"iso_8859_{n}": f"iso8859-{n}" for n in (5, 6, 7, 8)},
    "koi8r": "koi8-r",
    "koi8u": "koi8-u",
}

#: What a byte that did not decode becomes under errors="surrogateescape".
UNDECODED = re.compile("[\udc80-\udcff]")

_BAD_RUN = re.compile("[\udc80-\udcff]+")
_CUT_SEQUENCE = re.compile("[\udcc2-\udcf4][\udc80-\udcbf]{1,2}")

#: Single-byte code pages charset-normalizer often cannot tell apart; the first present wins.
_WESTERN = ("cp1252", "iso8859-1", "iso8859-15")

_ENCODING_HINT = (
    'use a Python codec name such as "utf-8", "utf-8-sig", "latin-1", "windows-1252", '
    '"utf-16", "shift_jis", or "auto"'
)


@dataclass(frozen=True)
class Encoding:
    """A file's encoding: how Python decodes it and what COPY calls it."""

    #: Normalised Python codec name (``utf-8``, ``cp1252``, ``utf-16-le`` …).
    codec: str
    #: PostgreSQL's ``COPY … ENCODING`` name; ``None`` when Python must transcode.
    pg: str | None
    #: The byte-order mark at the start of the file, ``b""`` if none.
    bom: bytes = b""
    #: Why the guess is uncertain (``""`` when it is not): said by check, infer, --explain.
    doubt: str = ""

    @property
    def transcode(self) -> bool:
        """True when PostgreSQL cannot read these bytes and they go through UTF-8."""
        return self.pg is None


def pg_encoding(codec: str) -> str | None:
    """PostgreSQL's name for a Python codec (any alias), or ``None``."""
    try:
        return PG_ENCODINGS.get(codecs.lookup(codec).name)
    except LookupError:
        return None


def _encoding(codec: str, bom: bytes = b"") -> Encoding:
    name = codecs.lookup(codec).name
    return Encoding(codec=name, pg=PG_ENCODINGS.get(name), bom=bom)


def _charset_normalizer(sample: bytes) -> str | None:
    """Best codec from charset-normalizer, preferring Windows-1252 among equal guesses."""
    from charset_normalizer import from_bytes

    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return None
    close = [
        m
        for m in results
        if m.chaos <= best.chaos + 0.001 and m.coherence >= best.coherence - 0.001
    ]
    candidates = {codecs.lookup(c).name for m in close for c in m.could_be_from_charset}
    for western in _WESTERN:
        if western in candidates:
            return western
    return str(best.encoding)


def _line_cut(sample: bytes) -> bytes:
    """The sample up to its last newline (and the NULs of a UTF-16/32 LE newline)."""
    end = sample.rfind(b"\n") + 1
    while 0 < end < len(sample) and sample[end] == 0 and sample[end - 1] in (0, 10):
        end += 1
    return sample[:end] if end else sample


def _mostly_utf8(sample: bytes) -> str:
    """Why a sample that is UTF-8 but for a few bytes is UTF-8 all the same; ``""`` if not.

    Bytes of a single-byte code page almost never form valid UTF-8 sequences, so when
    the sample holds more of those than bytes that do not decode, it is UTF-8 with some
    damage. Reading it so keeps every good row right, and the lines with the bad bytes
    become rejects; reading it as Windows-1252 would turn every good accented row into
    mojibake (``cafÃ©``) without a word.
    """
    text = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape").decode(sample)
    bad = len(UNDECODED.findall(text))
    good = sum(1 for ch in text if ord(ch) > 0x7F) - bad
    runs = _BAD_RUN.findall(text)
    # A cut multibyte sequence (a lead byte and continuation bytes) is UTF-8 damage too.
    if runs and all(_CUT_SEQUENCE.fullmatch(r) for r in runs):
        good = max(good, bad)
    if good <= 0 or bad > good:
        return ""
    return (
        f"UTF-8, but {bad} of the first {len(sample)} bytes do not decode "
        f"(against {good} characters that do): the lines holding them "
        "become rejects; set encoding in [format] if the file is in another encoding"
    )


def detect_encoding(sample: bytes) -> Encoding:
    """Guess the encoding of a file from its first bytes.

    A truncated multibyte sequence at the very end of ``sample`` is allowed, since a
    sample is usually cut at an arbitrary byte.
    """
    for bom, bom_codec in _BOMS:
        if sample.startswith(bom):
            return _encoding(bom_codec, bom)
    if sample.isascii():
        return _encoding("utf-8")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return _encoding("utf-8")
    doubt = _mostly_utf8(sample)
    if doubt:
        return replace(_encoding("utf-8"), doubt=doubt)
    codec: str | None = _charset_normalizer(sample)
    if codec is None and len(_line_cut(sample)) < len(sample):
        codec = _charset_normalizer(_line_cut(sample))
    if codec is not None:
        try:
            codecs.getincrementaldecoder(codec)().decode(sample, final=False)
        except (UnicodeDecodeError, LookupError):
            codec = None
    # Latin-1 decodes any byte: the last resort that never fails on the row path.
    return _encoding(codec or "latin-1")


def resolve_encoding(name: str, sample: bytes = b"") -> Encoding:
    """The :class:`Encoding` for a user-given name (Python or PostgreSQL spelling).

    ``sample`` (the file's first bytes) decides the byte order of ``utf-16``/``utf-32``
    and whether a BOM is present to strip; ``utf-8-sig`` is plain UTF-8 with its BOM.
    """
    key = name.strip().lower()
    try:
        info = codecs.lookup(_FROM_PG.get(key.replace("-", "_"), key))
    except LookupError:
        raise FormatError(f"unknown encoding {name!r}", hint=_ENCODING_HINT) from None
    if not getattr(info, "_is_text_encoding", True):
        raise FormatError(f"{name!r} is not a text encoding", hint=_ENCODING_HINT)
    codec = info.name
    if codec in ("utf-8", "utf-8-sig"):
        return _encoding("utf-8", BOM_UTF8 if sample.startswith(BOM_UTF8) else b"")
    for width in ("16", "32"):
        if not codec.startswith(f"utf-{width}"):
            continue
        le = codecs.BOM_UTF16_LE if width == "16" else codecs.BOM_UTF32_LE
        be = codecs.BOM_UTF16_BE if width == "16" else codecs.BOM_UTF32_BE
        if codec == f"utf-{width}":  # byte order from the BOM; little-endian without one
            codec = f"utf-{width}-be" if sample.startswith(be) else f"utf-{width}-le"
        bom = le if codec.endswith("-le") else be
        return _encoding(codec, bom if sample.startswith(bom) else b"")
    return _encoding(codec)


def _records(
    text: str, delimiter: str, quote: str, escape: str | None, final: bool, limit: int
) -> list[list[str]]:
    """Complete records of ``text``: a last one cut off by the sample's end is dropped."""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar=quote,
        escapechar=escape if escape and escape != quote else None,
        doublequote=not escape or escape == quote,
        strict=False,
    )
    records: list[list[str]] = []
    try:
        records.extend(itertools.islice(reader, limit + 1))
    except csv.Error:
        return records  # a stray quote ran away: the records before it still count
    if len(records) > limit:
        return records[:limit]
    if not final and len(records) > 1 and not text.endswith(("\n", "\r")):
        records.pop()
    return records


def detect_delimiter(
    text: str,
    quote: str = '"',
    *,
    escape: str | None = None,
    final: bool = False,
    limit: int = 2000,
) -> str:
    """Choose the delimiter among ``, ; \\t |`` from a decoded sample.

    The first record (the header, usually) sets the width: the winner splits it into
    two fields or more and gives the largest share of records that same width, ties
    going to the earlier candidate. ``final`` says the sample is the whole file, so its
    last record counts. A file no candidate splits is single-column: the first
    candidate that splits no record at all, so COPY never sees a stray delimiter.
    """
    best, best_score = "", -1.0
    unsplit: list[str] = []
    for delimiter in DELIMITERS:
        counts = [len(r) for r in _records(text, delimiter, quote, escape, final, limit) if r]
        if not counts:
            continue
        if max(counts) == 1:
            unsplit.append(delimiter)
            continue
        if counts[0] < 2:
            continue
        score = counts.count(counts[0]) / len(counts)
        if score > best_score:
            best, best_score = delimiter, score
    if not best:
        best = unsplit[0] if unsplit else ","
    return best


# -- the dialect -------------------------------------------------------------------------

#: Delimiters :func:`detect_dialect` weighs; a space only wins where nothing else splits.
DIALECT_DELIMITERS: tuple[str, ...] = (*DELIMITERS, " ")
#: Records the dialect is judged on, and the share of them that must agree on a width for
#: the lines before them to be a preamble (a banner, a title, notes).
_JUDGED = 200
_AGREE = 0.9
#: A preamble longer than this is no preamble: the file is ragged.
MAX_PREAMBLE = 30


@dataclass(frozen=True)
class Dialect:
    """How a delimited text file is written, as :func:`detect_dialect` reads it."""

    delimiter: str
    #: ``""``: the file's quotes are literal characters (quoting off).
    quote: str
    #: ``quote`` for doubled quotes, ``"\\"`` for backslash escapes, ``""`` without quoting.
    escape: str
    #: Physical lines before the table: blank lines, a banner, a title.
    skip_rows: int
    #: The first record after ``skip_rows`` names the columns.
    header: bool
    #: Quotes inside unquoted fields next to quoted fields: such records are ambiguous.
    mixed: bool
    evidence: tuple[str, ...] = ()
    #: A preamble (``skip_rows`` > 0) whose records each hold one value at most (a
    #: title, a note: no delimiter splits them into values) and none is as wide as the
    #: table: lines that are surely no data.
    banner: bool = False


def csv_options(delimiter: str, quote: str, escape: str | None) -> dict[str, object]:
    """``csv.reader`` keywords for a dialect; ``quote = ""`` reads quotes as text."""
    if not quote:
        return {"delimiter": delimiter, "quoting": csv.QUOTE_NONE, "strict": False}
    backslash = bool(escape) and escape != quote
    return {
        "delimiter": delimiter,
        "quotechar": quote,
        "escapechar": escape if backslash else None,
        "doublequote": not backslash,
        "strict": False,
    }


def _quoted_rx(quote: str, escape: str | None) -> re.Pattern[str]:
    q = re.escape(quote)
    if escape and escape != quote:
        e = re.escape(escape)
        return re.compile(f" *{q}(?:[^{q}{e}]|{e}.)*+{q}", re.S)
    return re.compile(f" *{q}(?:[^{q}]|{q}{q})*+{q}")


def quote_usage(
    text: str, delimiter: str, quote: str, escape: str | None = None, *, final: bool = True
) -> tuple[int, int]:
    """(fields that open with a quote, quotes where CSV allows none) in ``text``.

    A quote inside an unquoted field (``Robert "Bumps" Blackwell``) or text after a
    closing quote is a stray: PostgreSQL's CSV reading takes every quote as a toggle, so
    such a field is read changed, and may swallow the lines after it.
    """
    quoted = stray = 0
    for opens, bad in _field_quotes(text, delimiter, quote, escape, final=final, sparse=True):
        quoted += opens
        stray += bad
    return quoted, stray


def stray_column(raw: str, delimiter: str, quote: str, escape: str | None = None) -> int | None:
    """The position (0-based) of the first field of one record that has a quote where
    CSV allows none, or ``None``."""
    for i, (_, bad) in enumerate(_field_quotes(raw, delimiter, quote, escape)):
        if bad:
            return i
    return None


def _field_quotes(
    text: str,
    delimiter: str,
    quote: str,
    escape: str | None,
    *,
    final: bool = True,
    sparse: bool = False,
) -> Iterator[tuple[bool, bool]]:
    """For each field of ``text``: (opens with a quote, holds a stray quote). ``sparse``:
    only the fields that hold a quote (the others are ``(False, False)``): a sample's
    fields are mostly plain, and stepping over them one by one is most of the cost."""
    ends = delimiter + "\r\n"
    quoted_rx = _quoted_rx(quote, escape)
    plain_rx = re.compile(f"[^{re.escape(ends)}]*")
    pos, n = 0, len(text)
    while pos < n:
        if sparse:
            # The field holding the next quote starts after the last end before it: no
            # quoted field (which could hold an end) lies between.
            first = text.find(quote, pos)
            if first < 0:
                return
            pos = max(
                pos,
                text.rfind(delimiter, pos, first) + 1,
                text.rfind("\n", pos, first) + 1,
                text.rfind("\r", pos, first) + 1,
            )
        at = pos
        while at < n and text[at] == " ":
            at += 1
        opens = at < n and text[at] == quote
        m = quoted_rx.match(text, pos) if opens else None
        if opens and m is None:
            yield False, final  # never closed: the sample may end inside it
            return
        if m is not None and (m.end() == n or text[m.end()] in ends):
            pos = m.end()
            yield True, False
        else:
            start = m.end() if m is not None else pos
            end = plain_rx.match(text, start).end()  # type: ignore[union-attr]
            yield m is not None, m is not None or quote in text[pos:end]
            pos = end
        if pos < n:
            pos += 2 if text[pos : pos + 2] == "\r\n" else 1


def stray_quote(raw: str, delimiter: str, quote: str, escape: str | None = None) -> bool:
    """Whether one record's raw text has a quote where CSV allows none."""
    return quote in raw and quote_usage(raw, delimiter, quote, escape)[1] > 0


def stray_rx(delimiter: str, quote: str) -> re.Pattern[str]:
    """A quote between two characters of a field: in no well-formed CSV."""
    other = f"[^{re.escape(delimiter + quote)}\\r\\n]"
    q = re.escape(quote)
    # The quote first, its neighbours looked at around it: a pattern that starts with a
    # literal is searched for as fast as bytes.find; one that starts with a class is
    # tried at every position (25x slower, on every MiB of the fast path).
    return re.compile(f"{q}(?<={other}{q})(?={other})")


class QuoteCheck:
    """Whether CSV text, fed block by block (bytes or str), quotes only where CSV allows:
    a quote opens a field (after a delimiter or a line end) and closes it (before one),
    and inside quotes a quote is doubled (or escaped).

    Any other quote is one PostgreSQL's COPY and Python's ``csv`` read differently: COPY
    takes every quote as a toggle, so a quote that only *ends* an unquoted field
    (``…,5",…``) opens a quoted run there that glues the lines after it into one field.
    The check keeps one state between blocks (outside a field's quotes, inside, or just
    after a quote or an escape that the next block decides), so a boundary hides
    nothing. A quote never closed at the end is left to COPY, which says
    "unterminated CSV quoted field" (it never loads such a file). Its cost is one
    possessive regex per block: runs of other characters and whole quoted fields are
    consumed inside the regex engine.
    """

    _OUT, _IN, _AFTER_QUOTE, _AFTER_ESCAPE = range(4)

    def __init__(self, delimiter: str, quote: str, escape: str | None, *, binary: bool) -> None:
        self._backslash = bool(escape) and escape != quote
        self._outside, self._inside = _quote_patterns(delimiter, quote, escape, binary)

        def char(c: str) -> Any:
            return c.encode() if binary else c

        # No escape state with doubled quotes: a quote there is a quote.
        self._quote, self._escape = char(quote), char((escape or "") if self._backslash else "")
        self._ends = (char(delimiter), char("\r"), char("\n"))
        self._before = char("\n")  # the data starts on a line of its own
        self._state = self._OUT
        #: A quote was found that CSV does not allow: the state after it is unknown.
        self.found = False

    def feed(self, block: Any) -> bool:
        """Whether ``block`` (or an earlier one) holds a quote CSV does not allow."""
        if self.found or not block:
            return self.found
        if self._state == self._OUT and self._quote not in block:
            self._before = block[-1:]
            return False
        text = self._before + block
        self._before = block[-1:]
        self.found = not self._scan(text, 1)
        return self.found

    def _scan(self, text: Any, pos: int) -> bool:
        """Scan ``text`` from ``pos`` on in the current state; False at a bad quote."""
        n = len(text)
        state = self._state
        if state == self._AFTER_ESCAPE:
            pos, state = pos + 1, self._IN
        elif state == self._AFTER_QUOTE:
            nxt = text[pos : pos + 1]
            if nxt == self._quote and not self._backslash:
                pos, state = pos + 1, self._IN  # a doubled quote
            elif nxt in self._ends:
                state = self._OUT  # the quote closed the field
            else:
                return False  # text after a closing quote
        while True:
            if state == self._OUT:
                pos = self._outside.match(text, pos).end()  # type: ignore[union-attr]
                if pos == n:
                    break
                # The regex stops only at a quote: one opening a field it cannot see
                # close in this block, or one out of place.
                if text[pos - 1 : pos] not in self._ends:
                    return False
                pos, state = pos + 1, self._IN
            pos = self._inside.match(text, pos).end()  # type: ignore[union-attr]
            if pos == n:
                break
            if pos + 1 == n:  # the block ends with a quote or an escape: the next decides
                escaped = self._backslash and text[pos:] == self._escape
                state = self._AFTER_ESCAPE if escaped else self._AFTER_QUOTE
                pos = n
                break
            if text[pos + 1 : pos + 2] not in self._ends:
                return False
            pos, state = pos + 1, self._OUT
        self._state = state
        return True


@functools.cache
def _quote_patterns(
    delimiter: str, quote: str, escape: str | None, binary: bool
) -> tuple[re.Pattern[Any], re.Pattern[Any]]:
    """:class:`QuoteCheck`'s two patterns (outside quotes, inside them), built once per
    dialect: a run of small files makes a check for each."""
    d, q = re.escape(delimiter), re.escape(quote)
    # Loops unrolled ("normal* (special normal*)*"): twice as fast as alternatives.
    if escape and escape != quote:
        e = re.escape(escape)
        body = f"[^{q}{e}]*+(?:{e}.[^{q}{e}]*+)*+"
    else:
        body = f"[^{q}]*+(?:{q}{q}[^{q}]*+)*+"
    ends = f"[{d}\\r\\n]"
    outside = f"[^{q}]*+(?:(?<={ends}){q}{body}{q}(?={ends})[^{q}]*+)*+"

    def compiled(pattern: str) -> re.Pattern[Any]:
        return re.compile(pattern.encode() if binary else pattern, re.S)

    return compiled(outside), compiled(body)


@dataclass
class _Candidate:
    delimiter: str
    quote: str
    escape: str
    mixed: bool
    strays: int = 0
    width: int = 1
    start: int = 0  # records before the table
    skip_lines: int = 0  # physical lines before it
    banner: bool = False  # every record before it is one value, and not as wide
    agree: int = 0
    total: int = 0
    rows: list[list[str]] = field(default_factory=list)

    @property
    def share(self) -> float:
        return self.agree / self.total if self.total else 0.0

    def score(self) -> tuple[float, ...]:
        # Consistent records first (DuckDB's sniffer), then more columns, then the
        # candidate order; a space only where it is the one delimiter that splits.
        # Lines left out as a preamble and quotes that fit no CSV count against it.
        # A preamble that appears only when quotes are read as text is doubly doubtful:
        # a quoted field with line ends in it, read so, makes lines that look like one.
        split = self.width > 1
        preamble = self.start * (2 if self.quote == "" else 1)
        wrong = self.total - self.agree + preamble + self.strays
        return (split, self.agree - wrong, self.width)


def _quoting(text: str, delimiter: str, final: bool) -> tuple[str, str, int]:
    """(quote, escape, strays) for one delimiter, from how the sample's fields use
    quotes; strays are quotes inside unquoted fields beside quoted fields."""
    quoted, stray = quote_usage(text, delimiter, '"', final=final) if '"' in text else (0, 0)
    if stray and '\\"' in text:
        bq, bs = quote_usage(text, delimiter, '"', "\\", final=final)
        if bs < stray and bq:
            return '"', "\\", bs
    if quoted:
        return '"', '"', stray
    # Single quotes quote only where a quoted field needs it (holds the delimiter):
    # 'a' alone may just as well be a value with its quotes.
    if "'" in text and re.search(f"'[^'\r\n]*{re.escape(delimiter)}[^']*'", text):
        sq, ss = quote_usage(text, delimiter, "'", final=final)
        if sq and not ss:
            return "'", "'", 0
    if stray:
        return "", "", 0  # quotes, but no field opens with one: they are text
    return '"', '"', 0


def _candidate(text: str, delimiter: str, final: bool) -> _Candidate:
    if delimiter not in text:
        return _Candidate(delimiter, '"', '"', False)  # splits nothing: one column
    quote, escape, strays = _quoting(text, delimiter, final)
    c = _read_as(text, _Candidate(delimiter, quote, escape, strays > 0, strays), final)
    if quote == "'":  # single quotes only where they make the better table
        plain = _read_as(text, _Candidate(delimiter, '"', '"', False), final)
        if plain.score() >= c.score():
            return plain
    return c


def _read_as(text: str, c: _Candidate, final: bool) -> _Candidate:
    """``c`` with the widths of the sample's records read with its dialect."""
    delimiter, quote, escape = c.delimiter, c.quote, c.escape
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines, **csv_options(delimiter, quote, escape))  # type: ignore[arg-type]
    records: list[tuple[list[str], int]] = []  # (fields, physical lines before it)
    before = 0
    try:
        for record in itertools.islice(reader, _JUDGED + 1):
            records.append((record, before))
            before = reader.line_num
    except csv.Error:
        pass
    if not final and len(records) > 1 and not text.endswith(("\n", "\r")):
        records.pop()  # cut off by the sample's end
    records = [(r, at) for r, at in records[:_JUDGED] if r]  # blank lines are no records
    if not records:
        return c
    widths = [len(r) for r, _ in records]
    counts: dict[int, int] = {}
    for w in widths:
        counts[w] = counts.get(w, 0) + 1
    c.width = max(counts, key=lambda w: (w > 1, counts[w], w))
    first = widths.index(c.width)
    # A title an export padded to the table's width (``Title,,,,``) is a preamble too.
    while (
        c.width > 2
        and first + 1 < len(records)
        and sum(bool(v.strip()) for v in records[first][0]) <= 1
        and widths[first + 1] == c.width
    ):
        first += 1
    # The records just after a preamble must agree (notes may follow the table).
    window = widths[first : first + 20]
    if first and (
        first > MAX_PREAMBLE or len(window) < 3 or window.count(c.width) < _AGREE * len(window)
    ):
        first = 0  # ragged, not a preamble
    c.start, c.skip_lines = first, records[first][1]
    c.banner = first > 0 and all(
        len(r) != c.width and sum(bool(v.strip()) for v in r) <= 1 for r, _ in records[:first]
    )
    c.total = len(widths) - first
    c.agree = widths[first:].count(c.width)
    c.rows = [r for r, _ in records[first:]]
    return c


def _kind(value: str) -> str:
    """A value's kind for header detection: "" (empty), integer, grouped (``2,666``),
    number, date or text."""
    v = value.strip()
    if not v:
        return ""
    m = _KIND.fullmatch(v)
    kind = (m.lastgroup or "text") if m else "text"
    return "date" if kind == "dashed" else kind


#: A date's time, and dates whose first separator is ``-`` or ``/`` (no number holds
#: one after a digit) or any of ``-/.``.
_TIME = r"(?:[T ]\d{1,2}:\d{2}.*)?"
_DASHED = r"\d{1,4}[-/]\d{1,2}[-/.]\d{1,4}" + _TIME
_DATE = r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}" + _TIME
#: The kinds as one pattern: header detection reads every value of a sample, and one
#: match per value instead of up to four halves its cost. They are tried in the order
#: integer, grouped, number, date (``1.2.3`` is a number), but a dashed date comes first,
#: sparing it three failed tries. An integer's digits are ASCII (what int() takes); the
#: other kinds take any digit.
_KIND = re.compile(
    rf"(?P<dashed>\s*{_DASHED}\s*)"
    r"|(?P<integer>[+-]*[0-9]+)"
    r"|(?P<grouped>[+-]?\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?)"
    r"|(?P<number>\s*[+-]?(?:\d+(?:[.,]\d+)*|\d*[.,]\d+)(?:[eE][+-]?\d+)?%?\s*)"
    rf"|(?P<date>\s*{_DATE}\s*)"
)
#: A decimal with a point that no grouping could have made (``1.234`` is grouped): four
#: digits or more before it, or not three after it.
_DECIMAL = r"[+-]?(?:[0-9]{4,}\.[0-9]+|[0-9]+\.(?:[0-9]{1,2}|[0-9]{4,}))"
#: A column of plain integers, of decimals, or of dashed dates (ASCII digits, no space
#: around): what most typed columns are, each matched at once on its values joined by
#: line ends, where :func:`_kind` of each value gives the same.
_WHOLE_COLUMNS = [
    (re.compile(rf"{whole}(?:\n{whole})*"), kind)
    for whole, kind in (
        (r"[+-]*[0-9]+", "integer"),
        (_DECIMAL, "number"),
        (_DASHED.replace(r"\d", "[0-9]"), "date"),
    )
]
_NUMERIC = ("integer", "grouped", "number")


def _column_kind(kinds: list[str]) -> str:
    """What ≥ 90 % of a column's non-empty values are: integer, number, date, or ""."""
    if not kinds:
        return ""
    if kinds.count("integer") >= _AGREE * len(kinds):
        return "integer"
    if sum(map(kinds.count, _NUMERIC)) >= _AGREE * len(kinds):
        # Thousands grouped: an ungrouped 2000 above them is a name (a year), no value.
        return "grouped" if kinds.count("grouped") * 2 >= len(kinds) else "number"
    if kinds.count("date") >= _AGREE * len(kinds):
        return "date"
    return ""


def _kinds(rows: list[list[str]], j: int) -> list[str]:
    """The kinds of column ``j``'s non-empty values, cut short once more than
    ``1 - _AGREE`` of ``rows`` (and one, against rounding) are text: then no kind can be
    ``_AGREE`` of them, and :func:`_column_kind` of the values read so far is "" as it
    is of them all."""
    values = [v for r in rows if (v := r[j])]  # (an empty value has no kind)
    joined = "\n".join(values)
    if values and joined.count("\n") == len(values) - 1:  # no value holds a line end
        for whole, kind in _WHOLE_COLUMNS:
            if whole.fullmatch(joined):
                return [kind] * len(values)
    kinds: list[str] = []
    texts, most = 0, (1 - _AGREE) * len(rows) + 1
    for r in rows:
        k = _kind(r[j])
        if k:
            kinds.append(k)
            if k == "text":
                texts += 1
                if texts > most:
                    break
    return kinds


def _fits(value: str, kind: str) -> bool:
    mine = _kind(value)
    if mine in ("", kind):
        return True
    if kind == "number":
        return mine in _NUMERIC
    if kind == "grouped":
        return mine == "number" or (mine == "integer" and len(value.strip().lstrip("+-")) <= 3)
    return False


def _is_year(value: str) -> bool:
    v = value.strip()
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    return v.isascii() and v.isdigit() and 1800 <= int(v) <= 2100


def _years_above(first: list[str], rest: list[list[str]], typed: list[tuple[int, str]]) -> bool:
    """A wide statistical table: the first record's numbers are years, rising along the
    row (three or more), above integer columns whose values are mostly no years."""
    cols = [j for j, kind in typed if kind in _NUMERIC and _is_year(first[j])]
    years = [int(first[j]) for j in cols]
    if len(years) < 3 or years != sorted(set(years)):
        return False
    return all(sum(_is_year(r[j]) for r in rest) * 2 < len(rest) for j in cols)


def _has_header(rows: list[list[str]], width: int) -> tuple[bool, str]:
    """Whether the first row names the columns: DuckDB's and CleverCSV's test, the first
    row's types against the rest's."""
    if len(rows) < 2:
        values = [v for v in rows[0] if v.strip()] if rows else []
        if values and sum(_kind(v) in (*_NUMERIC, "date") for v in values) * 2 >= len(values):
            return False, "no header: the one record holds numbers or dates, no names"
        return True, "one record: taken as the header"
    first, rest = rows[0], [r for r in rows[1:] if len(r) == width]
    typed = []
    for j in range(min(width, len(first))):
        kind = _column_kind(_kinds(rest, j))
        if kind:
            typed.append((j, kind))
    if not typed:
        return True, "every column holds text: the first record is taken as the header"
    if _years_above(first, rest, typed):
        return True, "header: the first record names years above columns of other numbers"
    if all(_fits(first[j], kind) for j, kind in typed):
        return False, (
            f"no header: the first record's values fit the types of the {len(typed)} typed "
            "column(s) below it"
        )
    return True, "header: the first record holds text above typed columns"


def detect_dialect(text: str, *, final: bool = False, delimiter: str | None = None) -> Dialect:
    """Delimiter, quoting, preamble and header of a decoded sample.

    Every candidate delimiter (``, ; \\t | space``) reads the sample with the quoting its
    fields show (quoted fields, backslash escapes, single quotes, or quotes that are just
    text); the winner gives the most records of one width (a table), after at most
    :data:`MAX_PREAMBLE` lines of preamble. ``delimiter`` fixes it instead.
    """
    if delimiter:
        tried = [_candidate(text, delimiter, final)]
    else:
        tried = [_candidate(text, d, final) for d in DELIMITERS]
        # A space splits most text, so it is the dearest reading: it is made only where
        # it could count, no other delimiter making a table (see below).
        if not any(c.width > 1 and c.share >= 0.5 for c in tried):
            tried.append(_candidate(text, " ", final))
    others = [c for c in tried if c.delimiter != " "]
    # Spaces are in most text: a space delimiter only where no other one makes a table.
    if any(c.width > 1 and c.share >= 0.5 for c in others):
        tried = others
    tried = [c for c in tried if c.delimiter != " " or _space_table(c)]
    tried = tried or others
    # Quotes read as text, with lines left out as a preamble, lose to a reading whose
    # quoted fields pair and whose every record, from the first line, has one width: the
    # line ends inside a quoted field made that table, not the file.
    if any(
        c.quote and not c.mixed and c.width > 1 and c.start == 0 and c.share == 1.0 for c in tried
    ):
        tried = [c for c in tried if c.quote or not c.start] or tried
    best = max(tried, key=lambda c: c.score())  # max keeps the first of equals
    if best.width == 1 and not delimiter:
        # One column: the first delimiter no record holds, so COPY never splits one.
        best = next((c for c in others if c.delimiter not in text), best)
    header, why = _has_header(best.rows, best.width)
    evidence = [
        f"delimiter {best.delimiter!r}: {best.agree} of {best.total} records have "
        f"{best.width} fields",
        _quote_note(best),
        why,
    ]
    if best.skip_lines:
        evidence.append(f"skip_rows = {best.skip_lines}: the lines before the table")
    return Dialect(
        best.delimiter,
        best.quote,
        best.escape,
        best.skip_lines,
        header,
        best.mixed,
        tuple(evidence),
        banner=best.banner,
    )


def _space_table(c: _Candidate) -> bool:
    """Spaces make a table when most records agree on its width and no field is empty:
    an empty field would be two spaces in a row, which people write to align columns
    (or a value that is a space), never to leave one out."""
    return c.share >= _AGREE and c.agree > 1 and all(v != "" for row in c.rows for v in row)


def _quote_note(c: _Candidate) -> str:
    if not c.quote:
        return 'quote = "": no field opens with a quote, so the quotes are text'
    if c.mixed:
        return (
            f"quote {c.quote!r}, but some quotes stand inside unquoted fields: those "
            "records are ambiguous and become rejects"
        )
    if c.escape != c.quote:
        return f"quote {c.quote!r} with {c.escape!r} escapes"
    return f"quote {c.quote!r}"
