"""The reader and the type map on their own: no database needed."""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from typing import Any

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
feather = pytest.importorskip("pyarrow.feather")
csvpg_parquet = pytest.importorskip("csvpg_parquet")

from csvpg_parquet.typemap import json_text, pg_type, writable  # noqa: E402

from csvpg import FileRef, FormatError, SpecError  # noqa: E402
from csvpg.plugins import Registry, get_plugin_manager  # noqa: E402

REF = FileRef(url="file:///data/t.parquet", name="t.parquet")


def parquet_bytes(table: Any, **options: Any) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    return out.getvalue()


class OneWay(io.RawIOBase):
    """A stream that cannot seek, like the engine's counting wrapper or a socket."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@pytest.mark.parametrize(
    ("arrow", "pg"),
    [
        (pa.int8(), "smallint"),
        (pa.uint8(), "smallint"),
        (pa.int16(), "smallint"),
        (pa.uint16(), "integer"),
        (pa.int32(), "integer"),
        (pa.uint32(), "bigint"),
        (pa.int64(), "bigint"),
        (pa.uint64(), "numeric(20,0)"),
        (pa.float16(), "real"),
        (pa.float32(), "real"),
        (pa.float64(), "double precision"),
        (pa.decimal128(12, 2), "numeric(12,2)"),
        (pa.decimal256(76, 10), "numeric(76,10)"),
        (pa.decimal128(5, -2), "numeric"),
        (pa.bool_(), "boolean"),
        (pa.date32(), "date"),
        (pa.date64(), "date"),
        (pa.time32("ms"), "time"),
        (pa.time64("ns"), "time"),
        (pa.timestamp("us"), "timestamp"),
        (pa.timestamp("ns", tz="America/New_York"), "timestamptz"),
        (pa.duration("s"), "interval"),
        (pa.month_day_nano_interval(), "interval"),
        (pa.string(), "text"),
        (pa.large_string(), "text"),
        (pa.string_view(), "text"),
        (pa.dictionary(pa.int32(), pa.string()), "text"),
        (pa.dictionary(pa.int8(), pa.int64()), "bigint"),
        (pa.binary(), "bytea"),
        (pa.large_binary(), "bytea"),
        (pa.binary(16), "bytea"),
        (pa.list_(pa.int32()), "jsonb"),
        (pa.large_list(pa.string()), "jsonb"),
        (pa.list_(pa.int8(), 3), "jsonb"),
        (pa.struct([("a", pa.int8())]), "jsonb"),
        (pa.map_(pa.string(), pa.int8()), "jsonb"),
        (pa.null(), "text"),
    ],
)
def test_arrow_types_map_to_postgresql_types(arrow: Any, pg: str) -> None:
    assert pg_type(arrow) == pg


def test_uuid_extension_is_uuid_text() -> None:
    if not hasattr(pa, "uuid"):
        pytest.skip("pyarrow without the uuid extension type")
    storage = pa.array([bytes(range(16)), None], pa.binary(16))
    arr = pa.ExtensionArray.from_storage(pa.uuid(), storage)
    assert pg_type(arr.type) == "uuid"
    assert writable(arr).to_pylist() == ["000102030405060708090A0B0C0D0E0F", None]


def test_binary_is_bytea_hex_even_in_a_slice() -> None:
    arr = pa.array([b"skip", b"\x00\xff", None, b"", b"ab"], pa.binary())[1:]
    assert writable(arr).to_pylist() == ["\\x00FF", None, "\\x", "\\x6162"]
    fixed = pa.array([b"\x01\x02", None], pa.binary(2))
    assert writable(fixed).to_pylist() == ["\\x0102", None]


def test_durations_are_interval_text() -> None:
    assert writable(pa.array([1500, None], pa.duration("ms"))).to_pylist() == [
        "1500 milliseconds",
        None,
    ]
    assert writable(pa.array([-2_500_999], pa.duration("ns"))).to_pylist() == ["-2500 microseconds"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": [1, None, True]}, '{"a":[1,null,true]}'),
        (Decimal("12345678901234567890.5"), "12345678901234567890.5"),
        (float("nan"), '"NaN"'),
        (-math.inf, '"-Infinity"'),
        (b"\x0a", '"\\\\x0a"'),
        ({1: "ü"}, '{"1":"ü"}'),
        ('quote " and \\', '"quote \\" and \\\\"'),
    ],
)
def test_json_text(value: Any, text: str) -> None:
    assert json_text(value) == text


def test_a_seekable_stream_is_read_in_place() -> None:
    table = pa.table({"a": [1, 2]})
    reader = csvpg_parquet.ParquetFormat().open(io.BytesIO(parquet_bytes(table)), REF)
    try:
        assert reader.details["spooled"] is False
        assert reader.headers == ["a"] and reader.types == {"a": "bigint"}
        assert b"".join(reader.iter_bytes()) == b"1\n2\n"
    finally:
        reader.close()


def test_a_stream_that_cannot_seek_is_spooled_and_the_copy_removed(tmp_path) -> None:
    table = pa.table({"a": ["x", ""], "b": [None, 1.5]})
    data = parquet_bytes(table)
    fmt = csvpg_parquet.ParquetFormat(spool_dir=str(tmp_path))
    reader = fmt.open(OneWay(data), REF)
    assert reader.details["spooled"] is True
    assert reader.details["spooled_bytes"] == len(data)
    assert len(list(tmp_path.iterdir())) == 1
    chunks = list(reader.iter_bytes())
    # Strings are quoted (so "" stays an empty string), nulls are empty (NULL to COPY).
    assert b"".join(chunks) == b'"x",\n"",1.5\n'
    assert list(tmp_path.iterdir()) == [], "the spooled copy is gone once read"
    reader.close()


def test_a_full_spool_folder_is_a_format_error_naming_it(tmp_path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(FormatError) as caught:
        csvpg_parquet.ParquetFormat(spool_dir=str(missing)).open(OneWay(b"PAR1"), REF)
    assert "spool_dir" in (caught.value.hint or "")


def test_batches_are_bounded_and_records_numbered() -> None:
    table = pa.table({"n": list(range(25_000)), "s": ["a,b"] * 25_000})
    data = parquet_bytes(table, row_group_size=25_000)
    fmt = csvpg_parquet.ParquetFormat(batch_rows=4_000)
    batches = list(fmt.open(io.BytesIO(data), REF).iter_batches())
    assert max(len(b) for b in batches) <= 4_000
    assert sum(len(b) for b in batches) == 25_000
    assert batches[0][1] == ["1", "a,b"]
    records = list(fmt.open(io.BytesIO(data), REF).iter_records())
    assert [r.line for r in records[:3]] == [1, 2, 3] and records[-1].line == 25_000
    assert records[1].fields == ["1", "a,b"]
    assert next(csv.reader([records[1].raw])) == ["1", "a,b"]


def test_the_byte_path_writes_what_postgresql_parses() -> None:
    table = pa.table(
        {
            "ts": pa.array([0, None], pa.timestamp("s", tz="Asia/Kolkata")),
            "f": pa.array([float("inf"), -0.0]),
            "b": pa.array([True, None]),
            "d": pa.array([Decimal("-1.50"), None], pa.decimal128(4, 2)),
            "j": pa.array([{"k": "v"}, None], pa.struct([("k", pa.string())])),
        }
    )
    reader = csvpg_parquet.ParquetFormat().open(io.BytesIO(parquet_bytes(table)), REF)
    text = b"".join(reader.iter_bytes()).decode()
    # Parquet keeps seconds as milliseconds.
    assert text == '1970-01-01 00:00:00.000Z,inf,true,-1.50,"{""k"":""v""}"\n,-0,,,\n'


def test_batch_rows_must_be_positive() -> None:
    with pytest.raises(SpecError, match="batch_rows"):
        csvpg_parquet.ParquetFormat(batch_rows=0)


def test_feather_v1_is_refused_with_a_hint() -> None:
    with pytest.raises(FormatError, match="Feather version 1") as caught:
        csvpg_parquet.ArrowFormat().open(io.BytesIO(b"FEA1" + b"\0" * 64), REF)
    assert "Feather v2" in (caught.value.hint or "")


def test_sniff_format_names_parquet_arrow_and_feather() -> None:
    sniff = csvpg_parquet.sniff_format
    assert sniff(ref=REF, sample=b"PAR1\x15\x04") == "parquet"
    assert sniff(ref=FileRef("x.arrow", "x.arrow"), sample=b"ARROW1\0\0") == "arrow"
    assert sniff(ref=FileRef("x.feather", "x.FEATHER"), sample=b"ARROW1\0\0") == "feather"
    assert sniff(ref=FileRef("x.csv", "x.csv"), sample=b"id,name\n") is None


def test_the_formats_come_from_the_entry_point() -> None:
    registry = Registry(get_plugin_manager())
    for name in ("parquet", "arrow", "feather"):
        assert registry.formats[name].distribution.startswith("csvpg-parquet ")


def test_prefetch_hands_on_errors_and_stops_its_thread_when_closed() -> None:
    """iter_bytes makes CSV blocks in a thread, a bounded number ahead of COPY."""
    import threading

    from csvpg_parquet.reader import Prefetch

    def failing():
        yield b"one"
        raise FormatError("broken in the worker")

    blocks = iter(Prefetch(failing()))
    assert next(blocks) == b"one"
    with pytest.raises(FormatError, match="broken in the worker"):
        next(blocks)

    produced: list[int] = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield b"x"
            n += 1

    before = threading.active_count()
    blocks = iter(Prefetch(endless(), ahead=2))
    assert next(blocks) == b"x"
    blocks.close()
    assert threading.active_count() == before, "the worker thread ended"
    assert len(produced) <= 5, "the worker ran at most a few blocks ahead"


def test_closing_the_reader_stops_a_half_read_byte_stream(tmp_path) -> None:
    """As the engine does when COPY fails early: the reader closes, its worker stops, and
    the spooled copy is gone."""
    import threading

    table = pa.table({"n": list(range(50_000))})
    fmt = csvpg_parquet.ParquetFormat(spool_dir=str(tmp_path), batch_rows=1_000)
    before = threading.active_count()
    reader = fmt.open(OneWay(parquet_bytes(table, row_group_size=5_000)), REF)
    blocks = reader.iter_bytes()
    assert next(blocks).startswith(b"0\n1\n")
    reader.close()
    assert threading.active_count() == before
    assert list(tmp_path.iterdir()) == []


def test_installing_the_plugin_costs_csv_jobs_nothing() -> None:
    """Loading csvpg's plugins does not import pyarrow; opening a Parquet file does."""
    import subprocess
    import sys

    code = (
        "import sys; from csvpg.plugins import get_plugin_manager; get_plugin_manager();"
        " print('pyarrow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
