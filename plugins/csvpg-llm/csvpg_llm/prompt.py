"""What csvpg-llm sends (the prompt, version :data:`PROMPT_VERSION`) and how it reads the answer.

The columns go out in chunks (:func:`chunks`), related ones together; each chunk's
message is a JSON object with the file's facts (dialect, locale hints) and, per
column, what a person would look at: the name, the header as written, a spread of
distinct sampled values, the share of nulls and the count of distinct values. The
answer is validated the same way whether the server kept to the JSON schema or not.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("csvpg.llm")

#: Bump when SYSTEM or the message's shape changes: cached answers then no longer match.
PROMPT_VERSION = 2

#: Longest sample value sent, in characters.
MAX_VALUE = 64
#: Distinct values remembered per column while picking the spread.
_DISTINCT_SEEN = 5_000

SYSTEM = (
    "You are a PostgreSQL schema assistant. You get some columns of one CSV file. For "
    "each column: its name, its header as written, a spread of distinct sampled values "
    "(nulls left out), the share of null values and the number of distinct values; and "
    "for the file: its delimiter, encoding, the markers read as null, whether decimals "
    "use a comma and the date order seen. For each column answer the narrowest "
    "PostgreSQL type that takes every sampled value as it is written: boolean, "
    "smallint, integer, bigint, numeric(p,s), double precision, date, time, timestamp, "
    "timestamptz, uuid, jsonb, inet, or text. Values with leading zeros (zip codes, "
    "phone numbers) are text; a decimal comma still makes a number. Say whether the "
    "column may hold nulls, how sure you are (confidence from 0 to 1) and why, in one "
    "short line. Answer with one JSON object only: "
    '{"columns": [{"name": "id", "type": "integer", "nullable": false, '
    '"confidence": 0.9, "reasoning": "whole numbers, all distinct"}]}'
)

# A type name as an answer may give it: words, an optional (p) or (p,s), time zone.
_TYPE = re.compile(r"[a-z][a-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?( with(out)? time zone)?(\[\])?")
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.S)
_REASONING = 200


class AnswerError(Exception):
    """The model's answer cannot be read (not JSON, the wrong shape)."""


def spread(values: Sequence[str], n: int) -> list[str]:
    """Up to ``n`` of ``values`` (distinct, in order seen), evenly spaced: the first, the
    last, those between, and the longest, so a person sees the range and not only the
    head."""
    if len(values) <= n:
        return list(values)
    if n == 1:
        return [values[0]]
    picked = [values[i * (len(values) - 1) // (n - 1)] for i in range(n)]
    longest = max(values, key=len)
    if longest not in picked:
        picked[-2 if n > 2 else 0] = longest
    return picked


def column_facts(
    names: Sequence[str],
    samples: Sequence[Sequence[str | None]],
    hints: dict[str, Any],
    per_column: int,
) -> list[dict[str, Any]]:
    """Per column, what the prompt carries about it."""
    nulls = set(hints.get("null_values") or [""])
    written = hints.get("headers_as_written") or []
    rows = len(samples)
    out = []
    for i, name in enumerate(names):
        seen: dict[str, None] = {}
        null = 0
        for row in samples:
            value = row[i] if i < len(row) else None
            if value is None or value in nulls:
                null += 1
            elif len(seen) < _DISTINCT_SEEN:
                seen.setdefault(value[:MAX_VALUE], None)
        facts: dict[str, Any] = {"name": name}
        header = written[i] if i < len(written) else name
        if header != name:
            facts["header"] = header
        facts["values"] = spread(list(seen), per_column)
        facts["null_share"] = round(null / rows, 3) if rows else 0.0
        facts["distinct"] = len(seen) if len(seen) < _DISTINCT_SEEN else f">={_DISTINCT_SEEN}"
        out.append(facts)
    return out


def file_facts(hints: dict[str, Any], rows: int) -> dict[str, Any]:
    keys = ("delimiter", "encoding", "null_values", "decimal_comma", "date_order")
    return {"rows_sampled": rows, **{k: hints[k] for k in keys if hints.get(k) is not None}}


def prefix(name: str) -> str:
    """The part of a safe name before its first ``_`` (``addr`` for ``addr_city``)."""
    head, sep, _ = name.partition("_")
    return head if sep and head else name


def chunks(names: Sequence[str], size: int) -> list[list[int]]:
    """Column indexes in chunks of at most ``size``; columns sharing a prefix
    (``addr_street``, ``addr_city``) stay together when they fit in one chunk."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(prefix(name), []).append(i)
    out: list[list[int]] = []
    current: list[int] = []
    for group in groups.values():
        if current and len(current) + len(group) > size:
            out.append(current)
            current = []
        while len(group) > size:
            out.append(group[:size])
            group = group[size:]
        current += group
    if current:
        out.append(current)
    return out


def messages(file: dict[str, Any], columns: list[dict[str, Any]]) -> list[dict[str, str]]:
    user = {"prompt_version": PROMPT_VERSION, "file": file, "columns": columns}
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
    ]


def schema(names: Sequence[str]) -> dict[str, Any]:
    """The answer's JSON schema, strict as OpenAI's structured outputs want it."""
    column = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": list(names)},
            "type": {"type": "string"},
            "nullable": {"type": "boolean"},
            "confidence": {"type": "number"},
            "reasoning": {"type": "string"},
        },
        "required": ["name", "type", "nullable", "confidence", "reasoning"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"columns": {"type": "array", "items": column}},
        "required": ["columns"],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Answer:
    """The model's word on one column, validated."""

    type: str
    nullable: bool | None = None
    confidence: float | None = None
    reasoning: str = ""

    def proposal(self, by: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "by": by}
        if self.nullable is not None:
            out["nullable"] = self.nullable
        if self.confidence is not None:
            out["confidence"] = self.confidence
        if self.reasoning:
            out["reasoning"] = self.reasoning
        return out

    def stored(self) -> dict[str, Any]:
        """As a cache file keeps it (:func:`stored` reads it back)."""
        out = self.proposal("")
        del out["by"]
        return out


def parse(content: Any, names: Sequence[str]) -> dict[str, Answer]:
    """The message content → an :class:`Answer` per column it validly names.

    Takes ``{"columns": [{"name", "type", …}]}`` (the schema), ``{"columns": {name:
    …}}``, ``{name: "type"}`` or ``{name: {"type", …}}``, fenced in ``````` or not;
    entries that name no column of the chunk or no readable type are left out.
    """
    if not isinstance(content, str):
        raise AnswerError("the message content is not text")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        answer = json.loads(text)
    except ValueError:
        raise AnswerError(
            f"the answer is not a JSON object ({len(content)} characters of text)"
        ) from None
    if isinstance(answer, dict) and isinstance(answer.get("columns"), dict | list):
        answer = answer["columns"]
    if isinstance(answer, list) and all(isinstance(a, dict) for a in answer):
        # A name that is not a string (a list, an object) names no column.
        answer = {a["name"]: a for a in answer if isinstance(a.get("name"), str)}
    if not isinstance(answer, dict):
        raise AnswerError(f"the answer is a JSON {type(answer).__name__}, not an object")
    wanted = set(names)
    out: dict[str, Answer] = {}
    for name, entry in answer.items():
        read = _entry(entry) if name in wanted else None
        if read is None:
            log.debug("csvpg-llm: ignored %r = %r (no such column, or no type)", name, entry)
            continue
        out[name] = read
    return out


def stored(data: Any, names: Sequence[str]) -> dict[str, Answer]:
    """Answers as :meth:`Answer.stored` wrote them (a cache file), validated again."""
    if not isinstance(data, dict):
        return {}
    return {n: a for n, e in data.items() if n in names and (a := _entry(e)) is not None}


def _entry(entry: Any) -> Answer | None:
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        return None
    typ = " ".join(entry["type"].lower().split())
    if not _TYPE.fullmatch(typ):
        return None
    nullable = entry.get("nullable")
    confidence = entry.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        confidence = None
    elif not 0 <= confidence <= 1:
        log.debug("csvpg-llm: ignored confidence %r (not between 0 and 1)", confidence)
        confidence = None
    reasoning = entry.get("reasoning")
    reasoning = " ".join(reasoning.split())[:_REASONING] if isinstance(reasoning, str) else ""
    return Answer(
        type=typ,
        nullable=nullable if isinstance(nullable, bool) else None,
        confidence=None if confidence is None else float(confidence),
        reasoning=reasoning,
    )
