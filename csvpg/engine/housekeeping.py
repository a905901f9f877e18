"""``[source] after_load``: a loaded file is deleted or moved, only once its
transaction committed (its data, history and manifest are in). A failure to do so is a
warning, never a failed file: the data is in, and the next run, finding the file
unchanged in the manifest, tries again (and only that: it is "archived", not loaded)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from csvpg import events as ev
from csvpg.engine.context import FileContext
from csvpg.errors import CsvpgError
from csvpg.interfaces import FileRef
from csvpg.pg import history
from csvpg.spec import move_folder


def tidy(ctx: FileContext, ref: FileRef) -> dict[str, Any] | None:
    """Delete or move ``ref`` as the job says; what happened (the file's
    ``details.after_load``), or None when the file stays (``keep``, a dry run)."""
    if ctx.after_load == "keep" or ctx.dry_run:
        return None
    doing = "deleting" if ctx.after_load == "delete" else "moving"
    try:
        if ctx.after_load == "delete":
            ctx.source.remove(ref)
            return {"action": "deleted"}
        # The load's date is UTC: workers on several machines file a day's loads alike.
        folder = move_folder(ctx.move_to or "", name=ref.name, when=datetime.now(UTC))
        return {"action": "moved", "to": ctx.source.move(ref, folder)}
    except (CsvpgError, OSError, NotImplementedError) as exc:
        reason = exc.message if isinstance(exc, CsvpgError) else str(exc) or type(exc).__name__
        message = f"{ref.url}: loaded, but {doing} it failed: {reason}"
        ctx.emit(ev.Warned(ctx.run_id, message, ref.url))
        return {"action": "kept", "error": message}


def record(ctx: FileContext, url: str, done: dict[str, Any]) -> None:
    """Add what :func:`tidy` did to the file's row in ``csvpg.run_files``."""
    try:
        with ctx.sessions.connection(ctx.history_dsn) as conn, conn.transaction():
            history.file_after_load(conn, ctx.run_id, url, done)
    except (psycopg.Error, CsvpgError) as exc:
        ctx.log.warning("cannot record after_load of %s in the run history: %s", url, exc)


def archived(done: dict[str, Any]) -> str:
    """The reason a file, loaded by an earlier run, is only tidied by this one."""
    if done["action"] == "deleted":
        return "archived: loaded before and unchanged; deleted"
    return f"archived: loaded before and unchanged; moved to {done['to']}"
