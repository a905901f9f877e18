"""``[sink] mode = "merge"``: many files into one deduplicated table.

Like ``upsert`` it stages each file (COPY into a TEXT table) and writes it with one
set-based ``INSERT … ON CONFLICT (keys) DO UPDATE``; unlike ``upsert``, rows that share
a key are *merged* field by field instead of the last one replacing the others:

==================  ===============================================================
``first``           the earliest non-empty value wins (the table's, then the file's)
``last``            the latest non-empty value wins; an empty one never erases
``most_complete``   the longest non-empty value wins (ties: the earlier one)
==================  ===============================================================

The same policy merges duplicates inside a file (in file order) and a file into the
rows already there. Empty means NULL or ``''``. Counts: ``collapsed`` = rows that
merged into another row of the same file, ``updated`` = keys that were already in the
table; ``details["merge"]`` adds how many fields were filled (empty → value) and
replaced (value → another value), per column.

Files merging into one table take turns (a transaction-level advisory lock on the
table): concurrent ``ON CONFLICT`` writers could otherwise deadlock. Which file is
"first" follows the order files start in; set ``[run] workers = 1`` to make it the
listing's order exactly.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from csvpg import (
    LoadInput,
    LoadResult,
    Option,
    Sink,
    SpecError,
    convert_sql,
    null_markers_sql,
    qualified,
    stage_file,
    table_ddl,
)

log = logging.getLogger("csvpg_merge")

POLICIES = ("first", "last", "most_complete")
#: csvpg's staging tables keep file order in this column (see ``csvpg.interfaces.Staged``).
ROW = "__csvpg_row"


# -- SQL pieces ------------------------------------------------------------------------


def _nonempty(value: sql.Composable) -> sql.Composed:
    return sql.SQL("({0} IS NOT NULL AND ({0})::text <> '')").format(value)


def pick(policy: str, value: sql.Composable) -> sql.Composed:
    """The aggregate that merges one field over the rows of a key (in file order)."""
    order = {
        "first": sql.SQL("{} ASC").format(sql.Identifier(ROW)),
        "last": sql.SQL("{} DESC").format(sql.Identifier(ROW)),
        "most_complete": sql.SQL("length({}) DESC, {} ASC").format(value, sql.Identifier(ROW)),
    }[policy]
    return sql.SQL("(array_agg({v} ORDER BY {order}) FILTER (WHERE {ok}))[1]").format(
        v=value, order=order, ok=_nonempty(value)
    )


def resolve(policy: str, old: sql.Composable, new: sql.Composable) -> sql.Composed:
    """The value a field keeps when a row already in the table meets the file's row."""
    if policy == "first":
        return sql.SQL("CASE WHEN {} OR NOT {} THEN {} ELSE {} END").format(
            _nonempty(old), _nonempty(new), old, new
        )
    if policy == "last":
        return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(_nonempty(new), new, old)
    return sql.SQL(
        "CASE WHEN length(coalesce(({1})::text, '')) > length(coalesce(({0})::text, '')) "
        "THEN {1} ELSE {0} END"
    ).format(old, new)


# -- the sink --------------------------------------------------------------------------


class MergeSink(Sink):
    """Dedup by ``[sink] primary_key``, merging fields by policy (see the module doc)."""

    mode: ClassVar[str] = "merge"
    requires_primary_key: ClassVar[bool] = True
    takes_staged: ClassVar[bool] = True
    stages_every_file: ClassVar[bool] = True  # a large file splits over idle connections
    options: ClassVar[dict[str, Option]] = {
        "policy": Option(str, default="most_complete", choices=POLICIES),
        "fields": Option(
            dict, default={}, item=str, help='a policy per column, e.g. phone = "last"'
        ),
        "output": Option(
            str,
            default="",
            help='also write the merged table to this CSV file (e.g. "merged.csv")',
        ),
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        for name, policy in settings.get("fields", {}).items():
            if policy not in POLICIES:
                raise SpecError(
                    f"'sink.options.fields.{name}' must be one of "
                    + ", ".join(map(repr, POLICIES))
                    + f", not {policy!r}",
                    key=f"sink.options.fields.{name}",
                )
        #: What the last load did (also attached to its result as ``details``).
        self.details: dict[str, Any] = {}

    def ddl(self, load: LoadInput, exists: bool) -> list[Any]:
        return table_ddl(load, exists)

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        with conn.cursor() as cur:
            staged = stage_file(cur, load)
        return self.load_staged(conn, load, staged)

    # -- the merge -----------------------------------------------------------------

    def policies(self, load: LoadInput) -> dict[str, str]:
        """Column → policy for every column that is not a key."""
        names = [c.name for c in load.relation.columns]
        fields = [n for n in names if n not in load.primary_key]
        given: dict[str, str] = self.settings.get("fields", {})
        for name in given:
            if name not in fields:
                why = "a key column" if name in load.primary_key else "not a column of the file"
                raise SpecError(
                    f"'sink.options.fields.{name}': {name!r} is {why}",
                    key=f"sink.options.fields.{name}",
                    file=load.ref.url,
                    hint="columns that merge: " + ", ".join(fields),
                )
        default = self.settings.get("policy", "most_complete")
        return {n: given.get(n, default) for n in fields}

    def load_staged(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Any
    ) -> LoadResult:
        policies = self.policies(load)
        nulls = load.dialect.nulls if load.dialect is not None else ("",)
        target = qualified(load.schema, load.table)
        by_name = {c.name: c for c in load.relation.columns}
        keys = [sql.Identifier(k) for k in load.primary_key]
        fields = list(policies)
        ids = [sql.Identifier(f) for f in fields]
        # Positional aliases: column names can be 63 bytes long, so no suffixes on them.
        v = [sql.Identifier(f"__v{i}") for i in range(len(fields))]
        p = [sql.Identifier(f"__p{i}") for i in range(len(fields))]
        f1 = [sql.Identifier(f"__f{i}") for i in range(len(fields))]
        n = sql.Identifier("__csvpg_n")

        def staged_col(name: str) -> sql.Composable:
            return null_markers_sql(sql.Identifier(staged.names[by_name[name].index]), nulls)

        key_casts = [
            sql.SQL("{} AS {}").format(convert_sql(staged_col(k), load.types[k]), sql.Identifier(k))
            for k in load.primary_key
        ]
        value_cols = [sql.SQL("{} AS {}").format(staged_col(f), v[i]) for i, f in enumerate(fields)]
        picks = [
            sql.SQL("{} AS {}, (array_agg({} ORDER BY {}))[1] AS {}").format(
                pick(policies[f], v[i]), p[i], v[i], sql.Identifier(ROW), f1[i]
            )
            for i, f in enumerate(fields)
        ]
        typed = [
            sql.SQL("{} AS {}").format(convert_sql(p[i], load.types[f]), ids[i])
            for i, f in enumerate(fields)
        ]
        t = sql.Identifier("__csvpg_t")
        s = sql.Identifier("__csvpg_s")

        def of(alias: sql.Identifier, col: sql.Identifier) -> sql.Composed:
            return sql.SQL("{}.{}").format(alias, col)

        excluded = [sql.SQL("EXCLUDED.{}").format(i) for i in ids]
        action: sql.Composable = (
            sql.SQL("DO UPDATE SET {}").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(
                        ids[i], resolve(policies[f], of(t, ids[i]), excluded[i])
                    )
                    for i, f in enumerate(fields)
                )
            )
            if fields
            else sql.SQL("DO NOTHING")
        )

        def counts(items: list[sql.Composable], source: sql.Composable) -> sql.Composable:
            """``(SELECT ARRAY[count …] FROM source)``: one number per field."""
            if not items:
                return sql.SQL("ARRAY[]::bigint[]")
            return sql.SQL("(SELECT ARRAY[{}] FROM {})").format(sql.SQL(", ").join(items), source)

        join = sql.SQL(" AND ").join(sql.SQL("{} = {}").format(of(t, k), of(s, k)) for k in keys)
        # The rows already in the table, as they were before this statement.
        old = sql.SQL("src {} JOIN {} {} ON {}").format(s, target, t, join)
        new = sql.SQL("src")

        filled_old = counts(
            [
                sql.SQL("count(*) FILTER (WHERE NOT {} AND {})").format(
                    _nonempty(of(t, i)), _nonempty(of(s, i))
                )
                for i in ids
            ],
            old,
        )
        replaced_old = counts(
            [
                sql.SQL(
                    "count(*) FILTER (WHERE {} AND {} AND ({})::text IS DISTINCT FROM ({})::text)"
                ).format(
                    _nonempty(of(t, ids[i])),
                    _nonempty(of(s, ids[i])),
                    resolve(policies[f], of(t, ids[i]), of(s, ids[i])),
                    of(t, ids[i]),
                )
                for i, f in enumerate(fields)
            ],
            old,
        )
        filled_new = counts(
            [
                sql.SQL("count(*) FILTER (WHERE {} > 1 AND NOT {} AND {})").format(
                    n, _nonempty(f1[i]), _nonempty(p[i])
                )
                for i in range(len(fields))
            ],
            new,
        )
        replaced_new = counts(
            [
                sql.SQL("count(*) FILTER (WHERE {} > 1 AND {} AND {} IS DISTINCT FROM {})").format(
                    n, _nonempty(f1[i]), p[i], f1[i]
                )
                for i in range(len(fields))
            ],
            new,
        )
        all_cols = sql.SQL(", ").join(keys + ids)
        query = sql.SQL(
            """
            WITH rows_ AS (
                SELECT {key_casts}{comma_v} {value_cols}, {row} FROM {staging}
            ), picked AS (
                SELECT {keys}, count(*) AS {n}{comma_p} {picks} FROM rows_ GROUP BY {keys}
            ), src AS (
                SELECT {keys}{comma_t} {typed}, {n}{comma_pf} {pf} FROM picked
            ), written AS (
                INSERT INTO {target} AS {t} ({all_cols}) SELECT {all_cols} FROM src
                ON CONFLICT ({keys}) {action}
                RETURNING (xmax = 0) AS inserted
            )
            SELECT (SELECT count(*) FROM src),
                   (SELECT count(*) FILTER (WHERE inserted) FROM written),
                   (SELECT count(*) FILTER (WHERE NOT inserted) FROM written),
                   {filled_old}, {replaced_old}, {filled_new}, {replaced_new}
            """
        ).format(
            key_casts=sql.SQL(", ").join(key_casts),
            comma_v=sql.SQL(",") if value_cols else sql.SQL(""),
            value_cols=sql.SQL(", ").join(value_cols),
            row=sql.Identifier(ROW),
            staging=staged.table,
            keys=sql.SQL(", ").join(keys),
            n=n,
            comma_p=sql.SQL(",") if picks else sql.SQL(""),
            picks=sql.SQL(", ").join(picks),
            comma_t=sql.SQL(",") if typed else sql.SQL(""),
            comma_pf=sql.SQL(",") if fields else sql.SQL(""),
            pf=sql.SQL(", ").join(p + f1),
            typed=sql.SQL(", ").join(typed),
            target=target,
            t=t,
            all_cols=all_cols,
            action=action,
            filled_old=filled_old,
            replaced_old=replaced_old,
            filled_new=filled_new,
            replaced_new=replaced_new,
        )
        with conn.cursor() as cur:
            # One merge into a table at a time: concurrent ON CONFLICT writers with
            # overlapping keys could deadlock, and "first"/"last" need an order.
            cur.execute(
                "SELECT pg_advisory_xact_lock(hashtext('csvpg_merge'), hashtext(%s))",
                (f"{load.schema}.{load.table}",),
            )
            row = cur.execute(query).fetchone()
        assert row is not None
        distinct, inserted, updated, fill_old, repl_old, fill_new, repl_new = row
        if not fields:  # DO NOTHING returns no row for a key that was already there
            updated = distinct - inserted
        filled = {f: a + b for f, a, b in zip(fields, fill_old or [], fill_new or [], strict=False)}
        replaced = {
            f: a + b for f, a, b in zip(fields, repl_old or [], repl_new or [], strict=False)
        }
        result = LoadResult(
            rows=staged.rows,
            inserted=inserted,
            updated=updated,
            collapsed=staged.rows - distinct,
        )
        self.details = {"merge": self._report(load, policies, result, filled, replaced)}
        log.info("merge: %s → %s.%s: %s", load.ref.name, load.schema, load.table, self.details)
        if self.settings.get("output"):
            self.details["output"] = str(self.export(conn, load))
        result.details = self.details
        return result

    def export(self, conn: psycopg.Connection[Any], load: LoadInput) -> Path:
        """The merged table, as this file's transaction sees it, to ``output`` as CSV
        (in key order, with a header): written beside it, then moved into place, so a
        reader never sees half a file. Relative paths are the job folder's."""
        target = Path(self.settings["output"]).expanduser()
        if load.base_dir is not None:
            target = load.base_dir / target
        target.parent.mkdir(parents=True, exist_ok=True)
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in load.primary_key)
        copy_out = sql.SQL("COPY (SELECT * FROM {} ORDER BY {}) TO STDOUT (FORMAT csv, HEADER)")
        query = copy_out.format(qualified(load.schema, load.table), keys)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with open(fd, "wb") as out, conn.cursor() as cur, cur.copy(query) as copy:
                for block in copy:
                    out.write(block)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def _report(
        self,
        load: LoadInput,
        policies: dict[str, str],
        result: LoadResult,
        filled: dict[str, int],
        replaced: dict[str, int],
    ) -> dict[str, Any]:
        rel = load.relation
        kept = {c.index for c in rel.columns}
        default = self.settings.get("policy", "most_complete")
        return {
            "keys": list(load.primary_key),
            "policy": default,
            "fields": {f: p for f, p in policies.items() if p != default},
            "duplicates_in_file": result.collapsed,
            "duplicates_of_existing": result.updated,
            "fields_filled": {f: c for f, c in filled.items() if c},
            "fields_replaced": {f: c for f, c in replaced.items() if c},
            # Where the file's headers went (whatever transforms named them).
            "columns": {c.header: c.name for c in rel.columns if c.header},
            "missing": [c.name for c in rel.columns if not c.header],
            "unmapped": [c.header for c in rel.file_columns if c.index not in kept],
        }
