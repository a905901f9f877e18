"""Is this a text file at all? A photo, a PDF or a spreadsheet in a folder of CSV files
would otherwise "load" as a table of one garbled column.

:func:`refuse_binary` looks at a file's first bytes, once, where the CSV format reads
its sample: a known signature (PNG, JPEG, PDF, ZIP, gzip, Excel …), or a sample with
NULs among many control bytes, is "not a CSV file". A stray NUL inside a value is not:
that is a bad row, for the rejects. UTF-16 and UTF-32 text is full of NULs and is text
(its BOM, the encoding the job names, or NULs on one side of each pair say so).
"""

from __future__ import annotations

from csvpg.errors import FormatError
from csvpg.interfaces import FileRef

#: (first bytes, what they are). A ZIP is the container of .xlsx, .docx, .odt … too.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "ZIP"),
    (b"PK\x05\x06", "ZIP"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "Excel 97-2003 (or another old Office file)"),
    (b"PAR1", "Parquet"),
    (b"ARROW1", "Arrow"),
    (b"SQLite format 3\x00", "SQLite"),
    (b"\x7fELF", "an executable (ELF)"),
)

#: Office formats that are ZIP files inside, by extension.
_ZIP_KINDS = {
    ".xlsx": "Excel (.xlsx)",
    ".xlsm": "Excel (.xlsm)",
    ".docx": "Word (.docx)",
    ".ods": "an OpenDocument spreadsheet (.ods)",
}
#: Bytes no text file has: control characters other than tab, LF, VT, FF, CR and ESC
#: (ANSI colours), and the byte that ends old DOS files.
_CONTROL = frozenset([*range(0x00, 0x09), *range(0x0E, 0x1A), *range(0x1C, 0x20)])
#: A sample with NULs, and more control bytes (NULs included) than this share, is
#: binary. Text never has NULs (PostgreSQL refuses them in any text), but a few stray
#: ones are bad rows, for the rejects, not a reason to call the file binary.
CONTROL_SHARE = 0.05
STRAY_NULS = 4
#: Bytes looked at: enough to tell, little enough to be quick on a 1 MiB sample.
_LOOK = 64 << 10

_HINTS = {
    "ZIP": "a .zip is read as an archive (its members are loaded) when its name ends in .zip; "
    "rename it, or set [source] pattern so that it is not taken",
    "gzip": "a gzip file is decompressed when its name ends in .gz; rename it, or set "
    "[source] pattern so that it is not taken",
}
_HINT = 'set [source] pattern (e.g. pattern = "*.csv") so that only the data files are taken'


def binary_kind(sample: bytes, name: str = "", encoding: str = "auto") -> str | None:
    """What ``sample`` (a file's first bytes) is when it is not text, else ``None``."""
    for signature, kind in SIGNATURES:
        if sample.startswith(signature):
            if kind == "ZIP":
                lower = name.lower()
                kind = next((k for ext, k in _ZIP_KINDS.items() if lower.endswith(ext)), kind)
            return kind
    head = sample[:_LOOK]
    # Text without a NUL is neither wide nor binary: most files end here, unscanned.
    if b"\0" not in head or _wide(head, encoding):
        return None
    nuls = head.count(0)
    if nuls < STRAY_NULS:
        return None
    control = sum(1 for byte in head if byte in _CONTROL)
    return "binary data" if control > CONTROL_SHARE * len(head) else None


def _wide(head: bytes, encoding: str) -> bool:
    """UTF-16 or UTF-32 text: named so, with its BOM, or NULs on one side of each pair."""
    if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32")):
        return True
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        return True
    # Latin text in UTF-16 has a NUL in nearly every pair of bytes, on the same side;
    # in UTF-32, three in every four.
    return _one_side(head, 2, 1) or _one_side(head, 4, 3)


def _one_side(head: bytes, width: int, nuls: int) -> bool:
    share = sorted(head[k::width].count(0) / max(len(head) // width, 1) for k in range(width))
    return all(s > 0.3 for s in share[-nuls:]) and all(s < 0.05 for s in share[:-nuls])


def refuse_binary(sample: bytes, ref: FileRef, encoding: str = "auto") -> None:
    """Raise :class:`FormatError` when ``sample`` is not text: "not a CSV file: looks
    like PNG"."""
    kind = binary_kind(sample, ref.name, encoding)
    if kind is None:
        return
    raise FormatError(
        f"{ref.url}: not a CSV file: looks like {kind}",
        file=ref.url,
        hint=_HINTS.get(kind, _HINT),
    )
