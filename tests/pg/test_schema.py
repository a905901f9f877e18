"""csvpg.pg.schema: csvpg's own tables, created and migrated once, by version."""

from __future__ import annotations

import threading

from csvpg.pg.schema import MIGRATIONS, ensure_schema


def test_the_schema_is_brought_to_the_last_version_once(db) -> None:
    assert ensure_schema(db.conn) == len(MIGRATIONS)
    assert ensure_schema(db.conn) == len(MIGRATIONS)  # a second time changes nothing
    versions = db.execute("SELECT version FROM csvpg.schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
    columns = {
        name
        for (name,) in db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'csvpg' AND table_name = 'runs'"
        ).fetchall()
    }
    assert {"id", "status", "error", "hint"} <= columns


def test_runs_that_start_together_migrate_once(pg_server: str) -> None:
    import psycopg

    versions: list[int] = []

    def prepare() -> None:
        with psycopg.connect(pg_server) as conn:
            versions.append(ensure_schema(conn))

    threads = [threading.Thread(target=prepare) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert versions == [len(MIGRATIONS)] * 4
