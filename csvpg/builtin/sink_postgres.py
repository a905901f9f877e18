"""The PostgreSQL sinks: ``append``, ``upsert`` and ``rebuild``.

Each runs inside the one transaction the engine opened for the file, so a file that
fails leaves its table as it was. Each can also take a file from a staging table
(:meth:`load_staged`), which is how the careful path loads a file whose bad rows were
set aside as rejects.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from csvpg.hookspecs import hookimpl
from csvpg.interfaces import LoadInput, LoadResult, Sink, Staged
from csvpg.pg.connect import qualified
from csvpg.pg.load import STAGING_ROW, cast_list, copy_in, needs_staging, table_ddl
from csvpg.pg.staging import stage_file


class PostgresSink(Sink):
    """Shared by the three modes: table creation, COPY, and INSERT from staging."""

    takes_staged = True
    copies_into_new_table = True
    copies_file = True

    def ddl(self, load: LoadInput, exists: bool) -> list[Any]:
        return table_ddl(load, exists)

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            if needs_staging(load):
                return self.load_staged(conn, load, stage_file(cur, load))
            target = qualified(load.schema, load.table)
            self.before_copy(cur, load)
            rows = copy_in(cur, target, [c.name for c in load.relation.columns], load)
        return LoadResult(rows=rows, inserted=rows)

    def load_staged(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged
    ) -> LoadResult:
        with conn.cursor() as cur:
            self.before_copy(cur, load)
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY {}").format(
                    qualified(load.schema, load.table),
                    sql.SQL(", ").join(sql.Identifier(c.name) for c in load.relation.columns),
                    sql.SQL(", ").join(cast_list(load, staged.names)),
                    staged.table,
                    sql.Identifier(STAGING_ROW),
                )
            )
            inserted = cur.rowcount
        return LoadResult(rows=staged.rows, inserted=inserted)


class AppendSink(PostgresSink):
    """Adds the file's rows to the table (COPY)."""

    mode = "append"


class RebuildSink(PostgresSink):
    """Replaces the table's contents with the file. TRUNCATE and COPY share one
    transaction, and TRUNCATE locks the table: readers wait for the commit, then see
    the new rows — never an empty or half-loaded table."""

    mode = "rebuild"

    def before_copy(self, cur: psycopg.Cursor[Any], load: LoadInput) -> None:
        cur.execute(sql.SQL("TRUNCATE {}").format(qualified(load.schema, load.table)))


class UpsertSink(PostgresSink):
    """Inserts new keys and updates existing ones, set-based: COPY into a TEXT staging
    table, then one ``INSERT … SELECT … ON CONFLICT DO UPDATE``. When a key repeats
    within the file, the last row wins; the others are counted as collapsed. A row
    that already holds the file's values is left alone and counted as unchanged: a
    nightly re-load of a mostly unchanged export writes (and bloats) nothing."""

    mode = "upsert"
    requires_primary_key = True
    stages_every_file = True
    copies_into_new_table = False
    copies_file = False

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            staged = stage_file(cur, load)
        return self.load_staged(conn, load, staged)

    def load_staged(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged
    ) -> LoadResult:
        cols = [c.name for c in load.relation.columns]
        keys = list(map(sql.Identifier, load.primary_key))
        others = [c for c in cols if c not in load.primary_key]
        action: sql.Composable
        if others:
            mine = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in others)
            theirs = sql.SQL(", ").join(
                sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in others
            )
            action = sql.SQL("DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
                sql.SQL(", ").join(
                    sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others
                ),
                mine,
                theirs,
            )
        else:
            action = sql.SQL("DO NOTHING")
        # DISTINCT ON the cast keys: "01" and "1" are one integer key.
        query = sql.SQL(
            """
            WITH src AS (
                SELECT DISTINCT ON ({keys}) {cols}
                FROM (SELECT {casts}, {row} FROM {staging}) s
                ORDER BY {keys}, {row} DESC
            ), written AS (
                INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM src
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
            casts=sql.SQL(", ").join(cast_list(load, staged.names)),
            row=sql.Identifier(STAGING_ROW),
            staging=staged.table,
            target=qualified(load.schema, load.table),
            action=action,
        )
        with conn.cursor() as cur:
            result = cur.execute(query).fetchone()
        assert result is not None
        distinct, inserted, updated = result
        # A key already there whose row needed no change returns nothing.
        return LoadResult(
            rows=staged.rows,
            inserted=inserted,
            updated=updated,
            collapsed=staged.rows - distinct,
            unchanged=distinct - inserted - updated,
        )


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [AppendSink, UpsertSink, RebuildSink]
