"""Named connections: databases and SFTP/HTTP/object-store folders named once in a
``connections.toml``, with ``${VAR}`` secrets, and used by name in job files::

    [warehouse]
    dsn = "postgresql://etl:${PG_PASSWORD}@db/warehouse"

    [erp_drop]
    url = "sftp://etl@sftp.example/outbox/"
    options = { known_hosts = "~/.ssh/known_hosts" }

A job says ``[database] connection = "warehouse"`` and ``[source] connection =
"erp_drop"`` (with an optional ``path`` below the connection's URL). The file is looked
for in the job file's folder, then where ``$CSVPG_CONNECTIONS`` points; a name in the
job's folder wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csvpg.errors import SpecError
from csvpg.options import nearest, option, section
from csvpg.tomlvars import parse_toml, substitute

CONNECTIONS_FILE = "connections.toml"
#: Names a connections file used besides the one in the job's folder.
CONNECTIONS_ENV = "CSVPG_CONNECTIONS"


@dataclass(frozen=True)
class ConnectionSection:
    """One ``[name]`` table of ``connections.toml``: a database or a source."""

    dsn: str | None = field(
        default=None,
        metadata=option(
            str, help='a PostgreSQL URL, e.g. dsn = "postgresql://etl:${PG_PASSWORD}@db/dw"'
        ),
    )
    url: str | None = field(
        default=None,
        metadata=option(
            str,
            help='a folder or file URL of a source, e.g. url = "sftp://etl@host/outbox/" '
            "(a relative path is the connections file's folder's)",
        ),
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=option(
            dict, help="the source's [source.options], e.g. known_hosts, key_file, headers"
        ),
    )
    description: str = field(default="", metadata=option(str))

    def check(self, path: str, file: str | None) -> None:
        if (self.dsn is None) == (self.url is None):
            raise SpecError(
                f"connection '{path}' must have exactly one of 'dsn' (a database) and "
                "'url' (a source)",
                key=path,
                file=file,
                hint='e.g. dsn = "postgresql://…" or url = "sftp://…/"',
            )
        if self.dsn is not None and self.options:
            raise SpecError(
                f"'{path}.options' is for a source's url; a dsn takes its settings in the URL",
                key=f"{path}.options",
                file=file,
            )


@dataclass(frozen=True)
class Connection:
    name: str
    settings: ConnectionSection
    #: The connections file it is written in.
    file: Path

    @property
    def kind(self) -> str:
        return "database" if self.settings.dsn is not None else "source"


@dataclass(frozen=True)
class Connections:
    """The connections a job (or ``csvpg connections``) can use, and where they were
    looked for (said when a name is not found)."""

    found: dict[str, Connection]
    looked: list[Path]

    def get(self, name: str, key: str, file: str | None) -> Connection:
        if name in self.found:
            return self.found[name]
        guess = nearest(name, sorted(self.found))
        where = ", ".join(str(p) for p in self.looked) or "nowhere"
        known = ", ".join(sorted(self.found)) or "none"
        raise SpecError(
            f"'{key}' names the connection {name!r}, which is not defined "
            f"(looked in {where}; defined: {known})",
            key=key,
            file=file,
            hint=f"did you mean {guess!r}?"
            if guess
            else f"add [{name}] to {CONNECTIONS_FILE} beside the job, or point "
            f"${CONNECTIONS_ENV} at a file that has it",
        )


def connection_files(folder: Path, env: Mapping[str, str] | None = None) -> list[Path]:
    """Where connections are looked for: ``folder/connections.toml``, then the file
    ``$CSVPG_CONNECTIONS`` names."""
    env = os.environ if env is None else env
    out = [folder / CONNECTIONS_FILE]
    if env.get(CONNECTIONS_ENV):
        named = Path(env[CONNECTIONS_ENV]).expanduser()
        if named.resolve() != out[0].resolve():
            out.append(named)
    return out


def load_connections(folder: Path, env: Mapping[str, str] | None = None) -> Connections:
    """The connections of the files of :func:`connection_files` that exist."""
    env = os.environ if env is None else env
    looked = connection_files(folder, env)
    found: dict[str, Connection] = {}
    for path in reversed(looked):  # the job's folder last: its names win
        if path.is_file():
            found.update(_read(path, env))
        elif path != looked[0]:
            raise SpecError(
                f"${CONNECTIONS_ENV} names {path}, which is not a file",
                file=str(path),
                hint=f"point ${CONNECTIONS_ENV} at a {CONNECTIONS_FILE}, or unset it",
            )
    return Connections(found, looked)


def _read(path: Path, env: Mapping[str, str]) -> dict[str, Connection]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read {path}: {exc}", file=file) from exc
    out = {}
    for name, table in parse_toml(text, file).items():
        if not isinstance(table, dict):
            raise SpecError(
                f"'{name}' in {path} must be a table: [{name}]",
                key=name,
                file=file,
                hint='e.g. [warehouse] with dsn = "postgresql://…"',
            )
        settings = section(ConnectionSection, name, substitute(table, name, env, file), file=file)
        if settings.url is not None and "://" not in settings.url:
            settings = ConnectionSection(
                url=str(path.parent / settings.url),
                options=settings.options,
                description=settings.description,
            )
        out[name] = Connection(name, settings, path)
    return out


def with_connections(
    data: dict[str, Any], folder: Path, env: Mapping[str, str], file: str | None
) -> dict[str, Any]:
    """A job's tables with ``[database] connection`` and ``[source] connection`` (plus
    ``path``) replaced by what they name: the dsn; the url, below it the path, and the
    connection's options under the job's own."""
    database, source = data.get("database", {}), data.get("source", {})
    db_name, src_name = database.get("connection"), source.get("connection")
    if "path" in source and src_name is None:
        raise SpecError(
            "'source.path' is given without 'source.connection'",
            key="source.path",
            file=file,
            hint="path is a folder or file below a named connection's url; else use url",
        )
    if not isinstance(db_name, str) and not isinstance(src_name, str):
        return data  # none, or a wrong type the section's check names
    known = load_connections(folder, env)
    out = dict(data)
    if isinstance(db_name, str):
        out["database"] = {**database, "dsn": _dsn(known, db_name, database, file)}
    if isinstance(src_name, str):
        out["source"] = _source(known, src_name, source, file)
    return out


def _dsn(known: Connections, name: str, database: dict[str, Any], file: str | None) -> str:
    if "dsn" in database:
        raise SpecError(
            "'database.connection' and 'database.dsn' cannot both be given",
            key="database.dsn",
            file=file,
            hint="keep one: the connection's name, or the URL",
        )
    conn = known.get(name, "database.connection", file)
    if conn.settings.dsn is None:
        raise SpecError(
            f"'database.connection' names {name!r}, a source (url) in {conn.file}, not a database",
            key="database.connection",
            file=file,
            hint="name a connection with a dsn",
        )
    return conn.settings.dsn


def _source(
    known: Connections, name: str, source: dict[str, Any], file: str | None
) -> dict[str, Any]:
    for key in ("url", "urls"):
        if key in source:
            raise SpecError(
                f"'source.connection' and 'source.{key}' cannot both be given",
                key=f"source.{key}",
                file=file,
                hint="below a connection, name the folder or file with path",
            )
    conn = known.get(name, "source.connection", file)
    url = conn.settings.url
    if url is None:
        raise SpecError(
            f"'source.connection' names {name!r}, a database (dsn) in {conn.file}, not a source",
            key="source.connection",
            file=file,
            hint="name a connection with a url",
        )
    path = source.get("path")
    if isinstance(path, str) and path:
        url = url.rstrip("/") + "/" + path.lstrip("/")
    options = {**conn.settings.options, **source.get("options", {})}
    return {**source, "url": url, "options": options}
