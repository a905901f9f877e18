"""Encoding and delimiter detection on samples, corpus files and generated tables."""

from __future__ import annotations

import codecs
import csv
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csvpg.detect import (
    DELIMITERS,
    PG_ENCODINGS,
    Encoding,
    detect_delimiter,
    detect_dialect,
    detect_encoding,
    pg_encoding,
    resolve_encoding,
)
from csvpg.errors import FormatError
from tests.conftest import CORPUS

# -- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "codec", "pg", "bom"),
    [
        (b"", "utf-8", "UTF8", b""),
        (b"a,b\n1,2\n", "utf-8", "UTF8", b""),
        ("a,é\n".encode(), "utf-8", "UTF8", b""),
        (codecs.BOM_UTF8 + b"a,b\n", "utf-8", "UTF8", codecs.BOM_UTF8),
        ("a,b\n".encode("utf-16"), "utf-16-le", None, codecs.BOM_UTF16_LE),
        (codecs.BOM_UTF16_BE + "a,b\n".encode("utf-16-be"), "utf-16-be", None, codecs.BOM_UTF16_BE),
        ("a,b\n".encode("utf-32"), "utf-32-le", None, codecs.BOM_UTF32_LE),
        (codecs.BOM_UTF32_BE + "a,b\n".encode("utf-32-be"), "utf-32-be", None, codecs.BOM_UTF32_BE),
    ],
)
def test_detect_encoding_bom_utf(data: bytes, codec: str, pg: str | None, bom: bytes) -> None:
    assert detect_encoding(data) == Encoding(codec, pg, bom)


def test_detect_encoding_allows_a_cut_multibyte_sequence_at_the_end() -> None:
    sample = "name\nZoë\n€".encode()[:-1]  # the euro sign cut after two of its three bytes
    assert detect_encoding(sample).codec == "utf-8"


def test_detect_encoding_western_text_prefers_windows_1252() -> None:
    text = "nombre,descripción\nNiño,diseño pequeño\nJosé,señal\n" * 20
    enc = detect_encoding(text.encode("cp1252"))
    assert (enc.codec, enc.pg) == ("cp1252", "WIN1252")


@pytest.mark.parametrize(
    "path",
    ["duckdb/encodings/latin1.csv", "messy/messytables/spanish_chars.csv"],
)
def test_detect_encoding_latin_files(path: str) -> None:
    enc = detect_encoding((CORPUS / path).read_bytes())
    assert enc.codec in ("cp1252", "iso8859-1", "iso8859-15")
    assert enc.pg in ("WIN1252", "LATIN1", "LATIN9")


def test_detect_encoding_shift_jis() -> None:
    data = (CORPUS / "duckdb/encodings/shift_jis.csv").read_bytes()
    enc = detect_encoding(data)
    assert enc.pg == "SJIS"
    assert data.decode(enc.codec).startswith("名前,年齢")


def test_detect_encoding_utf16_corpus() -> None:
    enc = detect_encoding((CORPUS / "duckdb/encodings/utf16.csv").read_bytes())
    assert enc == Encoding("utf-16-le", None, codecs.BOM_UTF16_LE)
    assert enc.transcode


def test_detect_encoding_bomless_utf16() -> None:
    data = ("name,city\nZoë,Zürich\n" * 10).encode("utf-16-le")
    enc = detect_encoding(data)
    assert enc.codec == "utf-16-le" and enc.pg is None


@pytest.mark.parametrize(
    ("name", "sample", "codec", "pg", "bom"),
    [
        ("utf-8", b"a", "utf-8", "UTF8", b""),
        ("UTF8", codecs.BOM_UTF8 + b"a", "utf-8", "UTF8", codecs.BOM_UTF8),
        ("utf-8-sig", codecs.BOM_UTF8 + b"a", "utf-8", "UTF8", codecs.BOM_UTF8),
        ("utf-8-sig", b"a", "utf-8", "UTF8", b""),
        ("latin-1", b"", "iso8859-1", "LATIN1", b""),
        ("latin1", b"", "iso8859-1", "LATIN1", b""),
        ("LATIN9", b"", "iso8859-15", "LATIN9", b""),
        ("windows-1252", b"", "cp1252", "WIN1252", b""),
        ("WIN1250", b"", "cp1250", "WIN1250", b""),
        ("shift_jis", b"", "shift_jis", "SJIS", b""),
        ("sjis", b"", "cp932", "SJIS", b""),
        ("euc-jp", b"", "euc_jp", "EUC_JP", b""),
        ("koi8-r", b"", "koi8-r", "KOI8R", b""),
        ("utf-16", "a".encode("utf-16-le"), "utf-16-le", None, b""),
        ("utf-16", codecs.BOM_UTF16_BE + b"\x00a", "utf-16-be", None, codecs.BOM_UTF16_BE),
        ("utf-16", codecs.BOM_UTF16_LE + b"a\x00", "utf-16-le", None, codecs.BOM_UTF16_LE),
        ("utf-16le", codecs.BOM_UTF16_LE + b"a\x00", "utf-16-le", None, codecs.BOM_UTF16_LE),
        ("utf-32", codecs.BOM_UTF32_BE, "utf-32-be", None, codecs.BOM_UTF32_BE),
        ("mac_roman", b"", "mac-roman", None, b""),
    ],
)
def test_resolve_encoding(name: str, sample: bytes, codec: str, pg: str | None, bom: bytes) -> None:
    assert resolve_encoding(name, sample) == Encoding(codec, pg, bom)


@pytest.mark.parametrize("name", ["nope", "utf-9", "base64", "rot13", ""])
def test_resolve_encoding_rejects_unknown_names(name: str) -> None:
    with pytest.raises(FormatError) as info:
        resolve_encoding(name)
    assert info.value.hint and "latin-1" in info.value.hint


def test_pg_encodings_keys_are_normalised_codec_names() -> None:
    for codec, pg in PG_ENCODINGS.items():
        assert codecs.lookup(codec).name == codec
        assert pg_encoding(codec) == pg
    assert pg_encoding("Windows-1252") == "WIN1252"
    assert pg_encoding("latin_1") == "LATIN1"
    assert pg_encoding("iso-8859-15") == "LATIN9"
    assert pg_encoding("ascii") == "UTF8"
    assert pg_encoding("utf-16") is None
    assert pg_encoding("no-such-codec") is None


# -- delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2;3\n", ";"),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ("just one column\nanother value\n", ","),
        ("", ","),
        ('a;b\n"1,5";"2,5"\n"3,0";"4,0"\n', ";"),  # decimal commas inside quotes
        ("a,b;c\n1,2;3\n", ","),  # a tie goes to the earlier candidate
        ('name|note\n"x|y"|z\n', "|"),
    ],
)
def test_detect_delimiter(text: str, expected: str) -> None:
    assert detect_delimiter(text, final=True) == expected


def test_detect_delimiter_ignores_a_cut_last_record() -> None:
    # Cut mid-record, the last line has fewer fields; it must not count.
    text = "a;b;c\n1;2;3\n4;5;6\n7;8"
    assert detect_delimiter(text) == ";"


def test_detect_delimiter_prefers_the_consistent_candidate() -> None:
    text = "id,comment\n1,fine; really\n2,ok\n3,meh; meh; meh\n"
    assert detect_delimiter(text, final=True) == ","


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("duckdb/auto/semicolon_quote.csv", ";"),
        ("duckdb/auto/tab.csv", "\t"),
        ("duckdb/auto/pipe_delim_quote.csv", "|"),
        ("duckdb/lineitem-carriage.csv", "|"),
        ("messy/messytables/simple.ssv", ";"),
        ("messy/messytables/simple.psv", "|"),
        ("messy/country-codes/country-codes.csv", ","),
        ("csvw/tree-ops.tsv", "\t"),
        ("csvw/manifest.csv", ","),
    ],
)
def test_detect_delimiter_corpus(path: str, expected: str) -> None:
    text = (CORPUS / path).read_bytes().decode("utf-8")
    assert detect_delimiter(text, final=True) == expected


_ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
_cell = st.lists(
    st.one_of(
        st.sampled_from([",", ";", "\t", "|", '"', "\n", "\r\n", " ", "é", "€"]),
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r"),
    ),
    max_size=10,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), delimiter=st.sampled_from(DELIMITERS), ncols=st.integers(2, 5))
def test_detect_delimiter_property(data: st.DataObject, delimiter: str, ncols: int) -> None:
    """With a header free of candidate characters, only the writer's delimiter splits
    every record into the same number (≥ 2) of fields: detection must find it."""
    header = data.draw(st.lists(_ident, min_size=ncols, max_size=ncols))
    rows = data.draw(st.lists(st.lists(_cell, min_size=ncols, max_size=ncols), max_size=6))
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    assert detect_delimiter(buf.getvalue(), final=True) == delimiter


# -- the dialect -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delimiter", "quote", "escape"),
    [
        ('"id"\t"name"\n"1"\t"a, b"\n"2"\t"c, d"\n"3"\t"e"\n', "\t", '"', '"'),  # all quoted TSV
        ("id;name\n1;'x;1'\n2;'y;2'\n3;'z'\n", ";", "'", "'"),
        ('id|t\n1|"say \\"hi\\""\n2|"a \\"b\\""\n3|c\n', "|", '"', "\\"),
        ("id name score\n1 a 2\n2 b 4\n3 c 6\n", " ", '"', '"'),
        ('t\tn\nHe said "hi"\t1\n12" single\t2\nx\t3\n', "\t", "", ""),  # quotes are text
        ("id,name\n1,New York City\n2,Los Angeles\n3,San Francisco Bay\n", ",", '"', '"'),
    ],
)
def test_detect_dialect(text: str, delimiter: str, quote: str, escape: str) -> None:
    d = detect_dialect(text, final=True)
    assert (d.delimiter, d.quote, d.escape) == (delimiter, quote, escape), d.evidence


def test_detect_dialect_preamble_and_header() -> None:
    d = detect_dialect("Report 2024\n\nid;v\n1;2\n2;3\n3;4\n", final=True)
    assert (d.delimiter, d.skip_rows, d.header) == (";", 2, True)
    assert not detect_dialect("1,2.5,x\n2,3.5,y\n3,4.5,z\n", final=True).header
    assert detect_dialect("name,2000,2001,2002\nA,1,2,3\nB,4,5,6\nC,7,8,9\n", final=True).header


def test_mixed_quoting_is_flagged() -> None:
    d = detect_dialect('id,n\n1,"a, b"\n2,Robert "Bumps" Blackwell\n', final=True)
    assert d.quote == '"' and d.mixed


def test_a_quoted_field_of_line_ends_makes_no_preamble() -> None:
    """Found by the property below: read with quotes as text, the lines of a quoted
    field made a '|' table under a one-value 'banner' (the real header)."""
    for text in ('0,0,0\n,,"|\n|\n|\n|"\n', '0,0,0\n,,"|\n|\n|,"\n,"|\n|\n",|\n'):
        d = detect_dialect(text, final=True)
        assert (d.delimiter, d.skip_rows, d.quote) == (",", 0, '"'), text


@settings(max_examples=200, deadline=None)
@given(data=st.data(), delimiter=st.sampled_from(DELIMITERS), ncols=st.integers(2, 5))
def test_detect_dialect_property(data: st.DataObject, delimiter: str, ncols: int) -> None:
    """Whatever the cells, a table csv.writer wrote under a plain header is read with
    the writer's delimiter, and never as quotes-are-text."""
    header = data.draw(st.lists(_ident, min_size=ncols, max_size=ncols))
    rows = data.draw(st.lists(st.lists(_cell, min_size=ncols, max_size=ncols), max_size=6))
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    d = detect_dialect(buf.getvalue(), final=True)
    assert d.delimiter == delimiter
    assert d.skip_rows == 0


@given(text=st.text(alphabet="ab,;\"'\r\n ", max_size=60), delimiter=st.sampled_from(",;"))
def test_the_stray_quote_pattern_finds_a_quote_between_field_characters(
    text: str, delimiter: str
) -> None:
    """Property: the fast pattern (the quote first) finds exactly what a plain scan does:
    a quote whose neighbours are neither the delimiter, a quote nor a line end."""
    from csvpg.detect import stray_rx

    plain = set(delimiter + '"\r\n')
    expected = any(
        c == '"' and 0 < i < len(text) - 1 and text[i - 1] not in plain and text[i + 1] not in plain
        for i, c in enumerate(text)
    )
    assert bool(stray_rx(delimiter, '"').search(text)) == expected


def test_a_value_of_spaces_is_no_space_delimited_table() -> None:
    """Found by the round-trip property: "0 0" above " " read as two columns of a space
    delimited file would make an empty field of a space; it is one column."""
    from csvpg.detect import detect_dialect

    assert detect_dialect("0 0\n \n", final=True).delimiter != " "
    assert detect_dialect("a b c\n1 2 3\n4 5 6\n7 8 9\n", final=True).delimiter == " "


_VALUES = st.lists(
    st.lists(st.text(alphabet='ab,;" \r\n', max_size=6), min_size=2, max_size=4),
    min_size=1,
    max_size=8,
)


def _fed(check: Any, data: Any, size: int) -> bool:
    for i in range(0, len(data), size):
        check.feed(data[i : i + size])
    return bool(check.found)


@given(rows=_VALUES, size=st.integers(1, 9), binary=st.booleans())
def test_written_csv_has_every_quote_in_place(
    rows: list[list[str]], size: int, binary: bool
) -> None:
    """Property: whatever csv.writer writes passes the quote check, fed in blocks of
    any size (a block boundary hides nothing and invents nothing)."""
    from csvpg.detect import QuoteCheck

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    data: Any = out.getvalue().encode() if binary else out.getvalue()
    assert not _fed(QuoteCheck(",", '"', '"', binary=binary), data, size)


@given(rows=_VALUES, size=st.integers(1, 9), where=st.integers(0, 7))
def test_a_quote_ending_an_unquoted_field_is_found(
    rows: list[list[str]], size: int, where: int
) -> None:
    """Property: one row whose unquoted first field ends with a quote (``5"``, what COPY
    reads as the start of a quoted run) is found, wherever the blocks cut."""
    from csvpg.detect import QuoteCheck

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows[:where])
    out.write('5",x\n')
    writer.writerows(rows[where:])
    assert _fed(QuoteCheck(",", '"', '"', binary=True), out.getvalue().encode(), size)


def _kind_tried_one_by_one(value: str) -> str:
    """Header detection's value kinds as four patterns tried in turn: what the one
    pattern of ``csvpg.detect`` must give."""
    import re

    v = value.strip()
    if not v:
        return ""
    digits = v.lstrip("+-")
    if digits.isascii() and digits.isdigit():
        return "integer"
    if re.match(r"^[+-]?\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d+)?$", v):
        return "grouped"
    if re.match(r"^\s*[+-]?(?:\d+(?:[.,]\d+)*|\d*[.,]\d+)(?:[eE][+-]?\d+)?%?\s*$", v):
        return "number"
    if re.match(r"^\s*\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[T ]\d{1,2}:\d{2}.*)?\s*$", v):
        return "date"
    return "text"


@settings(max_examples=1000)
@given(
    st.one_of(
        st.text(alphabet="0123456789+-.,' eET:/%\n\t\u00a0\u0663x", max_size=24),
        st.text(max_size=12),
    )
)
def test_a_value_has_the_kind_the_patterns_tried_in_turn_give(value: str) -> None:
    """One pattern classifies a value as integer, grouped, number, date or text exactly
    as the four patterns did one after the other: Arabic-Indic digits, signs, a line end
    inside a date's time, no-break spaces and all."""
    from csvpg.detect import _kind

    assert _kind(value) == _kind_tried_one_by_one(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("42", "integer"), ("+-7", "integer"), ("2,666", "grouped"), ("1.234.567,89", "grouped"),
        ("3.5", "number"), ("-1e5%", "number"), ("\u0663\u0664", "number"),
        ("2024-01-15", "date"), ("15.01.2024 10:30:00", "date"), ("abc", "text"), (" ", ""),
    ],
)  # fmt: skip
def test_value_kinds(value: str, kind: str) -> None:
    from csvpg.detect import _kind

    assert _kind(value) == kind


_COLUMN_VALUES = st.one_of(
    st.integers(-(10**6), 10**12).map(str),
    *(st.decimals(-(10**6), 10**6, places=n).map(str) for n in (1, 2, 3, 4)),
    st.text(alphabet="0123456789.", min_size=1, max_size=8),
    st.dates().map(lambda d: d.strftime("%Y-%m-%d")),
    st.datetimes().map(lambda d: d.strftime("%d/%m/%Y %H:%M:%S")),
    st.text(alphabet="0123456789+-/.: T\n\u0663", max_size=12),
)


@given(st.lists(_COLUMN_VALUES, max_size=30))
def test_a_column_read_whole_has_the_kinds_its_values_have(values: list[str]) -> None:
    """A column of integers or dates is matched whole (its values joined by line ends):
    it must give each value's own kind, a value holding a line end or a space included."""
    from csvpg.detect import _column_kind, _kind, _kinds

    rows = [[v] for v in values]
    every = [k for v in values if (k := _kind(v))]
    kinds = _kinds(rows, 0)
    assert _column_kind(kinds) == _column_kind(every)
    if "text" not in every:
        assert kinds == every
