"""``csvpg infer``: a file → column types, a primary key, and a job that loads it.

Files are read through csvpg's own source and format plugins, so a URL works like a
path. The sample is spread over the whole file when the stream can seek: the first rows,
the last rows and blocks in between, each found by byte offset and resynchronised to the
next line (rows whose field count differs from the header's — a resync inside a quoted
newline — are dropped). ``full_scan`` reads every row instead. Types come from
:mod:`csvpg.infer.types`; a plugin may propose others through ``infer_column_types``,
and each proposal is checked against the sample before it is taken.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
import pluggy
import tomli_w

from csvpg.errors import SourceError, SpecError
from csvpg.infer.types import DEFAULT_NULLS, ColumnGuess, Profile, infer_column, is_id_like
from csvpg.interfaces import Batch, FileRef, Reader, Source
from csvpg.naming import safe_names, table_name
from csvpg.plugins import Registry, get_plugin_manager, sniff

__all__ = [
    "ColumnGuess",
    "FileGuess",
    "Sample",
    "draw_sample",
    "explain",
    "infer_column",
    "infer_file",
    "job_for",
    "to_toml",
]

#: Blocks the sample is spread over: the head, the tail and the ones between.
BLOCKS = 20
MIN_CHUNK, MAX_CHUNK = 64 << 10, 16 << 20
#: With ``full_scan``, uniqueness is tracked for this many values per key candidate (an
#: id-like column, or one of FULL_SCAN_PAIRS pairs); other columns count 100 000.
KEY_CAP = 1_000_000
FULL_SCAN_PAIRS = 3
_PERIOD = (
    *("jahr", "year", "yr", "month", "monat", "date", "datum", "period", "periode", "line"),
    *("pos", "position", "seq", "version", "lfd", "day", "tag"),
)
_NO_KEY_TYPES = ("double precision", "real", "jsonb", "boolean")
_FRIENDLY = {"cp1252": "windows-1252", "iso8859-1": "latin-1", "iso8859-15": "latin-9"}


@dataclass
class Sample:
    """How the rows were drawn; filled in while the rows are read."""

    method: str = ""
    rows: int = 0
    #: Every row of the file was seen.
    complete: bool = False
    #: Rows dropped because their field count differs from the header's.
    dropped: int = 0
    size: int | None = None
    estimated_rows: int | None = None


def _csv_options(details: dict[str, Any]) -> dict[str, Any]:
    backslash = details["escape"] != details["quote"]
    return {
        "delimiter": details["delimiter"],
        "quotechar": details["quote"],
        "escapechar": details["escape"] if backslash else None,
        "doublequote": not backslash,
        "strict": False,
    }


def _read(stream: BinaryIO, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = stream.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def draw_sample(
    stream: BinaryIO,
    reader: Reader,
    sample: Sample,
    *,
    rows: int = 10_000,
    full_scan: bool = False,
    seekable: bool = True,
    blocks: int = BLOCKS,
) -> Iterator[Batch]:
    """Batches of sampled rows (each as wide as the header), filling in ``sample``.

    ``reader`` must be fresh (``fmt.open(stream, ref)``); when the stream can seek and the
    file holds more than about 1.5 × ``rows`` rows, the head comes from the reader and
    the other blocks from byte offsets. Otherwise rows are read in order: all of them
    with ``full_scan``, else the first ``rows``.
    """
    batches = reader.iter_batches()
    spread = seekable and not full_scan and sample.size is not None and len(reader.headers) > 0
    per_block = max(1, math.ceil(rows / blocks)) if spread else rows
    head = _Head()
    yield from _read_head(
        reader,
        batches,
        sample,
        head,
        rows=rows,
        per_block=per_block,
        spread=spread,
        full_scan=full_scan,
    )
    if head.exhausted:
        sample.complete = True
        sample.method = "the whole file"
        sample.estimated_rows = sample.rows + sample.dropped
        return
    if not spread:
        sample.method = f"the first {sample.rows} rows (the stream cannot seek)"
        return
    close = getattr(batches, "close", None)
    if close is not None:
        close()  # the reader is done: the stream is ours to seek
    start = _head_end(stream, reader, head.records)
    first = sample.rows
    yield from _spread(stream, reader, sample, start, per_block, blocks - 1, head.bytes_per_row)
    sample.method = (
        f"spread: the first {first} rows, the last rows and {blocks - 2} blocks between "
        "(by byte offset)"
    )


@dataclass
class _Head:
    """What reading the head of a file (:func:`_read_head`) found out."""

    #: The reader gave every record: the sample is the whole file.
    exhausted: bool = True
    #: Records the reader gave, kept or not.
    records: int = 0
    bytes_per_row: float = 1.0


def _read_head(
    reader: Reader,
    batches: Iterator[Batch],
    sample: Sample,
    head: _Head,
    *,
    rows: int,
    per_block: int,
    spread: bool,
    full_scan: bool,
) -> Iterator[Batch]:
    """The reader's rows, in batches of about ``rows``: all of them (``full_scan``), the
    first ``rows``, or — spread, once the first ``per_block`` rows show the file is
    large — the first block only; fills in ``head`` and ``sample``."""
    width = len(reader.headers)
    limit = None if full_scan else (3 * rows if spread else rows)
    decided = not spread  # until the head shows whether the file is small
    pending: Batch = []
    for batch in batches:
        kept = [r for r in batch if len(r) == width]
        if not decided and sample.rows + len(kept) >= per_block:
            head.bytes_per_row = _bytes_per_row(reader, pending + kept)
            sample.estimated_rows = int((sample.size or 0) / head.bytes_per_row)
            decided = True
            if sample.estimated_rows > 1.5 * rows:
                limit = per_block
        if limit is not None and sample.rows + len(kept) >= limit:
            need, whole = limit - sample.rows, len(batch)
            batch = _through_kept(batch, width, need)
            kept = kept[:need]
            head.exhausted = len(batch) == whole and next(batches, None) is None
        head.records += len(batch)
        sample.dropped += len(batch) - len(kept)
        sample.rows += len(kept)
        pending += kept
        if not head.exhausted:
            break
        if len(pending) >= rows:
            yield pending
            pending = []
    if pending:
        yield pending


def _bytes_per_row(reader: Reader, seen: Batch) -> float:
    """The bytes a row takes in the file, as the rows ``seen`` so far tell."""
    codec = str(reader.details.get("encoding", "utf-8"))
    width = len(reader.headers)
    size = sum(len(v.encode(codec, "replace")) if v else 0 for r in seen for v in r)
    return max(1.0, size / max(1, len(seen)) + width * _unit(reader))


def _through_kept(batch: Batch, width: int, need: int) -> Batch:
    """``batch`` up to its ``need``-th row as wide as the header."""
    took = 0
    for i, row in enumerate(batch):
        took += len(row) == width
        if took == need:
            return batch[: i + 1]
    return batch


def _unit(reader: Reader) -> int:
    codec = str(reader.details.get("encoding", ""))
    return 4 if codec.startswith("utf-32") else 2 if codec.startswith("utf-16") else 1


def _head_end(stream: BinaryIO, reader: Reader, records: int) -> int:
    """The byte offset where the reader's first ``records`` data records end.

    The start of the file is parsed again as the reader parsed it (skipped lines, the
    header), counting the characters each record took; the blocks start after them.
    """
    details = reader.details
    codec = str(details["encoding"])
    bom = 0
    if details.get("bom"):
        bom = {1: 3, 2: 2, 4: 4}[_unit(reader)]
    need = records + (1 if details.get("header", True) else 0)
    options = _csv_options(details)
    size = MIN_CHUNK
    while True:
        stream.seek(0)
        data = _read(stream, size)
        eof = len(data) < size
        text = data[bom:].decode(codec, errors="replace")
        used = 0

        def lines(text: str = text) -> Iterator[str]:
            nonlocal used
            for line in io.StringIO(text, newline=""):
                used += len(line)
                yield line

        source = lines()
        for _ in range(int(details.get("skip_rows", 0))):
            next(source, None)
        got = 0
        with contextlib.suppress(csv.Error):
            for _record in csv.reader(source, **options):
                got += 1
                if got == need:
                    break
        if eof or (got == need and used < len(text)):
            return bom + len(text[:used].encode(codec, errors="replace"))
        size *= 4


def _spread(
    stream: BinaryIO,
    reader: Reader,
    sample: Sample,
    start: int,
    per_block: int,
    regions: int,
    bytes_per_row: float,
) -> Iterator[Batch]:
    size = sample.size or 0
    unit = _unit(reader)
    codec = str(reader.details["encoding"])
    options = _csv_options(reader.details)
    width = len(reader.headers)
    chunk = int(min(MAX_CHUNK, max(MIN_CHUNK, per_block * bytes_per_row * 2)))
    bounds = [start + (size - start) * i // regions for i in range(regions + 1)]
    parsed_bytes = parsed_rows = 0
    for i in range(regions):
        tail = i == regions - 1
        lo, hi = bounds[i], bounds[i + 1]
        lo = max(lo, hi - chunk) if tail else lo
        hi = hi if tail else min(hi, lo + chunk)
        lo -= lo % unit
        stream.seek(lo)
        text = _read(stream, hi - lo).decode(codec, errors="replace")
        records = _records(text, options, width, at_eof=tail)
        parsed_bytes += hi - lo
        parsed_rows += len(records)
        kept = [[v or None for v in r] for r in records if len(r) == width]
        sample.dropped += len(records) - len(kept)
        kept = kept[-per_block:] if tail else kept[:per_block]
        sample.rows += len(kept)
        if kept:
            yield kept
    if parsed_rows:
        sample.estimated_rows = int(size / (parsed_bytes / parsed_rows))


def _records(text: str, options: dict[str, Any], width: int, *, at_eof: bool) -> list[list[str]]:
    """Whole records of a block that starts (and unless ``at_eof`` ends) mid-line.

    The first line break may lie inside a quoted field, so the block is read twice: as
    if the text after it were outside quotes, and as if inside; the reading with fewer
    records of the wrong width wins (ties: outside), unless it has no record of the
    right width at all: in a file without quotes, reading "inside" makes the whole block
    one field, which must not beat a block with one short row. The first record of
    either reading may be a fragment and is dropped, as is a last record that may be cut
    off.
    """
    cuts = [i for i in (text.find("\n"), text.find("\r")) if i >= 0]
    if not cuts:
        return []
    begin = min(cuts) + 1
    if text[begin - 1 : begin + 1] == "\r\n":
        begin += 1
    end = len(text) if at_eof else max(text.rfind("\n"), text.rfind("\r")) + 1
    if end <= begin:
        return []
    best: tuple[tuple[bool, int, int], list[list[str]]] | None = None
    for prefix in ("", options["quotechar"]):
        out: list[list[str]] = []
        with contextlib.suppress(csv.Error):  # a quote opened near the end: keep the rest
            for record in csv.reader(io.StringIO(prefix + text[begin:end], newline=""), **options):
                out.append(record)
        out = out[1:] if at_eof else out[1:-1]
        good = sum(len(r) == width for r in out)
        score = (good == 0, len(out) - good, -good)
        if best is None or score < best[0]:
            best = (score, out)
    return best[1] if best else []


@dataclass
class FileGuess:
    """What ``csvpg infer`` found out about one file."""

    url: str
    name: str
    ref: FileRef
    details: dict[str, Any]
    headers: list[str]
    columns: list[ColumnGuess]
    primary_key: list[str]
    null_values: list[str]
    sample: Sample
    evidence: list[str] = field(default_factory=list)


def _absolute(url_or_path: str) -> str:
    protocol, path = fsspec.core.split_protocol(str(url_or_path))
    if protocol in (None, "file", "local"):
        return str(Path(path).expanduser().resolve())
    return str(url_or_path)


class _Keys:
    """Pairs that may be a key when no one column is: an id-like column and another."""

    def __init__(self, names: list[str], headers: list[str], cap: int, pairs: int) -> None:
        ids = [i for i, (n, h) in enumerate(zip(names, headers, strict=True)) if is_id_like(n, h)]
        rank = [j for j, n in enumerate(names) if any(p in n for p in _PERIOD)]
        rank += [j for j in range(len(names)) if j not in rank]
        self.seen: dict[tuple[int, int], set[int]] = {
            key: set() for key in [(i, j) for i in ids for j in rank if j != i][:pairs]
        }
        self.repeats: set[tuple[int, int]] = set()
        self.capped: set[tuple[int, int]] = set()
        self.cap = cap

    def feed(self, batch: Batch) -> None:
        for (i, j), values in self.seen.items():
            if (i, j) in self.repeats or (i, j) in self.capped:
                continue
            before = len(values)
            values.update(hash((row[i], row[j])) for row in batch)
            if len(values) - before < len(batch):
                self.repeats.add((i, j))
                values.clear()
            elif len(values) >= self.cap:
                self.capped.add((i, j))

    def unique(self) -> list[tuple[int, int]]:
        return [key for key in self.seen if key not in self.repeats]


@dataclass(frozen=True)
class _Asked:
    """How ``infer_file`` was asked to sample and decide (see its arguments)."""

    pm: pluggy.PluginManager
    sample_rows: int
    full_scan: bool
    null_values: tuple[str, ...]
    tolerate: bool
    use_cache: bool


def infer_file(
    url_or_path: str,
    *,
    sample_rows: int = 10_000,
    full_scan: bool = False,
    pm: pluggy.PluginManager | None = None,
    null_values: tuple[str, ...] | list[str] = DEFAULT_NULLS,
    tolerate: bool = True,
    use_cache: bool = True,
) -> FileGuess:
    """Sample a file and guess its format details, column types and primary key.

    ``tolerate``: a column keeps its type despite a few misfits (they become rejects);
    ``False`` makes any column with one misfit text. ``use_cache=False`` (``csvpg infer
    --no-cache``) tells ``infer_column_types`` plugins to ask afresh rather than reuse a
    stored answer."""
    if sample_rows <= 0:
        raise SpecError(
            f"--sample-rows must be 1 or more, not {sample_rows}",
            hint="e.g. --sample-rows 10000, or --full-scan to read every row",
        )
    url = _absolute(url_or_path)
    asked = _Asked(
        pm or get_plugin_manager(), sample_rows, full_scan, tuple(null_values), tolerate, use_cache
    )
    registry = Registry(asked.pm)
    protocol = fsspec.core.split_protocol(url)[0] or "file"
    found = registry.sources.get(protocol) or registry.sources.get("*")
    if found is None:
        raise SourceError(f"no installed source reads {protocol}://", file=url)
    source = found.cls(url=url, options={})
    try:
        return _infer_one(url, source, registry, asked)
    finally:
        source.close()


def _infer_one(url: str, source: Source, registry: Registry, asked: _Asked) -> FileGuess:
    refs = source.list(None)
    if len(refs) != 1:
        raise SourceError(
            f"{url} names {len(refs)} files; csvpg infer reads exactly one",
            file=url,
            hint="give the path or URL of one file",
        )
    ref = refs[0]
    kind = sniff(registry, source, ref)
    if kind != "csv" and kind in registry.formats:
        return _typed(url, ref, kind, registry.formats[kind].cls(), source)
    cls = registry.formats["csv"].cls
    fmt, sniffed = cls(), None
    for _ in range(2):
        stream = source.open(ref)
        try:
            reader = fmt.open(stream, ref)
            try:
                sniffed = sniffed or reader.details.get("sniffed")
                settings = _sniffed_settings(sniffed)
                if any(fmt.settings.get(k) != v for k, v in settings.items()):
                    fmt = cls(**settings)  # a preamble or no header: read it again so
                    continue
                guess = _infer(url, ref, stream, reader, asked)
                guess.evidence[:0] = (sniffed or {}).get("evidence", [])
                return guess
            finally:
                reader.close()
        finally:
            stream.close()
    raise AssertionError("unreachable: the second reading takes the sniffed settings")


def _sniffed_settings(sniffed: dict[str, Any] | None) -> dict[str, Any]:
    """The format settings detection found beyond the defaults: skip_rows, header."""
    if not sniffed:
        return {}
    out: dict[str, Any] = {}
    if sniffed["skip_rows"]:
        out["skip_rows"] = sniffed["skip_rows"]
    if not sniffed["header"]:
        out["header"] = False
    return out


def _typed(url: str, ref: FileRef, kind: str, fmt: Any, source: Source) -> FileGuess:
    """A format that carries its column types (Parquet, Arrow): read, not guessed."""
    stream = source.open(ref)
    try:
        reader = fmt.open(stream, ref)
        try:
            headers, types, details = list(reader.headers), dict(reader.types), reader.details
        finally:
            reader.close()
    finally:
        stream.close()
    names = safe_names(headers)
    columns = [
        ColumnGuess(
            name, types.get(h, "text"), header=h, source=kind, evidence=[f"the {kind} type"]
        )
        for name, h in zip(names, headers, strict=True)
    ]
    return FileGuess(
        url=url,
        name=table_name(ref.name, "{name}"),
        ref=ref,
        details={**details, "format": kind},
        headers=headers,
        columns=columns,
        primary_key=[],
        null_values=[""],
        sample=Sample(method="the file's schema"),
        evidence=[
            f"a {kind} file keeps its column types: none were guessed, and no primary key "
            '(add one, with mode = "upsert", if the rows have a key)'
        ],
    )


def _infer(url: str, ref: FileRef, stream: BinaryIO, reader: Reader, asked: _Asked) -> FileGuess:
    sample_rows, full_scan = asked.sample_rows, asked.full_scan
    headers = list(reader.headers)
    names = safe_names(headers)
    details = dict(reader.details)
    sample = Sample(size=ref.size)
    if hasattr(reader, "skip_undecodable"):
        reader.skip_undecodable = True  # a bad byte is that row's problem, not the sample's
    cap = KEY_CAP if full_scan else max(KEY_CAP, sample_rows)
    make = _profile_maker(details, asked.null_values, cap, full_scan)
    profiles = [make(n, h) for n, h in zip(names, headers, strict=True)]
    keys = _Keys(names, headers, cap, FULL_SCAN_PAIRS if full_scan else 8)
    batches = draw_sample(
        stream,
        reader,
        sample,
        rows=sample_rows,
        full_scan=full_scan,
        seekable=can_seek(stream, ref),
    )
    kept = _feed(batches, profiles, keys, sample_rows)
    guesses = [p.guess() for p in profiles]
    evidence: list[str] = list(details.get("doubts", []))
    if asked.tolerate:
        _tolerate_misfits(guesses, profiles, kept, make)
    _proposals(
        asked.pm,
        names,
        headers,
        kept,
        profiles,
        guesses,
        evidence,
        details,
        use_cache=asked.use_cache,
    )
    markers = _null_markers(guesses)
    key, upto = _primary_key(names, guesses, keys)
    evidence += _sample_evidence(reader, sample, details, key, upto)
    return FileGuess(
        url=url,
        name=table_name(ref.name, "{name}"),
        ref=ref,
        details=details,
        headers=headers,
        columns=guesses,
        primary_key=key,
        null_values=["", *markers] if markers else [""],
        sample=sample,
        evidence=evidence,
    )


def can_seek(stream: BinaryIO, ref: FileRef) -> bool:
    """Whether the sample may be spread by byte offsets over the file."""
    try:
        seekable = bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        seekable = False
    if fsspec.utils.infer_compression(ref.name):
        seekable = False  # a compressed stream seeks by decompressing everything before
    return seekable


def _profile_maker(
    details: dict[str, Any], null_values: tuple[str, ...], cap: int, full_scan: bool
) -> Callable[[str, str], Profile]:
    """A fresh :class:`Profile` for a column (name, header), as the file's dialect wants."""

    def make(n: str, h: str) -> Profile:
        return Profile(
            n,
            h,
            null_values=null_values,
            prefer_decimal_comma=details["delimiter"] == ";",
            decimal_comma=details["delimiter"] != ",",
            distinct_cap=cap if is_id_like(n, h) or not full_scan else 100_000,
        )

    return make


def _feed(
    batches: Iterator[Batch], profiles: list[Profile], keys: _Keys, sample_rows: int
) -> Batch:
    """Every sampled row into the column profiles and the key candidates; returns the
    first ``sample_rows`` rows (the ones proposals and misfits are checked on)."""
    kept: Batch = []
    for batch in batches:
        for profile, values in zip(profiles, zip(*batch, strict=True), strict=True):
            profile.feed(values)
        keys.feed(batch)
        kept.extend(batch[: max(0, sample_rows - len(kept))])
    return kept


def _tolerate_misfits(
    guesses: list[ColumnGuess],
    profiles: list[Profile],
    kept: Batch,
    make: Callable[[str, str], Profile],
) -> None:
    """A text column whose values all but a few fit a type takes that type."""
    for j, g in enumerate(guesses):
        if g.type == "text":
            column = [row[j] for row in kept]
            guesses[j] = _despite_misfits(profiles[j], column, make) or g


def _null_markers(guesses: list[ColumnGuess]) -> list[str]:
    """The null markers (``-``, ``n/a`` …) seen in typed columns: they become the job's
    ``null_values``; one seen only in text columns loads as text, which its column's
    evidence says."""
    typed = [g for g in guesses if g.type != "text"]
    markers = sorted({m for g in typed for m in g.markers if m})
    for g in guesses:
        unused = [m for m in g.markers if m and m not in markers]
        if unused:
            g.evidence.append(f"{', '.join(map(repr, unused))} load as text: no typed column")
    return markers


def _sample_evidence(
    reader: Reader, sample: Sample, details: dict[str, Any], key: list[str], upto: int | None
) -> list[str]:
    """What the sample says of the primary key, and of the rows it left out."""
    evidence: list[str] = []
    where = "the whole file" if sample.complete else f"the {sample.rows} sampled rows"
    if key:
        note = f" (repeats looked for among the first {upto} values only)" if upto else ""
        evidence.append(f"primary key {', '.join(key)}: unique and non-null in {where}{note}")
    else:
        evidence.append(f"no column named like an id is unique and non-null in {where}: append")
    if getattr(reader, "undecodable", 0):
        evidence.append(
            f"{reader.undecodable} sampled rows left out: bytes that do not decode "  # type: ignore[attr-defined]
            f"as {details['encoding']} (they will be rejects)"
        )
    if sample.dropped:
        evidence.append(f"{sample.dropped} rows dropped: their field count differs from the header")
    return evidence


#: A proposal made with less confidence than this is not taken, even when it fits.
MIN_CONFIDENCE = 0.5


#: A column keeps its type when the values that do not fit it are this few: at most
#: 0.1 % of the sampled values and at most 10 of them. They will be rejects, with their
#: line, instead of hiding in a text column; ``tolerate=False`` makes such a column text.
MISFIT_SHARE, MISFIT_MAX = 0.001, 10


def _despite_misfits(
    profile: Profile, values: list[str | None], make: Callable[[str, str], Profile]
) -> ColumnGuess | None:
    """The column's type without its few misfits (see :data:`MISFIT_SHARE`), or None."""
    present = [v for v in values if v is not None and v not in profile.null_values]
    limit = min(MISFIT_MAX, int(len(present) * MISFIT_SHARE))
    if not limit:
        return None
    for family in range(1, len(profile.families)):  # booleans die on any number
        misfits: list[str] = []
        while True:
            trial = make(profile.name, profile.header)
            trial.feed([v for v in present if v not in misfits])
            culprit = trial.families[family].culprit
            if trial.families[family].dead is None:
                guess = trial.guess()
                if guess.type == "text":
                    break
                n = sum(v in misfits for v in present)
                guess.evidence.insert(
                    1,
                    f"{n} value(s) would be rejected, few enough to keep the type: "
                    + ", ".join(map(repr, misfits)),
                )
                return guess
            if culprit is None or sum(v in (*misfits, culprit) for v in present) > limit:
                break
            misfits.append(culprit)
    return None


def _proposals(
    pm: pluggy.PluginManager,
    names: list[str],
    headers: list[str],
    rows: Batch,
    profiles: list[Profile],
    guesses: list[ColumnGuess],
    evidence: list[str],
    details: dict[str, Any],
    *,
    use_cache: bool = True,
) -> None:
    """Take a plugin's type proposals where every sampled value fits them."""
    notes: list[str] = []
    try:
        proposed = pm.hook.infer_column_types(
            headers=list(names),
            samples=rows,
            hints=_hints(details, headers, profiles, guesses),
            use_cache=use_cache,
            notes=notes,
        )
    except Exception as exc:  # a plugin's bug must not stop the heuristic
        proposed = None
        notes.append(f"the infer_column_types hook failed ({exc!r}); the heuristic decided")
    evidence.extend(str(n) for n in notes)
    if not proposed:
        return
    if not isinstance(proposed, dict):
        evidence.append(f"infer_column_types returned {type(proposed).__name__}, not a dict")
        return
    for key, proposal in proposed.items():
        where = names.index(key) if key in names else headers.index(key) if key in headers else -1
        pgtype, about = _proposal(proposal)
        if where < 0 or pgtype is None:
            why = "no such column" if where < 0 else "no type"
            evidence.append(f"ignored a plugin's proposal {key!r} = {proposal!r}: {why}")
            continue
        guess, checked = guesses[where], profiles[where].check(pgtype)
        said = f"{about.get('by') or 'a plugin'} proposed {pgtype!r}{_about(about)}"
        if about.get("nullable") is False and guess.nulls:
            said += f", not null, but {guess.nulls} sampled values are null"
        confidence = _confidence(about)
        unsure = confidence is not None and confidence < MIN_CONFIDENCE
        if isinstance(checked, dict) and unsure:
            checked = f"confidence {confidence:g} is below {MIN_CONFIDENCE:g}"
        if isinstance(checked, str):
            guess.evidence.append(f"{said}, not taken: {checked} (heuristic: {guess.type})")
            continue
        same = pgtype.strip() == guess.type
        also = "the heuristic agrees" if same else f"heuristic: {guess.type}"
        guess.evidence.insert(1, f"{said}, taken: it fits every value ({also})")
        guess.type, guess.conversions, guess.source = pgtype.strip(), checked, "plugin"


def _proposal(proposal: Any) -> tuple[str | None, dict[str, Any]]:
    """A proposal's type and what came with it (confidence, reasoning, nullable, by)."""
    if isinstance(proposal, str):
        return proposal, {}
    if isinstance(proposal, dict) and isinstance(proposal.get("type"), str):
        return proposal["type"], proposal
    return None, {}


def _confidence(about: dict[str, Any]) -> float | None:
    confidence = about.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, float | int):
        return None
    return float(confidence)


def _about(about: dict[str, Any]) -> str:
    """`` (confidence 0.9: "why")`` from a proposal's confidence and reasoning."""
    confidence, reasoning = _confidence(about), about.get("reasoning")
    parts = []
    if confidence is not None:
        parts.append(f"confidence {confidence:g}")
    if isinstance(reasoning, str) and reasoning.strip():
        parts.append(repr(" ".join(reasoning.split())[:200]))
    return f" ({': '.join(parts)})" if parts else ""


def _hints(
    details: dict[str, Any], headers: list[str], profiles: list[Profile], guesses: list[ColumnGuess]
) -> dict[str, Any]:
    """What csvpg knows about the file, for a plugin's prompt: the dialect, locale hints."""
    formats = [str(g.conversions["format"]) for g in guesses if g.conversions.get("format")]
    dated = any(g.type in ("date", "timestamp", "timestamptz") for g in guesses)
    order = None
    if formats:
        marks = [(formats[0].find(m), m[0]) for m in ("DD", "MM", "YY")]
        order = "".join(m for at, m in sorted(marks) if at >= 0) or None
    elif dated:
        order = "YMD"  # ISO 8601: no format needed
    return {
        "headers_as_written": list(headers),
        "encoding": details.get("encoding"),
        "delimiter": details.get("delimiter"),
        "quote": details.get("quote"),
        "null_values": sorted(profiles[0].null_values) if profiles else [""],
        "decimal_comma": any(g.conversions.get("decimal") == "," for g in guesses),
        "date_order": order,
        "heuristic": {g.name: g.type for g in guesses},
    }


def _primary_key(
    names: list[str], guesses: list[ColumnGuess], keys: _Keys
) -> tuple[list[str], int | None]:
    """The suggested key and, when repeats were looked for only so far, how far."""
    ok = [g.values > 0 and g.nulls == 0 and g.type not in _NO_KEY_TYPES for g in guesses]
    singles = [
        i for i, g in enumerate(guesses) if ok[i] and g.unique and is_id_like(g.name, g.header)
    ]
    if singles:
        best = min(singles, key=lambda i: (names[i] != "id", not names[i].endswith("id"), i))
        return [names[best]], guesses[best].unique_upto
    pairs = [
        k
        for k in keys.unique()
        if ok[k[0]] and ok[k[1]] and not guesses[k[1]].type.startswith("numeric(")
    ]
    if not pairs:
        return [], None
    return [names[i] for i in pairs[0]], keys.cap if pairs[0] in keys.capped else None


def source_url(url: str, job_dir: Path | None) -> str:
    """The job's source url: a local file relative to the job file's folder (the job
    stays right when the folder moves), anything else as it is."""
    protocol, path = fsspec.core.split_protocol(url)
    if job_dir is None or protocol not in (None, "file", "local"):
        return url
    return Path(os.path.relpath(path, Path(job_dir).resolve())).as_posix()


def job_for(guess: FileGuess, job_dir: Path | None = None) -> dict[str, Any]:
    """A complete job for the file: run it as it is, or edit it first. With ``job_dir``
    (where the job file goes), a local source is written relative to it."""
    details = guess.details
    url = source_url(guess.url, job_dir)
    if details.get("format", "csv") != "csv":
        return {
            "job": {"name": guess.name},
            "source": {"url": url},
            "format": {"type": details["format"]},
            "columns": {c.name: c.spec for c in guess.columns},
            "sink": {"mode": "append"},
        }
    fmt: dict[str, Any] = {
        "type": "csv",
        "encoding": _FRIENDLY.get(details["encoding"], details["encoding"]),
        "delimiter": details["delimiter"],
    }
    if details["quote"] != '"':
        fmt["quote"] = details["quote"]
    if details["escape"] != details["quote"]:
        fmt["escape"] = details["escape"]
    if details.get("skip_rows"):
        fmt["skip_rows"] = details["skip_rows"]
    if not details.get("header", True):
        fmt["header"] = False
    if guess.null_values != [""]:
        fmt["null_values"] = list(guess.null_values)
    sink: dict[str, Any] = {"mode": "upsert" if guess.primary_key else "append"}
    if guess.primary_key:
        sink["primary_key"] = list(guess.primary_key)
    return {
        "job": {"name": guess.name},
        "source": {"url": url},
        "format": fmt,
        "columns": {c.name: c.spec for c in guess.columns},
        "sink": sink,
    }


def _literal(value: Any) -> str:
    """One TOML value on one line: inline tables and arrays stay inline."""
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_literal(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return tomli_w.dumps({"x": value})[len("x = ") :].rstrip("\n")


def _key(key: str) -> str:
    return tomli_w.dumps({key: 0}).rstrip("\n").rpartition(" = ")[0]


def to_toml(job: dict[str, Any], *, comment: str = "") -> str:
    """The job as TOML: tomli-w writes every value; tables and arrays stay on one line."""
    parts = ["".join(f"# {line}\n" for line in comment.splitlines())] if comment else []
    for section, body in job.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            head = f"[[{section}]]" if isinstance(body, list) else f"[{section}]"
            lines = "".join(f"{_key(k)} = {_literal(v)}\n" for k, v in table.items())
            parts.append(f"{head}\n{lines}")
    return "\n".join(parts)


def summary(guess: FileGuess) -> str:
    """One line: what was read and how."""
    d = guess.details
    if d.get("format", "csv") != "csv":
        return f"{guess.ref.name}: {d['format']}, {len(guess.columns)} columns with their types"
    doubts = "".join(f"\n  uncertain: {doubt}" for doubt in d.get("doubts", []))
    return (
        f"{guess.ref.name}: {_FRIENDLY.get(d['encoding'], d['encoding'])}, "
        f"delimiter {d['delimiter']!r}; "
        f"{guess.sample.rows} rows sampled ({guess.sample.method}){doubts}"
    )


def explain(guess: FileGuess) -> str:
    """Every column's decision and its evidence, for ``csvpg infer --explain``."""
    lines = [summary(guess)]
    if guess.sample.estimated_rows and not guess.sample.complete:
        lines.append(f"  about {guess.sample.estimated_rows} rows in the file (estimated)")
    for c in guess.columns:
        header = f" (header {c.header!r})" if c.header != c.name else ""
        lines.append(f"  {c.name}{header} → {_literal(c.spec)}")
        lines.extend(f"      {e}" for e in c.evidence)
    lines.extend(f"  {e}" for e in guess.evidence)
    return "\n".join(lines) + "\n"
