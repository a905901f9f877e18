"""A file's rows in a TEXT staging table: how the careful path, split loads and every
sink that declares ``takes_staged`` see a file before it reaches its target."""

from __future__ import annotations

from typing import Any

import psycopg

from csvpg.interfaces import LoadInput, Staged
from csvpg.pg.load import copy_in, create_staging


def stage_file(cur: psycopg.Cursor[Any], load: LoadInput, *, typed: bool = False) -> Staged:
    """COPY the file into a TEXT staging table. Columns are named by file position, so
    renames can never collide; the byte path stages every file column. ``typed`` (when
    :func:`~csvpg.pg.load.stages_typed`): the columns have the target's names and types,
    so COPY does the casting, and names the column of a value it refuses."""
    if typed:
        cols = load.relation.columns
        names = {c.index: c.name for c in cols}
        types = [load.types[c.name].type for c in cols]
        table = create_staging(cur, "csvpg_staging", list(names.values()), types=types)
    else:
        cols = load.relation.file_columns if load.dialect is not None else load.relation.columns
        names = {c.index: f"f{c.index}" for c in cols}
        table = create_staging(cur, "csvpg_staging", list(names.values()))
    rows = copy_in(cur, table, list(names.values()), load)
    return Staged(table, names, rows, typed=typed)
