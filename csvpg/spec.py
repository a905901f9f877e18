"""Job files: TOML → a validated :class:`Job`, before anything runs.

Every error names the key path (``sink.primary_key``) and, for a misspelt key, the
nearest valid one. ``${VAR}`` in any string is taken from the environment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from csvpg.connections import with_connections
from csvpg.dateformat import check_date_format
from csvpg.errors import SpecError
from csvpg.interfaces import ColumnType
from csvpg.masking import shown
from csvpg.naming import check_template
from csvpg.options import Option, option, schema_of, section, unknown_key, validate
from csvpg.tomlvars import parse_toml as parse_toml
from csvpg.tomlvars import substitute as substitute

#: A file may reject 1% of its rows, and never more than 1000. A 50-row file may reject
#: none (one bad row in 50 is 2% of its data); a 100 000-row file 1000, and a million-row
#: file 1000 too, not 10 000: past a thousand bad rows something is wrong with the whole
#: file (its encoding, its delimiter, a column's type), not with some of its rows, and the
#: count lets the careful path stop there instead of reading on.
DEFAULT_MAX_REJECTS = "1% up to 1000"

#: ``[sink] schema``: what a file whose columns differ from its table's does to it.
SCHEMA_RULES = ("freeze", "evolve", "discard_new")
#: ``[sink] missing``: what a table column the file lacks does to the load.
MISSING_RULES = ("allow", "fail")

#: ``[source] after_load``: what happens to a file once its load committed.
AFTER_LOAD = ("keep", "delete", "move")

# The sections of a job, one frozen dataclass each: a field is a key, its ``option(...)``
# what the key accepts, its default the key's. SECTIONS (what validation checks) is
# derived from them, so csvpg's own ``job.sink.mode`` is checked by mypy as a user's
# ``[sink] mode`` is checked by validate().


@dataclass(frozen=True)
class JobSection:
    name: str = field(metadata=option(str, help='give the job a name, e.g. name = "customers"'))
    description: str = field(default="", metadata=option(str))


@dataclass(frozen=True)
class DatabaseSection:
    dsn: str | None = field(
        default=None,
        metadata=option(str, help="a PostgreSQL URL; omit [database] for the embedded server"),
    )
    schema: str = field(default="public", metadata=option(str))
    connection: str | None = field(
        default=None,
        metadata=option(str, help="a database named in connections.toml, instead of dsn"),
    )


@dataclass(frozen=True)
class SourceSection:
    url: str | None = field(
        default=None, metadata=option(str, help='a path, directory or URL, e.g. url = "data/"')
    )
    urls: list[str] | None = field(
        default=None,
        metadata=option(list, item=str, help="several paths or URLs, read as one source"),
    )
    pattern: str | None = field(default=None, metadata=option(str))
    options: dict[str, Any] = field(default_factory=dict, metadata=option(dict))
    connection: str | None = field(
        default=None,
        metadata=option(
            str, help="a source named in connections.toml (its url and options), instead of url"
        ),
    )
    path: str | None = field(
        default=None,
        metadata=option(str, help='a folder or file below the connection\'s url, e.g. "daily/"'),
    )
    allow_empty: bool = field(
        default=False,
        metadata=option(
            bool, help="a run that finds no file succeeds (else it fails: a wrong url?)"
        ),
    )
    min_age: float = field(
        default=0,
        metadata=option(
            (int, float),
            help="seconds since a file's last change before it is read: younger files, "
            "maybe still being written, are left for the next run",
        ),
    )

    after_load: str = field(
        default="keep",
        metadata=option(
            str,
            choices=AFTER_LOAD,
            help='what happens to a file once its load committed: "keep", "delete" or '
            '"move" (to move_to)',
        ),
    )
    move_to: str | None = field(
        default=None,
        metadata=option(
            str,
            help='the folder loaded files move to, e.g. "archive/{date:%Y-%m-%d}/": '
            "relative to the file's folder, absolute, or a URL of the same source",
        ),
    )

    @property
    def locations(self) -> list[str]:
        """Every path or URL the source reads: ``urls``, or the one ``url``."""
        return list(self.urls) if self.urls else [self.url or ""]

    def check(self, path: str, file: str | None) -> None:
        _check_urls(self, file)
        _check_after_load(self, path, file)


_SCHEMA_HELP = (
    'a file with a column its table lacks: "freeze" fails it, "evolve" adds the column '
    '(and widens a type a value outgrows), "discard_new" leaves the column out'
)
_MISSING_HELP = (
    'a table column the file lacks: "allow" loads NULL (or its default; upsert keeps the '
    'values there), "fail" fails the file'
)


@dataclass(frozen=True)
class SinkSection:
    mode: str = field(default="append", metadata=option(str))
    table: str = field(default="{name}", metadata=option(str))
    primary_key: list[str] = field(default_factory=list, metadata=option(list, item=str))
    create: bool = field(default=True, metadata=option(bool))
    max_rejects: int | str = field(
        default=DEFAULT_MAX_REJECTS,
        metadata=option(
            (int, str),
            help='rows a file may reject before it fails: a count, "2%", or "1% up to 1000"',
        ),
    )
    rejects_csv: bool = field(
        default=False,
        metadata=option(bool, help="also write each file's rejects next to the job"),
    )
    options: dict[str, Any] = field(
        default_factory=dict,
        metadata=option(dict, help="settings of the sink's own, e.g. a webhook's url"),
    )
    schema: str = field(
        default="freeze", metadata=option(str, choices=SCHEMA_RULES, help=_SCHEMA_HELP)
    )
    missing: str = field(
        default="allow", metadata=option(str, choices=MISSING_RULES, help=_MISSING_HELP)
    )

    def check(self, path: str, file: str | None) -> None:
        from csvpg.pg.rejects import reject_limit

        check_template(self.table, f"{path}.table", file)
        try:
            reject_limit(self.max_rejects)
        except SpecError as exc:
            exc.file = file
            raise


@dataclass(frozen=True)
class NamingSection:
    strip_prefix: str = field(default="", metadata=option(str))
    strip_suffix: str = field(default="", metadata=option(str))
    lowercase: bool = field(default=True, metadata=option(bool))


@dataclass(frozen=True)
class RunSection:
    workers: int = field(
        default=0,
        metadata=option(
            int, help="0 picks from the CPU count and the connections the server allows"
        ),
    )
    fail_fast: bool = field(default=False, metadata=option(bool))
    max_retries: int = field(
        default=3, metadata=option(int, help="tries after a dropped connection or a 5xx")
    )
    retry_delay: float = field(
        default=1.0, metadata=option((int, float), help="seconds before the first retry")
    )
    split_mb: int = field(
        default=64,
        metadata=option(
            int,
            help="a file this large (MiB) also loads over the run's idle connections "
            "when its mode allows; 0 never splits",
        ),
    )

    def check(self, path: str, file: str | None) -> None:
        if self.workers < 0:
            raise SpecError(
                f"'{path}.workers' must be 0 (automatic) or more", key=f"{path}.workers", file=file
            )
        if self.split_mb < 0:
            raise SpecError(
                f"'{path}.split_mb' must be 0 (never split) or more",
                key=f"{path}.split_mb",
                file=file,
            )


@dataclass(frozen=True)
class HistorySection:
    keep_days: int = field(
        default=0, metadata=option(int, help="prune runs older than this many days; 0 keeps all")
    )
    dsn: str | None = field(
        default=None,
        metadata=option(
            str,
            help="a separate database for runs, files and rejects (one history "
            "for jobs that load into different databases)",
        ),
    )


@dataclass(frozen=True)
class ScheduleSection:
    cron: str | None = field(
        default=None,
        metadata=option(
            str,
            help='when csvpg worker --jobs runs the job, e.g. cron = "0 2 * * *" '
            "(a sixth field is seconds)",
        ),
    )
    timezone: str = field(
        default="UTC",
        metadata=option(str, help='the clock the cron is read on, e.g. "Europe/Berlin"'),
    )

    def next_run(self, after: datetime | None = None) -> datetime | None:
        """When the cron fires next after ``after`` (now), on the job's clock; None
        without a cron."""
        from zoneinfo import ZoneInfo

        from croniter import croniter

        if self.cron is None:
            return None
        start = (after or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone))
        nxt: datetime = croniter(self.cron, start).get_next(datetime)
        return nxt

    def check(self, path: str, file: str | None) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if self.cron is not None and not _valid_cron(self.cron):
            raise SpecError(
                f"'{path}.cron' is no cron expression: {self.cron!r}",
                key=f"{path}.cron",
                file=file,
                hint='five fields, minute hour day month weekday, e.g. "0 2 * * *"',
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SpecError(
                f"'{path}.timezone' names no time zone: {self.timezone!r}",
                key=f"{path}.timezone",
                file=file,
                hint='an IANA name, e.g. "UTC" or "Europe/Berlin"',
            ) from None


#: Section name → its dataclass: the table validation, the docs and mypy all read.
SECTION_TYPES: dict[str, type[Any]] = {
    "job": JobSection,
    "database": DatabaseSection,
    "source": SourceSection,
    "sink": SinkSection,
    "naming": NamingSection,
    "run": RunSection,
    "history": HistorySection,
    "schedule": ScheduleSection,
}

SECTIONS: dict[str, dict[str, Option]] = {
    name: schema_of(cls) for name, cls in SECTION_TYPES.items()
}

TOP_LEVEL = [*SECTIONS, "format", "transform", "override", "columns", "notify"]

S = TypeVar("S")

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


def _valid_cron(cron: str) -> bool:
    from croniter import croniter  # only for a job with a cron: a run starts faster

    return bool(croniter.is_valid(cron))


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


@dataclass(frozen=True)
class Override:
    """An [[override]]: settings for the files whose name matches ``match``."""

    match: str = field(
        metadata=option(str, help='a glob on the file name, e.g. match = "IxExpKonto*.csv"')
    )
    table: str | None = field(default=None, metadata=option(str))
    mode: str | None = field(default=None, metadata=option(str))
    primary_key: list[str] | None = field(default=None, metadata=option(list, item=str))
    columns: dict[str, ColumnType] | None = field(default=None, metadata=option(dict))
    format: dict[str, Any] | None = field(default=None, metadata=option(dict))
    skip: bool = field(default=False, metadata=option(bool))
    schema: str | None = field(
        default=None, metadata=option(str, choices=SCHEMA_RULES, help=_SCHEMA_HELP)
    )
    missing: str | None = field(
        default=None, metadata=option(str, choices=MISSING_RULES, help=_MISSING_HELP)
    )


OVERRIDE = schema_of(Override)


@dataclass
class Job:
    """A validated job. Plugin options (format, transforms) are checked by the plan,
    against the plugins actually installed.

    Built by :meth:`from_toml` (a job file) or :func:`job_from_dict` (its tables); the
    sections may also be given as their dataclasses, e.g. for a job built in Python::

        Job(name="x", source=SourceSection(url="data/"), sink=SinkSection(mode="upsert", …))
    """

    name: str
    source: SourceSection
    format: dict[str, Any] = field(default_factory=lambda: {"type": "csv"})
    transforms: list[dict[str, Any]] = field(default_factory=list)
    sink: SinkSection = field(default_factory=SinkSection)
    naming: NamingSection = field(default_factory=NamingSection)
    run: RunSection = field(default_factory=RunSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    history: HistorySection = field(default_factory=HistorySection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    columns: dict[str, ColumnType] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    #: [[notify]] webhooks, checked: each a dict of csvpg.notify.NOTIFY's keys.
    notify: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None
    #: True when the job named no [database]: the embedded server is used.
    embedded: bool = True
    #: A short hash of the spec as written, kept with each run.
    digest: str = ""

    def __post_init__(self) -> None:
        """A job built in Python is checked as a job file is: each section's keys and
        values (the same SpecErrors), then the rules between sections."""
        file = str(self.path) if self.path else None
        section(JobSection, "job", {"name": self.name}, file=file)
        for name, cls in SECTION_TYPES.items():
            if name == "job":
                continue  # the job's name is its own field
            given = getattr(self, name)
            if not isinstance(given, cls):
                raise SpecError(
                    f"the job's {name} must be a {cls.__name__}, not {type(given).__name__}",
                    key=name,
                    file=file,
                )
            # None is no TOML value: a field left None is a key not given.
            written = {k: v for k, v in dataclasses.asdict(given).items() if v is not None}
            section(cls, name, written, file=file)
        # A sink's own needs (upsert's primary key) are checked by the plan, which knows
        # the sink: csvpg.engine.plan.require_keys.

    @property
    def base_dir(self) -> Path:
        """Relative source paths are read from the job file's folder."""
        return self.path.parent if self.path else Path.cwd()

    @classmethod
    def from_toml(cls, path: str | Path, env: Mapping[str, str] | None = None) -> Job:
        """Read and validate a job file (``${VAR}`` from ``env``, else the environment)."""
        return load_job(path, env)


def _check_urls(source: SourceSection, file: str | None) -> None:
    """Exactly one of ``url`` and ``urls``; ``urls`` names at least one, none empty."""
    if source.url is None and source.urls is None:
        raise SpecError(
            "missing required key 'source.url'",
            key="source.url",
            file=file,
            hint='a path, directory or URL, e.g. url = "data/" (or urls = ["…", "…"])',
        )
    if source.url is not None and source.urls is not None:
        raise SpecError(
            "'source.url' and 'source.urls' cannot both be given",
            key="source.urls",
            file=file,
            hint="keep url for one place, or put every URL into urls",
        )
    if source.urls is not None and (not source.urls or not all(source.urls)):
        raise SpecError(
            "'source.urls' must name at least one URL, and none empty",
            key="source.urls",
            file=file,
        )


def _check_after_load(source: SourceSection, path: str, file: str | None) -> None:
    """``move`` needs a ``move_to`` whose fields are ``{date:…}`` and ``{name}``; a
    ``move_to`` without ``move`` would be ignored silently, so it is refused."""
    if source.after_load == "move" and not source.move_to:
        raise SpecError(
            f"'{path}.after_load' is \"move\" but '{path}.move_to' is not given",
            key=f"{path}.move_to",
            file=file,
            hint='name the folder, e.g. move_to = "archive/{date:%Y-%m-%d}/"',
        )
    if source.move_to is None:
        return
    if source.after_load != "move":
        raise SpecError(
            f"'{path}.move_to' is given but '{path}.after_load' is \"{source.after_load}\"",
            key=f"{path}.after_load",
            file=file,
            hint='write after_load = "move", or remove move_to',
        )
    try:
        move_folder(source.move_to, name="x.csv", when=datetime.now(UTC))
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise SpecError(
            f"'{path}.move_to' is no folder template: {source.move_to!r} ({exc})",
            key=f"{path}.move_to",
            file=file,
            hint="its fields are {date:FORMAT} (the load's date, e.g. {date:%Y-%m-%d}) "
            "and {name} (the file's name)",
        ) from None


def move_folder(template: str, *, name: str, when: datetime) -> str:
    """``[source] move_to`` for one file: ``{date:%Y-%m-%d}`` is ``when`` (the load's
    date), ``{name}`` the file's name."""
    return template.format(date=when, name=name)


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
    return job_from_text(text, path, env)


def job_from_text(
    text: str,
    path: Path,
    env: Mapping[str, str] | None = None,
    allow_env: Collection[str] | None = None,
) -> Job:
    """A job file's text, read elsewhere (a worker gets it with the queued task), as
    :func:`load_job` reads it; relative paths are the job file's folder's (with
    ``allow_env``, only the variables it names are filled in)."""
    job = job_from_dict(parse_toml(text, str(path)), path=path, env=env, allow_env=allow_env)
    job.digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return job


#: Top-level keys written as [[key]] tables; every other one is a [key] table.
_LISTS = ("transform", "override", "notify")
#: Sections a job must have, and what to add when one is missing.
_REQUIRED = {"job": 'add [job] with name = "…"', "source": 'add [source] with url = "…"'}


def job_from_dict(
    raw: dict[str, Any],
    *,
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    allow_env: Collection[str] | None = None,
) -> Job:
    """A job from its TOML tables, validated; ``${VAR}`` from ``env``, else the environment
    (with ``allow_env``, only the variables it names)."""
    file = str(path) if path else None
    env = os.environ if env is None else env
    data = substitute(raw, "", env, file, allow_env)
    _check_top_level(data, file)
    folder = path.parent if path else Path.cwd()
    data = with_connections(data, folder, env, file)

    def read(cls: type[S], name: str) -> S:
        return section(cls, name, data.get(name, {}), file=file)

    job = read(JobSection, "job")
    database = read(DatabaseSection, "database")
    source = read(SourceSection, "source")
    sink = read(SinkSection, "sink")
    naming = read(NamingSection, "naming")
    run = read(RunSection, "run")
    history = read(HistorySection, "history")
    schedule = read(ScheduleSection, "schedule")
    fmt = _format(data.get("format", {}), file)
    transforms = _transforms(data.get("transform", []), file)
    columns = column_types(data.get("columns", {}), "columns", file)
    overrides = _overrides(data.get("override", []), file)
    notify = _notify(data.get("notify", []), file)
    return Job(
        name=job.name,
        source=source,
        format=fmt,
        transforms=transforms,
        sink=sink,
        naming=naming,
        run=run,
        history=history,
        schedule=schedule,
        database=database,
        columns=columns,
        overrides=overrides,
        notify=notify,
        path=path,
        embedded=not database.dsn,
        digest=hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ],
    )


def _check_top_level(data: dict[str, Any], file: str | None) -> None:
    """Known keys only, each the right kind of table, and the sections a job needs."""
    for key, value in data.items():
        if key not in TOP_LEVEL:
            raise unknown_key("", key, TOP_LEVEL, file)
        if key in _LISTS and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise SpecError(f"'{key}' must be written as [[{key}]] tables", key=key, file=file)
        if key not in _LISTS and not isinstance(value, dict):
            raise SpecError(f"'{key}' must be a table: [{key}]", key=key, file=file)
    for name, hint in _REQUIRED.items():
        if name not in data:
            raise SpecError(f"missing required section [{name}]", key=name, file=file, hint=hint)


def _format(given: dict[str, Any], file: str | None) -> dict[str, Any]:
    """[format]: its options are the format plugin's, checked by the plan; here its type."""
    fmt = {"type": "csv", **given}
    if not isinstance(fmt["type"], str):
        raise SpecError("'format.type' must be a string", key="format.type", file=file)
    return fmt


def _transforms(entries: list[dict[str, Any]], file: str | None) -> list[dict[str, Any]]:
    """[[transform]]s: each names its type; the rest is the transform plugin's."""
    for i, entry in enumerate(entries):
        if "type" not in entry or not isinstance(entry["type"], str):
            raise SpecError(
                f"missing required key 'transform[{i}].type'",
                key=f"transform[{i}].type",
                file=file,
                hint='each [[transform]] names its kind, e.g. type = "rename"',
            )
    return [dict(entry) for entry in entries]


def _overrides(entries: list[dict[str, Any]], file: str | None) -> list[Override]:
    out = []
    for i, entry in enumerate(entries):
        where = f"override[{i}]"
        checked = validate(where, entry, OVERRIDE, file=file)
        if checked["columns"] is not None:
            checked["columns"] = column_types(checked["columns"], f"{where}.columns", file)
        if checked["table"] is not None:
            check_template(checked["table"], f"{where}.table", file)
        out.append(Override(**checked))
    return out


def _notify(entries: list[dict[str, Any]], file: str | None) -> list[dict[str, Any]]:
    if not entries:
        return []  # (a job without webhooks does without HTTP's modules)
    from csvpg.notify import NOTIFY, STATUSES

    out = []
    for i, entry in enumerate(entries):
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
        out.append(checked)
    return out
