"""Finding a file's column by the name a job gives it, for the column transforms."""

from __future__ import annotations

from csvpg.errors import SpecError
from csvpg.interfaces import Relation
from csvpg.options import nearest


def find_column(relation: Relation, wanted: str, key: str) -> int:
    """Position in ``relation.columns`` of a column named by its header or its name."""
    for i, col in enumerate(relation.columns):
        if wanted in (col.name, col.header):
            return i
    names = [c.name for c in relation.columns]
    guess = nearest(wanted, names + [c.header for c in relation.columns])
    hint = f"did you mean '{guess}'? " if guess else ""
    raise SpecError(
        f"'{key}' names a column the file does not have: {wanted!r}",
        key=key,
        hint=hint + "columns: " + ", ".join(names),
    )
