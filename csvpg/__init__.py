"""csvpg: load CSV files into PostgreSQL, declaratively.

The public API, imported lazily so that ``import csvpg`` stays light (no Textual,
no psycopg until a load needs it). Plugins import only what is listed here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "hookimpl": "csvpg.hookspecs",
    "Source": "csvpg.interfaces",
    "Format": "csvpg.interfaces",
    "Reader": "csvpg.interfaces",
    "Transform": "csvpg.interfaces",
    "Sink": "csvpg.interfaces",
    "FileRef": "csvpg.interfaces",
    "Column": "csvpg.interfaces",
    "CsvDialect": "csvpg.interfaces",
    "Relation": "csvpg.interfaces",
    "Batch": "csvpg.interfaces",
    "NumberedBatch": "csvpg.interfaces",
    "LoadInput": "csvpg.interfaces",
    "LoadResult": "csvpg.interfaces",
    "Reject": "csvpg.interfaces",
    "Record": "csvpg.interfaces",
    "Staged": "csvpg.interfaces",
    "Option": "csvpg.options",
    # SQL for sinks that write PostgreSQL tables their own way (e.g. csvpg-merge).
    "stage_file": "csvpg.builtin.sink_postgres",
    "create_table_sql": "csvpg.pg.load",
    "table_ddl": "csvpg.pg.load",
    "null_markers_sql": "csvpg.pg.load",
    "convert_sql": "csvpg.pg.load",
    "qualified": "csvpg.pg.connect",
    "Job": "csvpg.spec",
    "load_job": "csvpg.spec",
    "run": "csvpg.engine",
    "RunSummary": "csvpg.engine",
    "get_plugin_manager": "csvpg.plugins",
    "CsvpgError": "csvpg.errors",
    "SpecError": "csvpg.errors",
    "PluginError": "csvpg.errors",
    "SourceError": "csvpg.errors",
    "FormatError": "csvpg.errors",
    "SinkError": "csvpg.errors",
    "DatabaseError": "csvpg.errors",
    # What the track_event hook receives.
    "Event": "csvpg.events",
    "JobStarted": "csvpg.events",
    "FileSkipped": "csvpg.events",
    "FileStarted": "csvpg.events",
    "BytesRead": "csvpg.events",
    "Warned": "csvpg.events",
    "RowsRejected": "csvpg.events",
    "FileLoaded": "csvpg.events",
    "FileFailed": "csvpg.events",
    "FileCancelled": "csvpg.events",
    "JobFinished": "csvpg.events",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from csvpg.builtin.sink_postgres import stage_file
    from csvpg.engine import RunSummary, run
    from csvpg.errors import (
        CsvpgError,
        DatabaseError,
        FormatError,
        PluginError,
        SinkError,
        SourceError,
        SpecError,
    )
    from csvpg.events import (
        BytesRead,
        Event,
        FileCancelled,
        FileFailed,
        FileLoaded,
        FileSkipped,
        FileStarted,
        JobFinished,
        JobStarted,
        RowsRejected,
        Warned,
    )
    from csvpg.hookspecs import hookimpl
    from csvpg.interfaces import (
        Batch,
        Column,
        CsvDialect,
        FileRef,
        Format,
        LoadInput,
        LoadResult,
        NumberedBatch,
        Reader,
        Record,
        Reject,
        Relation,
        Sink,
        Source,
        Staged,
        Transform,
    )
    from csvpg.options import Option
    from csvpg.pg.connect import qualified
    from csvpg.pg.load import convert_sql, create_table_sql, null_markers_sql, table_ddl
    from csvpg.plugins import get_plugin_manager
    from csvpg.spec import Job, load_job


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'csvpg' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
