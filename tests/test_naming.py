"""Header and table names: deterministic, unique, safe, ≤ 63 bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csvpg.api import run
from csvpg.errors import SpecError
from csvpg.naming import MAX_BYTES, check_template, safe_names, split_table, table_name
from tests.conftest import job_toml

headers = st.lists(st.text(max_size=80), max_size=30)


@given(headers)
def test_names_are_unique_short_and_deterministic(raw: list[str]) -> None:
    names = safe_names(raw)
    assert len(names) == len(raw)
    assert len(set(names)) == len(names)
    assert all(0 < len(n.encode()) <= MAX_BYTES for n in names)
    assert names == safe_names(list(raw))


@given(headers)
def test_names_need_no_quoting_trouble(raw: list[str]) -> None:
    for name in safe_names(raw):
        assert name == name.strip()
        assert '"' not in name and "\x00" not in name
        assert not name[0].isdigit()


def test_examples() -> None:
    assert safe_names(["Kunden Nr", "E-Mail", "", "Name", "name", "2019", "Straße"]) == [
        "kunden_nr",
        "e_mail",
        "column_3",
        "name",
        "name_2",
        "c_2019",
        "straße",
    ]


def test_a_suffix_never_steals_a_later_name() -> None:
    assert safe_names(["a", "a", "a_2"]) == ["a", "a_3", "a_2"]


def test_long_headers_stay_apart() -> None:
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    a, b = safe_names([long_a, long_b])
    assert a != b and len(a.encode()) <= MAX_BYTES


def test_table_names() -> None:
    assert table_name("IxExpKonto.csv", "{name}", strip_prefix="IxExp") == "konto"
    assert table_name("orders.csv.gz", "stage_{name}") == "stage_orders"
    assert table_name("events.parquet", "{name}") == "events"
    assert table_name("Sales 2024.CSV", "{name}") == "sales_2024"
    assert table_name("whatever.csv", "Customers") == "Customers"


identifier = st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True)


@given(identifier, identifier)
def test_a_dot_separates_schema_and_table(schema: str, table: str) -> None:
    assert split_table(table, "public") == ("public", table)
    assert split_table(f"{schema}.{table}", "public") == (schema, table)


@given(st.lists(identifier, min_size=3, max_size=5))
def test_more_dots_are_ambiguous_never_a_table_named_so(parts: list[str]) -> None:
    for name in (".".join(parts), f".{parts[0]}", f"{parts[0]}.", "a..b"):
        with pytest.raises(SpecError, match="is ambiguous"):
            split_table(name, "public")


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{nme}", "did you mean {name}?"),
        ("stage_{Name}", "did you mean {name}?"),
        ("{name", "a brace that opens or closes no placeholder"),
        ("x.y.{name}", "is ambiguous"),
    ],
)
def test_a_template_names_only_known_placeholders(template: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        check_template(template, "sink.table")
    assert words in f"{info.value.message} {info.value.hint}"


@pytest.mark.parametrize("template", ["sales.orders", "sales.{name}"])
def test_schema_dot_table_loads_into_that_schema(db, tmp_path: Path, template: str) -> None:
    schema = f"{db.schema}_sales"
    (tmp_path / "orders.csv").write_text("id,amount\n1,9.5\n")
    job = tmp_path / "job.toml"
    table = template.replace("sales", schema)
    job.write_text(job_toml(db, str(tmp_path / "orders.csv"), sink=f'table = "{table}"'))
    try:
        summary = run(job)
        assert summary.exit_code == 0, summary.files[0].error
        assert summary.files[0].table == f"{schema}.orders"
        assert db.execute(f'SELECT amount FROM "{schema}".orders').fetchall() == [("9.5",)]
        assert "sales.orders" not in db.tables() and f"{schema}.orders" not in db.tables()
    finally:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
