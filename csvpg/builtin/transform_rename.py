"""``rename``: give columns new names. Stays on the byte path (COPY's column list)."""

from __future__ import annotations

from csvpg.builtin._columns import find_column
from csvpg.errors import SpecError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import Relation, Transform
from csvpg.naming import MAX_BYTES
from csvpg.options import Option


class RenameTransform(Transform):
    """``columns = { "Kunden Nr" = "customer_id" }``: old (header or safe name) → new."""

    type = "rename"
    options = {"type": Option(str), "columns": Option(dict, item=str, help="old = new pairs")}

    def relation(self, relation: Relation) -> Relation:
        cols = list(relation.columns)
        for old, new in self.settings["columns"].items():
            if not new or len(new.encode()) > MAX_BYTES:
                raise SpecError(
                    f"'transform.columns.{old}': {new!r} is not a usable column name "
                    f"(1 to {MAX_BYTES} bytes)",
                    key=f"transform.columns.{old}",
                )
            i = find_column(relation, old, f"transform.columns.{old}")
            cols[i] = type(cols[i])(index=cols[i].index, header=cols[i].header, name=new)
        names = [c.name for c in cols]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SpecError(
                f"rename gives two columns the same name: {', '.join(dupes)}",
                key="transform.columns",
            )
        return relation.with_columns(cols)


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [RenameTransform]
