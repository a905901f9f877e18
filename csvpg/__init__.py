"""csvpg: load CSV files into PostgreSQL, declaratively.

The public API, imported lazily so that ``import csvpg`` stays light (no Textual,
no psycopg until a load needs it). Plugins import only what is listed here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: The public API, written out for type checkers and readers; each name is imported
#: from its module (``_EXPORTS``) on first use. A test keeps the two the same.
__all__ = [
    "Batch",
    "BytesRead",
    "Column",
    "CsvDialect",
    "CsvpgError",
    "DatabaseError",
    "Event",
    "FileCancelled",
    "FileFailed",
    "FileLoaded",
    "FilePhase",
    "FileRef",
    "FileSkipped",
    "FileStarted",
    "FileSummary",
    "Format",
    "FormatError",
    "Job",
    "JobFinished",
    "JobStarted",
    "LoadInput",
    "LoadResult",
    "NumberedBatch",
    "Option",
    "PluginError",
    "Reader",
    "Record",
    "Reject",
    "Relation",
    "RowsRejected",
    "RunHandle",
    "RunSummary",
    "Sink",
    "SinkError",
    "Source",
    "SourceError",
    "SpecError",
    "Staged",
    "Transform",
    "Warned",
    "cast_list",
    "convert_sql",
    "create_table_sql",
    "get_plugin_manager",
    "hookimpl",
    "load",
    "load_job",
    "null_markers_sql",
    "prepare",
    "qualified",
    "run",
    "stage_file",
    "staged_select",
    "start",
    "table_ddl",
]

#: Public name → the module that defines it.
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
    "stage_file": "csvpg.pg.staging",
    "cast_list": "csvpg.pg.load",
    "staged_select": "csvpg.pg.load",
    "create_table_sql": "csvpg.pg.load",
    "table_ddl": "csvpg.pg.load",
    "null_markers_sql": "csvpg.pg.load",
    "convert_sql": "csvpg.pg.load",
    "qualified": "csvpg.pg.connect",
    "Job": "csvpg.spec",
    "load_job": "csvpg.spec",
    "run": "csvpg.api",
    "load": "csvpg.api",
    "start": "csvpg.api",
    "prepare": "csvpg.api",
    "RunHandle": "csvpg.api",
    "RunSummary": "csvpg.summary",
    "FileSummary": "csvpg.summary",
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
    "FilePhase": "csvpg.events",
    "JobFinished": "csvpg.events",
}

if TYPE_CHECKING:
    from csvpg.api import RunHandle, load, prepare, run, start
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
        FilePhase,
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
    from csvpg.pg.load import (
        cast_list,
        convert_sql,
        create_table_sql,
        null_markers_sql,
        staged_select,
        table_ddl,
    )
    from csvpg.pg.staging import stage_file
    from csvpg.plugins import get_plugin_manager
    from csvpg.spec import Job, load_job
    from csvpg.summary import FileSummary, RunSummary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'csvpg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return list(__all__)
