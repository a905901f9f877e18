"""Arrow types → PostgreSQL types, and Arrow columns → text PostgreSQL parses.

``pyarrow.csv.write_csv`` (C++) writes most Arrow types in a form PostgreSQL's input
functions read as they are: integers, floats (``nan``, ``inf``), decimals, booleans
(``true``/``false``), dates, times and timestamps (ISO 8601; zoned ones in UTC with a
``Z``). Nulls become empty unquoted fields (NULL to COPY) and every string is quoted, so
an empty string stays ``""``. The other types are turned into text here first, one
column at a time:

============================  ==============  ========================================
Arrow                         PostgreSQL      text
============================  ==============  ========================================
binary, fixed_size_binary …   ``bytea``       ``\\x`` and hex digits (vectorised)
list, struct, map, union …    ``jsonb``       JSON (per value, in Python)
duration                      ``interval``    ``<n> microseconds``
dictionary                    of its values   decoded
timestamp with a zone         ``timestamptz`` the same instant, in UTC
extension ``arrow.uuid``      ``uuid``        32 hex digits
============================  ==============  ========================================
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_T = pa.types

_INTS: dict[str, str] = {
    "int8": "smallint",
    "uint8": "smallint",
    "int16": "smallint",
    "uint16": "integer",
    "int32": "integer",
    "uint32": "bigint",
    "int64": "bigint",
    "uint64": "numeric(20,0)",
}

#: PostgreSQL's numeric takes up to 1000 digits of precision.
_PG_MAX_PRECISION = 1000


def _is(name: str) -> Callable[[pa.DataType], bool]:
    """A ``pyarrow.types`` predicate that older pyarrow versions may lack."""
    found: Callable[[pa.DataType], bool] = getattr(_T, name, lambda _t: False)
    return found


_is_binary_view = _is("is_binary_view")
_is_string_view = _is("is_string_view")
_is_list_view = _is("is_list_view")
_is_large_list_view = _is("is_large_list_view")


def is_nested(t: pa.DataType) -> bool:
    return bool(
        _T.is_list(t)
        or _T.is_large_list(t)
        or _T.is_fixed_size_list(t)
        or _is_list_view(t)
        or _is_large_list_view(t)
        or _T.is_struct(t)
        or _T.is_map(t)
        or _T.is_union(t)
    )


def is_binary(t: pa.DataType) -> bool:
    return bool(
        _T.is_binary(t) or _T.is_large_binary(t) or _T.is_fixed_size_binary(t) or _is_binary_view(t)
    )


def _extension(t: pa.DataType) -> str | None:
    return t.extension_name if isinstance(t, pa.BaseExtensionType) else None


def pg_type(t: pa.DataType) -> str:
    """The PostgreSQL type a column of Arrow type ``t`` is created with."""
    ext = _extension(t)
    if ext == "arrow.uuid":
        return "uuid"
    if ext == "arrow.json":
        return "jsonb"
    if ext is not None:
        return pg_type(t.storage_type)
    if _T.is_dictionary(t):
        return pg_type(t.value_type)
    if _T.is_boolean(t):
        return "boolean"
    if _T.is_integer(t):
        return _INTS[str(t)]
    if _T.is_float16(t) or _T.is_float32(t):
        return "real"
    if _T.is_float64(t):
        return "double precision"
    if _T.is_decimal(t):
        if 0 <= t.scale <= t.precision <= _PG_MAX_PRECISION:
            return f"numeric({t.precision},{t.scale})"
        return "numeric"
    if _T.is_date(t):
        return "date"
    if _T.is_time(t):
        return "time"
    if _T.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if _T.is_duration(t) or _T.is_interval(t):
        return "interval"
    if is_binary(t):
        return "bytea"
    if is_nested(t):
        return "jsonb"
    return "text"  # strings, null columns, anything new


# -- columns → text -------------------------------------------------------------------


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _hex(arr: pa.Array, prefix: str) -> pa.Array:
    """Each binary value as ``prefix`` and upper-case hex digits; nulls stay null.

    Vectorised: the data buffer is hex-encoded in one C call and the offsets doubled,
    so a bytea column costs about what a string column does."""
    arr = arr.cast(pa.large_binary())
    if len(arr) == 0:
        return pa.array([], pa.large_string())
    offsets = pa.Array.from_buffers(
        pa.int64(), len(arr) + 1, [None, arr.buffers()[1]], offset=arr.offset
    )
    first, last = offsets[0].as_py(), offsets[-1].as_py()
    data = arr.buffers()[2]
    digits = data.slice(first, last - first).hex() if data is not None else b""
    doubled = pc.multiply(pc.subtract(offsets, first), 2)
    text = pa.Array.from_buffers(
        pa.large_string(), len(arr), [None, doubled.buffers()[1], pa.py_buffer(digits)]
    )
    if prefix:
        text = pc.binary_join_element_wise(_large(prefix), text, _large(""))
    return pc.if_else(arr.is_valid(), text, pa.scalar(None, pa.large_string()))


def json_text(value: Any) -> str:
    """``value`` (as ``to_pylist`` gives it) as JSON text ``jsonb`` accepts.

    Decimals keep every digit; floats that JSON cannot hold (NaN, ±Infinity) become the
    strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; bytes become bytea hex text
    (``"\\\\x0aff"``); dates and times their ISO 8601 text."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return '"NaN"' if math.isnan(value) else '"Infinity"' if value > 0 else '"-Infinity"'
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return json.dumps("\\x" + bytes(value).hex())
    if isinstance(value, (datetime, date, time)):
        return json.dumps(value.isoformat())
    if isinstance(value, timedelta):
        return repr(value.total_seconds())
    return json.dumps(str(value), ensure_ascii=False)


def _json(arr: pa.Array) -> pa.Array:
    values = arr.to_pylist(maps_as_pydicts="lossy")
    return pa.array([None if v is None else json_text(v) for v in values], pa.large_string())


_UNITS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}


def _interval(arr: pa.Array) -> pa.Array:
    t = arr.type
    if _T.is_duration(t):
        count = arr.cast(pa.int64())
        unit = t.unit
        if unit == "ns":  # PostgreSQL keeps microseconds
            count, unit = pc.divide(count, 1000), "us"
        return pc.binary_join_element_wise(
            count.cast(pa.large_string()), _large(f" {_UNITS[unit]}"), _large("")
        )
    # month_day_nano_interval (and the older day_time / month intervals)
    out: list[str | None] = []
    for v in arr.to_pylist():
        if v is None:
            out.append(None)
        elif isinstance(v, int):  # month_interval
            out.append(f"{v} months")
        elif isinstance(v, tuple) and len(v) == 3:
            out.append(f"{v[0]} months {v[1]} days {v[2] // 1000} microseconds")
        else:  # day_time_interval
            out.append(f"{v[0]} days {v[1]} milliseconds")
    return pa.array(out, pa.large_string())


def writable(arr: pa.Array) -> pa.Array:
    """``arr`` in a type ``pyarrow.csv.write_csv`` writes the way PostgreSQL reads it."""
    t = arr.type
    ext = _extension(t)
    if ext is not None:
        storage = arr.storage
        return _hex(storage, "") if ext == "arrow.uuid" else writable(storage)
    if _T.is_dictionary(t):
        return writable(arr.dictionary_decode())
    if is_binary(t):
        return _hex(arr, "\\x")
    if is_nested(t):
        return _json(arr)
    if _T.is_duration(t) or _T.is_interval(t):
        return _interval(arr)
    if _T.is_timestamp(t) and t.tz and t.tz != "UTC":
        return arr.cast(pa.timestamp(t.unit, tz="UTC"))  # the same instants; no tz database
    if _is_string_view(t):
        return arr.cast(pa.large_string())
    if _T.is_float16(t):
        return arr.cast(pa.float32())
    return arr


def writable_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch ``write_csv`` can write: only the columns that need it are converted."""
    arrays = [writable(col) for col in batch.columns]
    if all(a is c for a, c in zip(arrays, batch.columns, strict=True)):
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))])


def text_columns(batch: pa.RecordBatch) -> list[list[str | None]]:
    """Each column of ``batch`` as Python text, exactly as the byte path writes it."""
    return [pc.cast(writable(col), pa.large_string()).to_pylist() for col in batch.columns]


def csv_line(fields: list[str | None]) -> str:
    """One row as a CSV line (no line end), for a reject's ``raw`` text."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if f is None else f for f in fields])
    return out.getvalue()
