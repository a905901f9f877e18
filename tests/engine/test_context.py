"""csvpg.engine.context: each file's load gets a frozen view of its run made for that
file (its own route, with its [[override]] applied, and the job's [run] settings and
reject limit); and the column types of a load: what the plan decides from the job
alone, and what the table (or PostgreSQL's check of a type) settles."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from csvpg.api import prepare
from csvpg.engine.context import FileContext
from csvpg.engine.fileload import FileLoad
from csvpg.engine.plan import FilePlan, Plan, open_file
from csvpg.errors import SinkError, SpecError
from csvpg.interfaces import ColumnType, LoadInput
from tests.conftest import job_toml

OVERRIDE = """
[run]
max_retries = 5
split_mb = 7

[columns]
amount = { type = "numeric(12,2)", decimal = "," }
day = "date"

[[override]]
match = "b.csv"
table = "bees"
mode = "upsert"
primary_key = ["id"]
columns = { day = { type = "date", format = "DD.MM.YYYY" } }
"""


def planned(db: Any, tmp_path: Path, extra: str = OVERRIDE, sink: str = "") -> Any:
    (tmp_path / "a.csv").write_text('id,amount,day,note\n1,"1,5",2024-01-02,x\n')
    (tmp_path / "b.csv").write_text('id,amount,day,note\n2,"2,5",03.01.2024,y\n')
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, ".", sink=sink or 'max_rejects = "5%"', extra=extra))
    return prepare(job)


def by_name(plan: Plan, name: str) -> FilePlan:
    return next(fp for fp in plan.files if fp.ref.name == name)


def test_each_file_gets_its_own_route_and_the_jobs_run_settings(db, tmp_path: Path) -> None:
    handle = planned(db, tmp_path)
    plan = handle.plan()
    try:
        a, b = (
            handle.context().for_file(plan.source, by_name(plan, n)) for n in ("a.csv", "b.csv")
        )
    finally:
        plan.source.close()
    assert (a.file.target, a.file.mode) == (f"{db.schema}.a", "append")
    assert (b.file.target, b.file.mode, b.file.primary_key) == (
        f"{db.schema}.bees",
        "upsert",
        ["id"],
    )
    assert a.settings.max_retries == b.settings.max_retries == 5
    assert a.settings.split_mb == 7
    assert (a.max_rejects, a.limit) == ("5%", (None, 0.05))
    assert a.job_name == "test" and a.base_dir == tmp_path
    assert a.cancel is b.cancel and a.budget is b.budget, "the run's own, shared"
    assert not hasattr(a, "job"), "a file's load sees no other file's settings"


def test_a_file_context_is_frozen(db, tmp_path: Path) -> None:
    handle = planned(db, tmp_path)
    plan = handle.plan()
    try:
        ctx = handle.context().for_file(plan.source, plan.files[0])
    finally:
        plan.source.close()
    assert isinstance(ctx, FileContext)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.dry_run = True  # type: ignore[misc]


# -- the plan's types: no database ---------------------------------------------------------


class Nowhere:
    """A database nothing listens at: a plan that asked it would fail."""

    dsn = "postgresql://nobody@127.0.0.1:1/none"
    schema = "public"


def plan_types(handle: Any, name: str) -> dict[str, ColumnType]:
    plan = handle.plan()
    try:
        fp = by_name(plan, name)
        opened = open_file(plan, fp)
        try:
            return fp.planned_types(opened)
        finally:
            opened.close()
    finally:
        plan.source.close()


def test_the_plan_types_columns_from_the_job_alone(tmp_path: Path) -> None:
    """No server is asked (the DSN names none that listens): [columns] with its
    conversions, an override's [columns] over the job's, text for the rest."""

    handle = planned(Nowhere(), tmp_path)
    assert plan_types(handle, "a.csv") == {
        "id": ColumnType("text"),
        "amount": ColumnType("numeric(12,2)", decimal=","),
        "day": ColumnType("date"),
        "note": ColumnType("text"),
    }
    assert plan_types(handle, "b.csv")["day"] == ColumnType("date", format="DD.MM.YYYY")


def test_a_primary_key_column_the_file_lacks_is_a_spec_error(tmp_path: Path) -> None:
    handle = planned(Nowhere(), tmp_path, extra="", sink='mode = "upsert"\nprimary_key = ["key"]')
    plan = handle.plan()
    try:
        fp = by_name(plan, "a.csv")
        opened = open_file(plan, fp)
        try:
            with pytest.raises(SpecError) as err:
                fp.check_primary_key(opened.relation)
        finally:
            opened.close()
    finally:
        plan.source.close()
    assert err.value.key == "sink.primary_key"
    assert err.value.hint == "columns: id, amount, day, note"


# -- the types as the database settles them -------------------------------------------------


def load_input(handle: Any, db: Any, name: str) -> LoadInput:
    plan = handle.plan()
    try:
        fp = by_name(plan, name)
        opened = open_file(plan, fp)
        try:
            with db.conn.transaction(force_rollback=True):
                return FileLoad(handle.context().for_file(plan.source, fp)).load_input(
                    db.conn, opened
                )
        finally:
            opened.close()
    finally:
        plan.source.close()


def test_a_table_to_create_gets_the_planned_types_checked(db, tmp_path: Path) -> None:
    types = load_input(planned(db, tmp_path), db, "a.csv").types
    assert types["amount"] == ColumnType("numeric(12,2)", decimal=",")
    assert types["note"] == ColumnType("text")


def test_a_type_postgresql_does_not_know_names_its_column(db, tmp_path: Path) -> None:
    handle = planned(db, tmp_path, extra='[columns]\namount = "numbr"\n')
    with pytest.raises(SinkError) as err:
        load_input(handle, db, "a.csv")
    assert err.value.key == "columns.amount"


def test_a_table_that_is_there_gives_its_types_and_keeps_the_conversions(
    db, tmp_path: Path
) -> None:
    db.execute(
        f'CREATE TABLE "{db.schema}".a (id bigint, amount numeric, day timestamptz, note text)'
    )
    types = load_input(planned(db, tmp_path), db, "a.csv").types
    assert types == {
        "id": ColumnType("bigint"),
        "amount": ColumnType("numeric", decimal=","),
        "day": ColumnType("timestamp with time zone"),
        "note": ColumnType("text"),
    }


def test_a_table_without_a_column_of_the_file_says_which(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".a (id bigint, amount numeric)')
    with pytest.raises(SinkError) as err:
        load_input(planned(db, tmp_path), db, "a.csv")
    assert err.value.message == f"table {db.schema}.a has no column 'day', 'note' for a.csv"
