"""``csvpg.rejects``: every row a file could not load, with where and why."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import psycopg

from csvpg.errors import SinkError, SpecError
from csvpg.interfaces import Reject

__all__ = ["Reject", "write_rejects"]

#: A reject keeps at most this much of its raw text (1 Mi characters): a record longer
#: than that is exported cut.
RAW_LIMIT = 1 << 20


def place(line: int | None, column: str | None) -> str:
    """Where a reject was, for people: ``line 5, column amount``. A row a transform
    made or dropped others around has no line; its values are in ``raw``."""
    where = f"line {line}" if line is not None else "a transformed row"
    return where + (f", column {column}" if column else "")


def write_rejects(
    conn: psycopg.Connection[Any], run_id: str, file: str, rejects: Iterable[Reject]
) -> None:
    columns = (
        "run_id, file, line, column_name, value, reason, sqlstate, raw, byte_offset, byte_length"
    )
    with conn.cursor() as cur, cur.copy(f"COPY csvpg.rejects ({columns}) FROM STDIN") as copy:
        for r in rejects:
            raw = printable(r.raw[:RAW_LIMIT]) if r.raw is not None else None
            row = (run_id, file, r.line, r.column, r.value, r.reason, r.sqlstate, raw)
            copy.write_row((*row, r.offset, r.length))


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


# -- replaying fixed rejects (csvpg rejects RUN --replay) ---------------------------


def reject_owners(
    conn: psycopg.Connection[Any], ids: list[int]
) -> dict[int, tuple[str, str, str | None]]:
    """Each known reject id → (its run, its file, the replay run that resolved it)."""
    rows = conn.execute(
        "SELECT id, run_id, file, resolved_by FROM csvpg.rejects WHERE id = ANY(%s)", (ids,)
    ).fetchall()
    return {int(i): (run, file, by) for i, run, file, by in rows}


def resolve_replayed(
    conn: psycopg.Connection[Any],
    replay_run: str,
    of_run: str,
    file: str,
    lines: dict[int, int],
    texts: dict[int, str],
    rejects: list[Reject],
) -> None:
    """A replay's outcome, in its file's transaction: the rejects whose fixed rows
    loaded are resolved by ``replay_run``; those whose rows failed again keep their
    place and take the new reason, and as ``raw`` the fixed record (``texts``: reject
    id → its row in the source file's dialect); a reject the replay made that
    is no row of the fixed file (a transform's own row) is the replay run's."""
    again = {lines[r.line]: r for r in rejects if r.line is not None and r.line in lines}
    other = [r for r in rejects if r.line is None or r.line not in lines]
    # Two replays of one export at once: the second waits here for the first, finds
    # its rejects resolved, and rolls its rows back (they are in the table already).
    taken = conn.execute(
        "SELECT id, resolved_by FROM csvpg.rejects WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        (list(lines.values()),),
    ).fetchall()
    done = [f"R{i}" for i, by in taken if by is not None and by != replay_run]
    if done:
        raise SinkError(
            f"{file}: {', '.join(done[:5])} resolved by another replay meanwhile: this one "
            "is rolled back, so no row loads twice",
            file=file,
            hint="export the rejects still open and replay those",
        )
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE csvpg.rejects SET reason = %s, column_name = %s, value = %s,"
            " sqlstate = %s, raw = %s, byte_offset = NULL, byte_length = NULL,"
            " replayed_by = %s WHERE id = %s AND run_id = %s",
            [
                (
                    r.reason,
                    r.column,
                    r.value,
                    r.sqlstate,
                    printable(texts.get(reject_id, r.raw or "")[:RAW_LIMIT]),
                    replay_run,
                    reject_id,
                    of_run,
                )
                for reject_id, r in again.items()
            ],
        )
        loaded = [i for i in lines.values() if i not in again]
        cur.execute(
            "UPDATE csvpg.rejects SET resolved_by = %s, resolved_at = now()"
            " WHERE id = ANY(%s) AND run_id = %s AND file = %s AND resolved_by IS NULL",
            (replay_run, loaded, of_run, file),
        )
    if other:
        write_rejects(conn, replay_run, file, other)
