"""The PostgreSQL sinks: ``append``, ``upsert`` and ``rebuild``.

Each runs inside the one transaction the engine opened for the file, so a file that
fails leaves its table as it was.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from csvpg.hookspecs import hookimpl
from csvpg.interfaces import LoadInput, LoadResult, Sink
from csvpg.pg.connect import qualified
from csvpg.pg.load import STAGING_ROW, cast_list, copy_in, create_staging, create_table_sql


def _staged_names(load: LoadInput) -> dict[int, str]:
    """Staging columns are named by file position, so renames can never collide."""
    cols = load.relation.file_columns if load.dialect is not None else load.relation.columns
    return {c.index: f"f{c.index}" for c in cols}


def _stage(cur: psycopg.Cursor[Any], load: LoadInput) -> tuple[sql.Identifier, dict[int, str], int]:
    names = _staged_names(load)
    staging = create_staging(cur, "csvpg_staging", list(names.values()))
    rows = copy_in(cur, staging, list(names.values()), load)
    return staging, names, rows


class PostgresSink(Sink):
    """Shared by the three modes: table creation and the plain COPY."""

    def ddl(self, load: LoadInput, exists: bool) -> list[Any]:
        if exists or not load.create:
            return []
        return [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(load.schema)),
            create_table_sql(load, load.types),
        ]

    def copy_rows(self, cur: psycopg.Cursor[Any], load: LoadInput) -> int:
        """COPY straight into the target when the file's columns are the target's columns;
        else through staging, moving only the kept columns (cast in PostgreSQL)."""
        target = qualified(load.schema, load.table)
        if load.dialect is None or load.relation.is_identity:
            return copy_in(cur, target, [c.name for c in load.relation.columns], load)
        staging, names, rows = _stage(cur, load)
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
                target,
                sql.SQL(", ").join(sql.Identifier(c.name) for c in load.relation.columns),
                sql.SQL(", ").join(cast_list(load, names)),
                staging,
                sql.Identifier(STAGING_ROW),
            )
        )
        return rows


class AppendSink(PostgresSink):
    """Adds the file's rows to the table (COPY)."""

    mode = "append"

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            rows = self.copy_rows(cur, load)
        return LoadResult(rows=rows, inserted=rows)


class RebuildSink(PostgresSink):
    """Replaces the table's contents with the file. TRUNCATE and COPY share one
    transaction: readers see the old rows until the commit, then the new ones — never
    an empty or half-loaded table."""

    mode = "rebuild"

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("TRUNCATE {}").format(qualified(load.schema, load.table)))
            rows = self.copy_rows(cur, load)
        return LoadResult(rows=rows, inserted=rows)


class UpsertSink(PostgresSink):
    """Inserts new keys and updates existing ones, set-based: COPY into a TEXT staging
    table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``. When a key repeats
    within the file, the last row wins; the others are counted as collapsed."""

    mode = "upsert"
    requires_primary_key = True

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        target = qualified(load.schema, load.table)
        cols = [c.name for c in load.relation.columns]
        keys = list(map(sql.Identifier, load.primary_key))
        others = [c for c in cols if c not in load.primary_key]
        action: sql.Composable
        if others:
            action = sql.SQL("DO UPDATE SET {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
                )
            )
        else:
            action = sql.SQL("DO NOTHING")
        with conn.cursor() as cur:
            staging, names, rows = _stage(cur, load)
            # DISTINCT ON the cast keys: "01" and "1" are one integer key.
            query = sql.SQL(
                """
                WITH src AS (
                    SELECT DISTINCT ON ({keys}) {cols}
                    FROM (SELECT {casts}, {row} FROM {staging}) s
                    ORDER BY {keys}, {row} DESC
                ), written AS (
                    INSERT INTO {target} ({cols}) SELECT {cols} FROM src
                    ON CONFLICT ({keys}) {action}
                    RETURNING (xmax = 0) AS inserted
                )
                SELECT (SELECT count(*) FROM src),
                       count(*) FILTER (WHERE inserted),
                       count(*) FILTER (WHERE NOT inserted)
                FROM written
                """
            ).format(
                keys=sql.SQL(", ").join(keys),
                cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
                casts=sql.SQL(", ").join(cast_list(load, names)),
                row=sql.Identifier(STAGING_ROW),
                staging=staging,
                target=target,
                action=action,
            )
            result = cur.execute(query).fetchone()
        assert result is not None
        distinct, inserted, updated = result
        if not others:  # DO NOTHING returns no row for a key that was already there
            updated = distinct - inserted
        return LoadResult(rows=rows, inserted=inserted, updated=updated, collapsed=rows - distinct)


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [AppendSink, UpsertSink, RebuildSink]
