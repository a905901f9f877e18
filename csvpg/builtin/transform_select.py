"""``select`` / ``drop``: keep only some columns. The byte path stays: the file goes to a
staging table and only the kept columns move on."""

from __future__ import annotations

from csvpg.builtin._columns import find_column
from csvpg.errors import SpecError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import Relation, Transform
from csvpg.options import Option


class SelectTransform(Transform):
    """``columns = ["id", "name"]`` keeps those, in that order; ``drop = [...]`` removes."""

    type = "select"
    options = {
        "type": Option(str),
        "columns": Option(list, None, item=str, help="the columns to keep, in order"),
        "drop": Option(list, None, item=str, help="the columns to leave out"),
    }

    def relation(self, relation: Relation) -> Relation:
        keep, drop = self.settings.get("columns"), self.settings.get("drop")
        if (keep is None) == (drop is None):
            raise SpecError(
                "a select transform takes either 'columns' (to keep) or 'drop', "
                "not both or neither",
                key="transform.columns",
            )
        if keep is not None:
            if not keep:
                raise SpecError("'transform.columns' keeps no column", key="transform.columns")
            cols = [relation.columns[find_column(relation, k, "transform.columns")] for k in keep]
        else:
            gone = {find_column(relation, d, "transform.drop") for d in drop or []}
            cols = [c for i, c in enumerate(relation.columns) if i not in gone]
            if not cols:
                raise SpecError("'transform.drop' leaves no column", key="transform.drop")
        return relation.with_columns(cols)


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [SelectTransform]
