"""Schema drift: a file whose columns or values differ from its table's (``[sink]
schema``). The safe widenings, the report of what changed, and the one ``ALTER TABLE``
that makes the change inside the file's transaction.

A widening keeps every value the old type held, as the same value: smallint → integer
→ bigint → numeric, date → timestamp, varchar(n) → text. Nothing is ever narrowed, and
a column never changes its kind (a text value in a number column stays a reject).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from csvpg.errors import SinkError
from csvpg.interfaces import ColumnType
from csvpg.pg.connect import sink_error

#: Each type's next wider one.
_NEXT = {
    "smallint": "integer",
    "integer": "bigint",
    "bigint": "numeric",
    "date": "timestamp",
    "varchar": "text",
}
_ALIASES = {
    "int2": "smallint",
    "int4": "integer",
    "int": "integer",
    "int8": "bigint",
    "character varying": "varchar",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "decimal": "numeric",
    "float8": "double precision",
    "bool": "boolean",
}
_NAME = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(\(\s*\d+\s*(,\s*\d+\s*)?\))?\s*$")


def kind(type_name: str) -> str:
    """A type's name without its modifier, as :data:`_NEXT` knows it: ``character
    varying(20)`` → ``varchar``; a type it cannot read is itself, lower-cased."""
    m = _NAME.match(" ".join(type_name.lower().split()))
    if m is None:
        return type_name.strip().lower()
    return _ALIASES.get(m[1], m[1])


def _canon(name: str) -> str:
    """A type name as one spelling: ``NUMERIC(12, 2)`` → ``numeric(12,2)``."""
    m = _NAME.match(" ".join(name.lower().split()))
    if m is None:
        return name.strip().lower()
    return _ALIASES.get(m[1], m[1]) + "".join((m[2] or "").split())


def same_type(a: str, b: str) -> bool:
    """``timestamp`` is ``timestamp without time zone``, ``numeric(12, 2)`` is
    ``numeric(12,2)``: the same type, written two ways."""
    return _canon(a) == _canon(b)


def wider_types(type_name: str) -> list[str]:
    """The safe widenings of ``type_name``, narrowest first; [] when it has none."""
    out: list[str] = []
    current = kind(type_name)
    if current not in _NEXT:
        return out  # numeric(p,s) is kept as it is: its scale is the user's
    while current in _NEXT:
        current = _NEXT[current]
        out.append(current)
    return out


def is_widening(old: str, new: str) -> bool:
    """``new`` takes every value ``old`` does, and is another type (``numeric(12,2)``
    is none: it may not hold every bigint)."""
    return _canon(new) in wider_types(old)


@dataclass
class Drift:
    """What a file's load changed in its table, or left out."""

    #: Columns added, with the type (and conversions) each was given.
    added: dict[str, ColumnType] = field(default_factory=dict)
    #: Columns widened: name → (the type before, the type now).
    widened: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: The file's columns the table lacks, left out (``discard_new``).
    discarded: list[str] = field(default_factory=list)
    #: The table's columns the file lacks.
    missing: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.widened or self.discarded or self.missing)

    def widen(self, name: str, old: str, new: str) -> None:
        """``name`` now has type ``new``; a column added by this load just gets it."""
        if name in self.added:
            self.added[name] = ColumnType(new)
        else:
            first = self.widened.get(name, (old, new))[0]
            self.widened[name] = (first, new)

    def merge(self, other: Drift) -> None:
        """Another pass over the same file (after a widening, the load starts again)."""
        self.added.update(other.added)
        for name, (old, new) in other.widened.items():
            self.widen(name, old, new)
        self.discarded = sorted({*self.discarded, *other.discarded})
        self.missing = sorted({*self.missing, *other.missing})

    def to_dict(self) -> dict[str, Any]:
        """As ``csvpg.run_files.drift`` keeps it: only what happened."""
        out: dict[str, Any] = {}
        if self.added:
            out["added"] = [{"column": n, "type": t.type} for n, t in self.added.items()]
        if self.widened:
            out["widened"] = [
                {"column": n, "from": old, "to": new} for n, (old, new) in self.widened.items()
            ]
        if self.discarded:
            out["discarded"] = list(self.discarded)
        if self.missing:
            out["missing"] = list(self.missing)
        return out


def alter_sql(
    schema: str,
    table: str,
    *,
    add: dict[str, str] | None = None,
    retype: dict[str, str] | None = None,
    fresh: frozenset[str] = frozenset(),
) -> sql.Composed | None:
    """One ``ALTER TABLE`` for every change: one lock, one rewrite at most. A column in
    ``fresh`` was added by this transaction and holds only NULLs: it may take any type.
    Type names are csvpg's own or checked ones (:func:`csvpg.pg.load.checked_type`)."""
    parts = [
        sql.SQL("ADD COLUMN {} {}").format(sql.Identifier(name), sql.SQL(typ))
        for name, typ in (add or {}).items()
    ]
    for name, typ in (retype or {}).items():
        using = sql.SQL(" USING NULL") if name in fresh else sql.SQL("")
        parts.append(
            sql.SQL("ALTER COLUMN {} TYPE {}{}").format(sql.Identifier(name), sql.SQL(typ), using)
        )
    if not parts:
        return None
    return sql.SQL("ALTER TABLE {}.{} {}").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(parts)
    )


def drop_staging(conn: psycopg.Connection[Any]) -> None:
    """The session's staging tables of a load about to start again (they are made
    outside its savepoint); only csvpg's own, in ``pg_temp``."""
    conn.execute("DROP TABLE IF EXISTS pg_temp.csvpg_rows, pg_temp.csvpg_careful")


def apply(conn: psycopg.Connection[Any], statement: sql.Composed, *, file: str, table: str) -> None:
    """Run a drift ``ALTER TABLE``; a view or rule on a column to widen is said so."""
    try:
        conn.execute(statement)
    except psycopg.errors.FeatureNotSupported as exc:
        error: SinkError = sink_error(exc, file=file, table=table)
        error.hint = (
            "a view or rule uses the column: drop it before the load and make it again "
            'after, or keep the table as it is with [sink] schema = "freeze"'
        )
        raise error from exc
