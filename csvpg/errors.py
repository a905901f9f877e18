"""Errors csvpg raises on purpose: each one is a message a user can act on.

    CsvpgError            message, hint, and file / line / column / key when known
    ├── SpecError         the job file is wrong (exit code 2)
    ├── PluginError       a plugin is missing, duplicated or misbehaves (exit code 2)
    ├── SourceError       a file cannot be listed or read
    ├── FormatError       a file cannot be understood (encoding, dialect, header)
    ├── SinkError         PostgreSQL refused the load (keeps the SQLSTATE)
    └── DatabaseError     PostgreSQL cannot be reached or started

Anything else that escapes is a bug: the CLI says so in one paragraph, and shows its
traceback with --debug.
"""

from __future__ import annotations


class CsvpgError(Exception):
    """Base class: a message, an optional hint, and where it happened."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
        key: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.sqlstate = sqlstate

    def __str__(self) -> str:
        return self.message


class SpecError(CsvpgError):
    """The job specification is invalid."""

    exit_code = 2


class PluginError(CsvpgError):
    """A plugin cannot be found, is registered twice, or breaks its contract."""

    exit_code = 2


class SourceError(CsvpgError):
    """A file cannot be listed, opened or read."""


class FormatError(CsvpgError):
    """A file's bytes cannot be read as the format says."""


class SinkError(CsvpgError):
    """PostgreSQL refused to take the data."""


class DatabaseError(CsvpgError):
    """PostgreSQL cannot be reached or started."""
