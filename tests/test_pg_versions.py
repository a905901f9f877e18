"""The tests' version marker (``@pytest.mark.pg(">= 17")``): version-specific behaviour
runs only where it exists, on every server the suite is run against."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fix_pg import version_matches


@given(major=st.integers(9, 30), minor=st.integers(0, 99), want=st.integers(9, 30))
def test_a_spec_compares_the_major_version(major: int, minor: int, want: int) -> None:
    num = major * 10000 + minor
    assert version_matches(f">= {want}", num) == (major >= want)
    assert version_matches(f"<{want}", num) == (major < want)
    assert version_matches(f"== {want}", num) == (major == want)


@pytest.mark.pg(">= 17")
def test_copy_on_error_exists_from_17(db) -> None:
    """The option a faster bad-row path can use (issue: bad rows cost little) exists on
    17 and later; the marker keeps this test off older servers."""
    db.execute(f'CREATE TABLE "{db.schema}".n (v integer)')
    with (
        db.conn.cursor() as cur,
        cur.copy(f'COPY "{db.schema}".n FROM STDIN (FORMAT csv, ON_ERROR ignore)') as copy,
    ):
        copy.write(b"1\nx\n3\n")
    assert db.count("n") == 2


@pytest.mark.pg("< 17")
def test_copy_on_error_is_refused_before_17(db) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".n (v integer)')
    statement = f'COPY "{db.schema}".n FROM STDIN (FORMAT csv, ON_ERROR ignore)'
    with (
        pytest.raises(psycopg.errors.SyntaxError),
        db.conn.cursor() as cur,
        cur.copy(statement) as copy,
    ):
        copy.write(b"1\n")
