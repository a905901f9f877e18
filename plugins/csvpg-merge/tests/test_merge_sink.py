"""mode = "merge": dedup by key, fields merged by policy, within a file and across files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from csvpg_merge.sink import MergeSink

from csvpg import hookimpl
from csvpg.api import run
from tests.conftest import job_toml


class SpyMerge(MergeSink):
    """The merge sink under another mode name, keeping what each load reported."""

    mode: ClassVar[str] = "merge_spy"
    seen: ClassVar[list[dict[str, Any]]] = []

    def load_staged(self, conn, load, staged):
        result = super().load_staged(conn, load, staged)
        SpyMerge.seen.append({"file": load.ref.name, **result.details["merge"]})
        return result


class Spy:
    @hookimpl
    def register_sinks(self):
        return [SpyMerge]


@pytest.fixture(autouse=True)
def _fresh_spy():
    SpyMerge.seen = []


def job(
    csvpg_db,
    tmp_path: Path,
    *,
    options: str = "",
    extra: str = "",
    mode: str = "merge_spy",
    keys: str = '["k"]',
    fmt: str = "",
    max_rejects: int | None = None,
) -> Path:
    path = tmp_path / "job.toml"
    sink = f'mode = "{mode}"\ntable = "t"\nprimary_key = {keys}\n'
    if max_rejects is not None:
        sink += f"max_rejects = {max_rejects}\n"
    sink += f"[sink.options]\n{options}"
    path.write_text(
        job_toml(
            csvpg_db, str(tmp_path / "in"), sink=sink, fmt=fmt, extra="[run]\nworkers = 1\n" + extra
        )
    )
    return path


def files(tmp_path: Path, **contents: str) -> None:
    (tmp_path / "in").mkdir(exist_ok=True)
    for name, text in contents.items():
        (tmp_path / "in" / f"{name}.csv").write_text(text)


OLD = "1,x,,long value,keep\n"
NEW = "1,y,filled,short,\n"
EXPECTED = {
    "first": ("x", "filled", "long value", "keep"),
    "last": ("y", "filled", "short", "keep"),
    "most_complete": ("x", "filled", "long value", "keep"),
}


@pytest.mark.parametrize("policy", list(EXPECTED))
@pytest.mark.parametrize("split", [True, False], ids=["two files", "one file"])
def test_policies_merge_fields_the_same_within_and_across_files(
    csvpg_db, tmp_path: Path, policy: str, split: bool
) -> None:
    header = "k,a,b,c,d\n"
    if split:
        files(tmp_path, f1=header + OLD, f2=header + NEW)
    else:
        files(tmp_path, f1=header + OLD + NEW)
    summary = run(job(csvpg_db, tmp_path, options=f'policy = "{policy}"'), plugins=[Spy()])
    assert summary.exit_code == 0, summary.files[0].error
    assert csvpg_db.rows("t") == [("1", *EXPECTED[policy])]
    assert summary.total("rows_read") == 2
    assert summary.total("inserted") == 1
    assert (summary.total("updated"), summary.total("collapsed")) == ((1, 0) if split else (0, 1))
    report = SpyMerge.seen[-1]
    assert report["fields_filled"] == {"b": 1}
    replaced = {"first": {}, "last": {"a": 1, "c": 1}, "most_complete": {}}[policy]
    assert report["fields_replaced"] == replaced
    assert report["duplicates_in_file" if not split else "duplicates_of_existing"] == 1


def test_per_field_policies_and_the_report(csvpg_db, tmp_path: Path) -> None:
    files(tmp_path, f1="k,a,b\n1,old,old\n2,two,\n", f2="k,a,b\n1,new,\n2,,late\n3,x,y\n")
    options = 'policy = "first"\nfields = { b = "last" }'
    summary = run(job(csvpg_db, tmp_path, options=options), plugins=[Spy()])
    assert summary.exit_code == 0, summary.files[0].error
    assert csvpg_db.rows("t", order_by="k") == [
        ("1", "old", "old"),
        ("2", "two", "late"),
        ("3", "x", "y"),
    ]
    second = SpyMerge.seen[1]
    assert second == {
        "file": "f2.csv",
        "keys": ["k"],
        "policy": "first",
        "fields": {"b": "last"},
        "duplicates_in_file": 0,
        "duplicates_of_existing": 2,
        "fields_filled": {"b": 1},
        "fields_replaced": {},
        "columns": {"k": "k", "a": "a", "b": "b"},
        "missing": [],
        "unmapped": [],
    }


def test_byte_path_casts_keys_before_dedup_and_keeps_conversions(csvpg_db, tmp_path: Path) -> None:
    """No transform: COPY takes the bytes; "01" and "1" are one integer key."""
    files(tmp_path, f1='id;amount;note\n01;"1,50";NA\n1;;first note\n2;"2.000,25";\n')
    extra = (
        '[columns]\nid = "integer"\namount = { type = "numeric(12,2)", decimal = ",", '
        'thousands = "." }\n'
    )
    fmt = 'delimiter = ";"\nnull_values = ["", "NA"]'
    summary = run(
        job(csvpg_db, tmp_path, keys='["id"]', extra=extra, fmt=fmt, mode="merge"), plugins=[Spy()]
    )
    assert summary.exit_code == 0, summary.files[0].error
    assert summary.files[0].details["path"] == "bytes"
    from decimal import Decimal

    assert csvpg_db.rows("t", order_by="id") == [
        (1, Decimal("1.50"), "first note"),
        (2, Decimal("2000.25"), None),
    ]
    assert (summary.total("inserted"), summary.total("collapsed")) == (2, 1)


def test_bad_rows_are_set_aside_and_the_rest_merges(csvpg_db, tmp_path: Path) -> None:
    """The careful path hands the merge its own staging table."""
    files(tmp_path, f1="id,n\n1,a\n1,bb\nx,c\n2,d\n")
    extra = '[columns]\nid = "integer"\n'
    # One bad row in four: more than the default max_rejects allows.
    summary = run(job(csvpg_db, tmp_path, keys='["id"]', extra=extra, mode="merge", max_rejects=1))
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert (f.rows_read, f.inserted, f.collapsed, f.rejected) == (4, 2, 1, 1)
    assert csvpg_db.rows("t", order_by="id") == [(1, "bb"), (2, "d")]


def test_a_table_of_keys_only(csvpg_db, tmp_path: Path) -> None:
    files(tmp_path, f1="k\n1\n1\n2\n", f2="k\n2\n3\n")
    summary = run(job(csvpg_db, tmp_path, mode="merge"))
    assert summary.exit_code == 0, summary.files[0].error
    assert csvpg_db.rows("t", order_by="k") == [("1",), ("2",), ("3",)]
    assert [(f.inserted, f.updated, f.collapsed) for f in summary.files] == [(2, 0, 1), (1, 1, 0)]


def test_files_merging_at_once_take_turns(csvpg_db, tmp_path: Path) -> None:
    rows = "".join(f"{i},v{i}\n" for i in range(2000))
    files(tmp_path, **{f"f{n}": "k,v\n" + rows for n in range(4)})
    path = job(csvpg_db, tmp_path, mode="merge")
    path.write_text(path.read_text().replace("workers = 1", "workers = 4"))
    summary = run(path)
    assert summary.exit_code == 0, [f.error for f in summary.files]
    assert csvpg_db.count("t") == 2000
    assert summary.total("inserted") == 2000 and summary.total("updated") == 6000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('policy = "best"', "'sink.options.policy' must be one of"),
        ('fields = { a = "best" }', "'sink.options.fields.a' must be one of"),
        ('fields = { k = "last" }', "'k' is a key column"),
        ('fields = { zz = "last" }', "'zz' is not a column of the file"),
    ],
)
def test_bad_options(csvpg_db, tmp_path: Path, options: str, message: str) -> None:
    files(tmp_path, f1="k,a\n1,2\n")
    from csvpg.errors import SpecError

    try:
        summary = run(job(csvpg_db, tmp_path, options=options, mode="merge"))
    except SpecError as exc:  # options checked before anything runs
        assert message in exc.message
        return
    assert summary.exit_code == 1
    assert message in (summary.files[0].error or "")


def test_the_merged_table_is_written_to_output(csvpg_db, tmp_path: Path) -> None:
    files(tmp_path, f1="k,a\n2,two\n1,\n", f2="k,a\n1,one\n")
    options = 'output = "out/merged.csv"'
    summary = run(job(csvpg_db, tmp_path, options=options), plugins=[Spy()])
    assert summary.exit_code == 0, summary.files[0].error
    merged = tmp_path / "out" / "merged.csv"  # relative to the job file's folder
    assert merged.read_text() == "k,a\n1,one\n2,two\n", "the whole table, in key order"
    assert [f.details["output"] for f in summary.files] == [str(merged)] * 2
    assert [p.name for p in merged.parent.iterdir()] == ["merged.csv"], "no temporary left"


def test_schema_evolve_adds_and_widens_before_the_merge(csvpg_db, tmp_path: Path) -> None:
    """A later file with a new column and a key past 2³¹ merges into the table the
    first file made, widened and with the column added ([sink] schema = "evolve")."""
    csvpg_db.execute(f'CREATE TABLE "{csvpg_db.schema}".t (k integer PRIMARY KEY, a text)')
    files(tmp_path, f1="k,a\n1,x\n2,\n", f2="k,a,e\n2,y,7\n3000000000,z,8\n")
    path = job(csvpg_db, tmp_path, extra="")
    path.write_text(path.read_text().replace('table = "t"', 'table = "t"\nschema = "evolve"'))
    summary = run(path, plugins=[Spy()])
    assert summary.exit_code == 0, [f.error for f in summary.files]
    f2 = next(f for f in summary.files if f.file.endswith("f2.csv"))
    assert f2.details["drift"] == {
        "added": [{"column": "e", "type": "integer"}],
        "widened": [{"column": "k", "from": "integer", "to": "bigint"}],
    }
    assert csvpg_db.columns("t") == {"k": "bigint", "a": "text", "e": "integer"}
    assert csvpg_db.rows("t", "k") == [(1, "x", None), (2, "y", 7), (3000000000, "z", 8)]
