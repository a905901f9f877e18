"""Rejects on the row path (a transform that needs values): the rows PostgreSQL refuses
are set aside like on the byte path, named by line when the transform keeps rows one
for one, by their values when it does not; the rest loads and the counts add up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csvpg import Option, Transform, hookimpl
from csvpg.cli.main import main

EXPORT = (
    "id,name,amount\n"
    "1,ada,10\n"
    '2,"grace\nhopper",20\n'  # a quoted newline: the rows below start a line later
    "3,alan,ten\n"  # line 5: not an integer
    "4,barbara,40,extra\n"  # line 6: one value too many
    "5,edsger,50\n"
)


class Capitals(Transform):
    """Names in capitals: row for row."""

    type = "capitals"
    needs_rows = True
    one_to_one = True
    options = {"type": Option(str)}

    def wrap(self, batches: Iterator[Any], relation: Any) -> Iterator[Any]:
        for batch in batches:
            yield [[row[0], (row[1] or "").upper(), *row[2:]] for row in batch]


class DropFirst(Transform):
    """Leaves out id 1: its batches are not the rows it took."""

    type = "drop_first"
    needs_rows = True
    options = {"type": Option(str)}

    def wrap(self, batches: Iterator[Any], relation: Any) -> Iterator[Any]:
        for batch in batches:
            yield [row for row in batch if row[0] != "1"]


class Plugin:
    @hookimpl
    def register_transforms(self) -> list[type[Transform]]:
        return [Capitals, DropFirst]


def job(transform: str, *, mode: str = "append", max_rejects: int = 10) -> str:
    key = 'primary_key = ["id"]\n' if mode == "upsert" else ""
    return (
        f'[[transform]]\ntype = "{transform}"\n'
        f'[sink]\nmode = "{mode}"\ntable = "people"\n{key}max_rejects = {max_rejects}\n'
        '[columns]\nid = "integer"\namount = "integer"\n'
    )


@pytest.fixture
def load(csvpg_run) -> Any:
    """``load(spec, data=EXPORT, **options)``: run ``spec`` on people.csv with this
    module's transforms; returns the run's summary and its one file."""

    def run(spec: str, data: str = EXPORT, **options: Any) -> tuple[Any, Any]:
        summary = csvpg_run(spec, files={"people.csv": data}, plugins=[Plugin()], **options)
        (file,) = summary.files
        return summary, file

    return run


def rejects(db: Any, run_id: str) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT line, column_name, value, reason, raw FROM csvpg.rejects WHERE run_id = %s"
        " ORDER BY line NULLS LAST, id",
        (run_id,),
    ).fetchall()


def test_a_one_to_one_transform_names_the_lines(load, csvpg_db) -> None:
    summary, file = load(job("capitals"))
    assert file.status == "loaded" and file.details["path"] == "rows"
    assert (file.rows_read, file.inserted, file.rejected) == (5, 3, 2)
    assert csvpg_db.rows("people", "id") == [
        (1, "ADA", 10),
        (2, "GRACE\nHOPPER", 20),
        (5, "EDSGER", 50),
    ]
    assert rejects(csvpg_db, summary.run_id) == [
        # The record as the file has it, not as the transform made it.
        (5, "amount", "ten", 'invalid input syntax for type integer: "ten"', "3,alan,ten\n"),
        # Set aside as it was read, before the transform saw it.
        (6, None, None, "4 fields where the header has 3", "4,barbara,40,extra\n"),
    ]


def test_a_transform_that_drops_rows_names_the_values(load, csvpg_db, capsys) -> None:
    summary, file = load(job("drop_first"))
    assert (file.rows_read, file.inserted, file.rejected) == (4, 2, 2)
    found = rejects(csvpg_db, summary.run_id)
    assert [(line, raw) for line, *_, raw in found] == [
        (6, "4,barbara,40,extra\n"),  # set aside as read, before the transform
        (None, "3,alan,ten"),  # refused after it: its values, no line
    ]
    # People read where it was: no "line None".
    assert main(["runs", summary.run_id, "--rejects", "--dsn", csvpg_db.dsn]) == 0
    out = capsys.readouterr().out
    assert "a transformed row, column amount" in out and "line None" not in out


def test_ragged_rows_and_blank_lines_before_a_projection(load, csvpg_db) -> None:
    """A row with the wrong number of fields never reaches the transforms (a select
    could not shape it): it is a reject with its line; a blank line is no record."""
    data = EXPORT.replace("5,edsger,50\n", "\n5,edsger,50\n6,\n")
    summary, file = load(
        '[[transform]]\ntype = "select"\ncolumns = ["id", "name"]\n'
        '[[transform]]\ntype = "capitals"\n'
        '[sink]\ntable = "people"\nmax_rejects = 10\n[columns]\nid = "integer"\n',
        data,
    )
    assert file.status == "loaded", file.error
    assert (file.rows_read, file.inserted, file.rejected) == (6, 4, 2)
    assert [r[0] for r in csvpg_db.rows("people", "id")] == [1, 2, 3, 5]
    assert [(line, reason) for line, _, _, reason, _ in rejects(csvpg_db, summary.run_id)] == [
        (6, "4 fields where the header has 3"),
        (9, "2 fields where the header has 3"),
    ]


def test_upsert_on_the_row_path_sets_a_bad_key_aside(load, csvpg_db) -> None:
    data = "id,name,amount\n1,ada,10\nx,bad,20\n1,ada,11\n"
    summary, file = load(job("capitals", mode="upsert"), data)
    assert (file.rows_read, file.inserted, file.collapsed, file.rejected) == (3, 1, 1, 1)
    assert csvpg_db.rows("people") == [(1, "ADA", 11)]  # the last row of key 1 won
    assert [r[:2] for r in rejects(csvpg_db, summary.run_id)] == [(3, "id")]


def test_max_rejects_0_fails_at_the_first_bad_row_naming_its_line(load, csvpg_db) -> None:
    _, file = load(job("capitals", max_rejects=0), EXPORT.replace(",40,extra", ",40"))
    assert file.status == "failed" and "line 5: invalid input syntax" in (file.error or "")
    assert csvpg_db.columns("people") == {}


def test_past_max_rejects_the_row_path_leaves_the_table_as_it_was(load, csvpg_db) -> None:
    load(job("capitals"), "id,name,amount\n9,zuse,90\n")
    summary, file = load(job("capitals", max_rejects=1))
    assert file.status == "failed" and "max_rejects" in (file.error or "")
    assert "line 5:" in (file.error or "")
    assert csvpg_db.rows("people") == [(9, "ZUSE", 90)]
    assert [r[0] for r in rejects(csvpg_db, summary.run_id)] == [5, 6]


value = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.sampled_from(["ten", "99999999999", "1.5", ""]),
)
record = st.one_of(
    st.tuples(st.text("ab ", min_size=1, max_size=3), value).map(list),
    st.just(["too", "many", "values"]),
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(record, max_size=25))
def test_every_row_is_in_the_table_or_rejected_at_its_line(
    load, csvpg_db, records: list[list[str]]
) -> None:
    """Property: through a one_to_one transform, read = inserted + rejected, and the
    rejected lines are exactly the lines of the rows that cannot load."""
    text = "id,name,amount\n" + "".join(f"{i}," + ",".join(r) + "\n" for i, r in enumerate(records))
    summary, file = load(
        '[[transform]]\ntype = "capitals"\n'
        '[sink]\nmode = "rebuild"\ntable = "prop"\nmax_rejects = "100%"\n'
        '[columns]\nid = "integer"\namount = "integer"\n',
        text,
        force=True,
    )

    def loads(r: list[str]) -> bool:
        if len(r) != 2 or r[1] == "":
            return len(r) == 2
        return r[1].lstrip("-").isdigit() and abs(int(r[1])) < 2**31

    if records and not any(map(loads, records)):  # every row rejected: never "loaded"
        assert file.status == "failed" and "none could be loaded" in (file.error or "")
        return
    assert file.status == "loaded", file.error
    assert file.rows_read == len(records) == file.inserted + file.rejected

    bad_lines = [i + 2 for i, r in enumerate(records) if not loads(r)]
    assert [line for line, *_ in rejects(csvpg_db, summary.run_id)] == bad_lines
    good = [
        (i, r[0].upper(), int(r[1]) if r[1] else None) for i, r in enumerate(records) if loads(r)
    ]
    assert csvpg_db.rows("prop", "id") == good


AMBIGUOUS = "a quote inside an unquoted field (ambiguous)"


def test_ambiguous_quotes_are_rejects_on_the_row_path_too(load, csvpg_db) -> None:
    """A mixed file (quoted fields, and quotes inside unquoted ones) through a transform
    that needs values: the ambiguous records are rejects with their line, column and
    raw line, as on the byte path; the rest loads exactly."""
    data = (
        'id,name,amount\n1,"Smith, Ann",10\n2,Robert "Bumps" Blackwell,20\n'
        '3,"Lee, Bo",30\n4,plain,5"\n5,"say ""hi""",50\n'
    )
    summary, file = load(job("capitals"), data)
    assert file.status == "loaded", file.error
    assert file.details["path"] == "rows"
    assert (file.rows_read, file.inserted, file.rejected) == (5, 3, 2)
    assert csvpg_db.rows("people", "id") == [
        (1, "SMITH, ANN", 10),
        (3, "LEE, BO", 30),
        (5, 'SAY "HI"', 50),
    ]
    assert rejects(csvpg_db, summary.run_id) == [
        (3, "name", None, AMBIGUOUS, '2,Robert "Bumps" Blackwell,20\n'),
        (5, "amount", None, AMBIGUOUS, '4,plain,5"\n'),
    ]


def test_a_stray_quote_past_the_sample_is_a_reject_on_the_row_path(
    load, csvpg_db, monkeypatch
) -> None:
    """The sample looked clean; the decoded block holding the quote that ends an
    unquoted field is checked record by record, and that record alone is a reject."""
    from csvpg.builtin import format_csv

    monkeypatch.setattr(format_csv, "SAMPLE_SIZE", 4096)
    monkeypatch.setattr(format_csv, "BLOCK_SIZE", 4096)
    good = "".join(f'{i},"n {i}",{i}\n' for i in range(1, 3000))
    data = "id,name,amount\n" + good + '3000,bolt,5"\n3001,"last",1\n3002,nut,6"\n'
    summary, file = load(job("drop_first"), data)
    assert file.status == "loaded", file.error
    assert (file.rows_read, file.inserted, file.rejected) == (3001, 2999, 2)
    assert csvpg_db.count("people") == 2999  # id 1 dropped by the transform, 2 rejected
    assert [r[:4] for r in rejects(csvpg_db, summary.run_id)] == [
        (3001, "amount", None, AMBIGUOUS),
        (3003, "amount", None, AMBIGUOUS),
    ]
