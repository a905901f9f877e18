"""Job files: TOML → a validated :class:`Job`, before anything runs.

Every error names the key path (``sink.primary_key``) and, for a misspelt key, the
nearest valid one. ``${VAR}`` in any string is taken from the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csvpg.dateformat import check_date_format
from csvpg.errors import SpecError
from csvpg.interfaces import ColumnType
from csvpg.masking import shown
from csvpg.naming import check_template
from csvpg.options import Option, unknown_key, validate

#: A file may reject 1% of its rows, and never more than 1000. A 50-row file may reject
#: none (one bad row in 50 is 2% of its data); a 100 000-row file 1000, and a million-row
#: file 1000 too, not 10 000: past a thousand bad rows something is wrong with the whole
#: file (its encoding, its delimiter, a column's type), not with some of its rows, and the
#: count lets the careful path stop there instead of reading on.
DEFAULT_MAX_REJECTS = "1% up to 1000"

SECTIONS: dict[str, dict[str, Option]] = {
    "job": {
        "name": Option(str, help='give the job a name, e.g. name = "customers"'),
        "description": Option(str, ""),
    },
    "database": {
        "dsn": Option(str, None, help="a PostgreSQL URL; omit [database] for the embedded server"),
        "schema": Option(str, "public"),
    },
    "source": {
        "url": Option(str, None, help='a path, directory or URL, e.g. url = "data/"'),
        "urls": Option(list, None, item=str, help="several paths or URLs, read as one source"),
        "pattern": Option(str, None),
        "options": Option(dict, {}),
        "allow_empty": Option(
            bool, False, help="a run that finds no file succeeds (else it fails: a wrong url?)"
        ),
        "min_age": Option(
            (int, float),
            0,
            help="seconds since a file's last change before it is read: younger files, "
            "maybe still being written, are left for the next run",
        ),
    },
    "sink": {
        "mode": Option(str, "append"),
        "table": Option(str, "{name}"),
        "primary_key": Option(list, [], item=str),
        "create": Option(bool, True),
        "max_rejects": Option(
            (int, str),
            DEFAULT_MAX_REJECTS,
            help='rows a file may reject before it fails: a count, "2%", or "1% up to 1000"',
        ),
        "rejects_csv": Option(bool, False, help="also write each file's rejects next to the job"),
        "options": Option(dict, {}, help="settings of the sink's own, e.g. a webhook's url"),
    },
    "naming": {
        "strip_prefix": Option(str, ""),
        "strip_suffix": Option(str, ""),
        "lowercase": Option(bool, True),
    },
    "run": {
        "workers": Option(
            int, 0, help="0 picks from the CPU count and the connections the server allows"
        ),
        "fail_fast": Option(bool, False),
        "max_retries": Option(int, 3, help="tries after a dropped connection or a 5xx"),
        "retry_delay": Option((int, float), 1.0, help="seconds before the first retry"),
        "split_mb": Option(
            int,
            64,
            help="a file this large (MiB) also loads over the run's idle connections "
            "when its mode allows; 0 never splits",
        ),
    },
    "history": {
        "keep_days": Option(int, 0, help="prune runs older than this many days; 0 keeps all"),
        "dsn": Option(
            str,
            None,
            help="a separate database for runs, files and rejects (one history "
            "for jobs that load into different databases)",
        ),
    },
}

OVERRIDE: dict[str, Option] = {
    "match": Option(str, help='a glob on the file name, e.g. match = "IxExpKonto*.csv"'),
    "table": Option(str, None),
    "mode": Option(str, None),
    "primary_key": Option(list, None, item=str),
    "columns": Option(dict, None),
    "format": Option(dict, None),
    "skip": Option(bool, False),
}

TOP_LEVEL = [*SECTIONS, "format", "transform", "override", "columns", "notify"]

_VAR = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\})")


COLUMN: dict[str, Option] = {
    "type": Option(str, help='a PostgreSQL type, e.g. type = "numeric(12,2)"'),
    "decimal": Option(str, None, help='the decimal mark, e.g. ","'),
    "thousands": Option(str, None, help='the thousands separator, e.g. "."'),
    "format": Option(str, None, help='a to_date/to_timestamp template, e.g. "DD.MM.YYYY"'),
    "true": Option(list, [], item=str),
    "false": Option(list, [], item=str),
    "allow_relative": Option(
        bool,
        False,
        help="load now, today, tomorrow, yesterday and allballs as PostgreSQL reads them "
        "on the day of the load (else they are rejects)",
    ),
}


def column_types(raw: dict[str, Any], path: str, file: str | None) -> dict[str, ColumnType]:
    """``name = "bigint"`` or ``name = { type = "numeric", decimal = "," }``."""
    out = {}
    for name, entry in raw.items():
        key = f"{path}.{name}"
        if isinstance(entry, str):
            out[name] = ColumnType(entry)
        elif isinstance(entry, dict):
            opts = validate(key, entry, COLUMN, file=file)
            for sep in ("decimal", "thousands"):
                if opts[sep] is not None and len(opts[sep]) != 1:
                    raise SpecError(
                        f"'{key}.{sep}' must be one character", key=f"{key}.{sep}", file=file
                    )
            if opts["format"] is not None:
                check_date_format(opts["format"], f"{key}.format", file)
            out[name] = ColumnType(
                opts["type"],
                decimal=opts["decimal"],
                thousands=opts["thousands"],
                format=opts["format"],
                true=tuple(v.lower() for v in opts["true"]),
                false=tuple(v.lower() for v in opts["false"]),
                allow_relative=opts["allow_relative"],
            )
        else:
            raise SpecError(
                f"'{key}' must be a type name or a table such as "
                f'{{ type = "date", format = "DD.MM.YYYY" }}, not {shown(entry, key)}',
                key=key,
                file=file,
            )
    return out


@dataclass
class Override:
    match: str
    table: str | None = None
    mode: str | None = None
    primary_key: list[str] | None = None
    columns: dict[str, ColumnType] | None = None
    format: dict[str, Any] | None = None
    skip: bool = False


@dataclass
class Job:
    """A validated job. Plugin options (format, transforms) are checked by the plan,
    against the plugins actually installed."""

    name: str
    source: dict[str, Any]
    format: dict[str, Any]
    transforms: list[dict[str, Any]]
    sink: dict[str, Any]
    naming: dict[str, Any]
    run: dict[str, Any]
    database: dict[str, Any]
    history: dict[str, Any] = field(default_factory=lambda: {"keep_days": 0, "dsn": None})
    columns: dict[str, ColumnType] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    #: [[notify]] webhooks, checked: each a dict of csvpg.notify.NOTIFY's keys.
    notify: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    #: True when the job named no [database]: the embedded server is used.
    embedded: bool = True
    #: A short hash of the spec as written, kept with each run.
    digest: str = ""

    @property
    def base_dir(self) -> Path:
        """Relative source paths are read from the job file's folder."""
        return self.path.parent if self.path else Path.cwd()


def substitute(value: Any, key: str, env: Mapping[str, str], file: str | None) -> Any:
    """Replace ``${VAR}`` from ``env`` in every string of ``value``; ``$$`` is a dollar."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) == "$":
                return "$"
            var = m.group(2)
            if var not in env:
                raise SpecError(
                    f"'{key}' uses ${{{var}}}, but the environment variable {var} is not set",
                    key=key,
                    file=file,
                    hint=f"export {var}=… before running, or write the value into the job",
                )
            return env[var]

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute(v, f"{key}.{k}" if key else k, env, file) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, f"{key}[{i}]", env, file) for i, v in enumerate(value)]
    return value


def parse_toml(text: str, file: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SpecError(
            f"{file or 'the job'} is not valid TOML: {exc}",
            file=file,
            line=int(m.group(1)) if m else None,
            hint="check the quoting and brackets on that line",
        ) from exc


def _check_urls(source: dict[str, Any], file: str | None) -> None:
    """Exactly one of ``url`` and ``urls``; ``urls`` names at least one, none empty."""
    if source["url"] is None and source["urls"] is None:
        raise SpecError(
            "missing required key 'source.url'",
            key="source.url",
            file=file,
            hint='a path, directory or URL, e.g. url = "data/" (or urls = ["…", "…"])',
        )
    if source["url"] is not None and source["urls"] is not None:
        raise SpecError(
            "'source.url' and 'source.urls' cannot both be given",
            key="source.urls",
            file=file,
            hint="keep url for one place, or put every URL into urls",
        )
    if source["urls"] is not None and (not source["urls"] or not all(source["urls"])):
        raise SpecError(
            "'source.urls' must name at least one URL, and none empty",
            key="source.urls",
            file=file,
        )


def load_job(path: str | Path, env: Mapping[str, str] | None = None) -> Job:
    """Read and validate a job file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SpecError(
            f"job file not found: {path}", file=str(path), hint="check the path"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read job file {path}: {exc}", file=str(path)) from exc
    job = job_from_dict(parse_toml(text, str(path)), path=path, env=env)
    job.digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return job


def job_from_dict(
    raw: dict[str, Any], *, path: Path | None = None, env: Mapping[str, str] | None = None
) -> Job:
    file = str(path) if path else None
    data = substitute(raw, "", os.environ if env is None else env, file)
    for key, value in data.items():
        if key not in TOP_LEVEL:
            raise unknown_key("", key, TOP_LEVEL, file)
        expect_list = key in ("transform", "override", "notify")
        if expect_list and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise SpecError(f"'{key}' must be written as [[{key}]] tables", key=key, file=file)
        if not expect_list and not isinstance(value, dict):
            raise SpecError(f"'{key}' must be a table: [{key}]", key=key, file=file)

    if "job" not in data:
        raise SpecError(
            "missing required section [job]", key="job", file=file, hint='add [job] with name = "…"'
        )
    if "source" not in data:
        raise SpecError(
            "missing required section [source]",
            key="source",
            file=file,
            hint='add [source] with url = "…"',
        )
    sections = {
        name: validate(name, data.get(name, {}), schema, file=file)
        for name, schema in SECTIONS.items()
    }
    _check_urls(sections["source"], file)

    fmt = dict(data.get("format", {}))
    fmt.setdefault("type", "csv")
    if not isinstance(fmt["type"], str):
        raise SpecError("'format.type' must be a string", key="format.type", file=file)

    transforms = []
    for i, entry in enumerate(data.get("transform", [])):
        if "type" not in entry or not isinstance(entry["type"], str):
            raise SpecError(
                f"missing required key 'transform[{i}].type'",
                key=f"transform[{i}].type",
                file=file,
                hint='each [[transform]] names its kind, e.g. type = "rename"',
            )
        transforms.append(dict(entry))

    columns = column_types(data.get("columns", {}), "columns", file)

    overrides = []
    for i, entry in enumerate(data.get("override", [])):
        checked = validate(f"override[{i}]", entry, OVERRIDE, file=file)
        if checked["columns"] is not None:
            checked["columns"] = column_types(checked["columns"], f"override[{i}].columns", file)
        if checked["table"] is not None:
            check_template(checked["table"], f"override[{i}].table", file)
        overrides.append(Override(**checked))

    from csvpg.notify import NOTIFY, STATUSES

    notify = []
    for i, entry in enumerate(data.get("notify", [])):
        checked = validate(f"notify[{i}]", entry, NOTIFY, file=file)
        if not checked["url"].lower().startswith(("http://", "https://")):
            raise SpecError(
                f"'notify[{i}].url' must be an http:// or https:// URL, "
                f"not {shown(checked['url'], 'url')}",
                key=f"notify[{i}].url",
                file=file,
            )
        for status in checked["on"]:
            if status not in STATUSES:
                raise SpecError(
                    f"'notify[{i}].on' names no run status: {status!r}",
                    key=f"notify[{i}].on",
                    file=file,
                    hint="statuses: " + ", ".join(STATUSES),
                )
        notify.append(checked)

    sink = sections["sink"]
    check_template(sink["table"], "sink.table", file)
    # A sink's own needs (a primary key for upsert) are checked by the plan.
    from csvpg.pg.rejects import reject_limit

    try:
        reject_limit(sink["max_rejects"])
    except SpecError as exc:
        exc.file = file
        raise
    workers = sections["run"]["workers"]
    if workers < 0:
        raise SpecError("'run.workers' must be 0 (automatic) or more", key="run.workers", file=file)
    if sections["run"]["split_mb"] < 0:
        raise SpecError(
            "'run.split_mb' must be 0 (never split) or more", key="run.split_mb", file=file
        )

    return Job(
        name=sections["job"]["name"],
        source=sections["source"],
        format=fmt,
        transforms=transforms,
        sink=sink,
        naming=sections["naming"],
        run=sections["run"],
        history=sections["history"],
        database=sections["database"],
        columns=dict(columns),
        overrides=overrides,
        notify=notify,
        path=path,
        embedded="database" not in data or not sections["database"]["dsn"],
        digest=hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ],
    )
