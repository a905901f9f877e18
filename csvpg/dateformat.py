"""``format`` templates of date/time columns, checked before anything loads.

PostgreSQL's ``to_date``/``to_timestamp`` read a template leniently: letters that are
no pattern are skipped, so ``format = "garbage"`` stores ``0001-01-01 BC`` in every
row. Here a template is read the way PostgreSQL reads it (longest pattern first, in
the spellings it knows, ``FM``/``TM`` before and ``TH``/``SP`` after a pattern,
``"quoted"`` text literal), and letters that are no pattern are a spec error. The
values are checked when they load (:func:`csvpg.pg.load.convert_sql`): a value the
template does not fully read, or reads as another date, is a reject.
"""

from __future__ import annotations

import re

from csvpg.errors import SpecError
from csvpg.options import nearest

#: PostgreSQL's "Template Patterns for Date/Time Formatting", in the spellings its
#: parser matches (formatting.c: DCH_keywords), which are case-sensitive.
_UPPER = [
    "A.D.",
    "A.M.",
    "AD",
    "AM",
    "B.C.",
    "BC",
    "CC",
    "DAY",
    "DDD",
    "DD",
    "DY",
    "D",
    "FF1",
    "FF2",
    "FF3",
    "FF4",
    "FF5",
    "FF6",
    "FX",
    "HH24",
    "HH12",
    "HH",
    "IDDD",
    "ID",
    "IW",
    "IYYY",
    "IYY",
    "IY",
    "I",
    "J",
    "MI",
    "MM",
    "MONTH",
    "MON",
    "MS",
    "OF",
    "P.M.",
    "PM",
    "Q",
    "RM",
    "SSSSS",
    "SSSS",
    "SS",
    "TZH",
    "TZM",
    "TZ",
    "US",
    "WW",
    "W",
    "Y,YYY",
    "YYYY",
    "YYY",
    "YY",
    "Y",
]
PATTERNS = frozenset(_UPPER + [p.lower() for p in _UPPER] + ["Day", "Dy", "Month", "Mon"])
#: Longest first, as PostgreSQL tries them.
_BY_LENGTH = sorted(PATTERNS, key=len, reverse=True)
PREFIXES = ("FM", "fm", "TM", "tm")
SUFFIXES = ("TH", "th", "SP")
#: Patterns whose value depends on the session's time zone: a template with one is not
#: checked by writing the value back (the offset written back is the session's).
ZONE_PATTERNS = frozenset({"TZH", "TZM", "TZ", "OF", "tzh", "tzm", "tz", "of"})
#: Fractions of a second: ".5" is read as 500 ms, and written back as ".500".
FRACTION_PATTERNS = frozenset(
    {"MS", "US", "ms", "us", *(f"{ff}{n}" for ff in ("FF", "ff") for n in range(1, 7))}
)


def patterns(template: str) -> list[str]:
    """The patterns of ``template`` in order; a ``SpecError``-ready ``ValueError`` names
    the first run of letters that is no pattern."""
    found: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == '"':
            end = _closing_quote(template, i + 1)
            if end < 0:
                raise ValueError("a double quote opens literal text that is never closed")
            i = end + 1
            continue
        if c == "\\":
            i += 2
            continue
        while template.startswith(PREFIXES, i):
            i += 2
        word = next((p for p in _BY_LENGTH if template.startswith(p, i)), None)
        if word is not None:
            found.append(word)
            i += len(word)
            if template.startswith(SUFFIXES, i):
                i += 2
        elif template[i : i + 1].isalpha():
            m = re.match(r"[^\W\d_]+", template[i:])
            letters = m.group(0) if m else template[i]
            raise ValueError(f"{letters!r} is no date/time pattern")
        else:
            i += 1  # a separator: PostgreSQL skips it in the value
    return found


def _closing_quote(template: str, i: int) -> int:
    while i < len(template):
        if template[i] == "\\":
            i += 2
            continue
        if template[i] == '"':
            return i
        i += 1
    return -1


def check_date_format(template: str, key: str, file: str | None = None) -> None:
    """A spec error for a template PostgreSQL would read leniently (or not at all)."""
    try:
        found = patterns(template)
        if not found:
            raise ValueError("it holds no date/time pattern")
    except ValueError as exc:
        word = str(exc).split("'")[1] if "'" in str(exc) else ""
        guess = nearest(word.upper(), _UPPER) if word else None
        raise SpecError(
            f"'{key}' = {template!r} is not a date/time template: {exc}",
            key=key,
            file=file,
            hint=(f"did you mean {guess}? " if guess else "")
            + "patterns are PostgreSQL's, e.g. DD.MM.YYYY, YYYY-MM-DD HH24:MI:SS, DD Mon YYYY; "
            'put literal text in double quotes, e.g. YYYY-MM-DD"T"HH24:MI',
        ) from None


def writes_back(template: str) -> bool:
    """Whether a value can be checked by writing its date back with the template. (A
    template csvpg cannot read is a spec error when the job is read, not here.)"""
    try:
        return not ZONE_PATTERNS.intersection(patterns(template))
    except ValueError:
        return False
