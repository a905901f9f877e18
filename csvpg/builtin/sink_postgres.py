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
from csvpg.pg.load import (
    STAGING_ROW,
    copy_in,
    guard_relative_dates,
    needs_staging,
    staged_select,
    staged_value,
    stages_typed,
    table_ddl,
)
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
                sql.SQL("INSERT INTO {} ({}) {} ORDER BY {}").format(
                    qualified(load.schema, load.table),
                    sql.SQL(", ").join(sql.Identifier(c.name) for c in load.relation.columns),
                    staged_select(load, staged),
                    sql.SQL("ctid") if staged.typed else sql.Identifier(STAGING_ROW),
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
    """Inserts new keys and updates existing ones, set-based: COPY into a staging table
    (of the target's types when COPY could fill the target, else TEXT), then one
    ``INSERT … SELECT … ON CONFLICT DO UPDATE``. When a key repeats
    within the file, the last row wins; the others are counted as collapsed. A row
    that already holds the file's values is left alone and counted as unchanged: a
    nightly re-load of a mostly unchanged export writes (and bloats) nothing."""

    mode = "upsert"
    requires_primary_key = True
    stages_every_file = True
    stages_in_table_types = True
    copies_into_new_table = False
    copies_file = False

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        # A file COPY could put in the table as it is is staged in the table's types:
        # COPY casts at its own speed, and the upsert reads the values as they are.
        typed = stages_typed(load)
        with conn.cursor() as cur:
            # COPY itself would take "yesterday" as a date (see guard_relative_dates).
            staged = stage_file(cur, guard_relative_dates(load) if typed else load, typed=typed)
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
        distinct = _distinct_keys(conn, load, staged)
        query = sql.SQL(
            """
            WITH written AS (
                INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM ({src}) src
                ON CONFLICT ({keys}) {action}
                RETURNING (xmax = 0) AS inserted
            )
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
            FROM written
            """
        ).format(
            src=_source(load, staged, distinct == staged.rows),
            keys=sql.SQL(", ").join(keys),
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
            target=qualified(load.schema, load.table),
            action=action,
        )
        with conn.cursor() as cur:
            result = cur.execute(query).fetchone()
        assert result is not None
        inserted, updated = result
        # A key already there whose row needed no change returns nothing.
        return LoadResult(
            rows=staged.rows,
            inserted=inserted,
            updated=updated,
            collapsed=staged.rows - distinct,
            unchanged=distinct - inserted - updated,
        )


def _source(load: LoadInput, staged: Staged, unique: bool) -> sql.Composed:
    """The staged rows cast, one per key: the last of a key the file has twice."""
    if unique:
        # No key twice in the file: every row is its key's last, no sort needed.
        return staged_select(load, staged)
    # DISTINCT ON the cast keys: "01" and "1" are one integer key.
    keys = sql.SQL(", ").join(map(sql.Identifier, load.primary_key))
    return sql.SQL(
        "SELECT DISTINCT ON ({keys}) {cols} FROM ({staged}) s ORDER BY {keys}, {row} DESC"
    ).format(
        keys=keys,
        cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in load.relation.columns),
        staged=staged_select(load, staged, row=True),
        row=sql.Identifier(STAGING_ROW),
    )


def _distinct_keys(conn: psycopg.Connection[Any], load: LoadInput, staged: Staged) -> int:
    """How many keys (cast as the table has them) the staged rows hold: counted on the
    keys alone, far cheaper than sorting whole rows for DISTINCT ON."""
    by_name = {c.name: c for c in load.relation.columns}
    exprs = [staged_value(load, staged, by_name[k]) for k in load.primary_key]
    key = exprs[0] if len(exprs) == 1 else sql.SQL("ROW({})").format(sql.SQL(", ").join(exprs))
    query = sql.SQL("SELECT count(DISTINCT {}) FROM {}").format(key, staged.table)
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [AppendSink, UpsertSink, RebuildSink]
