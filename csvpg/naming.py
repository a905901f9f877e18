"""Deterministic, safe PostgreSQL names for headers and file names.

A header becomes lower case with runs of anything but letters, digits and ``_``
folded to one ``_``; an empty one becomes ``column_<n>``; one that starts with a digit
gets ``c_`` in front; one longer than 63 bytes (PostgreSQL's limit) is cut and given a
short hash so that two long headers that share a prefix stay apart; duplicates get
``_2``, ``_3`` … in file order. The same headers always give the same names.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from csvpg.errors import SpecError
from csvpg.options import nearest

MAX_BYTES = 63

#: What a ``table`` template may name: the file name without its extensions.
PLACEHOLDERS = ("name",)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)


def _fit(name: str, original: str, limit: int = MAX_BYTES) -> str:
    """Cut ``name`` to ``limit`` UTF-8 bytes; when cut, end it with a hash of ``original``."""
    if len(name.encode()) <= limit:
        return name
    tag = "_" + hashlib.sha1(original.encode()).hexdigest()[:6]
    room = limit - len(tag)
    cut = name.encode()[:room].decode(errors="ignore").rstrip("_")
    return cut + tag


def safe_identifier(raw: str, position: int, *, lowercase: bool = True) -> str:
    """One header → one identifier (uniqueness is :func:`safe_names`' job)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if lowercase:
        text = text.lower()
    text = _NOT_WORD.sub("_", text).strip("_")
    if not text:
        return f"column_{position}"
    if text[0].isdigit():
        text = "c_" + text
    return _fit(text, raw)


def safe_names(headers: list[str], *, lowercase: bool = True) -> list[str]:
    """Headers → unique identifiers, each ≤ 63 bytes, in file order."""
    return list(_safe_names(tuple(headers), lowercase))


@functools.lru_cache(maxsize=256)  # the files of a run mostly share their headers
def _safe_names(headers: tuple[str, ...], lowercase: bool) -> tuple[str, ...]:
    out: list[str] = []
    taken: set[str] = set()
    bases = [safe_identifier(h, i, lowercase=lowercase) for i, h in enumerate(headers, start=1)]
    reserved = set(bases)
    for base in bases:
        name = base
        n = 2
        # A suffixed name must not take a name a later header will want as its own.
        while name in taken or (name != base and name in reserved):
            suffix = f"_{n}"
            name = _fit(base, base, MAX_BYTES - len(suffix)) + suffix
            n += 1
        taken.add(name)
        out.append(name)
    return tuple(out)


def table_name(
    file_name: str,
    template: str,
    *,
    strip_prefix: str = "",
    strip_suffix: str = "",
    lowercase: bool = True,
) -> str:
    """A file name → a table name: the stem, prefix/suffix removed, made safe, put in
    ``template`` (``"{name}"``, ``"stage_{name}"`` …)."""
    stem = PurePosixPath(file_name).name
    # "orders.csv.gz" → "orders": drop every extension that looks like one.
    while "." in stem and re.fullmatch(r"\.[A-Za-z0-9]{1,7}", PurePosixPath(stem).suffix):
        stem = PurePosixPath(stem).stem
    if strip_prefix and stem.startswith(strip_prefix):
        stem = stem[len(strip_prefix) :]
    if strip_suffix and stem.endswith(strip_suffix):
        stem = stem[: -len(strip_suffix)]
    if "{name}" not in template:
        return template  # an explicit table name is used as written
    return template.replace(
        "{name}", safe_identifier(stem, 1, lowercase=lowercase) if stem else "data"
    )


def check_template(template: str, key: str, file: str | None = None) -> None:
    """A ``table`` template names only known placeholders (``{name}``) and at most one
    schema: ``"sales.{name}"`` is table ``{name}`` in schema ``sales``."""
    for m in _PLACEHOLDER.finditer(template):
        if m.group(1) not in PLACEHOLDERS:
            guess = nearest(m.group(1), PLACEHOLDERS) or PLACEHOLDERS[0]
            raise SpecError(
                f"'{key}' = {template!r} names an unknown placeholder {{{m.group(1)}}}",
                key=key,
                file=file,
                hint=f"did you mean {{{guess}}}? {{name}} is the file name without its "
                "extensions; anything else is written as it is",
            )
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise SpecError(
            f"'{key}' = {template!r} has a brace that opens or closes no placeholder",
            key=key,
            file=file,
            hint='write placeholders as {name}, e.g. table = "stage_{name}"',
        )
    split_table(template, "public", key=key, file=file)


def split_table(
    name: str, schema: str, *, key: str = "sink.table", file: str | None = None
) -> tuple[str, str]:
    """``"orders"`` → (``schema``, "orders"); ``"sales.orders"`` → ("sales", "orders").
    More dots, or an empty part, could mean several tables: an error, never a table
    literally named ``a.b.c``."""
    parts = name.split(".")
    if len(parts) == 1 and name:
        return schema, name
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise SpecError(
        f'\'{key}\' = {name!r} is ambiguous: a table is written as "table" or "schema.table"',
        key=key,
        file=file,
        hint='one dot at most, between a schema and a table, e.g. table = "sales.orders"; '
        "a dot cannot be part of a table's own name",
    )


def matches(file_name: str, pattern: str) -> bool:
    """Glob match on the base name (case-sensitive, as file systems are)."""
    return fnmatchcase(PurePosixPath(file_name).name, pattern)
