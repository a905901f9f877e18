"""A job and its listing → a plan: which files, which table each goes to, and how.

Making a plan lists the source but opens no file; :func:`open_file` reads one file's
header and shapes its columns through the transforms. ``csvpg check`` shows both.
"""

from __future__ import annotations

import posixpath
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import fsspec

from csvpg.compression import COMPRESSION_EXTENSIONS
from csvpg.errors import FormatError, SourceError, SpecError
from csvpg.interfaces import (
    Batch,
    Column,
    ColumnType,
    FileRef,
    Format,
    NumberedBatch,
    Reader,
    Reject,
    Relation,
    Sink,
    Source,
    Transform,
    batch_lines,
    wrong_width,
)
from csvpg.masking import mask_text
from csvpg.naming import MAX_BYTES, matches, safe_names, split_table, table_name
from csvpg.options import validate
from csvpg.plugins import Registry, sniff
from csvpg.spec import Job, Override

_GLOB_CHARS = set("*?[")


@dataclass
class FilePlan:
    """One file's route: its format, transforms, table and mode."""

    ref: FileRef
    format: Format
    transforms: list[Transform]
    sink: Sink
    schema: str
    table: str
    mode: str
    primary_key: list[str]
    column_types: dict[str, ColumnType]
    create: bool
    #: [columns] of this file's [[override]]: a name the file lacks there is worth a warning
    #: (the job-wide [columns] serves many files, so its names need not all fit each one).
    own_columns: frozenset[str] = frozenset()
    #: ``[sink] schema`` (or the file's override's): freeze, evolve or discard_new.
    drift: str = "freeze"
    #: ``[sink] missing``: allow (NULL, or the column's default) or fail.
    missing: str = "allow"

    @property
    def target(self) -> str:
        """``schema.table``, as events, the history and the manifest name the target."""
        return f"{self.schema}.{self.table}"

    def unknown_columns(self, relation: Relation) -> list[str]:
        """Names in the file's own ``[[override]]`` ``[columns]`` it lacks (likely typos)."""
        names = {c.name for c in relation.columns}
        return [name for name in sorted(self.own_columns) if name not in names]

    def check_primary_key(self, relation: Relation) -> None:
        """Every primary key column is one of the file's (shaped) columns."""
        names = [c.name for c in relation.columns]
        for key in self.primary_key:
            if key not in names:
                raise SpecError(
                    f"primary key column {key!r} is not among {self.ref.name}'s columns",
                    key="sink.primary_key",
                    file=self.ref.url,
                    hint="columns: " + ", ".join(names),
                )

    def planned_types(self, opened: OpenedFile) -> dict[str, ColumnType]:
        """Each column's type as far as the job decides it, without a database: its
        ``[columns]`` entry (type and conversions); else, for a table to write, what the
        format knows (Parquet keeps its types), else text. A table that is there gives
        its own types instead, keeping the conversions; one to create has each type
        checked by PostgreSQL (both in :mod:`csvpg.engine.fileload`)."""
        known = opened.reader.types if self.sink.writes_table else {}
        return {
            c.name: self.column_types.get(c.name) or ColumnType(known.get(c.header, "text"))
            for c in opened.relation.columns
        }


@dataclass
class Plan:
    job: Job
    source: Source
    files: list[FilePlan]
    skipped: list[tuple[FileRef, str]] = field(default_factory=list)


def resolve_url(job: Job) -> str:
    """A relative local path is read from the job file's folder."""
    return resolve_urls(job)[0]


def resolve_urls(job: Job) -> list[str]:
    """``[source] url``, or each of ``urls``, resolved like :func:`resolve_url`."""
    urls = job.source.locations
    return [_resolve(job, url) for url in urls]


def _resolve(job: Job, url: str) -> str:
    protocol, path = fsspec.core.split_protocol(url)
    if protocol in (None, "file", "local") and not posixpath.isabs(
        Path(path).expanduser().as_posix()
    ):
        return str((job.base_dir / Path(path).expanduser()).resolve())
    return str(Path(path).expanduser()) if protocol is None else url


def _format_for(job: Job, registry: Registry, settings: dict[str, Any], key: str) -> Format:
    file = str(job.path) if job.path else None
    cls = registry.pick("format", settings.get("type", "csv"), f"{key}.type", file)
    fmt: Format = cls(**validate(key, settings, cls.options, file=file, base_dir=job.base_dir))
    return fmt


def _sniffed(
    job: Job, registry: Registry, source: Source, ref: FileRef, settings: dict[str, Any], key: str
) -> Format:
    """``type = "auto"``: the ``sniff_format`` hook names the format from the first bytes."""
    name = sniff(registry, source, ref)
    return _format_for(job, registry, {**settings, "type": name}, key)


def _transforms_for(job: Job, registry: Registry) -> list[Transform]:
    file = str(job.path) if job.path else None
    out = []
    for i, entry in enumerate(job.transforms):
        key = f"transform[{i}]"
        cls = registry.pick("transform", entry["type"], f"{key}.type", file)
        out.append(cls(**validate(key, entry, cls.options, file=file, base_dir=job.base_dir)))
    return out


class MultiSource(Source):
    """``[source] urls``: several sources listed as one; each file is opened by the
    source that found it."""

    def __init__(self, sources: list[Source]) -> None:
        super().__init__(url=sources[0].url, options=sources[0].settings)
        self.sources = sources
        self._owner: dict[str, Source] = {}

    def list(self, pattern: str | None) -> list[FileRef]:
        refs: list[FileRef] = []
        for source in self.sources:
            for ref in source.list(pattern):
                if ref.url not in self._owner:  # a file named twice is loaded once
                    self._owner[ref.url] = source
                    refs.append(ref)
        return refs

    def open(self, ref: FileRef) -> BinaryIO:
        return self._owner.get(ref.url, self.sources[0]).open(ref)

    # Each of ``urls`` was checked to be able to (see _source_for).
    can_remove = True

    def remove(self, ref: FileRef) -> None:
        self._owner.get(ref.url, self.sources[0]).remove(ref)

    def move(self, ref: FileRef, to: str) -> str:
        return self._owner.get(ref.url, self.sources[0]).move(ref, to)

    def close(self) -> None:
        for source in self.sources:
            source.close()


def _source_for(job: Job, registry: Registry, url: str, key: str) -> Source:
    file = str(job.path) if job.path else None
    protocol = fsspec.core.split_protocol(url)[0] or "file"
    source_cls = registry.sources.get(protocol) or registry.sources.get("*")
    if source_cls is None:
        raise SpecError(
            f"'{key}' uses {protocol}://, which no installed source reads",
            key=key,
            file=file,
            hint="installed schemes: " + ", ".join(sorted(registry.sources)),
        )
    if job.source.after_load != "keep" and not source_cls.cls.can_remove:
        raise SpecError(
            f"'source.after_load' is \"{job.source.after_load}\", but {protocol}:// files "
            "cannot be deleted or moved by csvpg",
            key="source.after_load",
            file=file,
            hint='remove after_load (or write after_load = "keep") for this source',
        )
    options = job.source.options
    if source_cls.cls.options:
        options = validate(
            "source.options", options, source_cls.cls.options, file=file, base_dir=job.base_dir
        )
    return source_cls.cls(url=url, options=options)


def check_plugins(job: Job, registry: Registry) -> None:
    """What a plan checks before it lists any file: the format, transforms and sink
    named exist and take the options given (``csvpg serve`` checks a stored job so)."""
    file = str(job.path) if job.path else None
    if job.format.get("type") != "auto":
        _format_for(job, registry, job.format, "format")
    _transforms_for(job, registry)
    sink_cls = registry.pick("sink", job.sink.mode, "sink.mode", file)
    validate("sink.options", job.sink.options, sink_cls.options, file=file, base_dir=job.base_dir)
    for i, o in enumerate(job.overrides):
        if o.mode:
            registry.pick("sink", o.mode, f"override[{i}].mode", file)
    require_keys(job, sink_cls)


def require_keys(job: Job, sink_cls: type[Sink]) -> None:
    """A sink that declares ``requires_primary_key`` (upsert, merge …) gets one from
    ``[sink]`` or an ``[[override]]``, before any file is listed."""
    if sink_cls.requires_primary_key and not (
        job.sink.primary_key or any(o.primary_key for o in job.overrides)
    ):
        raise SpecError(
            f"'sink.mode' is \"{sink_cls.mode}\" but 'sink.primary_key' is empty",
            key="sink.primary_key",
            file=str(job.path) if job.path else None,
            hint='name the key columns, e.g. primary_key = ["customer_id"]',
        )


@dataclass(frozen=True)
class _JobParts:
    """What every file of a job shares, checked once before any file is listed."""

    file: str | None
    source: Source
    #: The job's ``[format]`` made once; None for ``type = "auto"`` (sniffed per file).
    base_format: Format | None
    transforms: list[Transform]
    sink_cls: type[Sink]
    sink_options: dict[str, Any]


def make_plan(job: Job, registry: Registry) -> Plan:
    """Check every plugin option and list the files; raises SpecError/SourceError."""
    urls = resolve_urls(job)
    parts = _job_parts(job, registry, urls)
    plans: list[FilePlan] = []
    skipped: list[tuple[FileRef, str]] = []
    now = time.time()
    for ref in listing(job, registry, parts.source, urls):
        override = next((o for o in job.overrides if matches(ref.name, o.match)), None)
        if (reason := _skip_reason(job, ref, override, now)) is not None:
            skipped.append((ref, reason))
            continue
        plans.append(_file_plan(job, registry, parts, ref, override))
    return Plan(job=job, source=parts.source, files=plans, skipped=skipped)


def _job_parts(job: Job, registry: Registry, urls: list[str]) -> _JobParts:
    file = str(job.path) if job.path else None
    source = _job_source(job, registry, urls)
    auto = job.format.get("type") == "auto"
    base_format = None if auto else _format_for(job, registry, job.format, "format")
    transforms = _transforms_for(job, registry)
    sink_cls = registry.pick("sink", job.sink.mode, "sink.mode", file)
    require_keys(job, sink_cls)
    sink_options = validate(
        "sink.options", job.sink.options, sink_cls.options, file=file, base_dir=job.base_dir
    )
    return _JobParts(file, source, base_format, transforms, sink_cls, sink_options)


def job_source(job: Job, registry: Registry) -> Source:
    """The job's source, made as a run makes it, without listing (``csvpg connections
    test`` lists it itself)."""
    return _job_source(job, registry, resolve_urls(job))


def _job_source(job: Job, registry: Registry, urls: list[str]) -> Source:
    """``[source] url``, or one source over all of ``urls``."""
    if not job.source.urls:
        return _source_for(job, registry, urls[0], "source.url")
    sources = [_source_for(job, registry, u, f"source.urls[{i}]") for i, u in enumerate(urls)]
    return sources[0] if len(sources) == 1 else MultiSource(sources)


def _skip_reason(job: Job, ref: FileRef, override: Override | None, now: float) -> str | None:
    """Why a listed file is left out of this run (its override says skip, or it is too
    young), or None."""
    if override and override.skip:
        return f"[[override]] match = {override.match!r} says skip"
    return _too_young(ref, job.source.min_age, now)


def replay_plan(job: Job, registry: Registry, url: str, fixed: Path) -> Plan:
    """The plan of a replay (``csvpg rejects RUN --replay``): the file ``url`` routed as
    the job routes it (table, mode, transforms, [columns]), its rows read from ``fixed``
    (plain CSV in UTF-8 with the header, see :func:`csvpg.rejectfile.replay_text`)."""
    parts = _job_parts(job, registry, resolve_urls(job))
    parts.source.close()
    ref = FileRef(url, posixpath.basename(url.rstrip("/")) or url)
    override = next((o for o in job.overrides if matches(ref.name, o.match)), None)
    settings = {**job.format, **((override.format or {}) if override else {})}
    nulls = settings.get("null_values", [""]) if settings.get("type", "csv") == "csv" else [""]
    fmt = registry.pick("format", "csv", "format.type", parts.file)(
        encoding="utf-8", delimiter=",", quote='"', header=True, skip_rows=0, null_values=nulls
    )
    fp = _file_plan(job, registry, parts, ref, override, fmt)
    if fp.mode == "rebuild":
        raise SpecError(
            f"{ref.name} loads in mode {fp.mode!r}, which empties the table first: a "
            "replay of a few fixed rows would leave only them",
            key="sink.mode",
            file=parts.file,
            hint="fix the source file and run the job again",
        )
    return Plan(job=job, source=_FixedRows(ref, fixed), files=[fp])


class _FixedRows(Source):
    """A replay's one file, read from the file of its fixed rows."""

    def __init__(self, ref: FileRef, path: Path) -> None:
        super().__init__(url=ref.url, options={})
        self.ref, self.path = ref, path

    def list(self, pattern: str | None) -> list[FileRef]:
        return [self.ref]

    def open(self, ref: FileRef) -> BinaryIO:
        return self.path.open("rb")


def _file_plan(
    job: Job,
    registry: Registry,
    parts: _JobParts,
    ref: FileRef,
    override: Override | None,
    fmt: Format | None = None,
) -> FilePlan:
    """One file's route: the job's settings, with its ``[[override]]`` (if any) on top
    (and ``fmt``, if given, as its format)."""
    fmt = fmt or _file_format(job, registry, parts, ref, override)
    mode = override.mode if override and override.mode else job.sink.mode
    sink = (
        parts.sink_cls
        if mode == job.sink.mode
        else registry.pick("sink", mode, "override.mode", parts.file)
    )
    keys = _file_keys(job, ref, override, sink, mode, parts.file)
    schema, table = _file_table(job, ref, override, parts.file)
    return FilePlan(
        ref=ref,
        format=fmt,
        transforms=[type(t)(**t.settings) for t in parts.transforms],
        sink=sink(**(parts.sink_options if sink is parts.sink_cls else {})),
        schema=schema,
        table=table,
        mode=mode,
        primary_key=list(keys),
        column_types={**job.columns, **((override.columns or {}) if override else {})},
        create=job.sink.create,
        own_columns=frozenset(override.columns or {}) if override else frozenset(),
        drift=(override.schema if override and override.schema else job.sink.schema),
        missing=(override.missing if override and override.missing else job.sink.missing),
    )


def _file_format(
    job: Job, registry: Registry, parts: _JobParts, ref: FileRef, override: Override | None
) -> Format:
    """The job's format, made anew only when an override changes it or it is sniffed."""
    settings, key = job.format, "format"
    if override and override.format:
        settings, key = {**job.format, **override.format}, "override.format"
    if settings.get("type") == "auto":
        return _sniffed(job, registry, parts.source, ref, settings, key)
    if settings is job.format and parts.base_format is not None:
        return parts.base_format
    return _format_for(job, registry, settings, key)


def _file_keys(
    job: Job,
    ref: FileRef,
    override: Override | None,
    sink: type[Sink],
    mode: str,
    file: str | None,
) -> list[str]:
    """The file's primary key (its override's, else ``[sink]``'s), which its mode may
    require."""
    keys = (
        override.primary_key
        if override and override.primary_key is not None
        else job.sink.primary_key
    )
    if sink.requires_primary_key and not keys:
        raise SpecError(
            f"{ref.name} goes to mode {mode!r}, which needs a primary key",
            key="sink.primary_key",
            file=file,
            hint="set primary_key in [sink] or in the file's [[override]]",
        )
    return keys


def _file_table(
    job: Job, ref: FileRef, override: Override | None, file: str | None
) -> tuple[str, str]:
    """The schema and table the file's name gives through the table template."""
    template = override.table if override and override.table else job.sink.table
    table = table_name(
        ref.name,
        template,
        strip_prefix=job.naming.strip_prefix,
        strip_suffix=job.naming.strip_suffix,
        lowercase=job.naming.lowercase,
    )
    schema, table = split_table(table, job.database.schema, file=file)
    for what, name in (("schema", schema), ("table", table)):
        if len(name.encode()) > MAX_BYTES:
            raise SpecError(
                f"{what} name {name!r} is longer than {MAX_BYTES} bytes",
                key="sink.table",
                file=file,
            )
    return schema, table


def listing(job: Job, registry: Registry, source: Source, urls: list[str]) -> list[FileRef]:
    """The files the job takes. A folder read without a ``pattern`` gives only files
    with a data extension of the job's formats (compressed or not); finding nothing is
    an error unless ``[source] allow_empty`` says it may happen."""
    pattern = job.source.pattern
    found = source.list(pattern)
    refs = found
    if not pattern:
        extensions = data_extensions(job, registry)
        refs = [r for r in found if _named(r, urls) or is_data_file(r.name, extensions)]
    if refs or job.source.allow_empty:
        return refs
    where = " and ".join(mask_text(u) for u in urls)
    file = str(job.path) if job.path else None
    allow = "if finding nothing is normal for this job, set [source] allow_empty = true"
    if pattern:
        raise SourceError(
            f"no file in {where} matches pattern {pattern!r}",
            file=file,
            key="source.pattern",
            hint=f"check [source] url and pattern (a glob on the file name); {allow}",
        )
    if found:
        names = ", ".join(r.name for r in found[:5]) + (" …" if len(found) > 5 else "")
        raise SourceError(
            f"{where} has no data file: only {names}, none named "
            + " ".join(f"*{e}" for e in extensions),
            file=file,
            key="source.pattern",
            hint='set [source] pattern (e.g. pattern = "*.unl") to take files by another name',
        )
    raise SourceError(f"{where} has no files", file=file, key="source.url", hint=allow)


def data_extensions(job: Job, registry: Registry) -> tuple[str, ...]:
    """The ``extensions`` of the formats the job reads with (all installed ones for
    ``type = "auto"``)."""
    types = {job.format.get("type", "csv")}
    types |= {o.format.get("type", "csv") for o in job.overrides if o.format}
    if "auto" in types:
        types = set(registry.formats)
    found: list[str] = []
    for name in sorted(types):
        reg = registry.formats.get(name)
        for ext in reg.cls.extensions if reg else ():
            if ext.lower() not in found:
                found.append(ext.lower())
    return tuple(found)


def is_data_file(name: str, extensions: tuple[str, ...]) -> bool:
    """``orders.csv``, ``orders.csv.gz``, ``ORDERS.TSV.zst``: a data extension, after
    one compression extension at most."""
    lower = name.lower()
    stem, dot, last = lower.rpartition(".")
    if dot and last in COMPRESSION_EXTENSIONS:
        lower = stem
    return lower.endswith(extensions) and not lower.startswith(".")


def _named(ref: FileRef, urls: list[str]) -> bool:
    """The URL names this file itself (not a folder or a glob around it): a user who
    names a file gets it, whatever its extension."""
    for url in urls:
        if ref.url == url:
            return True
        path = unquote(urlsplit(url).path) if "://" in url else url
        file_itself = not path.endswith("/") and not _GLOB_CHARS & set(path)
        if file_itself and "#" not in ref.url and posixpath.basename(path) == ref.name:
            return True
    return False


def _too_young(ref: FileRef, min_age: float, now: float) -> str | None:
    """Why a file changed too recently to be read (``[source] min_age``), or None."""
    if not min_age or ref.mtime is None:
        return None
    age = now - ref.mtime
    if age >= min_age:
        return None
    return (
        f"modified {max(age, 0):.0f} s ago, less than [source] min_age = {min_age:g} s "
        "(it may still be written): left for the next run"
    )


def file_relation(headers: list[str], lowercase: bool = True) -> Relation:
    names = safe_names(headers, lowercase=lowercase)
    cols = tuple(
        Column(index=i, header=h, name=n)
        for i, (h, n) in enumerate(zip(headers, names, strict=True))
    )
    return Relation(file_columns=cols, columns=cols)


@dataclass
class OpenedFile:
    """A file opened for loading: its reader and the shape the transforms gave it."""

    stream: BinaryIO
    reader: Reader
    relation: Relation
    #: True when a transform needs row values (or the format gives no bytes).
    row_path: bool
    #: Rows :meth:`batches` set aside (``set_aside``) as they are read: a consumer takes
    #: them as it goes, so they never pile up.
    malformed: deque[Reject] = field(default_factory=deque)

    def chunks(self, *, again: bool = False) -> Iterator[bytes] | None:
        """The byte path's blocks (None on the row path); ``again``: a second reading of
        bytes the first one checked (:meth:`Reader.iter_bytes_again`)."""
        if self.row_path:
            return None
        return self.reader.iter_bytes_again() if again else self.reader.iter_bytes()

    def batches(
        self, transforms: list[Transform], *, set_aside: bool = False
    ) -> Iterator[Batch] | None:
        """The row path's rows through the transforms. With ``set_aside``, a row whose
        number of fields differs from the header's never reaches them: it goes to
        :attr:`malformed`, and so does each record the format sets aside itself
        (:attr:`Reader.set_aside`); blank lines are skipped, as on the byte path."""
        if not self.row_path:
            return None
        if set_aside:
            self.reader.set_aside = self.malformed.append  # what the format itself refuses
        batches = self.reader.iter_batches()
        if set_aside:
            batches = _well_formed(batches, len(self.reader.headers), self.malformed)
        relation = file_relation(self.reader.headers)
        for t in transforms:
            after = t.relation(relation)
            if not t.needs_rows:
                batches = project(batches, relation, after)
            elif t.one_to_one:
                batches = _keep_lines(t, batches, relation)
            else:
                batches = t.wrap(batches, relation)
            relation = after
        return batches

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.stream.close()


def shape(headers: list[str], transforms: list[Transform]) -> Relation:
    relation = file_relation(headers)
    for t in transforms:
        relation = t.relation(relation)
    return relation


def project(batches: Iterator[Batch], before: Relation, after: Relation) -> Iterator[Batch]:
    """Rows shaped like ``before.columns`` → rows shaped like ``after.columns``."""
    where = {c.index: i for i, c in enumerate(before.columns)}
    positions = [where[c.index] for c in after.columns]
    if positions == list(range(len(before.columns))):
        yield from batches
        return
    width = len(before.columns)
    for batch in batches:
        for row in batch:
            if len(row) != width:
                raise FormatError(
                    f"a row has {len(row)} fields where the header has {width}: {row[:5]!r}",
                    hint="check the delimiter and quote in [format]",
                )
        shaped = [[row[p] for p in positions] for row in batch]
        lines = batch_lines(batch)
        yield shaped if lines is None else NumberedBatch(shaped, lines)


def _well_formed(batches: Iterator[Batch], width: int, out: deque[Reject]) -> Iterator[Batch]:
    for batch in batches:
        if all(len(row) == width for row in batch):
            yield batch
            continue
        lines = batch_lines(batch)
        kept: Batch = []
        kept_lines: list[int] = []
        for i, row in enumerate(batch):
            line = lines[i] if lines is not None else None
            if len(row) == width:
                kept.append(row)
                if line is not None:
                    kept_lines.append(line)
            elif row != [None]:  # a blank line is no record
                raw = ",".join(v or "" for v in row)
                out.append(Reject(line, wrong_width(len(row), width), raw))
        yield kept if lines is None else NumberedBatch(kept, kept_lines)


def _keep_lines(t: Transform, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
    """A one_to_one transform's batches, with the lines of the batches it took."""
    taken: deque[list[int] | None] = deque()

    def tap() -> Iterator[Batch]:
        for batch in batches:
            taken.append(batch_lines(batch))
            yield batch

    for out in t.wrap(tap(), relation):
        lines = taken.popleft() if taken else None
        if lines is None or batch_lines(out) is not None or len(out) != len(lines):
            yield out
        else:
            yield NumberedBatch(out, lines)


def open_file(plan: Plan, fp: FilePlan, stream: BinaryIO | None = None) -> OpenedFile:
    """The file opened through the plan's source (or read from ``stream``)."""
    return open_stream(fp, stream or plan.source.open(fp.ref))


def open_stream(fp: FilePlan, stream: BinaryIO) -> OpenedFile:
    """The file read from ``stream``, already open (closed here if reading fails)."""
    try:
        reader = fp.format.open(stream, fp.ref)
        relation = shape(reader.headers, fp.transforms)
    except BaseException:
        stream.close()
        raise
    row_path = (
        reader.dialect is None or fp.sink.needs_rows or any(t.needs_rows for t in fp.transforms)
    )
    return OpenedFile(stream=stream, reader=reader, relation=relation, row_path=row_path)
