"""The export of rejects and its reading back, without a database: any record of a
file, taken as the file has it (:meth:`CsvReader.originals`) and exported, reads back in
the file's dialect as its own fields; a fixed export reads back as written."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csvpg.builtin.format_csv import CsvFormat
from csvpg.interfaces import FileRef
from csvpg.rejectfile import (
    ID_COLUMN,
    Exported,
    FileDialect,
    export_text,
    fields_of,
    protect,
    read_fixed,
    replay_text,
    unprotect,
    write_export,
)

_cell = st.text(alphabet=st.sampled_from(list("ab ;,|\t\"'=+-@\r\näöüßÆ€1")), max_size=8)
DIALECTS = [(",", "utf-8"), (";", "latin-1"), ("\t", "cp1252"), ("|", "utf-8")]


def _encodes(rows: list[list[str]], encoding: str) -> bool:
    try:
        "".join(v for r in rows for v in r).encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@st.composite
def files(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str, str, str]:
    width = draw(st.integers(1, 4))
    header = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(_cell, min_size=width, max_size=width), min_size=1, max_size=6))
    delimiter, encoding = draw(st.sampled_from(DIALECTS))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    return header, rows, delimiter, encoding, eol


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_an_exported_record_reads_back_as_the_files_fields(case) -> None:
    header, rows, delimiter, encoding, eol = case
    if not _encodes(rows, encoding) or any(all(v == "" for v in r) for r in rows):
        encoding = "utf-8"
        rows = [r for r in rows if any(v != "" for v in r)] or [["x"] * len(header)]
    out = io.StringIO(newline="")
    # Every field quoted: a lone CR stays a value, as a careful writer writes it.
    csv.writer(out, delimiter=delimiter, lineterminator=eol, quoting=csv.QUOTE_ALL).writerows(
        [header, *rows]
    )
    data = out.getvalue().encode(encoding)
    fmt = CsvFormat(encoding=encoding, delimiter=delimiter, quote='"')
    ref = FileRef("mem://t.csv", "t.csv")
    records = list(fmt.open(io.BytesIO(data), ref).iter_records())
    assert len(records) == len(rows)
    originals = fmt.open(io.BytesIO(data), ref).originals([r.line for r in records])
    dialect = FileDialect(delimiter, '"', None, encoding, eol)
    exported = []
    for i, record in enumerate(records):
        original = originals[record.line]
        assert data[original.offset : original.offset + original.length].decode(encoding) == (
            original.text
        )
        exported.append(Exported(i + 1, fields_of(original.text, dialect)))
    text = export_text(header, exported, dialect)
    back = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert back[0] == [ID_COLUMN, *header]
    assert [[unprotect(v) for v in r[1:]] for r in back[1:]] == rows
    assert [r[0] for r in back[1:]] == [f"R{i + 1}" for i in range(len(rows))]
    for r in back[1:]:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in r)


@given(st.text(max_size=12))
def test_the_formula_guard_is_undone_exactly(value: str) -> None:
    assert unprotect(protect(value)) == value
    assert not protect(value).startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_fixed_export_reads_back_with_its_lines(tmp_path: Path) -> None:
    dialect = FileDialect(";", '"', None, "latin-1", "\r\n")
    text = export_text(
        ["nr", "ort"], [Exported(7, ["1", "Kö\r\nln"]), Exported(9, ["=2", "x"])], dialect
    )
    path = tmp_path / "fixed.csv"
    path.write_bytes(text.encode("latin-1"))
    header, rows = read_fixed(path, dialect)
    assert header == ["nr", "ort"]
    assert [(r.reject_id, r.line, r.fields) for r in rows] == [
        (7, 2, ["1", "Kö\r\nln"]),
        (9, 4, ["=2", "x"]),
    ]
    loaded, lines = replay_text(header, rows)
    assert lines == {2: 7, 4: 9}
    assert list(csv.reader(io.StringIO(loaded, newline=""))) == [
        ["nr", "ort"], ["1", "Kö\r\nln"], ["=2", "x"]
    ]  # fmt: skip


def test_a_file_read_with_quotes_as_text_exports_and_reads_back(tmp_path: Path) -> None:
    dialect = FileDialect(",", "", None, "utf-8")
    fields = fields_of('1,say "hi",a|b\n', dialect)
    assert fields == ["1", 'say "hi"', "a|b"], "the quote is text in such a file"
    path = tmp_path / "fixed.csv"
    path.write_text(export_text(["n", "text", "more"], [Exported(4, fields)], dialect))
    header, rows = read_fixed(path, dialect)
    assert header == ["n", "text", "more"] and rows[0].fields == fields


def test_a_value_the_files_encoding_lacks_exports_in_utf8(tmp_path: Path) -> None:
    dialect = FileDialect(";", '"', None, "latin-1")
    text = export_text(["nr", "betrag"], [Exported(2, ["1", "5 €"])], dialect)
    path = tmp_path / "fix.csv"
    assert write_export(path, text, dialect) == "utf-8"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_fixed(path, dialect)[1][0].fields == ["1", "5 €"]
    path.write_bytes(path.read_bytes()[3:])  # saved again by a spreadsheet, no BOM
    assert read_fixed(path, dialect)[1][0].fields == ["1", "5 €"], "UTF-8, not mojibake"


def test_a_spreadsheet_saving_utf8_with_commas_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "fixed.csv"
    path.write_text(f"\ufeff{ID_COLUMN},nr,ort\nr 3,1,Köln\n", encoding="utf-8")
    header, rows = read_fixed(path, FileDialect(";", '"', None, "latin-1"))
    assert header == ["nr", "ort"] and rows[0].fields == ["1", "Köln"] and rows[0].reject_id == 3


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("nr;ort\n1;x\n", f"the first column is not {ID_COLUMN}"),
        (f"{ID_COLUMN};nr\nR1;1\nR1;2\n", "line 3: R1 is there twice (also line 2)"),
        (f"{ID_COLUMN};nr\n17;1\n", "line 2: '17' is not a csvpg_reject_id"),
    ],
)
def test_a_fixed_export_that_lost_its_ids_is_refused_naming_the_line(
    tmp_path: Path, body: str, said: str
) -> None:
    from csvpg.errors import CsvpgError

    path = tmp_path / "fixed.csv"
    path.write_text(body, encoding="latin-1")
    with pytest.raises(CsvpgError, match=said.replace("(", r"\(").replace(")", r"\)")):
        read_fixed(path, FileDialect(";", '"', None, "latin-1"))
