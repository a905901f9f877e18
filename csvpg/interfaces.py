"""The small contracts between the stages: Source → Format → Transforms → Sink.

Hooks pick plugins; the data itself flows through the iterators defined here, in the
order the job gives, never through pluggy one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

if TYPE_CHECKING:
    import psycopg

    from csvpg.options import Option

#: A batch of rows on the row path: each row a list of values, ``None`` for SQL NULL.
Batch = list[list[str | None]]


class NumberedBatch(list[list[str | None]]):
    """A batch that knows the physical line each of its rows starts on, so a row
    PostgreSQL refuses is reported with its line (see :func:`batch_lines`)."""

    def __init__(self, rows: Iterable[list[str | None]], lines: list[int]) -> None:
        super().__init__(rows)
        self.lines = lines


def wrong_width(n: int, width: int) -> str:
    """Why a record of ``n`` fields is a reject, when the header has ``width``."""
    return f"{n} field{'s' if n != 1 else ''} where the header has {width}"


def batch_lines(batch: Batch) -> list[int] | None:
    """The line of each row of ``batch``, when it carries them."""
    lines = getattr(batch, "lines", None)
    return lines if lines is not None and len(lines) == len(batch) else None


@dataclass(frozen=True)
class FileRef:
    """One file a source found. ``url`` never carries a password."""

    url: str
    name: str
    size: int | None = None
    mtime: float | None = None


@dataclass(frozen=True)
class Column:
    """A column on its way to the table: ``index`` in the file, ``header`` as written
    there, ``name`` as it will be in PostgreSQL."""

    index: int
    header: str
    name: str


@dataclass(frozen=True)
class CsvDialect:
    """How the bytes handed to COPY are written (PostgreSQL's ``FORMAT csv`` options)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    #: PostgreSQL's name for the bytes' encoding (``UTF8``, ``LATIN1`` …).
    encoding: str = "UTF8"
    #: True when the first record of the byte stream is a header COPY must skip.
    header: bool = True
    #: Field values that mean NULL. PostgreSQL's CSV reads an unquoted empty field as
    #: NULL; other markers are mapped in SQL, after COPY.
    nulls: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class Reject:
    """A row that did not load: where (``line``, ``column``, ``value``) and why."""

    line: int | None
    reason: str
    raw: str | None = None
    column: str | None = None
    value: str | None = None
    sqlstate: str | None = None
    #: Where the record's bytes are in the (decompressed) file, and how many: set when
    #: ``raw`` is the record as the file has it (see :meth:`Reader.originals`).
    offset: int | None = None
    length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
            "sqlstate": self.sqlstate,
        }


@dataclass(frozen=True)
class Record:
    """One record on the careful path: where it starts, its raw text, its fields — or,
    when it cannot be parsed, ``fields`` is ``None`` and ``problem`` says why."""

    line: int
    raw: str
    fields: list[str | None] | None
    problem: str | None = None
    #: The header of the field the problem is in, when one field holds it.
    column: str | None = None
    #: Where ``raw``'s bytes start in the (decompressed) file, and how many they are.
    offset: int | None = None
    length: int | None = None


@dataclass(frozen=True)
class Original:
    """One record as the file has it: its text (decoded, line ends kept) and where its
    bytes are (see :meth:`Reader.originals`)."""

    text: str
    offset: int
    length: int


@dataclass(frozen=True)
class ColumnType:
    """A target column's type and the conversions that turn the file's text into it."""

    type: str = "text"
    #: "1.234,56": ``decimal = ","``, ``thousands = "."``.
    decimal: str | None = None
    thousands: str | None = None
    #: A ``to_date`` / ``to_timestamp`` template, e.g. ``DD.MM.YYYY``.
    format: str | None = None
    true: tuple[str, ...] = ()
    false: tuple[str, ...] = ()
    #: Take ``now``, ``today``, ``yesterday`` … as PostgreSQL does (on the day of the load).
    allow_relative: bool = False

    @property
    def converts(self) -> bool:
        return bool(self.decimal or self.thousands or self.format or self.true or self.false)


@dataclass(frozen=True)
class Relation:
    """The columns of one file as the transforms have shaped them so far."""

    file_columns: tuple[Column, ...]
    columns: tuple[Column, ...]

    def with_columns(self, columns: list[Column] | tuple[Column, ...]) -> Relation:
        return replace(self, columns=tuple(columns))

    @property
    def is_identity(self) -> bool:
        """All file columns, in file order (names may differ): COPY can take the file."""
        return [c.index for c in self.columns] == [c.index for c in self.file_columns]


class Source:
    """Lists and opens files. Registered by URL scheme (``file``, ``sftp`` …)."""

    schemes: ClassVar[tuple[str, ...]] = ()
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.settings = options

    def list(self, pattern: str | None) -> list[FileRef]:
        raise NotImplementedError

    def open(self, ref: FileRef) -> BinaryIO:
        raise NotImplementedError

    #: The source can delete and move its files (``[source] after_load``); a source
    #: that says so implements :meth:`remove` and :meth:`move`.
    can_remove: ClassVar[bool] = False

    def remove(self, ref: FileRef) -> None:
        """Delete a loaded file (``after_load = "delete"``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete files")

    def move(self, ref: FileRef, to: str) -> str:
        """Move a loaded file into the folder ``to`` (``after_load = "move"``): a path
        relative to the file's folder, an absolute path, or a URL of the same source.
        The folder is made when missing; a name already there gets ``-1``, ``-2`` …
        before its extension. Returns the file's new URL."""
        raise NotImplementedError(f"{type(self).__name__} cannot move files")

    def close(self) -> None:
        """Release what the source holds (an SSH connection, an HTTP session): called
        once the run is done with it, so a long-lived process (``csvpg serve``, the
        dashboard) does not keep one per run. The default holds nothing."""


class Reader:
    """One opened file, as a format understands it."""

    #: Header names as written in the file (or ``column_1`` … without a header).
    headers: list[str]
    #: What the format detected or was told, for the plan and the summary; each string
    #: under ``"warnings"`` is also sent as a ``Warned`` event for the file.
    details: dict[str, Any]

    #: The byte path: CSV bytes COPY can read with :attr:`dialect`, or ``None``.
    dialect: CsvDialect | None = None
    #: Header → PostgreSQL type, for formats that carry types (Parquet); a table csvpg
    #: creates uses them unless [columns] says otherwise. CSV knows none.
    types: dict[str, str] = {}
    #: The row path's reject channel, set by the engine before :meth:`iter_batches`
    #: when the file's rejects are kept: a record the format reads but cannot pass on as
    #: written (a quote whose meaning is ambiguous, say) goes here, with its line, column,
    #: reason and raw text, and not into a batch. ``None``: nobody keeps rejects (a
    #: sample for ``csvpg infer``); the format then passes such records on as it reads
    #: them.
    set_aside: Callable[[Reject], None] | None = None

    def iter_bytes(self) -> Iterator[bytes]:
        """Blocks of raw bytes for ``COPY … (FORMAT csv)``; only when ``dialect`` is set."""
        raise NotImplementedError

    def iter_bytes_again(self) -> Iterator[bytes]:
        """The blocks of :meth:`iter_bytes`, for a second reading of a file whose first
        one went through: the rejects' records of rows COPY skipped (PostgreSQL 17+). A
        format may leave out the checks the first reading made. The default reads as
        :meth:`iter_bytes` does."""
        return self.iter_bytes()

    def iter_batches(self) -> Iterator[Batch]:
        """Parsed rows, all file columns, in batches."""
        raise NotImplementedError

    def iter_records(self) -> Iterator[Record]:
        """The careful path: every data record with its line number and raw text, and
        the unparseable ones flagged, for a file the fast path could not load."""
        raise NotImplementedError

    def originals(self, lines: Collection[int]) -> dict[int, Original]:
        """The records starting on ``lines`` as the file has them (a fresh reader reads
        its data once, like :meth:`iter_records`), for rejects found by line: the
        format's own text, not the values re-joined. The default: none known."""
        return {}

    def close(self) -> None:
        """Release what the reader holds."""


class Format:
    """Turns a byte stream into headers plus bytes or rows. Registered by ``name``."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, Option]] = {}
    #: File name endings (``".csv"``) of files in this format: a folder read without
    #: ``[source] pattern`` gives only files with one (compressed or not).
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def open(self, stream: BinaryIO, ref: FileRef) -> Reader:
        raise NotImplementedError


class Transform:
    """A step between reading and loading. Registered by ``type``.

    Schema-level transforms (rename, select) only change :meth:`relation`; the engine
    then keeps the byte path. A transform that must see values sets ``needs_rows`` and
    implements :meth:`wrap`.
    """

    type: ClassVar[str] = ""
    needs_rows: ClassVar[bool] = False
    #: Set when :meth:`wrap` yields, for each batch it takes, one batch of the same rows
    #: in the same order (values changed or not): rows PostgreSQL refuses are then
    #: reported with their lines in the file, not only their values.
    one_to_one: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def relation(self, relation: Relation) -> Relation:
        return relation

    def wrap(self, batches: Iterator[Batch], relation: Relation) -> Iterator[Batch]:
        """Rows in (shaped as ``relation`` before this step), rows out."""
        return batches

    def report(self) -> dict[str, Any]:
        """What this step did to its file, asked after the file loaded (an instance
        serves one file): kept in the file's ``details["transforms"][type]``; each string
        under ``"warnings"`` is also sent as a ``Warned`` event for the file."""
        return {}


@dataclass
class LoadInput:
    """What a sink receives for one file."""

    ref: FileRef
    schema: str
    table: str
    relation: Relation
    #: Target column name → its type (and conversions), for every relation column.
    types: dict[str, ColumnType]
    primary_key: list[str]
    create: bool
    #: Set on the byte path, else ``None``: then :attr:`batches` carries the rows,
    #: shaped like ``relation.columns``.
    dialect: CsvDialect | None
    chunks: Iterator[bytes] | None = None
    batches: Iterator[Batch] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``csvpg run --dry-run``: the transaction rolls back, so a sink with effects
    #: outside PostgreSQL (a webhook, a file) must not have them.
    dry_run: bool = False
    #: The job file's folder: relative paths in [sink.options] start here.
    base_dir: Path | None = None
    #: The run this load belongs to (for what a sink shares over the run: its rate).
    run_id: str | None = None
    #: The target schema is there already. CREATE SCHEMA needs a privilege on the
    #: database that many loading users lack, so :func:`csvpg.table_ddl` asks for it
    #: only when the schema is missing.
    schema_exists: bool = True

    def rows(self) -> Iterator[list[str | None]]:
        """The row path's rows one by one, each checked to have a value per column."""
        from csvpg.errors import SinkError

        assert self.batches is not None, "rows() is for the row path (dialect is None)"
        width = len(self.relation.columns)
        for batch in self.batches:
            for row in batch:
                if len(row) != width:
                    raise SinkError(
                        f"{self.ref.url}: a row has {len(row)} fields where {width} were expected",
                        file=self.ref.url,
                        hint="check the delimiter and quote in [format]",
                    )
                yield row


@dataclass
class LoadResult:
    """Counts a sink reports for one file: rows it took, inserted, updated and
    collapsed (duplicate keys within the file, of which the last one won), and
    unchanged (an upsert found the row already as the file has it: nothing written)."""

    rows: int
    inserted: int
    updated: int = 0
    collapsed: int = 0
    unchanged: int = 0
    #: Rows the sink set aside (a record sink's failed deliveries): written to
    #: ``csvpg.rejects`` and counted like the careful path's. ``rows`` counts them too:
    #: rows = inserted + updated + collapsed + unchanged + len(rejects).
    rejects: list[Reject] = field(default_factory=list)
    #: What the sink wants said about the file, merged into the file's ``details``.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Staged:
    """A file's rows in a session-local TEXT table: column ``names[file index]``, and
    ``__csvpg_row`` keeping file order (the line number on the careful path)."""

    table: Any  # psycopg.sql.Identifier
    names: dict[int, str]
    rows: int
    #: The columns have the target's types already (``stage_file(typed=True)``): their
    #: values need no cast (see :func:`csvpg.staged_select`).
    typed: bool = False


class Sink:
    """Writes one file's rows into PostgreSQL inside the transaction the engine opened.
    Registered by ``mode``."""

    mode: ClassVar[str] = ""
    requires_primary_key: ClassVar[bool] = False
    #: ``[sink.options]`` the sink accepts (checked before anything runs).
    options: ClassVar[dict[str, Option]] = {}
    #: The sink wants parsed rows (``load.batches``) even when no transform does.
    needs_rows: ClassVar[bool] = False
    #: False for sinks that send records elsewhere (a webhook, a file): no table is
    #: checked or created; the file's transaction still carries history and manifest.
    writes_table: ClassVar[bool] = True

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def ddl(self, load: LoadInput, exists: bool) -> list[Any]:
        """Statements (``psycopg.sql.Composed``) run before loading; shown by ``check``."""
        return []

    def load(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadResult:
        raise NotImplementedError

    #: What the sink can do, which the engine builds on (see docs/plugins.md):
    #: it can take rows from a staging table (:meth:`load_staged`): bad rows are set
    #: aside as rejects instead of failing the file, and a large file it stages may
    #: load over several connections.
    takes_staged: ClassVar[bool] = False
    #: Its :meth:`load` stages every file (as ``upsert`` does): a large file splits
    #: into staging tables on several connections, then one :meth:`load_staged`.
    stages_every_file: ClassVar[bool] = False
    #: Its :meth:`load` stages a file COPY could put in the table as it is in the
    #: table's own types (as ``upsert`` does): such a file loads on one connection,
    #: which is faster than a split whose chunks stage TEXT for one INSERT to cast.
    stages_in_table_types: ClassVar[bool] = False
    #: Into a table it creates, its :meth:`load` is a plain COPY of the file's columns
    #: (as ``append`` and ``rebuild``): a large file may COPY into the new table in a
    #: scratch schema over several connections, moved into place at the commit.
    copies_into_new_table: ClassVar[bool] = False
    #: Its :meth:`load` is :meth:`before_copy`, then one COPY of the file's columns into
    #: the target (as ``append`` and ``rebuild``) when no value is converted in SQL: a
    #: file with bad rows loads again COPY by COPY, the bad rows set aside as it goes.
    copies_file: ClassVar[bool] = False

    def before_copy(self, cur: psycopg.Cursor[Any], load: LoadInput) -> None:
        """What the sink does to the target before new rows arrive (rebuild: empty it)."""

    def load_staged(
        self, conn: psycopg.Connection[Any], load: LoadInput, staged: Staged
    ) -> LoadResult:
        """Move checked rows from ``staged`` into the target (the careful path)."""
        raise NotImplementedError
