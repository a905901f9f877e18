"""The template's test: csvpg.testing runs a real job against a real PostgreSQL."""

import pytest

pytest.importorskip("csvpg_plugin_template")  # the package must be installed (its entry point)


def test_trim_strips_the_listed_columns(csvpg_run, csvpg_db):
    summary = csvpg_run(
        '[[transform]]\ntype = "trim"\ncolumns = ["name"]',
        files={"people.csv": "id,name,note\n1,  Ada ,  x \n2,   , y\n"},
    )
    assert summary.status == "succeeded", summary.files[0].error
    assert csvpg_db.rows("people", order_by="id") == [("1", "Ada", "  x "), ("2", None, " y")]


def test_an_unknown_column_fails_the_file_with_a_hint(csvpg_run):
    summary = csvpg_run(
        '[[transform]]\ntype = "trim"\ncolumns = ["nmae"]', files={"people.csv": "id,name\n1,a\n"}
    )
    file = summary.files[0]
    assert file.status == "failed" and "'nmae'" in file.error
    assert "name" in file.hint
