"""What a spec that arrives over HTTP (``POST /runs`` with ``spec``, ``PUT /jobs/{name}``)
may do, so that a leaked or shared token cannot read the server's files or secrets:

* inline specs only with ``--allow-inline-specs``;
* ``${VAR}`` only for the variables ``--env-allow`` names (not ``${CSVPG_API_TOKEN}``);
* local paths (sources, upload folders, sink outputs) under ``--data-root`` only, after
  following symlinks; remote sources (sftp, http, object stores) as they are;
* the server's own database only, or one ``--allow-dsn`` names.

Job files written by hand into the jobs folder are the operator's own and trusted; those
written by ``PUT /jobs/{name}`` start with :data:`MARK` and are held to these rules on
every run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fastapi import HTTPException

from csvpg.engine.plan import resolve_urls
from csvpg.pg.connect import same_server
from csvpg.spec import Job
from csvpg.tomlvars import variables

#: The first line of a job file written over HTTP.
MARK = "# written by csvpg serve (PUT /jobs): held to the rules for specs sent over HTTP\n"
#: Sources read from elsewhere, not from this server's disk.
REMOTE = frozenset({"http", "https", "sftp", "ssh", "ftp", "s3", "s3a", "gs", "gcs", "az"})
REMOTE |= frozenset({"abfs", "abfss"})
#: Option names that hold a local path a plugin reads or writes.
PATH_KEYS = frozenset({"path", "output", "file", "folder", "dir", "directory"})
PATH_SUFFIXES = ("_path", "_file", "_dir", "_folder")


@dataclass(frozen=True)
class Policy:
    """The rules for specs sent over HTTP (see the module's docstring); the defaults are
    the strict ones."""

    data_root: Path | None = None  # None: the jobs folder's parent
    allow_inline_specs: bool = False
    env_allow: frozenset[str] = frozenset()
    allow_dsn: tuple[str, ...] = ()

    def root(self, jobs_dir: Path) -> Path:
        return (self.data_root or jobs_dir.resolve().parent).resolve()

    def environment(self) -> dict[str, str]:
        """The part of the server's environment a spec sent over HTTP may read."""
        return {k: v for k, v in os.environ.items() if k in self.env_allow}


def refused(reason: str) -> HTTPException:
    return HTTPException(403, reason)


def check_inline(policy: Policy) -> None:
    if not policy.allow_inline_specs:
        raise refused(
            "inline specs are turned off on this server: run a job by name, "
            "or start csvpg serve with --allow-inline-specs"
        )


def check_variables(raw: dict[str, Any], policy: Policy) -> None:
    """No ``${VAR}`` but the allowed ones: a spec must not read the server's secrets."""
    for var in sorted(variables(raw) - policy.env_allow):
        raise refused(
            f"the spec uses ${{{var}}}, but csvpg serve takes no variable from its "
            f"environment for a spec sent over HTTP unless --env-allow {var} names it"
        )


def inside(path: str | Path, root: Path) -> bool:
    """Whether ``path``, its symlinks followed, lies under ``root``."""
    return Path(path).expanduser().resolve().is_relative_to(root)


def confine(job: Job, policy: Policy, *, jobs_dir: Path, server_dsn: str) -> None:
    """A 403 naming the first thing ``job`` (sent over HTTP) may not reach."""
    root = policy.root(jobs_dir)
    for url in resolve_urls(job):
        local = _local_path(url)
        if local is not None and not inside(local, root):
            raise refused(f"the source {url} lies outside the data root {root} (--data-root)")
    pattern = job.source.pattern or ""
    if ".." in Path(pattern).parts or pattern.startswith(("/", "~")):
        raise refused(f"'source.pattern' = {pattern!r} may not leave the source's folder")
    for key, path in _paths(job):
        if not inside(path, root):
            raise refused(f"'{key}' = {path} lies outside the data root {root} (--data-root)")
    for key, dsn in (("database.dsn", job.database.dsn), ("history.dsn", job.history.dsn)):
        if dsn and not any(same_server(dsn, ok) for ok in (server_dsn, *policy.allow_dsn)):
            raise refused(
                f"'{key}' names a database other than the server's own; "
                "start csvpg serve with --allow-dsn for it"
            )


def _local_path(url: str) -> str | None:
    """The local path ``url`` reads, or None for a remote source. A chained URL
    (``simplecache::file://…``) or an unknown protocol counts as local: it is refused
    unless its path is under the root."""
    if "::" in url:
        return url.rsplit("::", 1)[-1].removeprefix("file://")
    protocol, path = fsspec.core.split_protocol(url)
    return None if protocol in REMOTE else str(path)


def _paths(job: Job) -> Iterator[tuple[str, Path]]:
    """Every option of the sink, format and transforms that names a local path."""
    sections: list[tuple[str, Any]] = [
        ("sink.options", job.sink.options),
        ("format", job.format),
        ("source.options", job.source.options),
    ]
    sections += [(f"transform[{i}]", t) for i, t in enumerate(job.transforms)]
    for where, options in sections:
        yield from _walk(where, options, job.base_dir)


def _walk(where: str, value: Any, base: Path) -> Iterator[tuple[str, Path]]:
    if isinstance(value, dict):
        for k, v in value.items():
            key = f"{where}.{k}"
            if isinstance(v, str) and (k in PATH_KEYS or k.endswith(PATH_SUFFIXES)):
                yield key, base / Path(v.replace("{name}", "x").replace("{table}", "x"))
            else:
                yield from _walk(key, v, base)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(f"{where}[{i}]", v, base)
