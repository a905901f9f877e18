"""``[[transform]] type = "canonical"``: many files, one set of column names.

    [[transform]]
    type = "canonical"
    threshold = 85                    # fuzzy score (0–100) a header needs; 100: exact only
    [transform.columns]               # canonical name = synonyms; the order is the table's
    email = ["E-Mail", "email address", "Mail"]
    name = ["Full Name", "Contact"]
    phone = ["Telephone", "Tel."]
    [transform.normalize]             # steps per column, in order ("*": every column)
    "*" = ["trim"]
    email = ["email"]
    phone = ["phone"]

Headers are mapped when the file is opened (schema level, so ``csvpg check`` shows the
mapping); values are normalised on the row path. Every file comes out with the same
columns in the same order: a canonical column a file lacks is NULL (``fill_missing``),
and a header that maps to nothing is dropped (``unmapped = "drop"``), kept under its own
name (``"keep"``) or fails the file (``"fail"``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from csvpg import Batch, Column, FormatError, Option, Relation, SpecError, Transform
from csvpg_merge.headers import SCORERS, HeaderMapping, HeaderMatcher
from csvpg_merge.normalize import STEPS, chain

log = logging.getLogger("csvpg_merge")

#: A csvpg that collects ``Transform.report()`` sends the unmapped headers as ``Warned``
#: events; an older one hears of them only through this log.
UNMAPPED_LEVEL = logging.INFO if hasattr(Transform, "report") else logging.WARNING

#: PostgreSQL's identifier limit, in bytes.
MAX_NAME = 63


class CanonicalTransform(Transform):
    """Maps headers to canonical names (synonyms, then fuzzy) and normalises values."""

    type: ClassVar[str] = "canonical"
    needs_rows: ClassVar[bool] = True
    one_to_one: ClassVar[bool] = True  # one row out per row in: rejects keep their lines
    options: ClassVar[dict[str, Option]] = {
        "type": Option(str),
        "columns": Option(
            dict,
            item=list,
            help='canonical name = [synonyms], e.g. email = ["E-Mail", "email address"]',
        ),
        "threshold": Option((int, float), default=85, help="fuzzy score 0–100; 100: exact only"),
        "scorer": Option(str, default="ratio", choices=tuple(SCORERS)),
        "unmapped": Option(str, default="drop", choices=("drop", "keep", "fail")),
        "fill_missing": Option(bool, default=True, help="add canonical columns a file lacks"),
        "normalize": Option(dict, default={}, item=list, help='column = ["trim", "lower"]'),
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        columns: dict[str, list[Any]] = settings["columns"]
        if not columns:
            raise SpecError(
                "'transform.columns' names no canonical column",
                key="transform.columns",
                hint='e.g. [transform.columns] email = ["E-Mail", "Mail"]',
            )
        for name, synonyms in columns.items():
            if not name or len(name.encode()) > MAX_NAME:
                raise SpecError(
                    f"'transform.columns': {name!r} is not a usable column name "
                    f"(1 to {MAX_NAME} bytes)",
                    key=f"transform.columns.{name}",
                )
            if not all(isinstance(s, str) for s in synonyms):
                raise SpecError(
                    f"'transform.columns.{name}' must list header names (strings)",
                    key=f"transform.columns.{name}",
                )
        threshold = settings["threshold"]
        if not 0 <= threshold <= 100:
            raise SpecError(
                f"'transform.threshold' must be between 0 and 100, not {threshold!r}",
                key="transform.threshold",
            )
        self.matcher = HeaderMatcher(columns, threshold=threshold, scorer=settings["scorer"])
        self.steps: dict[str, list[str]] = {}
        for name, steps in settings["normalize"].items():
            key = f"transform.normalize.{name}"
            if name != "*" and name not in columns:
                raise SpecError(
                    f"'{key}' names no canonical column",
                    key=key,
                    hint="canonical columns: " + ", ".join(columns),
                )
            for step in steps:
                if step not in STEPS:
                    raise SpecError(
                        f"'{key}': unknown step {step!r}",
                        key=key,
                        hint="steps: " + ", ".join(STEPS),
                    )
            self.steps[name] = list(steps)
        # Header mapping alone is schema-level: without value steps or added columns the
        # file keeps the byte path (COPY's column list does the renaming).
        self.needs_rows = bool(self.steps) or settings["fill_missing"]  # type: ignore[misc]
        self._lock = threading.Lock()
        self._logged: set[tuple[str, ...]] = set()
        self._mapping: HeaderMapping | None = None
        self._normalized: Counter[str] = Counter()

    # -- schema --------------------------------------------------------------------

    def mapping(self, relation: Relation) -> HeaderMapping:
        """Where this relation's columns go (a pure function of their names)."""
        return self.matcher.map([(c.header or c.name, c.name) for c in relation.columns])

    def relation(self, relation: Relation) -> Relation:
        mapping = self.mapping(relation)
        if mapping.unmapped and self.settings["unmapped"] == "fail":
            raise SpecError(
                "headers map to no canonical column: "
                + "; ".join(f"{u.header!r} ({u.reason})" for u in mapping.unmapped),
                key="transform.unmapped",
                hint="add them as synonyms in [transform.columns], lower the threshold, or set "
                'unmapped = "drop"',
            )
        by_target = {t: c for c, t in zip(relation.columns, mapping.targets, strict=True) if t}
        # Columns a file lacks get indexes past every real one: unique, and never a file's.
        spare = max((c.index for c in relation.file_columns + relation.columns), default=-1) + 1
        out: list[Column] = []
        for name in self.matcher.columns:
            col = by_target.get(name)
            if col is not None:
                out.append(Column(index=col.index, header=col.header, name=name))
            elif self.settings["fill_missing"]:
                out.append(Column(index=spare, header="", name=name))
                spare += 1
        if self.settings["unmapped"] == "keep":
            for col, target in zip(relation.columns, mapping.targets, strict=True):
                if target is None:
                    if col.name in self.matcher.columns:
                        raise SpecError(
                            f"unmapped header {col.header!r} keeps the name {col.name!r}, "
                            "which is a canonical column",
                            key="transform.unmapped",
                            hint=f"add {col.header!r} as a synonym, or rename it first",
                        )
                    out.append(col)
        self._remember(mapping)
        return relation.with_columns(out)

    def _remember(self, mapping: HeaderMapping) -> None:
        with self._lock:
            self._mapping = mapping
            layout = tuple(m.header for m in mapping.matches) + tuple(
                u.header for u in mapping.unmapped
            )
            if layout in self._logged:
                return
            self._logged.add(layout)
        for m in mapping.matches:
            log.info("canonical: %s", m.describe())
        for u in mapping.unmapped:
            what = "kept as it is" if self.settings["unmapped"] == "keep" else "not loaded"
            log.log(
                UNMAPPED_LEVEL,
                "canonical: header %r maps to no column (%s); %s",
                u.header,
                u.reason,
                what,
            )

    # -- values --------------------------------------------------------------------

    def _normalizer(self, name: str) -> Callable[[str | None], str | None] | None:
        steps = self.steps.get("*", []) + self.steps.get(name, [])
        return chain(steps) if steps else None

    def wrap(self, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
        after = self.relation(relation)
        where = {c.index: i for i, c in enumerate(relation.columns)}
        plan = [(where.get(c.index), self._normalizer(c.name), c.name) for c in after.columns]
        width = len(relation.columns)
        changed: Counter[str] = Counter()
        for batch in batches:
            out: Batch = []
            for row in batch:
                if len(row) != width:
                    raise FormatError(
                        f"a row has {len(row)} fields where the header has {width}: {row[:5]!r}",
                        hint="check the delimiter and quote in [format]",
                    )
                new: list[str | None] = []
                for position, normalize, name in plan:
                    value = None if position is None else row[position]
                    if normalize is not None and value is not None:
                        cleaned = normalize(value)
                        if cleaned != value:
                            changed[name] += 1
                        value = cleaned
                    new.append(value)
                out.append(new)
            yield out
        with self._lock:
            self._normalized = changed
        if changed:
            log.info(
                "canonical: values normalised: %s",
                ", ".join(f"{k} {v}" for k, v in sorted(changed.items())),
            )

    # -- what it did ---------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The mapping of the file this instance last shaped, and how many values each
        column's steps changed — for the file's ``details`` once the engine collects
        transform reports (one instance per file)."""
        with self._lock:
            if self._mapping is None:
                return {}
            out: dict[str, Any] = self._mapping.to_dict()
            out["normalized"] = dict(sorted(self._normalized.items()))
            warnings = [
                f"header {u.header!r} maps to no column ({u.reason})"
                for u in self._mapping.unmapped
            ]
        if warnings:
            out["warnings"] = warnings
        return out
