"""``csvpg connections`` (the named connections a jobs folder can use, masked) and
``csvpg connections test NAME`` (connect, and say what is there)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from csvpg.cli.runs import _table_lines
from csvpg.connections import CONNECTIONS_ENV, Connection, load_connections
from csvpg.engine.plan import job_source
from csvpg.masking import mask_text, mask_value
from csvpg.pg.connect import connect, server_identity
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.spec import Job, SourceSection

#: Files named when a source is tested: enough to recognise the folder.
SHOWN_FILES = 5


def list_connections(folder: Path, out: TextIO) -> int:
    known = load_connections(folder)
    looked = ", ".join(str(p) for p in known.looked)
    if not known.found:
        print(f"no connection (looked in {looked}; set ${CONNECTIONS_ENV} to add a file)", file=out)
        return 0
    rows = [["NAME", "KIND", "WHERE", "OPTIONS", "FILE"]]
    for name, conn in sorted(known.found.items()):
        where = mask_text(conn.settings.dsn or conn.settings.url or "")
        options = mask_value(conn.settings.options)
        shown = ", ".join(f"{k}={v}" for k, v in options.items()) or "-"
        rows.append([name, conn.kind, where, shown, str(conn.file)])
    for line in _table_lines(rows):
        print(line, file=out)
    return 0


def test_connection(folder: Path, name: str, out: TextIO) -> int:
    """Connect to ``name`` and say what was found; a failure raises its CsvpgError
    (one paragraph, exit 1)."""
    conn = load_connections(folder).get(name, "connection", None)
    if conn.settings.dsn is not None:
        with connect(conn.settings.dsn) as db:
            version, user, database = server_identity(db)
        where = mask_text(conn.settings.dsn)
        print(
            f"{name}: connected to {where}: PostgreSQL {version}, user {user}, database {database}",
            file=out,
        )
        return 0
    return _test_source(conn, out)


def _test_source(conn: Connection, out: TextIO) -> int:
    settings = conn.settings
    job = Job(
        name=f"connection-{conn.name}",
        source=SourceSection(url=settings.url, options=settings.options),
        path=conn.file,
    )
    source = job_source(job, Registry(get_plugin_manager()))
    try:
        files = source.list(None)
    finally:
        source.close()
    names = ", ".join(f.name for f in files[:SHOWN_FILES])
    more = f" and {len(files) - SHOWN_FILES} more" if len(files) > SHOWN_FILES else ""
    print(
        f"{conn.name}: reached {mask_text(settings.url or '')}: {len(files)} file(s)"
        + (f": {names}{more}" if files else ""),
        file=out,
    )
    return 0
