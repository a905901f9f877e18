"""``[sink] mode = "insert_new"``: rows whose key the table lacks are inserted, rows
whose key it has are left as they are (counted unchanged).

A third-party sink that declares what it can do, and gets the rest from csvpg:
``takes_staged`` (it can load from a staging table) makes bad rows rejects with their
lines instead of failing the file, and ``stages_every_file`` lets a large file load over
the run's idle connections. It imports only from ``csvpg``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from psycopg import sql

from csvpg import LoadInput, LoadResult, Sink, Staged, cast_list, qualified, stage_file, table_ddl


class InsertNewSink(Sink):
    """``INSERT … ON CONFLICT (key) DO NOTHING`` from the staged file."""

    mode: ClassVar[str] = "insert_new"
    requires_primary_key: ClassVar[bool] = True
    takes_staged: ClassVar[bool] = True
    stages_every_file: ClassVar[bool] = True

    def ddl(self, load: LoadInput, exists: bool) -> list[Any]:
        return table_ddl(load, exists)  # the table, with its primary key, when missing

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            staged = stage_file(cur, load)
        return self.load_staged(conn, load, staged)

    def load_staged(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged
    ) -> LoadResult:
        columns = sql.SQL(", ").join(sql.Identifier(c.name) for c in load.relation.columns)
        keys = sql.SQL(", ").join(map(sql.Identifier, load.primary_key))
        # A key twice in the file is one row, the first (``__csvpg_row`` keeps file order).
        query = sql.SQL(
            """
            WITH src AS (
                SELECT DISTINCT ON ({keys}) {columns}
                FROM (SELECT {casts}, __csvpg_row FROM {staged}) AS s
                ORDER BY {keys}, __csvpg_row
            ), written AS (
                INSERT INTO {target} ({columns}) SELECT {columns} FROM src
                ON CONFLICT ({keys}) DO NOTHING
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM written)
            """
        ).format(
            target=qualified(load.schema, load.table),
            columns=columns,
            keys=keys,
            casts=sql.SQL(", ").join(cast_list(load, staged.names)),
            staged=staged.table,
        )
        with conn.cursor() as cur:
            distinct, inserted = cur.execute(query).fetchone() or (0, 0)
        return LoadResult(
            rows=staged.rows,
            inserted=inserted,
            collapsed=staged.rows - distinct,
            unchanged=distinct - inserted,
        )
