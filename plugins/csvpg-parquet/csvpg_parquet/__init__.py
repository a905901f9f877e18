"""csvpg-parquet: Parquet and Arrow IPC (Feather v2) files as csvpg formats.

    [format]
    type = "parquet"          # or "arrow" / "feather", or "auto" (PAR1 / ARROW1 magic)
    preserve_types = true     # false: every column is created as text

Columns keep their Arrow types in tables csvpg creates (``Reader.types``), and rows
reach PostgreSQL through ``COPY … (FORMAT csv)`` with CSV that pyarrow writes per record
batch, so a Parquet file loads at about the speed of the same data as CSV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from csvpg import FileRef, Format, Option, SpecError, hookimpl

if TYPE_CHECKING:
    from csvpg_parquet.reader import ArrowReader

# pyarrow is imported only when a file of this format is opened: installing the plugin
# costs a CSV job nothing (pyarrow alone is ~50 MB of memory).
PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = b"ARROW1"

__version__ = "0.1.0"
__all__ = ["ArrowFormat", "FeatherFormat", "ParquetFormat"]


def _options(name: str) -> dict[str, Option]:
    return {
        "type": Option(str, name, help="the format's name"),
        "preserve_types": Option(
            bool, True, help="create tables with the file's column types; false: all text"
        ),
        "spool_dir": Option(
            str,
            None,
            help="where a stream that cannot seek is copied first (default: the temp folder)",
        ),
        "batch_rows": Option(int, 16_384, help="rows decoded at a time"),
    }


class ParquetFormat(Format):
    """Apache Parquet files, read row group by row group in batches."""

    name: ClassVar[str] = "parquet"
    kind: ClassVar[str] = "parquet"
    extensions: ClassVar[tuple[str, ...]] = (".parquet", ".parq")
    options: ClassVar[dict[str, Option]] = _options("parquet")

    def __init__(self, **settings: Any) -> None:
        merged = {k: o.default for k, o in self.options.items()} | settings
        rows = merged["batch_rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise SpecError(
                f"'format.batch_rows' must be a positive integer, not {rows!r}",
                key="format.batch_rows",
                hint="e.g. batch_rows = 16384",
            )
        super().__init__(**merged)

    def open(self, stream: BinaryIO, ref: FileRef) -> ArrowReader:
        from csvpg_parquet.reader import ArrowReader

        return ArrowReader(
            stream,
            ref,
            kind=self.kind,
            preserve_types=self.settings["preserve_types"],
            spool_dir=self.settings["spool_dir"],
            batch_rows=self.settings["batch_rows"],
        )


class ArrowFormat(ParquetFormat):
    """Arrow IPC files (Feather v2) and IPC streams, read record batch by record batch."""

    name: ClassVar[str] = "arrow"
    kind: ClassVar[str] = "arrow"
    extensions: ClassVar[tuple[str, ...]] = (".arrow", ".feather", ".ipc", ".arrows")
    options: ClassVar[dict[str, Option]] = _options("arrow")


class FeatherFormat(ArrowFormat):
    """``type = "feather"``: the same as ``"arrow"`` (Feather v2 is the Arrow IPC file)."""

    name: ClassVar[str] = "feather"
    options: ClassVar[dict[str, Option]] = _options("feather")


@hookimpl
def register_formats() -> list[type[Format]]:
    return [ParquetFormat, ArrowFormat, FeatherFormat]


@hookimpl
def sniff_format(ref: FileRef, sample: bytes) -> str | None:
    """``[format] type = "auto"``: Parquet starts with ``PAR1``, Arrow IPC files (Feather
    v2) with ``ARROW1``."""
    if sample.startswith(PARQUET_MAGIC):
        return "parquet"
    if sample.startswith(ARROW_MAGIC):
        return "feather" if ref.name.lower().endswith(".feather") else "arrow"
    return None
