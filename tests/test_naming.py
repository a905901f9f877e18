"""Header and table names: deterministic, unique, safe, ≤ 63 bytes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from csvpg.naming import MAX_BYTES, safe_names, table_name

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
