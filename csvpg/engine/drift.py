"""``[sink] schema``: how a file whose columns or values differ from its existing table
loads, decided before COPY from the file's own sample (as ``csvpg infer`` reads it).

* ``freeze``: a column the table lacks fails the file (what csvpg always did).
* ``evolve``: such a column is added, typed from the sample (text when there is nothing
  to go by; a ``[columns]`` type wins); a column whose values outgrow its type is
  widened along :func:`csvpg.pg.drift.wider_types`.
* ``discard_new``: such a column is left out, and the report says so.

A sample may miss the one value that does not fit. When the load then fails on a value,
:func:`after_failure` reads the whole file, widens what it must, and the load starts
again in the same transaction; what still does not fit is a reject.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from csvpg.engine.plan import FilePlan, open_stream
from csvpg.errors import SinkError
from csvpg.infer.types import Profile
from csvpg.interfaces import Batch, Column, ColumnType, Relation, Source
from csvpg.pg.drift import Drift, alter_sql, is_widening, kind, wider_types
from csvpg.pg.load import checked_type

#: Rows sampled before COPY (spread over the file, as ``csvpg infer`` samples).
SAMPLE_ROWS = 10_000
#: A number column's values that read as numbers at all: the others are rejects
#: whatever the type, so they must not keep a wider number type from being found.
_NUMBERLIKE = re.compile(r"^\s*[+-]?[\d.,' ]*\d[\d.,' ]*(?:[eE][+-]?\d+)?\s*$")
_NUMBER_KINDS = ("smallint", "integer", "bigint", "numeric")
#: The infer family a widenable type's values are checked by (varchar: by length alone).
_FAMILY = {**dict.fromkeys(_NUMBER_KINDS, "number"), "date": "date/time"}


@dataclass
class Settled:
    """A file's columns against its existing table: what loads, as which type, and the
    DDL that makes the table take it (run before COPY, in the file's transaction)."""

    relation: Relation
    types: dict[str, ColumnType]
    drift: Drift
    ddl: list[sql.Composed]


def settle(
    conn: psycopg.Connection[Any],
    fp: FilePlan,
    source: Source,
    relation: Relation,
    planned: dict[str, ColumnType],
    existing: dict[str, str],
    before: Drift | None = None,
    format_types: Mapping[str, str] | None = None,
) -> Settled:
    """The file's columns and types against the table's, by the file's rule; ``before``
    is what an earlier pass over the file added (its columns keep their conversions);
    ``format_types`` the types a format that carries them (Parquet) gives."""
    drift = Drift()
    new = [c for c in relation.columns if c.name not in existing]
    if new and fp.drift == "freeze":
        raise _no_column(fp, [c.name for c in new], existing)
    if new and fp.drift == "discard_new":
        drift.discarded = [c.name for c in new]
        relation = relation.with_columns([c for c in relation.columns if c.name in existing])
        new = []
    names = {c.name for c in relation.columns}
    drift.missing = [n for n in existing if n not in names]
    if drift.missing and fp.missing == "fail":
        raise _missing(fp, drift.missing)
    fresh = before.added if before else {}
    types = {
        c.name: _typed(fresh.get(c.name, planned[c.name]), existing[c.name])
        for c in relation.columns
        if c.name in existing
    }
    retype: dict[str, str] = {}
    if fp.drift == "evolve":
        retype = _evolve(conn, fp, source, relation, new, types, drift, format_types or {})
    ddl = alter_sql(
        fp.schema,
        fp.table,
        add={n: t.type for n, t in drift.added.items()},
        retype=retype,
    )
    return Settled(relation, types, drift, [ddl] if ddl is not None else [])


def _typed(ct: ColumnType, table_type: str) -> ColumnType:
    """``ct`` with the table's type (itself when it has it: a file's every column
    would cost a ``replace``)."""
    return ct if ct.type == table_type else replace(ct, type=table_type)


def _evolve(
    conn: psycopg.Connection[Any],
    fp: FilePlan,
    source: Source,
    relation: Relation,
    new: list[Column],
    types: dict[str, ColumnType],
    drift: Drift,
    format_types: Mapping[str, str],
) -> dict[str, str]:
    """New columns into ``drift.added`` (and ``types``); the widenings the sample (or a
    ``[columns]`` type) asks for, as column → new type."""
    spec = fp.column_types
    widenable = [c for c in relation.columns if c.name in types and wider_types(types[c.name].type)]
    retype: dict[str, str] = {}
    for c in widenable:  # a wider [columns] type first; the values may ask for more
        given = spec.get(c.name)
        if given is not None and is_widening(types[c.name].type, given.type):
            retype[c.name] = checked_type(conn, given.type, f"columns.{c.name}")
    for c in new:
        if c.name in spec:
            checked = checked_type(conn, spec[c.name].type, f"columns.{c.name}")
            drift.added[c.name] = replace(spec[c.name], type=checked)
    known = [c for c in new if c.name not in spec and c.header in format_types]
    for c in known:  # a format that carries types (Parquet) types its new columns
        drift.added[c.name] = ColumnType(format_types[c.header])
    guessed = [c for c in new if c.name not in spec and c.name not in drift.added]
    if guessed or widenable:
        profiles = profile_columns(fp, source, guessed, widenable, types, full=False)
        for c in guessed:
            drift.added[c.name] = guessed_type(profiles[c.name])
        for c in widenable:
            now = replace(types[c.name], type=retype.get(c.name, types[c.name].type))
            if to := widen_to(profiles[c.name], now):
                retype[c.name] = to
    for name, to in retype.items():
        drift.widen(name, types[name].type, to)
        types[name] = replace(types[name], type=to)
    types.update(drift.added)
    return retype


def after_failure(
    conn: psycopg.Connection[Any],
    fp: FilePlan,
    source: Source,
    relation: Relation,
    types: dict[str, ColumnType],
    drift: Drift,
) -> sql.Composed | None:
    """After a load failed on a value: the whole file read, and the ``ALTER TABLE`` its
    values ask for (None when none does: the bad values are rejects). Columns this load
    added take the type the whole file gives them; others are widened when they can be.
    ``drift`` learns what changes."""
    fresh, widenable = _candidates(fp, relation, types, drift)
    if not fresh and not widenable:
        return None
    profiles = profile_columns(fp, source, fresh, widenable, types, full=True)
    retype: dict[str, str] = {}
    for c in fresh:
        whole = guessed_type(profiles[c.name])
        if whole != drift.added[c.name]:
            drift.added[c.name] = whole
            retype[c.name] = whole.type
    for c in widenable:
        if to := widen_to(profiles[c.name], types[c.name]):
            drift.widen(c.name, types[c.name].type, to)
            retype[c.name] = to
    return alter_sql(fp.schema, fp.table, retype=retype, fresh=frozenset(c.name for c in fresh))


def _candidates(
    fp: FilePlan, relation: Relation, types: dict[str, ColumnType], drift: Drift
) -> tuple[list[Column], list[Column]]:
    """The columns a failed load may change: those it added (unless [columns] types
    them), and those of a type with a safe widening."""
    fresh = [c for c in relation.columns if c.name in drift.added and c.name not in fp.column_types]
    widenable = [
        c for c in relation.columns if c.name not in drift.added and wider_types(types[c.name].type)
    ]
    return fresh, widenable


def may_widen(fp: FilePlan, relation: Relation, types: dict[str, ColumnType], drift: Drift) -> bool:
    """Whether :func:`after_failure` has a column to look at (else it reads nothing)."""
    return any(_candidates(fp, relation, types, drift))


def fits(profile: Profile, type_name: str, ct: ColumnType) -> bool:
    """Every value profiled loads as ``type_name`` with the column's conversions."""
    got = profile.check(type_name)
    if isinstance(got, str):
        return False
    return all(getattr(ct, key, None) == value for key, value in got.items())


def widen_to(profile: Profile, ct: ColumnType) -> str | None:
    """The narrowest safe widening of ``ct.type`` that takes every value, when its own
    type does not; None when it does, or no widening would."""
    if fits(profile, ct.type, ct):
        return None
    return next((w for w in wider_types(ct.type) if fits(profile, w, ct)), None)


def guessed_type(profile: Profile) -> ColumnType:
    """A new column's type, as ``csvpg infer`` would choose it (text without values)."""
    guess = profile.guess()
    conv = guess.conversions
    return ColumnType(
        guess.type,
        decimal=conv.get("decimal"),
        thousands=conv.get("thousands"),
        format=conv.get("format"),
        true=tuple(v.lower() for v in conv.get("true", ())),
        false=tuple(v.lower() for v in conv.get("false", ())),
    )


def profile_columns(
    fp: FilePlan,
    source: Source,
    new: list[Column],
    typed: list[Column],
    types: dict[str, ColumnType],
    *,
    full: bool,
) -> dict[str, Profile]:
    """Each column's values profiled: a sample of the file, or (``full``) all of it.
    Of a ``typed`` column of numbers (its type in ``types``), only values that read as
    numbers: the others are rejects whatever the widening."""
    from csvpg.infer.guess import Sample, can_seek, draw_sample  # (for schema = "evolve")

    columns = [*new, *typed]
    stream = source.open(fp.ref)
    opened = open_stream(fp, stream)
    try:
        reader = opened.reader
        dialect = reader.dialect
        nulls = dialect.nulls if dialect is not None else ("",)
        delimiter = dialect.delimiter if dialect is not None else ","
        profiles = {
            c.name: Profile(
                c.name,
                c.header,
                null_values=nulls,
                prefer_decimal_comma=delimiter == ";",
                decimal_comma=delimiter != ",",
                distinct_cap=1000,
            )
            for c in columns
        }
        numbers = {c.name for c in typed if kind(types[c.name].type) in _NUMBER_KINDS}
        for c in typed:  # a widening stays in its family: only that one need read the values
            family = _FAMILY.get(kind(types[c.name].type))
            profiles[c.name].families = [f for f in profiles[c.name].families if f.name == family]
        if opened.row_path:
            where = {c.name: i for i, c in enumerate(opened.relation.columns)}
            batches = _first(opened.batches(fp.transforms, set_aside=True), full)
        else:
            where = {c.name: c.index for c in opened.relation.columns}
            batches = draw_sample(
                stream, reader, Sample(size=fp.ref.size), rows=SAMPLE_ROWS,
                full_scan=full, seekable=can_seek(stream, fp.ref),
            )  # fmt: skip
        width = len(opened.relation.columns) if opened.row_path else len(reader.headers)
        for batch in batches:
            rows = [row for row in batch if len(row) == width]
            for name, profile in profiles.items():
                values = [_text(row[where[name]]) for row in rows]
                if name in numbers:
                    values = [v for v in values if v is None or _NUMBERLIKE.match(v)]
                profile.feed(values)
    finally:
        opened.close()
    return profiles


def _text(value: Any) -> str | None:
    """A value as the profiles read it: a typed format's (Parquet's) as its text."""
    return value if value is None or isinstance(value, str) else str(value)


def _first(batches: Iterator[Batch] | None, full: bool) -> Iterator[Batch]:
    """The row path's batches: all of them, or about the first :data:`SAMPLE_ROWS` rows."""
    seen = 0
    for batch in batches or ():
        yield batch
        seen += len(batch)
        if not full and seen >= SAMPLE_ROWS:
            return


def _no_column(fp: FilePlan, names: list[str], existing: dict[str, str]) -> SinkError:
    return SinkError(
        f"table {fp.target} has no column {', '.join(map(repr, names))} for {fp.ref.name}",
        file=fp.ref.url,
        key="sink.schema",
        hint="its columns are: "
        + ", ".join(existing)
        + '; set [sink] schema = "evolve" to add new columns (or "discard_new" to leave '
        "them out), rename or select columns with [[transform]], or alter the table",
    )


def _missing(fp: FilePlan, names: list[str]) -> SinkError:
    return SinkError(
        f"{fp.ref.name} lacks column{'s' if len(names) > 1 else ''} "
        f"{', '.join(map(repr, names))} of table {fp.target}, "
        'and [sink] missing = "fail"',
        file=fp.ref.url,
        key="sink.missing",
        hint='add the columns to the file, or set missing = "allow" to load NULL (or the '
        "column's default; upsert keeps the values there)",
    )
