"""csvpg-example-upper: a third-party row transform, ``type = "upper"``, and a sink,
``mode = "insert_new"`` (:mod:`csvpg_example_upper.sink`).

    [[transform]]
    type = "upper"
    columns = ["city", "country"]

It imports only from ``csvpg`` itself, as every third-party plugin should.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import ClassVar

from csvpg import Batch, Option, Relation, Sink, SpecError, Transform, hookimpl
from csvpg_example_upper.sink import InsertNewSink

__version__ = "0.1.0"


class UpperTransform(Transform):
    """Upper-cases the values of some columns; NULLs stay NULL."""

    type: ClassVar[str] = "upper"
    # It must see values, so the engine hands it parsed rows instead of raw bytes.
    needs_rows: ClassVar[bool] = True
    # Row for row, in order: a row PostgreSQL refuses is reported with its line.
    one_to_one: ClassVar[bool] = True
    options: ClassVar[dict[str, Option]] = {
        "type": Option(str),
        "columns": Option(list, item=str, help='the columns to upper-case, e.g. ["city"]'),
    }

    def relation(self, relation: Relation) -> Relation:
        # Checked here, before anything is read: `csvpg check` reports it with the key.
        names = [column.name for column in relation.columns]
        for wanted in self.settings["columns"]:
            if wanted not in names:
                guess = difflib.get_close_matches(wanted, names, n=1)
                raise SpecError(
                    f"'transform.columns' names a column the file does not have: {wanted!r}",
                    key="transform.columns",
                    hint=(f"did you mean {guess[0]!r}? " if guess else "")
                    + "columns here: "
                    + ", ".join(names),
                )
        return relation  # the shape is unchanged: same columns, same names

    def wrap(self, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
        wanted = set(self.settings["columns"])
        positions = [i for i, column in enumerate(relation.columns) if column.name in wanted]
        for batch in batches:
            out: Batch = []
            for row in batch:
                # New rows rather than edits in place: a batch may be shared upstream.
                row = list(row)
                for i in positions:
                    value = row[i]
                    if value is not None:
                        row[i] = value.upper()
                out.append(row)
            yield out


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [UpperTransform]


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [InsertNewSink]
