"""Date and time columns load the date the file says, or reject the row: a relative
word (``yesterday``) is not a date, and a ``format`` template that does not read the
whole value, or reads it as another date, is a reject, never a silently wrong date."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from csvpg.api import run
from csvpg.cli.main import main
from csvpg.dateformat import PATTERNS, patterns
from csvpg.interfaces import ColumnType
from csvpg.pg.load import RELATIVE_REASON, value_expr
from tests.conftest import job_toml
from tests.pg.test_rejects import run_dirty

DAYS = (
    b"id,day,note\n1,2024-01-31,ok\n2,yesterday,x\n3,epoch,x\n4,infinity,x\n5, Today ,x\n"
    b"6,-infinity,x\n"
)


def reject_rows(db, summary) -> list[tuple]:
    return db.execute(
        "SELECT line, column_name, value, reason FROM csvpg.rejects WHERE run_id = %s"
        " ORDER BY line",
        (summary.run_id,),
    ).fetchall()


@pytest.mark.parametrize(
    "sink", ['mode = "append"', 'mode = "rebuild"', 'mode = "upsert"\nprimary_key = ["id"]']
)
def test_relative_date_words_are_rejects(db, tmp_path: Path, sink: str) -> None:
    """The fast COPY (append, rebuild) and the staged upsert alike."""
    summary = run_dirty(db, tmp_path, DAYS, 'id = "integer"\nday = "date"', sink=sink)
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert reject_rows(db, summary) == [
        (3, "day", "yesterday", RELATIVE_REASON),
        (6, "day", " Today ", RELATIVE_REASON),
    ]
    days = db.execute(sql.SQL("SELECT id, day::text FROM {} ORDER BY id").format(db.table("dirty")))
    assert days.fetchall() == [
        (1, "2024-01-31"),
        (3, "1970-01-01"),
        (4, "infinity"),
        (6, "-infinity"),
    ]


def test_an_existing_tables_timestamp_column_rejects_them_too(db, tmp_path: Path) -> None:
    db.execute(
        sql.SQL("CREATE TABLE {} (id int, at timestamptz, t time)").format(db.table("dirty"))
    )
    data = b"id,at,t\n1,2024-01-31 10:00+00,10:00\n2,now,10:00\n3,2024-01-31,allballs\n"
    summary = run_dirty(db, tmp_path, data, "")
    assert [(line, col) for line, col, *_ in reject_rows(db, summary)] == [(3, "at"), (4, "t")]
    assert db.count("dirty") == 1


def test_allow_relative_takes_them_as_postgresql_does(db, tmp_path: Path) -> None:
    columns = 'day = { type = "date", allow_relative = true }'
    summary = run_dirty(db, tmp_path, b"id,day\n1,today\n2,2024-01-31\n", columns)
    assert summary.exit_code == 0 and summary.files[0].rejected == 0
    (today,) = db.execute("SELECT current_date").fetchone()
    assert [d for _, d in db.rows("dirty", "id")] == [today, dt.date(2024, 1, 31)]


@pytest.mark.parametrize("limit", [0, 10])
def test_a_word_in_a_text_column_is_no_reject(db, tmp_path: Path, limit: int) -> None:
    """The fast path's cheap test finds the word, the careful path sees it is text."""
    data = b"id,day,note\n1,2024-01-31,call me now\n2,2024-02-01,today is fine\n"
    summary = run_dirty(db, tmp_path, data, 'day = "date"', sink=f"max_rejects = {limit}")
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    assert (f.inserted, f.rejected) == (2, 0)


def test_max_rejects_0_fails_on_a_relative_word_naming_it(db, tmp_path: Path) -> None:
    summary = run_dirty(db, tmp_path, DAYS, 'day = "date"', sink="max_rejects = 0")
    f = summary.files[0]
    assert summary.exit_code == 1
    assert f"line 3: {RELATIVE_REASON}" in (f.error or "")
    assert "dirty" not in db.tables()


def test_a_split_file_rejects_them_too(db, tmp_path: Path) -> None:
    """A file large enough to load over two connections (into a new table, so COPY
    goes straight into typed columns): it loads again on one, then carefully."""
    lines = [f"{n},2024-01-{n % 28 + 1:02d},note {n}" for n in range(1, 60_001)]
    lines[40_000] = "40001,tomorrow,note"
    (tmp_path / "big.csv").write_text("id,day,note\n" + "\n".join(lines) + "\n")
    job = tmp_path / "job.toml"
    run_section = "[run]\nworkers = 2\nsplit_mb = 1\n"
    job.write_text(
        job_toml(db, str(tmp_path / "big.csv"), extra=f'[columns]\nday = "date"\n{run_section}')
    )
    summary = run(job)
    f = summary.files[0]
    assert (f.status, f.inserted, f.rejected) == ("loaded", 59_999, 1), f.error
    assert reject_rows(db, summary) == [(40_002, "day", "tomorrow", RELATIVE_REASON)]
    assert f.details["split"]["why"].startswith("split, it failed: ")


GERMAN = (
    "id;datum\n"
    "1;31.01.2024\n"
    "2;1.2.2024\n"
    "3;15.01.2024 junk\n"
    "4;15.01.24\n"
    "5;31.13.2024\n"
    '6;""\n'
    "7;\n"
    "8;  05.03.2024 \n"
    "9;today\n"
)


def test_a_format_reads_the_whole_value_or_rejects_it(db, tmp_path: Path) -> None:
    columns = 'id = "integer"\ndatum = { type = "date", format = "DD.MM.YYYY" }'
    summary = run_dirty(db, tmp_path, GERMAN.encode(), columns, fmt='delimiter = ";"')
    f = summary.files[0]
    assert summary.exit_code == 0, f.error
    got = {line: (value, reason) for line, _, value, reason in reject_rows(db, summary)}
    assert sorted(got) == [4, 5, 6, 10]  # to_date knows no "today" either
    assert got[4][1] == "does not match the format DD.MM.YYYY (read with it, it is 15.01.2024)"
    assert got[5][1].endswith("(read with it, it is 15.01.0024)")
    assert got[6] == ("31.13.2024", 'date/time field value out of range: "31.13.2024"')
    assert [(i, d and d.isoformat()) for i, d in db.rows("dirty", "id")] == [
        (1, "2024-01-31"),
        (2, "2024-02-01"),
        (6, None),  # "" is empty, as everywhere
        (7, None),
        (8, "2024-03-05"),
    ]


def test_an_unknown_template_pattern_is_a_spec_error(tmp_path: Path, capsys) -> None:
    job = tmp_path / "job.toml"
    job.write_text(
        '[job]\nname = "x"\n[source]\nurl = "."\n'
        '[columns]\nday = { type = "date", format = "garbage" }\n'
    )
    assert main(["check", str(job)]) == 2
    err = capsys.readouterr().err
    assert "'columns.day.format' = 'garbage' is not a date/time template" in err
    assert "'garbage' is no date/time pattern" in err


@pytest.mark.parametrize(
    ("template", "found"),
    [
        ("DD.MM.YYYY", ["DD", "MM", "YYYY"]),
        ('YYYY-MM-DD"T"HH24:MI:SS', ["YYYY", "MM", "DD", "HH24", "MI", "SS"]),
        ("FMDDth Month YYYY", ["DD", "Month", "YYYY"]),
        ("yyyymmdd", ["yyyy", "mm", "dd"]),
        ("HH12:MI a.m.", ["HH12", "MI", "a.m."]),
    ],
)
def test_templates_are_read_as_postgresql_reads_them(template: str, found: list[str]) -> None:
    assert patterns(template) == found


@pytest.mark.parametrize("template", ["garbage", "Mm/DD/YYYY", "YYYY-MM-DDTHH24", "DD.MM.YYYY x"])
def test_letters_that_are_no_pattern_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="is no date/time pattern"):
        patterns(template)


pattern = st.sampled_from(sorted(PATTERNS))
separator = st.sampled_from(["-", ".", "/", " ", ":", ","])


@given(st.lists(st.tuples(pattern, separator), min_size=1, max_size=6))
def test_templates_of_known_patterns_are_accepted(parts: list[tuple[str, str]]) -> None:
    """Property: joined with separators, known patterns always parse. Run together they
    need not: "D" + "DAY" reads as "DD" then "AY", which PostgreSQL would skip silently,
    so csvpg refuses it (see the case below)."""
    template = "".join(p + s for p, s in parts)
    assert patterns(template)


def test_patterns_run_together_are_read_longest_first() -> None:
    assert patterns("YYYYMMDD") == ["YYYY", "MM", "DD"]
    with pytest.raises(ValueError):
        patterns("DDAY")


@pytest.mark.parametrize(
    ("text", "template", "loaded"),
    [
        ("31.01.2024 10:00:00.5", "DD.MM.YYYY HH24:MI:SS.US", "2024-01-31 10:00:00.5"),
        ("31.01.2024 10:00:00.123", "DD.MM.YYYY HH24:MI:SS.MS", "2024-01-31 10:00:00.123"),
        ("1/31/2024 2:05 PM", "MM/DD/YYYY HH12:MI AM", "2024-01-31 14:05:00"),
        ("31 jan 2024", "DD Mon YYYY", "2024-01-31 00:00:00"),
    ],
)
def test_timestamps_that_match_their_template_load(
    db, text: str, template: str, loaded: str
) -> None:
    """A fraction's trailing zeros, AM/PM and a month name's case are no mismatch."""
    expr = value_expr(sql.Literal(text), ColumnType("timestamp", format=template), ("",))
    (got,) = db.execute(sql.SQL("SELECT CAST({} AS text)").format(expr)).fetchone()
    assert got == loaded


TEMPLATES = [
    "DD.MM.YYYY",
    "YYYY-MM-DD",
    "FMDD/FMMM/YYYY",
    "DD Mon YYYY",
    "YYYYMMDD",
    "Month DD, YYYY",
]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    day=st.dates(dt.date(1000, 1, 1), dt.date(9999, 12, 31)), template=st.sampled_from(TEMPLATES)
)
def test_a_date_written_with_its_template_loads_as_that_date(
    db, day: dt.date, template: str
) -> None:
    """Property: the check never refuses a value the template wrote itself."""
    (text,) = db.execute("SELECT to_char(%s::date, %s)", (day, template)).fetchone()
    expr = value_expr(sql.Literal(text), ColumnType("date", format=template), ("",))
    (loaded,) = db.execute(sql.SQL("SELECT {}").format(expr)).fetchone()
    assert loaded == day
