"""A csvpg plugin template: ``[[transform]] type = "trim"`` strips whitespace.

    [[transform]]
    type = "trim"
    columns = ["name"]      # optional: every column when left out

Copy this package, rename it, and replace the transform with your own source, format,
transform or sink (see docs/plugins.md). Import only from ``csvpg``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from csvpg import Batch, Option, Relation, SpecError, Transform, hookimpl


class TrimTransform(Transform):
    """Strips leading and trailing whitespace; a value left empty becomes NULL."""

    type: ClassVar[str] = "trim"
    needs_rows: ClassVar[bool] = True  # it sees values: the file takes the row path
    one_to_one: ClassVar[bool] = True  # row for row: rejects keep their line numbers
    options: ClassVar[dict[str, Option]] = {
        "type": Option(str),
        "columns": Option(list, [], item=str, help='the columns to trim, e.g. ["name"]'),
    }

    def relation(self, relation: Relation) -> Relation:
        names = [c.name for c in relation.columns]
        unknown = [c for c in self.settings["columns"] if c not in names]
        if unknown:  # checked before any data is read; `csvpg check` shows it
            raise SpecError(
                f"'transform.columns' names no column of the file: {unknown[0]!r}",
                key="transform.columns",
                hint="columns here: " + ", ".join(names),
            )
        return relation

    def wrap(self, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
        wanted = set(self.settings["columns"]) or {c.name for c in relation.columns}
        where = [i for i, c in enumerate(relation.columns) if c.name in wanted]
        for batch in batches:
            out: Batch = []
            for row in batch:
                row = list(row)  # new rows: a batch may be shared upstream
                for i in where:
                    value = row[i]
                    row[i] = (value.strip() or None) if value is not None else None
                out.append(row)
            yield out


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [TrimTransform]
