"""Value classification for ``csvpg infer``: which PostgreSQL types take every value.

A :class:`Profile` sees a column's values in chunks. Each family of types (boolean,
numbers, dates and times, uuid, jsonb, inet) stays a candidate until a value it cannot
read; that value is kept as the evidence. :meth:`Profile.guess` picks the narrowest
family left (text when none is), and :meth:`Profile.check` says whether another type —
a plugin's proposal — takes every value. Values are matched with compiled regexes; only
JSON and IPv6 candidates are parsed for real.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from csvpg.infer.families import (
    WHAT_EACH_IS,
    Booleans,
    Family,
    Numbers,
    Simple,
    Temporal,
    plain_values,
    plural,
    show,
)

#: Strings read as NULL unless told otherwise ("" is an empty field).
DEFAULT_NULLS: tuple[str, ...] = (
    *("", "NULL", "null", "Null", "\\N", "NA", "N/A", "n/a", "na", "#N/A", "None", "nil"),
)

_ID_NAME = re.compile(r"(?:^|_)(?:id|no|nr|num|number|nummer|key|code|pk|uuid|guid)$|nr$")
_CAMEL_ID = re.compile(r"[a-z0-9](?:ID|Id)$")


def is_id_like(name: str, header: str = "") -> bool:
    """``id``, ``*_id``, ``*nr``, ``*_no``, ``code``, ``key`` … (or ``customerId``)."""
    return bool(_ID_NAME.search(name) or _CAMEL_ID.search(header.strip()))


# -- a column ----------------------------------------------------------------------------

_ALIASES = {
    "int2": "smallint", "int": "integer", "int4": "integer", "int8": "bigint",
    "decimal": "numeric", "float8": "double precision", "float": "double precision",
    "float4": "real", "bool": "boolean", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz", "time without time zone": "time",
    "json": "jsonb", "character varying": "varchar", "character": "char", "bpchar": "char",
}  # fmt: skip
_TYPE = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


def parse_type(pgtype: str) -> tuple[str, tuple[int, ...]] | None:
    """``"NUMERIC(12, 2)"`` → ``("numeric", (12, 2))``; None for what csvpg cannot check."""
    m = _TYPE.match(" ".join(pgtype.lower().split()))
    if m is None:
        return None
    kind = _ALIASES.get(m[1], m[1])
    args = tuple(int(x) for x in m.groups()[1:] if x is not None)
    return kind, args


_FAMILY_OF = {
    "boolean": "boolean", "smallint": "number", "integer": "number", "bigint": "number",
    "numeric": "number", "real": "number", "double precision": "number", "date": "date/time",
    "time": "date/time", "timestamp": "date/time", "timestamptz": "date/time",
    "uuid": "uuid", "jsonb": "jsonb", "inet": "inet",
}  # fmt: skip


@dataclass
class ColumnGuess:
    """The type chosen for one column and why."""

    name: str
    type: str
    #: decimal / thousands / format / true / false, as [columns] takes them; {} if none.
    conversions: dict[str, Any] = field(default_factory=dict)
    values: int = 0
    nulls: int = 0
    #: Null markers seen and how often ("" is an empty field).
    markers: dict[str, int] = field(default_factory=dict)
    distinct: int | None = None
    unique: bool = False
    #: Set when distinct values were counted only up to this many (then ``unique`` means
    #: "no repeat among those").
    unique_upto: int | None = None
    evidence: list[str] = field(default_factory=list)
    header: str = ""
    #: "heuristic", or the plugin whose proposal was taken.
    source: str = "heuristic"

    @property
    def spec(self) -> str | dict[str, Any]:
        """The [columns] value: a type string, or an inline table with conversions."""
        return {"type": self.type, **self.conversions} if self.conversions else self.type


class Profile:
    """One column's values, seen in chunks; then :meth:`guess` or :meth:`check`."""

    def __init__(
        self,
        name: str,
        header: str = "",
        *,
        null_values: Iterable[str] = DEFAULT_NULLS,
        prefer_decimal_comma: bool = False,
        decimal_comma: bool = True,
        distinct_cap: int = 1_000_000,
    ) -> None:
        self.name, self.header = name, header or name
        self.null_values = frozenset(null_values)
        self.families: list[Family] = [
            Booleans(is_id_like(name, self.header)),
            Numbers(
                prefer_decimal_comma,
                decimal_comma=decimal_comma,
                key=is_id_like(name, self.header),
            ),
            Temporal(),
            Simple("uuid"),
            Simple("jsonb"),
            Simple("inet"),
        ]
        self.values = self.nulls = self.max_len = 0
        self.markers: dict[str, int] = {}
        self.seen: set[int] = set()  # hashes of the values: 64 bits each, not the strings
        self.distinct_cap = distinct_cap
        self.capped = self.repeats = False

    def feed(self, values: Iterable[str | None]) -> None:
        kept: list[str] = []
        for v in values:
            if v is None or v in self.null_values:
                key = v or ""
                self.markers[key] = self.markers.get(key, 0) + 1
            else:
                kept.append(v)
        self.nulls = sum(self.markers.values())
        if not kept:
            return
        self.values += len(kept)
        self.max_len = max(self.max_len, max(map(len, kept)))
        if not self.capped:
            before = len(self.seen)
            self.seen.update(map(hash, kept))
            self.repeats = self.repeats or len(self.seen) - before < len(kept)
            self.capped = len(self.seen) >= self.distinct_cap
        for fam in self.families:
            if fam.dead is None:
                fam.feed(kept)

    @property
    def unique(self) -> bool:
        return self.values > 0 and not self.repeats

    def _base(self) -> ColumnGuess:
        marks = ", ".join(f"{n} × {m!r}" for m, n in sorted(self.markers.items()))
        dist = f"{len(self.seen)} distinct"
        if self.capped:
            dist = f"at least {dist} (counted no further)"
        line = f"{plural(self.values, 'value')}, {plural(self.nulls, 'null')}"
        line += f" ({marks})" if marks else ""
        if self.unique:
            line += f"; {dist}, " + ("no repeats among them" if self.capped else "unique")
        else:
            line += f"; {dist}"
        return ColumnGuess(
            name=self.name,
            type="text",
            values=self.values,
            nulls=self.nulls,
            markers=dict(self.markers),
            distinct=len(self.seen),
            unique=self.unique,
            unique_upto=len(self.seen) if self.capped else None,
            evidence=[line],
            header=self.header,
        )

    def guess(self) -> ColumnGuess:
        out = self._base()
        if not self.values:
            out.evidence.append("no values to go by → text")
            return out
        passed: list[str] = []
        plain: dict[str, list[str]] = {}  # a value → the families it is plainly not
        for fam in self.families:
            decided = fam.decide() if fam.dead is None else None
            if decided is None:
                if fam.culprit is not None and fam.dead == f"{show(fam.culprit)} is not " + (
                    WHAT_EACH_IS.get(fam.name, "")
                ):
                    plain.setdefault(fam.culprit, []).append(fam.name)
                else:
                    passed.append(f"not {fam.name}: {fam.dead}")
                continue
            out.type, out.conversions, lines = decided
            out.evidence += [lines[0], *plain_values(plain), *passed, *lines[1:]]
            return out
        out.evidence += [f"longest value {self.max_len} characters → text", *plain_values(plain)]
        out.evidence += passed
        return out

    def check(self, pgtype: str) -> dict[str, Any] | str:
        """Conversions when ``pgtype`` takes every value seen, else why it does not."""
        parsed = parse_type(pgtype)
        if parsed is None:
            return f"csvpg cannot read the type {pgtype!r}"
        kind, args = parsed
        if kind in ("text", "varchar", "char"):
            if args and self.max_len > args[0]:
                return f"the longest value has {self.max_len} characters"
            return {}
        family = _FAMILY_OF.get(kind)
        if family is None:
            return f"csvpg cannot check values against {pgtype!r}"
        if not self.values:
            return {}
        fam = next(f for f in self.families if f.name == family)
        if fam.dead is not None:
            return fam.dead
        return fam.check(kind, args)


def infer_column(
    name: str,
    values: Iterable[str | None],
    *,
    null_values: Iterable[str] = DEFAULT_NULLS,
    header: str = "",
    prefer_decimal_comma: bool = False,
) -> ColumnGuess:
    """The narrowest PostgreSQL type every non-null value fits, with its evidence."""
    profile = Profile(
        name, header, null_values=null_values, prefer_decimal_comma=prefer_decimal_comma
    )
    profile.feed(values)
    return profile.guess()
