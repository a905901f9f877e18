"""The csv format without PostgreSQL: corpus files, edge cases and round-trip properties."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from csvpg.builtin import format_csv
from csvpg.builtin.format_csv import CsvFormat, CsvReader
from csvpg.detect import DELIMITERS, PG_ENCODINGS
from csvpg.errors import FormatError, SpecError
from csvpg.interfaces import FileRef
from tests.conftest import CORPUS

SPECTRUM = CORPUS / "csv-spectrum"
#: PostgreSQL encoding name → a Python codec, to read what iter_bytes hands to COPY.
PY_CODEC = {pg: codec for codec, pg in reversed(PG_ENCODINGS.items())}


def open_bytes(data: bytes, name: str = "mem.csv", **settings: Any) -> CsvReader:
    return CsvFormat(**settings).open(io.BytesIO(data), FileRef(url=f"memory://{name}", name=name))


def open_path(path: Path, **settings: Any) -> tuple[CsvReader, Any]:
    handle = open(path, "rb")  # noqa: SIM115 - closed by the caller
    ref = FileRef(url=str(path), name=path.name, size=path.stat().st_size)
    return CsvFormat(**settings).open(handle, ref), handle


def data_lines(data: bytes) -> bytes:
    """The bytes after a one-line header: what iter_bytes hands COPY."""
    return data[len(next(io.BytesIO(data), b"")) :]


def rows_of(reader: CsvReader) -> list[list[str | None]]:
    return [row for batch in reader.iter_batches() for row in batch]


def read_path(path: Path, **settings: Any) -> tuple[CsvReader, list[list[str | None]]]:
    reader, handle = open_path(path, **settings)
    with handle:
        return reader, rows_of(reader)


def nulls(table: list[list[str]]) -> list[list[str | None]]:
    """The row path's rule: every empty field is None."""
    return [[v or None for v in row] for row in table]


class Trickle(io.RawIOBase):
    """A non-seekable stream whose reads return at most ``step`` bytes, like a socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos : self._pos + n]
        self._pos += len(out)
        return out

    def seekable(self) -> bool:
        return False


@contextlib.contextmanager
def sizes(sample: int, block: int) -> Iterator[None]:
    """Shrink the sample and block sizes so small inputs cross every boundary."""
    old = format_csv.SAMPLE_SIZE, format_csv.BLOCK_SIZE
    format_csv.SAMPLE_SIZE, format_csv.BLOCK_SIZE = sample, block
    try:
        yield
    finally:
        format_csv.SAMPLE_SIZE, format_csv.BLOCK_SIZE = old


def copy_rows(
    reader: CsvReader, again: Callable[[], CsvReader] | None = None
) -> list[list[str | None]]:
    """What COPY would see: iter_bytes decoded by dialect.encoding, parsed by ``csv``;
    where iter_bytes refuses (COPY would misread them), what the careful path reads
    from a fresh reader (``again``)."""
    dialect = reader.dialect
    assert dialect is not None
    try:
        data = b"".join(reader.iter_bytes())
    except FormatError as exc:
        # COPY would read these bytes otherwise than csvpg: the file goes row by row.
        assert again is not None and "blank line in a one-column file" in exc.message
        return [r.fields for r in again().iter_records() if r.fields is not None]
    text = data.decode(PY_CODEC[dialect.encoding])
    backslash = dialect.escape != dialect.quote
    parsed = list(
        csv.reader(
            io.StringIO(text, newline=""),
            delimiter=dialect.delimiter,
            quotechar=dialect.quote,
            escapechar=dialect.escape if backslash else None,
            doublequote=not backslash,
        )
    )
    if dialect.header:
        parsed = parsed[1:]
    return [nulls([r])[0] if r else [None] for r in parsed]


# -- csv-spectrum ------------------------------------------------------------------------


SPECTRUM_NAMES = (
    sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv")) if SPECTRUM.is_dir() else []
)


@pytest.mark.parametrize("name", SPECTRUM_NAMES)
def test_csv_spectrum(name: str) -> None:
    expected = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    reader, rows = read_path(SPECTRUM / "csvs" / f"{name}.csv")
    assert reader.headers == list(expected[0])
    # Quoted empties ("") are "" upstream; the row path makes every empty field None.
    assert [[v if v is not None else "" for v in row] for row in rows] == [
        list(record.values()) for record in expected
    ]
    assert reader.details["delimiter"] == ","
    assert reader.details["encoding"] == "utf-8"


@pytest.mark.parametrize("name", SPECTRUM_NAMES)
def test_csv_spectrum_bytes_match_rows(name: str) -> None:
    path = SPECTRUM / "csvs" / f"{name}.csv"
    reader, handle = open_path(path)
    with handle:
        # No BOM, no skipped lines: COPY gets the file as it is but for the header,
        # which csvpg reads and skips itself.
        assert b"".join(reader.iter_bytes()) == data_lines(path.read_bytes())
    reader, rows = read_path(path)
    again, handle = open_path(path)
    with handle:
        assert copy_rows(again) == rows


# -- duckdb and messytables corpus ---------------------------------------------------------


def test_utf8_bom_is_removed() -> None:
    path = CORPUS / "duckdb/auto/utf8bom.csv"
    reader, rows = read_path(path)
    assert reader.headers == ["id", "name"]
    assert rows == [["1", "Mark"], ["2", "Hannes"]]
    assert reader.details["bom"] is True and reader.details["encoding"] == "utf-8"
    again, handle = open_path(path)
    with handle:
        assert b"".join(again.iter_bytes()) == data_lines(path.read_bytes()[3:])
    assert again.dialect == format_csv.CsvDialect(",", '"', '"', "UTF8", False)


def test_messytables_bom_header_only() -> None:
    reader, rows = read_path(CORPUS / "messy/messytables/utf8bom.csv")
    assert reader.headers == ["kitten", "win"]
    assert rows == []


def test_latin1_names() -> None:
    reader, rows = read_path(CORPUS / "duckdb/encodings/latin1.csv")
    assert reader.details["encoding"] in ("cp1252", "iso8859-1", "iso8859-15")
    assert reader.dialect is not None
    assert reader.dialect.encoding in ("WIN1252", "LATIN1", "LATIN9")
    assert reader.details["transcoded"] is False
    assert "encoding" in reader.details["detected"]
    assert reader.headers == ["name", "age"]
    names = [row[0] for row in rows]
    assert names[:4] == ["José Álvarez", "Müller", "François Dupont", "Björn Andersson"]
    assert "Søren Kierkegaard" in names and "Élodie Moreau" in names


def test_latin1_given_wrong_encoding_names_file_and_line() -> None:
    """Bad bytes in data rows are the rows' problem: the row path names the line, the
    careful path flags each such record (and the load sets it aside)."""
    path = CORPUS / "duckdb/encodings/latin1.csv"
    reader, handle = open_path(path, encoding="utf-8")
    with handle, pytest.raises(FormatError) as info:
        list(reader.iter_batches())
    assert info.value.file == str(path)
    assert info.value.line == 2
    assert info.value.hint and "latin-1" in info.value.hint
    reader, handle = open_path(path, encoding="utf-8")
    with handle:
        records = list(reader.iter_records())
    assert records[0].line == 2
    assert records[0].fields is None
    assert records[0].problem == "bytes that are not valid utf-8"


def test_undecodable_header_bytes_are_a_doubt_not_a_failure() -> None:
    """A bad byte in a column name costs that character, not the file: it is U+FFFD
    and the file's details say so (a bad byte in a data row is that row's reject)."""
    data = b"na\xefme,age\nx,1\n"
    reader = CsvFormat(encoding="utf-8").open(io.BytesIO(data), FileRef(url="h.csv", name="h.csv"))
    assert reader.headers == ["na\ufffdme", "age"]
    assert any("U+FFFD" in d for d in reader.details["doubts"])
    assert rows_of(reader) == [["x", "1"]]


def test_utf16_is_transcoded() -> None:
    path = CORPUS / "duckdb/encodings/utf16.csv"
    reader, handle = open_path(path)
    with handle:
        data = b"".join(reader.iter_bytes())
    assert reader.dialect is not None and reader.dialect.encoding == "UTF8"
    assert reader.details["transcoded"] is True and reader.details["bom"] is True
    text = data.decode("utf-8")
    assert text == data_lines(path.read_bytes()[2:].decode("utf-16-le").encode()).decode()
    assert "\r\n" in text  # line ends go through untouched
    reader, rows = read_path(path)
    assert reader.headers == ["name", "age"]
    assert len(rows) == 20
    assert rows[0] == ["José Álvarez", "30"]
    assert all(len(row) == 2 for row in rows)


def test_shift_jis() -> None:
    reader, rows = read_path(CORPUS / "duckdb/encodings/shift_jis.csv")
    assert reader.dialect is not None and reader.dialect.encoding == "SJIS"
    assert reader.headers == ["名前", "年齢"]
    assert rows[0] == ["名前", "25"]


@pytest.mark.parametrize(
    ("path", "delimiter", "first"),
    [
        ("duckdb/auto/semicolon_quote.csv", ";", ["567", "TEST10", "te;xt3"]),
        ("duckdb/auto/tab.csv", "\t", ["567", "TEST12", "text3"]),
        ("duckdb/auto/pipe_delim_quote.csv", "|", ["567", "TEST5", "text3"]),
        ("messy/messytables/simple.ssv", ";", ["2011-01-03", "5", "Berkeley"]),
        ("messy/messytables/simple.psv", "|", None),
    ],
)
def test_delimiter_detection(path: str, delimiter: str, first: list[str] | None) -> None:
    reader, rows = read_path(CORPUS / path, header=not path.startswith("duckdb/auto"))
    assert reader.details["delimiter"] == delimiter
    assert "delimiter" in reader.details["detected"]
    assert len({len(row) for row in rows}) == 1
    if first is not None:
        assert rows[-1] == first
    if path.endswith(".psv"):
        assert reader.headers[:2] == ["Year", "New dwellings"]
        assert rows[0][:2] == ["1986", "44000"]


def test_spanish_chars() -> None:
    reader, rows = read_path(CORPUS / "messy/messytables/spanish_chars.csv")
    assert reader.details["encoding"] in ("cp1252", "iso8859-1", "iso8859-15")
    assert reader.headers[-1] == "Descripción"
    assert len(reader.headers) == 8 and all(len(row) == 8 for row in rows)
    text = " ".join(v for row in rows for v in row if v)
    assert "Diseño" in text and "niños" in text
    assert rows[0][6] == "229,932.50"


def test_no_header_names_and_ragged_rows() -> None:
    reader, rows = read_path(CORPUS / "duckdb/nullpadding.csv", header=False)
    assert reader.headers == [f"column_{i}" for i in range(1, len(reader.headers) + 1)]
    assert reader.dialect is not None and reader.dialect.header is False
    assert len({len(row) for row in rows}) > 1  # ragged rows pass as they are


def test_empty_corpus_file() -> None:
    reader, rows = read_path(CORPUS / "duckdb/empty.csv")
    assert reader.headers == [] and rows == []


def test_cr_only_line_endings() -> None:
    reader, rows = read_path(CORPUS / "duckdb/lineitem-carriage.csv")
    assert reader.details["delimiter"] == "|"
    assert len(rows) == 10 and all(len(row) == len(reader.headers) for row in rows)


# -- edge cases ------------------------------------------------------------------------------


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_skip_rows_banner(eol: str) -> None:
    data = eol.join(["Report, generated today", "", "id;name", "1;a", "2;b"]) + eol
    reader = open_bytes(data.encode(), skip_rows=2)
    assert reader.headers == ["id", "name"]
    assert reader.details["delimiter"] == ";"
    assert rows_of(reader) == [["1", "a"], ["2", "b"]]
    again = open_bytes(data.encode(), skip_rows=2)
    assert b"".join(again.iter_bytes()) == eol.join(["1;a", "2;b"]).encode() + eol.encode()


def test_skip_rows_past_the_end() -> None:
    reader = open_bytes(b"only a banner\n", skip_rows=3)
    assert reader.headers == []
    assert rows_of(reader) == []


def test_header_false_names_columns() -> None:
    reader = open_bytes(b"1,2,3\n4,,6\n", header=False)
    assert reader.headers == ["column_1", "column_2", "column_3"]
    assert rows_of(reader) == [["1", "2", "3"], ["4", None, "6"]]
    assert reader.dialect is not None and reader.dialect.header is False


def test_a_second_reading_hands_on_the_same_bytes_without_the_checks() -> None:
    # The rejects' records of rows COPY skipped are read again (PostgreSQL 17+): the
    # first reading checked the quotes, the second hands the bytes on as they are.
    clean = b"".join(b'%d,"x, %d",y\n' % (i, i) for i in range(100_000))
    data = b"id,name,v\n" + clean + b'7,ab"c,z\n8,ok,z\n'  # a stray quote past the sample
    with pytest.raises(FormatError, match="quote inside or at the end of an unquoted field"):
        b"".join(open_bytes(data).iter_bytes())
    assert b"".join(open_bytes(data).iter_bytes_again()) == data_lines(data)
    assert b"".join(open_bytes(clean, header=False).iter_bytes_again()) == b"".join(
        open_bytes(clean, header=False).iter_bytes()
    )


def test_empty_file() -> None:
    reader = open_bytes(b"")
    assert reader.headers == []
    assert rows_of(reader) == []
    assert list(open_bytes(b"").iter_bytes()) == []
    assert open_bytes(b"").dialect.header is False  # type: ignore[union-attr]


def test_bom_only_file() -> None:
    reader = open_bytes(codecs.BOM_UTF8)
    assert reader.headers == [] and reader.details["bom"] is True


def test_blank_lines_are_no_records() -> None:
    """On the row path, and on the byte path: COPY would read a blank line of a
    one-column file as a NULL row, so such a file is refused there (read row by row)."""
    data = b"a\n1\n\n2\n\r\n3\n"
    assert rows_of(open_bytes(data)) == [["1"], ["2"], ["3"]]
    with pytest.raises(FormatError, match="blank line"):
        list(open_bytes(data).iter_bytes())
    assert [r.fields for r in open_bytes(data).iter_records()] == [["1"], ["2"], ["3"]]
    assert b"".join(open_bytes(b"a\n1\n2\n").iter_bytes()) == b"1\n2\n"


def test_backslash_escape() -> None:
    data = b'a|b\n1|"say \\"hi\\""\n'
    reader = open_bytes(data, escape="\\")
    assert reader.dialect is not None and reader.dialect.escape == "\\"
    assert rows_of(reader) == [["1", 'say "hi"']]


def test_quoted_crlf_survives_both_paths() -> None:
    data = b'a,b\r\n"x\r\ny",2\r\n'
    assert rows_of(open_bytes(data)) == [["x\r\ny", "2"]]
    assert b"".join(open_bytes(data).iter_bytes()) == data_lines(data)


def test_bad_bytes_after_the_sample_name_the_line() -> None:
    data = b"id,name\n" + b"".join(b"%d,ok\n" % i for i in range(1, 200)) + b"200,caf\xe9\n"
    with sizes(64, 16):
        reader = open_bytes(data)
        assert reader.details["encoding"] == "utf-8"
        with pytest.raises(FormatError) as info:
            rows_of(reader)
    assert info.value.line == 201
    assert info.value.file == "memory://mem.csv"
    assert info.value.hint and "latin-1" in info.value.hint


def test_bad_utf16_names_the_line() -> None:
    data = "a,b\n1,2\n3,".encode("utf-16") + b"\x00\xd8" + "x\n".encode("utf-16-le")
    with pytest.raises(FormatError) as info:
        list(open_bytes(data).iter_bytes())
    assert info.value.line == 3


def test_unclosed_quote_stops_at_the_header_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(format_csv, "HEADER_LIMIT", 1000)
    with sizes(100, 100), pytest.raises(FormatError) as info:
        open_bytes(b'"a,b\n' + b"x,y\n" * 1000)
    assert info.value.hint and "quote" in info.value.hint


def test_unknown_encoding() -> None:
    with pytest.raises(FormatError) as info:
        CsvFormat(encoding="klingon")
    assert info.value.hint and "utf-8" in info.value.hint


@pytest.mark.parametrize(
    ("key", "value"),
    [("delimiter", "ab"), ("delimiter", '"'), ("quote", "ab"), ("skip_rows", -1)],
)
def test_bad_settings(key: str, value: Any) -> None:
    with pytest.raises(SpecError):
        CsvFormat(**{key: value})


def test_settings_defaults_and_tab_alias() -> None:
    fmt = CsvFormat(type="csv", delimiter="\\t")
    assert fmt.settings["delimiter"] == "\t"
    assert set(fmt.settings) == set(CsvFormat.options)
    assert format_csv.register_formats() == [CsvFormat]


def test_large_file_blocks_and_batches() -> None:
    row = '1,Zoë,"multi\r\nline",x\r\n'.encode()
    data = b"a,b,c,d\r\n" + row * (3 * (1 << 20) // len(row))
    reader = CsvFormat().open(Trickle(data, 100_000), FileRef(url="mem://big", name="big"))  # type: ignore[arg-type]
    blocks = list(reader.iter_bytes())
    assert b"".join(blocks) == data_lines(data)
    assert all(len(b) >= format_csv.BLOCK_SIZE for b in blocks[:-1])
    reader = CsvFormat().open(io.BytesIO(data), FileRef(url="mem://big", name="big"))
    batches = list(reader.iter_batches())
    assert all(len(b) == 10_000 for b in batches[:-1])
    assert sum(len(b) for b in batches) == data.count(b"\r\n") // 2 - 0
    assert batches[0][0] == ["1", "Zoë", "multi\r\nline", "x"]


def test_large_utf16_file_is_transcoded_in_blocks() -> None:
    text = "a,b\r\n" + "Zoë,Zürich\r\n" * 200_000
    data = text.encode("utf-16")
    reader = CsvFormat().open(io.BytesIO(data), FileRef(url="mem://u16", name="u16"))
    blocks = list(reader.iter_bytes())
    assert b"".join(blocks).decode("utf-8") == text.split("\r\n", 1)[1]
    assert all(len(b) >= format_csv.BLOCK_SIZE for b in blocks[:-1])


def test_data_is_read_once() -> None:
    reader = open_bytes(b"a\n1\n")
    rows_of(reader)
    with pytest.raises(RuntimeError):
        list(reader.iter_bytes())


# -- properties ----------------------------------------------------------------------------


_cell = st.lists(
    st.one_of(
        st.sampled_from([",", ";", "\t", "|", '"', "\n", "\r", "\r\n", " ", "é", "€", "ÿ"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    ),
    max_size=8,
).map("".join)
_ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé_0123456789", min_size=1, max_size=8)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"]


def write(table: list[list[str]], delimiter: str, eol: str, encoding: str) -> bytes:
    buf = io.StringIO(newline="")
    # csv.writer leaves a lone CR unquoted when the line end is "\n" (it only quotes
    # the line terminator's characters); such a file cannot be read back by anyone.
    lone_cr = eol == "\n" and any("\r" in v for row in table for v in row)
    if lone_cr:
        csv.writer(buf, delimiter=delimiter, lineterminator=eol, quoting=csv.QUOTE_ALL).writerows(
            table
        )
    else:
        csv.writer(buf, delimiter=delimiter, lineterminator=eol).writerows(table)
    return buf.getvalue().encode(encoding)


@st.composite
def tables(draw: st.DrawFn, min_cols: int = 1) -> list[list[str]]:
    ncols = draw(st.integers(min_cols, 5))
    return draw(st.lists(st.lists(_cell, min_size=ncols, max_size=ncols), min_size=1, max_size=8))


def _encodes(table: list[list[str]], encoding: str) -> bool:
    try:
        for row in table:
            for value in row:
                value.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(),
    delimiter=st.sampled_from(DELIMITERS),
    eol=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(ENCODINGS),
    small=st.booleans(),
    step=st.integers(1, 64),
)
# A first record whose quoted field spans lines, in a file without a header, read from a
# sample that ends soon after it: its first line alone is no header to take.
@example([[",,", ",,,\n€,\r\n𐀀", ",,"], ["", "", ""]], ",", "\n", "utf-8", True, 1)
def test_round_trip_given_delimiter(
    table: list[list[str]], delimiter: str, eol: str, encoding: str, small: bool, step: int
) -> None:
    """Any table written by ``csv.writer`` reads back as written (empty → None)."""
    if not _encodes(table, encoding):
        encoding = "utf-8"
    data = write(table, delimiter, eol, encoding)
    # UTF-8/16 are found by detection; single-byte code pages are given (no detector
    # can tell them apart on a few random characters).
    given_encoding = encoding if encoding in ("cp1252", "latin-1") else "auto"
    ref = FileRef(url="mem://t.csv", name="t.csv")
    fmt = CsvFormat(encoding=given_encoding, delimiter=delimiter, header=False)
    with sizes(max(step, 4), step) if small else contextlib.nullcontext():
        reader = fmt.open(Trickle(data, 7) if small else io.BytesIO(data), ref)  # type: ignore[arg-type]
        assert rows_of(reader) == nulls(table)
        assert reader.headers == [f"column_{i}" for i in range(1, len(table[0]) + 1)]
        assert copy_rows(
            fmt.open(io.BytesIO(data), ref), lambda: fmt.open(io.BytesIO(data), ref)
        ) == nulls(table)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    table=tables(min_cols=2),
    delimiter=st.sampled_from(DELIMITERS),
    eol=st.sampled_from(["\n", "\r\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    small=st.booleans(),
    step=st.integers(1, 64),
)
def test_round_trip_auto_delimiter(
    data: st.DataObject,
    table: list[list[str]],
    delimiter: str,
    eol: str,
    encoding: str,
    small: bool,
    step: int,
) -> None:
    """A header of plain names (no candidate delimiter in it) splits into the same number
    of fields, at least two, only with the writer's delimiter: auto must find it."""
    header = data.draw(st.lists(_ident, min_size=len(table[0]), max_size=len(table[0])))
    raw = write([header, *table], delimiter, eol, encoding)
    ref = FileRef(url="mem://t.csv", name="t.csv")
    with sizes(max(step, 4), step) if small else contextlib.nullcontext():
        reader = CsvFormat().open(io.BytesIO(raw), ref)
        assert reader.details["delimiter"] == delimiter
        assert reader.details["bom"] is (encoding != "utf-8")
        assert reader.headers == header
        rows = rows_of(reader)
        assert rows == nulls(table)
        assert (
            copy_rows(
                CsvFormat().open(io.BytesIO(raw), ref),
                lambda: CsvFormat().open(io.BytesIO(raw), ref),
            )
            == rows
        )


@settings(max_examples=100, deadline=None)
@given(
    table=tables(),
    banner=st.lists(st.text(alphabet='abc ,;"é', max_size=10), max_size=3),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_skip_rows_property(table: list[list[str]], banner: list[str], eol: str) -> None:
    """``skip_rows`` drops exactly the banner's physical lines, whatever they hold."""
    # A file that opens with U+FEFF opens with a byte order mark, which is no value.
    assume(banner or not table[0][0].startswith("\ufeff"))
    if eol == "\r":
        table = [[v.replace("\r", "").replace("\n", "") for v in row] for row in table]
    body = write(table, ",", eol, "utf-8")
    raw = "".join(line + eol for line in banner).encode() + body
    reader = open_bytes(raw, skip_rows=len(banner), header=False, delimiter=",")
    assert rows_of(reader) == nulls(table)
    again = open_bytes(raw, skip_rows=len(banner), header=False, delimiter=",")
    try:
        assert b"".join(again.iter_bytes()) == body
    except FormatError as exc:  # COPY would read a blank line of one column as a row
        assert len(table[0]) == 1 and "blank line" in exc.message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(min_cols=2),
    banner=st.lists(st.text(alphabet='abc ,;"é', max_size=12), max_size=4),
    eol=st.sampled_from(["\n", "\r\n"]),
)
def test_a_preamble_skipped_unasked_holds_no_table_line(
    table: list[list[str]], banner: list[str], eol: str
) -> None:
    """Property: without skip_rows, what the reader skips as a preamble is the banner's
    first lines at most (a line as wide as the table may be a row: it stays), never a
    line of the table after it."""
    body = write(table, ",", eol, "utf-8")
    raw = "".join(line + eol for line in banner).encode() + body
    reader = open_bytes(raw, delimiter=",")
    skipped = reader.preamble
    lines = [line + eol for line in banner]
    while lines and lines[0] == eol:  # blank lines before all else are skipped anyway
        lines.pop(0)
    assert skipped == lines[: len(skipped)], skipped  # a part of the banner at most
    if skipped == lines:
        assert reader.headers == table[0]
        assert rows_of(reader) == nulls(table[1:])


def test_rows_before_wider_rows_are_no_preamble() -> None:
    """Found by the row path's property: a header and rows of 3 values before many rows
    of 4 are data of another width (rejects to be), not a banner to drop unseen."""
    data = b"id,name,amount\n0,a,10\n" + b"".join(b"%d,too,many,values\n" % i for i in range(1, 9))
    reader = open_bytes(data)
    assert reader.preamble == [] and reader.details["skip_rows"] == 0
    assert reader.headers == ["id", "name", "amount"]
    assert len(rows_of(reader)) == 9
