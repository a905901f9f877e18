"""``csvpg.rejects``: every row a file could not load, with where and why."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg

from csvpg.errors import SpecError
from csvpg.interfaces import Reject

__all__ = ["Reject", "write_rejects"]

#: A reject keeps at most this much of its raw text.
RAW_LIMIT = 8192


def place(line: int | None, column: str | None) -> str:
    """Where a reject was, for people: ``line 5, column amount``. A row a transform
    made or dropped others around has no line; its values are in ``raw``."""
    where = f"line {line}" if line is not None else "a transformed row"
    return where + (f", column {column}" if column else "")


def write_rejects(
    conn: psycopg.Connection[Any], run_id: str, file: str, rejects: Iterable[Reject]
) -> None:
    columns = "run_id, file, line, column_name, value, reason, sqlstate, raw"
    with conn.cursor() as cur, cur.copy(f"COPY csvpg.rejects ({columns}) FROM STDIN") as copy:
        for r in rejects:
            raw = printable(r.raw[:RAW_LIMIT]) if r.raw is not None else None
            copy.write_row((run_id, file, r.line, r.column, r.value, r.reason, r.sqlstate, raw))


#: NUL, and the stand-ins for undecodable bytes: text PostgreSQL cannot store.
_UNSTORABLE = re.compile("[\x00\udc80-\udcff]")


def printable(raw: str) -> str:
    """A raw line as storable text: a NUL or an undecodable byte shows as ``\\xNN``."""
    return _UNSTORABLE.sub(lambda m: f"\\x{ord(m.group()) & 0xFF:02x}", raw)


_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*(?:up\s+to\s+(\d+)\s*)?", re.I)


def reject_limit(
    value: int | str, key: str = "sink.max_rejects"
) -> tuple[int | None, float | None]:
    """``1000`` → (1000, None); ``"2%"`` → (None, 0.02); ``"1% up to 1000"`` →
    (1000, 0.01), the smaller of the two. Checked when the job is read."""
    if isinstance(value, int):
        if value < 0:
            raise SpecError(f"'{key}' must be 0 or more", key=key)
        return value, None
    m = _PERCENT.fullmatch(value)
    if not m or float(m.group(1)) > 100:
        raise SpecError(
            f"'{key}' must be a count, a percentage such as \"2%\", or both as in "
            f'"1% up to 1000", not {value!r}',
            key=key,
        )
    return (int(m.group(2)) if m.group(2) else None), float(m.group(1)) / 100


def over_limit(rejected: int, read: int, limit: tuple[int | None, float | None]) -> bool:
    """More rejects than the limit allows; and a file whose every row was rejected is
    never loaded, whatever the limit says (it would "succeed" with nothing in it)."""
    if all_rejected(rejected, read):
        return True
    count, share = limit
    return (count is not None and rejected > count) or (
        share is not None and rejected > share * read
    )


def all_rejected(rejected: int, read: int) -> bool:
    """Rows were read, and none of them could be loaded."""
    return bool(read) and rejected >= read
