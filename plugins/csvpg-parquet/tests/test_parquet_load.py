"""Parquet and Arrow files loaded into PostgreSQL, checked by what the tables hold.

These use ``csvpg.testing`` (``csvpg_run``, ``csvpg_db``) as any plugin's tests would."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import math
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
feather = pytest.importorskip("pyarrow.feather")
pytest.importorskip("csvpg_parquet")

from csvpg import Option, Transform, hookimpl  # noqa: E402

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def parquet_bytes(table: Any, **options: Any) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    return out.getvalue()


def feather_bytes(table: Any) -> bytes:
    out = io.BytesIO()
    feather.write_feather(table, out)
    return out.getvalue()


def ipc_stream_bytes(table: Any) -> bytes:
    out = io.BytesIO()
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    return out.getvalue()


def every_type() -> Any:
    """Three rows of every Arrow type the plugin maps, the last one mostly null."""
    return pa.table(
        {
            "i8": pa.array([1, -128, None], pa.int8()),
            "i16": pa.array([2, 32767, None], pa.int16()),
            "i32": pa.array([3, -(2**31), None], pa.int32()),
            "i64": pa.array([4, 2**63 - 1, None], pa.int64()),
            "u64": pa.array([5, 2**64 - 1, None], pa.uint64()),
            "f32": pa.array([0.5, float("inf"), None], pa.float32()),
            "f64": pa.array([0.1, float("nan"), None], pa.float64()),
            "dec": pa.array([Decimal("1234.56"), Decimal("-0.01"), None], pa.decimal128(12, 2)),
            "flag": pa.array([True, False, None]),
            "day": pa.array([dt.date(2024, 2, 29), dt.date(1, 1, 1), None]),
            "clock": pa.array([dt.time(13, 14, 15, 16), dt.time(0), None], pa.time64("us")),
            "naive": pa.array(
                [dt.datetime(2024, 1, 2, 3, 4, 5, 678901), dt.datetime(1970, 1, 1), None],
                pa.timestamp("us"),
            ),
            "zoned": pa.array(
                [
                    dt.datetime(2024, 6, 1, 12, 0, tzinfo=BERLIN),
                    dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=BERLIN),
                    None,
                ],
                pa.timestamp("ms", tz="Europe/Berlin"),
            ),
            "nanos": pa.array([1_700_000_000_123_456_789, 0, None], pa.timestamp("ns", tz="UTC")),
            "took": pa.array([1_500, 0, None], pa.duration("ms")),
            "name": pa.array(['a "quoted", line\nbreak', "", None]),
            "city": pa.array(["Köln", "Zürich", None]).dictionary_encode(),
            "blob": pa.array([b"\x00\x01\xff", b"", None], pa.binary()),
            "tags": pa.array([["x", "y"], [], None], pa.list_(pa.string())),
            "point": pa.array(
                [{"x": 1, "y": Decimal("2.50")}, {"x": None, "y": None}, None],
                pa.struct([("x", pa.int32()), ("y", pa.decimal128(5, 2))]),
            ),
            "attrs": pa.array([[("k", 1)], [], None], pa.map_(pa.string(), pa.int64())),
            "nothing": pa.array([None, None, None], pa.null()),
        }
    )


EXPECTED_TYPES = {
    "i8": "smallint",
    "i16": "smallint",
    "i32": "integer",
    "i64": "bigint",
    "u64": "numeric(20,0)",
    "f32": "real",
    "f64": "double precision",
    "dec": "numeric(12,2)",
    "flag": "boolean",
    "day": "date",
    "clock": "time without time zone",
    "naive": "timestamp without time zone",
    "zoned": "timestamp with time zone",
    "nanos": "timestamp with time zone",
    "took": "interval",
    "name": "text",
    "city": "text",
    "blob": "bytea",
    "tags": "jsonb",
    "point": "jsonb",
    "attrs": "jsonb",
    "nothing": "text",
}


def test_types_are_preserved_and_values_arrive_unchanged(csvpg_run, csvpg_db) -> None:
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "all"',
        files={"all.parquet": parquet_bytes(every_type())},
    )
    assert summary.status == "succeeded", summary.files[0].error
    assert csvpg_db.columns("all") == EXPECTED_TYPES
    details = summary.files[0].details
    assert details["path"] == "bytes" and details["format"] == "parquet"
    assert details["rows"] == 3 and details["spooled"] is True

    first, second, third = csvpg_db.rows("all", order_by="i16")[::1]
    assert first == (
        1,
        2,
        3,
        4,
        Decimal(5),
        0.5,
        0.1,
        Decimal("1234.56"),
        True,
        dt.date(2024, 2, 29),
        dt.time(13, 14, 15, 16),
        dt.datetime(2024, 1, 2, 3, 4, 5, 678901),
        # Berlin wall time 12:00 in June is 10:00 UTC: the instant is kept.
        dt.datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        dt.datetime(2023, 11, 14, 22, 13, 20, 123457, tzinfo=UTC),
        dt.timedelta(seconds=1.5),
        'a "quoted", line\nbreak',
        "Köln",
        b"\x00\x01\xff",
        ["x", "y"],
        {"x": 1, "y": 2.5},
        {"k": 1},
        None,
    )
    assert second[:4] == (-128, 32767, -(2**31), 2**63 - 1)
    assert second[4] == Decimal(2**64 - 1)
    assert second[5] == math.inf and math.isnan(second[6])
    assert second[7:13] == (
        Decimal("-0.01"),
        False,
        dt.date(1, 1, 1),
        dt.time(0),
        dt.datetime(1970, 1, 1),
        dt.datetime(1999, 12, 31, 22, 59, 59, tzinfo=UTC),
    )
    # An empty string stays an empty string; only null is NULL.
    assert second[15:21] == ("", "Zürich", b"", [], {"x": None, "y": None}, {})
    assert all(v is None for v in third)


def test_decimals_in_json_keep_every_digit(csvpg_run, csvpg_db) -> None:
    table = pa.table(
        {
            "id": [1],
            "doc": pa.array(
                [{"amount": Decimal("12345678901234567890.123456789")}],
                pa.struct([("amount", pa.decimal128(38, 9))]),
            ),
        }
    )
    assert (
        csvpg_run(
            '[format]\ntype = "auto"\n[sink]\ntable = "j"',
            files={"j.parquet": parquet_bytes(table)},
        ).exit_code
        == 0
    )
    (text,) = csvpg_db.execute(f"SELECT doc->>'amount' FROM {csvpg_db.schema}.j").fetchone()
    assert text == "12345678901234567890.123456789"


def test_preserve_types_false_creates_text_columns(csvpg_run, csvpg_db) -> None:
    table = pa.table({"id": [1, 2], "when": [dt.date(2024, 1, 1), None], "ok": [True, False]})
    summary = csvpg_run(
        '[format]\ntype = "parquet"\npreserve_types = false\n[sink]\ntable = "t"',
        files={"t.parquet": parquet_bytes(table)},
    )
    assert summary.exit_code == 0
    assert csvpg_db.columns("t") == {"id": "text", "when": "text", "ok": "text"}
    assert csvpg_db.rows("t", order_by="id") == [("1", "2024-01-01", "true"), ("2", None, "false")]


def test_columns_in_the_job_beat_the_file_types(csvpg_run, csvpg_db) -> None:
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "amount": [1.25, 2.5]})
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "m"\n[columns]\namount = "numeric(6,2)"',
        files={"m.parquet": parquet_bytes(table)},
    )
    assert summary.exit_code == 0
    assert csvpg_db.columns("m") == {"id": "bigint", "amount": "numeric(6,2)"}


def test_auto_tells_parquet_arrow_feather_and_csv_apart(csvpg_run, csvpg_db) -> None:
    table = pa.table({"id": [1, 2, 3], "name": ["a", "b", None]})
    files = {
        "p.parquet": parquet_bytes(table),
        "f.feather": feather_bytes(table),
        "a.arrow": feather_bytes(table),
        "c.csv": b"id,name\n1,a\n",
    }
    summary = csvpg_run('[format]\ntype = "auto"', files=files)
    assert summary.status == "succeeded", [f.error for f in summary.files]
    by_name = {f.file.rsplit("/", 1)[-1]: f for f in summary.files}
    formats = {name: f.details.get("format", "csv") for name, f in by_name.items()}
    assert formats == {
        "p.parquet": "parquet",
        "f.feather": "arrow",
        "a.arrow": "arrow",
        "c.csv": "csv",
    }
    for name in ("p.parquet", "f.feather", "a.arrow"):
        table = by_name[name].table.split(".")[-1]
        assert csvpg_db.columns(table) == {"id": "bigint", "name": "text"}
        assert csvpg_db.rows(table, order_by="id") == [(1, "a"), (2, "b"), (3, None)]
    assert csvpg_db.rows("c") == [("1", "a")]


def test_an_arrow_ipc_stream_loads_batch_by_batch(csvpg_run, csvpg_db) -> None:
    table = pa.table({"n": list(range(7)), "s": [str(i) for i in range(7)]})
    summary = csvpg_run(
        '[format]\ntype = "arrow"\n[sink]\ntable = "s"', files={"s.arrows": ipc_stream_bytes(table)}
    )
    assert summary.exit_code == 0, summary.files[0].error
    assert summary.files[0].details["ipc"] == "stream"
    assert csvpg_db.rows("s", order_by="n") == [(i, str(i)) for i in range(7)]


def test_many_row_groups_and_small_batches_load_every_row(csvpg_run, csvpg_db) -> None:
    n = 25_000
    table = pa.table({"id": pa.array(range(n), pa.int64()), "half": [i / 2 for i in range(n)]})
    summary = csvpg_run(
        '[format]\ntype = "parquet"\nbatch_rows = 1000\n[sink]\ntable = "big"',
        files={"big.parquet": parquet_bytes(table, row_group_size=3000)},
    )
    assert summary.exit_code == 0
    assert summary.files[0].details["row_groups"] == 9
    assert csvpg_db.count("big") == n
    row = csvpg_db.execute(f"SELECT sum(id), sum(half) FROM {csvpg_db.schema}.big").fetchone()
    assert row == (n * (n - 1) // 2, n * (n - 1) / 4)


def test_upsert_by_primary_key(csvpg_run, csvpg_db) -> None:
    job = '[format]\ntype = "parquet"\n[sink]\nmode = "upsert"\ntable = "u"\nprimary_key = ["id"]'
    first = pa.table({"id": [1, 2], "v": ["a", "b"]})
    assert csvpg_run(job, files={"u.parquet": parquet_bytes(first)}).exit_code == 0
    again = pa.table({"id": [2, 3, 3], "v": ["B", "c", "C"]})
    summary = csvpg_run(job, files={"u.parquet": parquet_bytes(again)})
    file = summary.files[0]
    assert (file.inserted, file.updated, file.collapsed) == (1, 1, 1)
    assert csvpg_db.rows("u", order_by="id") == [(1, "a"), (2, "B"), (3, "C")]


def test_the_row_path_gets_the_same_text(csvpg_run, csvpg_db) -> None:
    """A transform that needs values sees the text the byte path would have sent."""
    seen: list[list[str | None]] = []

    class Shout(Transform):
        type = "shout"
        needs_rows = True
        options = {"type": Option(str), "columns": Option(list, item=str)}

        def wrap(self, batches, relation):
            names = self.settings["columns"]
            wanted = [i for i, c in enumerate(relation.columns) if c.name in names]
            for batch in batches:
                seen.extend(batch)
                out = []
                for row in batch:
                    row = list(row)
                    for i in wanted:
                        row[i] = row[i] and row[i].upper()
                    out.append(row)
                yield out

    class Plugin:
        @hookimpl
        def register_transforms(self):
            return [Shout]

    table = pa.table(
        {
            "id": [1, 2],
            "s": ["abc", ""],
            "blob": pa.array([b"\xab", None]),
            "tags": pa.array([["q"], None], pa.list_(pa.string())),
            "at": pa.array([dt.datetime(2024, 1, 1, tzinfo=UTC), None], pa.timestamp("us", "UTC")),
        }
    )
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "r"\n'
        '[[transform]]\ntype = "shout"\ncolumns = ["s", "tags"]',
        files={"r.parquet": parquet_bytes(table)},
        plugins=[Plugin()],
    )
    assert summary.exit_code == 0, summary.files[0].error
    assert summary.files[0].details["path"] == "rows"
    assert seen == [
        ["1", "abc", "\\xAB", '["q"]', "2024-01-01 00:00:00.000000Z"],
        ["2", "", None, None, None],
    ]
    assert csvpg_db.columns("r")["blob"] == "bytea"
    assert csvpg_db.rows("r", order_by="id") == [
        (1, "ABC", b"\xab", ["Q"], dt.datetime(2024, 1, 1, tzinfo=UTC)),
        (2, "", None, None, None),
    ]


def test_rows_an_existing_table_refuses_are_rejected_by_row_number(csvpg_run, csvpg_db) -> None:
    csvpg_db.execute(f"CREATE TABLE {csvpg_db.schema}.small (id smallint, word text)")
    table = pa.table({"id": pa.array([1, 70_000, 3, 80_000], pa.int64()), "word": list("abcd")})
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "small"\nmax_rejects = 10',
        files={"small.parquet": parquet_bytes(table)},
    )
    file = summary.files[0]
    assert file.status == "loaded", file.error
    assert (file.rows_read, file.inserted, file.rejected) == (4, 2, 2)
    assert csvpg_db.rows("small", order_by="id") == [(1, "a"), (3, "c")]
    rejects = csvpg_db.execute(
        "SELECT line, column_name, value, raw FROM csvpg.rejects WHERE run_id = %s ORDER BY line",
        (summary.run_id,),
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rejects] == [(2, "id", "70000"), (4, "id", "80000")]
    assert rejects[0][3] == "70000,b"


def test_a_nul_character_is_a_reject_not_a_failure(csvpg_run, csvpg_db) -> None:
    table = pa.table({"id": [1, 2], "s": ["fine", "bad\x00byte"]})
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "n"\nmax_rejects = 10',
        files={"n.parquet": parquet_bytes(table)},
    )
    file = summary.files[0]
    assert (file.status, file.inserted, file.rejected) == ("loaded", 1, 1), file.error
    assert csvpg_db.rows("n") == [(1, "fine")]


def test_a_file_that_is_not_parquet_fails_with_a_hint(csvpg_run, csvpg_db) -> None:
    summary = csvpg_run('[format]\ntype = "parquet"', files={"x.parquet": b"id,name\n1,a\n"})
    file = summary.files[0]
    assert file.status == "failed"
    assert "cannot be read as a Parquet file" in (file.error or "")
    assert 'type = "auto"' in (file.hint or "")


def test_a_remote_file_through_fsspec(csvpg_run, csvpg_db) -> None:
    """Any fsspec URL works; here the in-memory file system stands in for s3:// or sftp://."""
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    folder = f"/csvpg-parquet-{uuid.uuid4().hex[:8]}"
    table = pa.table({"id": [1, 2], "v": [1.5, None]})
    fs.pipe(f"{folder}/remote.parquet", parquet_bytes(table, compression="zstd"))
    try:
        summary = csvpg_run(
            {
                "format": {"type": "auto"},
                "source": {"url": f"memory://{folder}"},
                "sink": {"table": "remote"},
            }
        )
    finally:
        fs.rm(folder, recursive=True)
    assert summary.exit_code == 0, summary.files[0].error
    assert summary.files[0].details["spooled"] is True
    assert csvpg_db.rows("remote", order_by="id") == [(1, 1.5), (2, None)]


def test_infer_reads_the_types_and_writes_a_job_that_runs(csvpg_db, tmp_path, capsys) -> None:
    """``csvpg infer`` on a Parquet file: the file's own types, a job that loads it."""
    import tomllib

    import tomli_w

    from csvpg.api import run
    from csvpg.cli.main import main

    (tmp_path / "all.parquet").write_bytes(parquet_bytes(every_type()))
    job = tmp_path / "all.toml"
    assert main(["infer", str(tmp_path / "all.parquet"), "--output", str(job)]) == 0
    spec = tomllib.loads(job.read_text())
    assert spec["format"] == {"type": "parquet"}
    assert list(spec["columns"]) == list(EXPECTED_TYPES)  # the file's columns, in order
    assert spec["columns"]["i64"] == "bigint" and spec["columns"]["dec"] == "numeric(12,2)"
    spec["database"] = {"dsn": csvpg_db.dsn, "schema": csvpg_db.schema}
    job.write_text(tomli_w.dumps(spec))
    summary = run(job)
    assert summary.files[0].status == "loaded" and csvpg_db.count("all") == 3
    assert csvpg_db.columns("all") == EXPECTED_TYPES


def test_a_folder_without_pattern_takes_the_plugins_extensions(csvpg_run, csvpg_db) -> None:
    """The Parquet plugin declares ``.parquet`` (Format.extensions): a folder read with
    ``type = "auto"`` and no pattern takes it, and leaves the notes and photos beside it."""
    table = pa.table({"id": [1, 2]})
    files = {
        "p.parquet": parquet_bytes(table),
        "c.csv.gz": gzip.compress(b"id\n1\n"),
        "notes.md": b"# not data\n",
        "photo.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
    }
    summary = csvpg_run('[format]\ntype = "auto"', files=files)
    assert summary.exit_code == 0, [f.error for f in summary.files]
    assert sorted(f.file.rsplit("/", 1)[-1] for f in summary.files) == ["c.csv.gz", "p.parquet"]
    assert csvpg_db.count("p") == 2


def test_schema_evolve_adds_a_column_with_the_file_type_and_widens(csvpg_run, csvpg_db) -> None:
    csvpg_db.execute(f'CREATE TABLE "{csvpg_db.schema}".e (id integer, day date)')
    table = pa.table(
        {
            "id": pa.array([1, 3_000_000_000], pa.int64()),
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
            "seen": [dt.datetime(2024, 1, 1, 9, 30), None],
        }
    )
    summary = csvpg_run(
        '[format]\ntype = "parquet"\n[sink]\ntable = "e"\nschema = "evolve"',
        files={"e.parquet": parquet_bytes(table)},
    )
    (f,) = summary.files
    assert f.status == "loaded", f.error
    assert f.details["drift"] == {
        "added": [{"column": "seen", "type": "timestamp"}],
        "widened": [{"column": "id", "from": "integer", "to": "bigint"}],
    }
    assert csvpg_db.rows("e", order_by="id") == [
        (1, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 9, 30)),
        (3_000_000_000, dt.date(2024, 1, 2), None),
    ]
