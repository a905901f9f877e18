"""The canonical transform: its options, the shape it gives a file, the rows it yields."""

from __future__ import annotations

import logging

import pytest
from csvpg_merge.transform import UNMAPPED_LEVEL, CanonicalTransform

from csvpg import SpecError
from csvpg.engine.plan import file_relation

COLUMNS = {"email": ["E-Mail"], "name": ["Full Name"], "phone": ["Tel"]}


def make(**settings):
    base = {
        "type": "canonical",
        "columns": COLUMNS,
        "threshold": 85,
        "scorer": "ratio",
        "unmapped": "drop",
        "fill_missing": True,
        "normalize": {},
    }
    return CanonicalTransform(**{**base, **settings})


def test_every_file_gets_the_canonical_columns_in_order() -> None:
    before = file_relation(["Notes", "Mail", "Full Name"])
    after = make().relation(before)
    assert [c.name for c in after.columns] == ["email", "name", "phone"]
    assert [c.header for c in after.columns] == ["Mail", "Full Name", ""]
    # The added column's index is none of the file's.
    assert after.columns[2].index not in {c.index for c in before.file_columns}


def test_rows_are_reshaped_and_normalised() -> None:
    t = make(normalize={"*": ["collapse"], "email": ["email"], "phone": ["phone"]})
    before = file_relation(["Tel", "Notes", "E-Mail"])
    rows = [["+1 (555) 01", "x", " ADA@Example.org "], [None, "y", "  "]]
    (out,) = list(t.wrap(iter([rows]), before))
    assert out == [["ada@example.org", None, "+155501"], [None, None, None]]
    report = t.report()
    assert report["normalized"] == {"email": 2, "phone": 1}
    assert report["mapped"]["E-Mail"] == {
        "to": "email",
        "how": "name",
        "score": 100.0,
        "via": "email",
    }
    assert report["mapped"]["Tel"]["how"] == "synonym"
    assert list(report["unmapped"]) == ["Notes"]
    assert report["missing"] == ["name"]
    assert report["warnings"] == [
        f"header 'Notes' maps to no column ({report['unmapped']['Notes']})"
    ]


def test_unmapped_keep_and_fail() -> None:
    before = file_relation(["E-Mail", "Notes"])
    kept = make(unmapped="keep", fill_missing=False).relation(before)
    assert [c.name for c in kept.columns] == ["email", "notes"]
    with pytest.raises(SpecError, match="headers map to no canonical column: 'Notes'"):
        make(unmapped="fail").relation(before)


def test_without_value_steps_or_added_columns_the_byte_path_stays() -> None:
    assert make(fill_missing=False).needs_rows is False
    assert make().needs_rows is True
    assert make(fill_missing=False, normalize={"email": ["lower"]}).needs_rows is True


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"columns": {}}, "names no canonical column"),
        ({"columns": {"": []}}, "not a usable column name"),
        ({"columns": {"a": [1]}}, "must list header names"),
        ({"threshold": 101}, "between 0 and 100"),
        ({"normalize": {"nope": ["trim"]}}, "'transform.normalize.nope' names no canonical"),
        ({"normalize": {"email": ["shout"]}}, "unknown step 'shout'"),
    ],
)
def test_bad_options_are_spec_errors(settings, message) -> None:
    with pytest.raises(SpecError, match=message):
        make(**settings)


def test_the_mapping_is_logged_once_per_header_layout(caplog) -> None:
    caplog.set_level(logging.INFO, logger="csvpg_merge")
    t = make()
    rel = file_relation(["Mail", "Notes"])
    t.relation(rel)
    t.relation(rel)
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("canonical: 'Mail' → email (fuzzy: 'email', score 88.9)") == 1
    (warning,) = [r for r in caplog.records if "maps to no column" in r.getMessage()]
    assert warning.levelno == UNMAPPED_LEVEL
    assert "header 'Notes' maps to no column" in warning.getMessage()
