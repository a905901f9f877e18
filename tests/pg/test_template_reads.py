"""A template column reads each value once on the load's INSERT (``converted_select``)
and twice in ``value_expr`` (the careful path's probes, plugins): both must load the
same value from any text, or refuse it with the same error, in any session time zone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from csvpg.interfaces import Column, ColumnType, CsvDialect, FileRef, LoadInput, Relation
from csvpg.pg.load import converted_select, value_expr

#: (template, the column types it is used for)
TEMPLATES = [
    ("DD.MM.YYYY", ["date", "timestamp"]),
    ("YYYYMMDD", ["date"]),
    ("YYYY-MM-DD", ["date", "timestamptz"]),
    ("FMDD/FMMM/YYYY", ["date"]),
    ("DD Mon YYYY", ["date"]),
    ("DD.MM.YYYY HH24:MI:SS", ["timestamp", "timestamptz", "timestamp(0)", "date"]),
    ("YYYY-MM-DD HH24:MI", ["timestamp without time zone"]),
    ("DD.MM.YYYY HH24:MI:SS.US", ["timestamp(3)", "timestamptz"]),
    ("MM/DD/YYYY HH12:MI AM", ["timestamp"]),
]
CASES = [(template, typ) for template, types in TEMPLATES for typ in types]
#: UTC, and zones with DST gaps (a wall clock that does not exist is refused), at
#: midnight too (Sao Paulo until 2019), and a skipped day (Apia, 30.12.2011).
ZONES = ["UTC", "Europe/Berlin", "America/Sao_Paulo", "Pacific/Apia"]
#: Written by the templates, then spoilt a little: where the two reads could part.
MOMENTS = st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59))
NOISE = st.text(alphabet="0123456789 .:-/+aAmMpP\t", max_size=3)


def outcome(db: Any, query: sql.Composable, text: str | None) -> tuple[str, str | None]:
    """The loaded value as text, or the error's SQLSTATE and message."""
    try:
        with db.conn.transaction():
            row = db.execute(query, {"v": text}).fetchone()
    except psycopg.Error as exc:
        return ("error " + str(exc.sqlstate), exc.diag.message_primary)
    return ("loaded", row[0] if row else None)


def both(db: Any, text: str | None, template: str, typ: str, zone: str) -> tuple[Any, Any]:
    """The value ``text`` loads as by the one-read INSERT and by ``value_expr``."""
    ct = ColumnType(typ, format=template)
    column = (Column(0, "v", "v"),)
    load = LoadInput(
        ref=FileRef("/data/t.csv", "t.csv"),
        schema=db.schema,
        table="t",
        relation=Relation(file_columns=column, columns=column),
        types={"v": ct},
        primary_key=[],
        create=False,
        dialect=CsvDialect(nulls=("", "NA")),
    )
    staged = sql.SQL("(SELECT %(v)s::text AS f0, 1::bigint AS __csvpg_row) AS s")
    db.execute("SELECT set_config('TimeZone', %s, false)", (zone,))
    once = sql.SQL("SELECT CAST(v AS text) FROM ({}) AS q").format(
        converted_select(load, {0: "f0"}, staged)
    )
    twice = sql.SQL("SELECT CAST({} AS text) FROM {}").format(
        value_expr(sql.Identifier("f0"), ct, ("", "NA")), staged
    )
    return outcome(db, once, text), outcome(db, twice, text)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(CASES),
    zone=st.sampled_from(ZONES),
    moment=MOMENTS,
    cut=st.integers(0, 30),
    noise=NOISE,
    spoil=st.booleans(),
)
@example(case=("DD.MM.YYYY HH24:MI:SS", "timestamp"), zone="Europe/Berlin",
         moment=dt.datetime(2024, 3, 31, 2, 30), cut=0, noise="", spoil=False)  # fmt: skip
@example(case=("DD.MM.YYYY", "date"), zone="America/Sao_Paulo",
         moment=dt.datetime(2018, 11, 4), cut=0, noise="", spoil=False)  # fmt: skip
@example(case=("DD.MM.YYYY HH24:MI:SS", "timestamptz"), zone="Pacific/Apia",
         moment=dt.datetime(2011, 12, 30, 12), cut=0, noise="", spoil=False)  # fmt: skip
def test_one_read_loads_what_two_reads_load_from_a_written_date(
    db, case: tuple[str, str], zone: str, moment: dt.datetime, cut: int, noise: str, spoil: bool
) -> None:
    """Property: a date as the template writes it, or with a few characters spoilt."""
    template, typ = case
    (text,) = db.execute("SELECT to_char(%s::timestamp, %s)", (moment, template)).fetchone()
    if spoil:
        text = text[:cut] + noise + text[cut + len(noise) :]
    once, twice = both(db, text, template, typ, zone)
    assert once == twice


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=st.sampled_from(CASES),
    zone=st.sampled_from(ZONES),
    text=st.one_of(st.none(), st.sampled_from(["", "NA", " ", "00.00.0000"]), st.text(max_size=24)),
)
def test_one_read_loads_what_two_reads_load_from_any_text(
    db, case: tuple[str, str], zone: str, text: str | None
) -> None:
    """Property: any string (NULL and the null markers too) loads or fails alike."""
    template, typ = case
    if text is not None and "\x00" in text:
        text = text.replace("\x00", "")  # PostgreSQL text holds no NUL
    once, twice = both(db, text, template, typ, zone)
    assert once == twice
