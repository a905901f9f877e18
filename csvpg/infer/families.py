"""The families of values ``csvpg infer`` tells apart: booleans, numbers, dates and
times, and uuid / jsonb / inet. Each :class:`Family` reads values until one does not fit
it; that value is its evidence. :mod:`csvpg.infer.types` weighs the families of a column.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


class Family:
    """One family of types; ``dead`` holds why it cannot take the column."""

    name = ""

    def __init__(self) -> None:
        self.dead: str | None = None
        self.culprit: str | None = None  # the value that ruled the family out

    def kill(self, value: str, why: str) -> None:
        self.dead, self.culprit = f"{show(value)} {why}", value

    def feed(self, values: list[str]) -> None:
        raise NotImplementedError

    def decide(self) -> tuple[str, dict[str, Any], list[str]] | None:
        """(type, conversions, evidence) or None when the family fell out at the end."""
        raise NotImplementedError

    def check(self, kind: str, args: tuple[int, ...]) -> dict[str, Any] | str:
        """Conversions when type ``kind(args)`` takes every value, else the reason why not."""
        return "not checked"


# -- boolean -----------------------------------------------------------------------------

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})
_TRUE_X = frozenset({"ja", "j", "wahr", "oui", "si", "sí", "vrai"})
_FALSE_X = frozenset({"nein", "falsch", "non", "faux"})


class Booleans(Family):
    name = "boolean"

    def __init__(self, id_like: bool) -> None:
        super().__init__()
        self.id_like = id_like
        self.true: dict[str, None] = {}
        self.false: dict[str, None] = {}
        self.other_spelling = False

    def feed(self, values: list[str]) -> None:
        for v in values:
            s = v.strip()
            low = s.lower()
            if low in _TRUE or low in _TRUE_X:
                self.true[s] = None
            elif low in _FALSE or low in _FALSE_X:
                self.false[s] = None
            else:
                return self.kill(v, "is not " + WHAT_EACH_IS[self.name])
            if low in ("0", "1") and self.id_like:
                return self.kill(v, "is 0/1 in a column whose name looks like an id")
            if low in _TRUE_X or low in _FALSE_X:
                self.other_spelling = True
        return None

    def conversions(self) -> dict[str, Any]:
        if not self.other_spelling:
            return {}
        return {"true": sorted(self.true), "false": sorted(self.false)}

    def decide(self) -> tuple[str, dict[str, Any], list[str]] | None:
        spellings = [*self.true, *self.false]
        if set(spellings) <= {"0", "1"} and len(spellings) < 2:
            self.dead = f"only {spellings[0]!r} seen: as likely a count as a flag"
            return None
        seen = ", ".join(map(repr, spellings[:8]))
        return "boolean", self.conversions(), [f"only boolean spellings ({seen}) → boolean"]

    def check(self, kind: str, args: tuple[int, ...]) -> dict[str, Any] | str:
        return self.conversions() if kind == "boolean" else "not a number, date or text type"


# -- numbers -----------------------------------------------------------------------------

_INT_RANGES = (("smallint", 2**15), ("integer", 2**31), ("bigint", 2**63))
#: What inference picks: never smallint (ZIP codes, counts and account numbers outgrow it
#: on the next file of the same job), and integer only with headroom (values below 10⁸,
#: a twentieth of its range); ids and keys are bigint.
_CHOSEN_INTS = (("integer", 10**8), ("bigint", 2**63))
_SPECIAL = re.compile(r"^[+-]?(?:inf|infinity|nan)$", re.IGNORECASE)
_NUMBERISH = re.compile(r"^[+-]?[\d.,' ]*\d[\d.,' ]*(?:[eE][+-]?\d+)?$")
#: (decimal mark, thousands separator); "" is none.
CONVENTIONS = (
    *((".", t) for t in ("", ",", " ", "'")),
    *((",", t) for t in ("", ".", " ", "'")),
)


def _number_rx(dec: str, thousands: str) -> re.Pattern[str]:
    d = re.escape(dec)
    if not thousands:
        body = rf"(?:(?P<int>\d+)(?:{d}(?P<frac>\d*))?|{d}(?P<frac2>\d+))(?:[eE](?P<exp>[+-]?\d+))?"
    else:
        t = re.escape(thousands)
        body = rf"(?P<int>\d{{1,3}}(?:{t}\d{{3}})+|\d+)(?:{d}(?P<frac>\d+))?"
    return re.compile(rf"^(?P<sign>[+-]?){body}$")


class Convention:
    """How one (decimal mark, thousands separator) reading sees the column's values
    other than plain integers (those read the same in every notation)."""

    def __init__(self, dec: str, thousands: str) -> None:
        self.dec, self.thousands = dec, thousands
        self.rx = _number_rx(dec, thousands)
        self.alive = True
        self.lo: int | None = None
        self.hi: int | None = None
        self.int_digits = 0
        self.scales: set[int] = set()
        self.exp = self.grouped = self.fraction = False
        self.example = ""

    def see(self, s: str) -> None:
        m = self.rx.match(s)
        if m is None:
            self.alive = False
            return
        digits = m["int"] or ""
        grouped = bool(self.thousands) and self.thousands in digits
        if grouped:
            digits = digits.replace(self.thousands, "")
        frac = m["frac"] if m["frac"] is not None else m.groupdict().get("frac2")
        self.record(s, m["sign"], digits, frac, m.groupdict().get("exp"), grouped)

    def record(
        self, s: str, sign: str, digits: str, frac: str | None, exp: str | None, grouped: bool
    ) -> None:
        if grouped:
            self.grouped = True
            self.example = self.example or s
        self.int_digits = max(self.int_digits, len(digits.lstrip("0")))
        if frac is None and exp is None:
            n = -int(digits) if sign == "-" else int(digits)
            self.lo = n if self.lo is None or n < self.lo else self.lo
            self.hi = n if self.hi is None or n > self.hi else self.hi
            return
        self.exp = self.exp or exp is not None
        if frac is not None:
            self.fraction = True
            self.scales.add(len(frac))
            if self.dec == ",":
                self.example = self.example or s

    def conversions(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dec == "," and self.fraction:
            out["decimal"] = ","
        if self.grouped:
            out["thousands"] = self.thousands
        return out

    def describe(self, always: bool = False) -> str:
        if not self.conversions() and not always:
            return ""
        mark = "integers"
        if self.fraction:
            mark = "decimal comma" if self.dec == "," else "decimal point"
        sep = f", thousands {self.thousands!r}" if self.grouped else ""
        return f"{mark}{sep}" + (f": e.g. {self.example!r}" if self.example else "")


_PLAIN_INT = re.compile(r"^([+-]?)(\d+)$")
_ONE_MARK = re.compile(r"^([+-]?)(\d*)([.,])(\d*)$")


class Numbers(Family):
    name = "number"

    def __init__(
        self, prefer_decimal_comma: bool = False, *, decimal_comma: bool = True, key: bool = False
    ) -> None:
        super().__init__()
        # In a comma-delimited file "2,2" is a quoted list far more often than a number.
        self.convs = [Convention(d, t) for d, t in CONVENTIONS if decimal_comma or d != ","]
        self.key = key
        if prefer_decimal_comma:
            self.convs.sort(key=lambda c: c.dec != ",")
        self.special = False
        self.ints = Convention(".", "")  # plain integers, the same in every notation

    def feed(self, values: list[str]) -> None:
        alive = [c for c in self.convs if c.alive]
        for v in values:
            s = v.strip()
            if not _NUMBERISH.match(s):
                if _SPECIAL.match(s):
                    self.special = True
                    continue
                return self.kill(v, "is not " + WHAT_EACH_IS[self.name])
            sign = 1 if s[:1] in "+-" else 0
            if len(s) > sign + 1 and s[sign] == "0" and s[sign + 1].isdigit():
                return self.kill(
                    v, "has leading zeros (codes, zip codes and phone numbers stay text)"
                )
            m = _PLAIN_INT.match(s)
            if m is not None:
                self.ints.record(s, m[1], m[2], None, None, False)
                continue
            m = _ONE_MARK.match(s)
            for c in alive:
                if m is None or (c.thousands and (not m[2] or not m[4])):
                    c.see(s)
                elif c.dec == m[3]:
                    c.record(s, m[1], m[2], m[4], None, False)
                elif c.thousands == m[3]:
                    c.see(s)
                else:
                    c.alive = False
            if not all(c.alive for c in alive):
                alive = [c for c in alive if c.alive]
                if not alive:
                    return self.kill(v, "is no number in a notation that fits the other values")
        return None

    def chosen(self) -> Convention | None:
        return next((c for c in self.convs if c.alive), None)

    def _range(self, c: Convention) -> tuple[int, int, int]:
        """(lowest, highest) integer value and most integer digits, in ``c``'s reading."""
        los = [x for x in (c.lo, self.ints.lo) if x is not None]
        his = [x for x in (c.hi, self.ints.hi) if x is not None]
        return min(los, default=0), max(his, default=0), max(c.int_digits, self.ints.int_digits)

    def decide(self) -> tuple[str, dict[str, Any], list[str]] | None:
        c = self.chosen()
        if c is None:
            return None
        lo, hi, digits = self._range(c)
        notes = [c.describe()] if c.describe() else []
        others = [
            o
            for o in self.convs
            if o.alive and o.dec != c.dec and (o.fraction or o.grouped or c.fraction or c.grouped)
        ]
        if others:
            notes.append(
                f"ambiguous: {others[0].describe(always=True)} would fit too; "
                f"chose decimal {c.dec!r} (the file's delimiter decides)"
            )
        if self.special or c.exp:
            why = "exponents" if c.exp else "NaN/Infinity"
            line = f"numbers with {why} → double precision"
            return "double precision", c.conversions(), [line, *notes]
        if not c.fraction:
            for pgtype, limit in _CHOSEN_INTS[1:] if self.key else _CHOSEN_INTS:
                if -limit <= lo and hi < limit:
                    too = [
                        f"not {n}: " + (f"{hi} ≥ {lim}" if hi >= lim else f"{lo} < {-lim}")
                        for n, lim in _CHOSEN_INTS
                        if lim < limit and not self.key
                    ]
                    if self.key:
                        too.append("an id or key: bigint, whatever its values")
                    line = f"all integers in {lo}..{hi} → {pgtype}"
                    return pgtype, c.conversions(), [line, *too, *notes]
            line = f"integers in {lo}..{hi} exceed bigint → numeric"
            return "numeric", c.conversions(), [line, *notes]
        if len(c.scales) == 1:
            scale = next(iter(c.scales))
            precision = scale + max(10, digits + 2)
            if precision <= 1000:
                pgtype = f"numeric({precision},{scale})"
                after = plural(scale, "digit")
                line = f"decimals with {after} after the mark and up to {digits} before → {pgtype}"
                return pgtype, c.conversions(), [line, "not integer: values have fractions", *notes]
        lo_s, hi_s = min(c.scales), max(c.scales)
        line = f"decimals with {lo_s} to {hi_s} digits after the mark (no stable scale) → numeric"
        return "numeric", c.conversions(), [line, *notes]

    def check(self, kind: str, args: tuple[int, ...]) -> dict[str, Any] | str:
        c = self.chosen()
        if c is None:
            return "not numbers"
        lo, hi, digits = self._range(c)
        if kind in ("double precision", "real"):
            return c.conversions()
        if self.special and kind != "numeric":
            return "NaN/Infinity"
        if kind in dict(_INT_RANGES):
            if c.fraction or c.exp:
                return "values have fractions"
            limit = dict(_INT_RANGES)[kind]
            if not (-limit <= lo and hi < limit):
                return f"{lo}..{hi} is outside ±{limit}"
            return c.conversions()
        if kind == "numeric":
            if args:
                precision, scale = args[0], args[1] if len(args) > 1 else 0
                if c.exp or self.special:
                    return "values have exponents or NaN"
                if max(c.scales, default=0) > scale:
                    return f"{max(c.scales)} digits after the mark do not fit scale {scale}"
                if digits > precision - scale:
                    return (
                        f"{digits} digits before the mark do not fit numeric({precision},{scale})"
                    )
            return c.conversions()
        return "not a number type"


# -- dates and times ---------------------------------------------------------------------

_DATE = (
    r"(?:(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<yy>\d{4})(?P<ys>[./])(?P<ym>\d{1,2})(?P=ys)(?P<yd>\d{1,2})"
    r"|(?P<a>\d{1,2})(?P<xs>[./-])(?P<b>\d{1,2})(?P=xs)(?P<xy>\d{4}|\d{2}))"
)
_TIME = (
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<F>\d{1,6}))?)?"
    r"(?P<ps>\s?)(?P<P>[AaPp][Mm])?"
)
#: Zone names PostgreSQL's default timezone_abbreviations read (``… EST`` is timestamptz).
_ZONE_NAMES = (
    "UTC|GMT|UT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|AKST|AKDT|HST|CET|CEST|MET|MEST|EET|EEST"
    "|WET|WEST|BST|MSK|JST|KST|NZST|NZDT"
)
_ZONE = rf"\s*(?P<Z>[Zz]|{_ZONE_NAMES}|[+-]\d{{2}}(?::?\d{{2}})?)"
_DATETIME = re.compile(rf"^{_DATE}(?:(?P<sep>T|\s+){_TIME}(?:{_ZONE})?)?$")
_TIME_ONLY = re.compile(rf"^{_TIME}$")
_MDAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _valid_date(y: int, m: int, d: int) -> bool:
    if not (1 <= m <= 12 and 1 <= d <= _MDAYS[m] and y >= 1):
        return False
    return m != 2 or d < 29 or (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0))


def _valid_time(m: re.Match[str]) -> bool:
    h, mi, s = int(m["H"]), int(m["M"]), int(m["S"] or 0)
    hours = 1 <= h <= 12 if m["P"] else h <= 23
    return hours and mi <= 59 and s <= 59


class Temporal(Family):
    name = "date/time"

    def __init__(self) -> None:
        super().__init__()
        self.n_date = self.n_time = self.n_ts = self.n_zone = 0
        self.shapes: dict[tuple[str, ...], str] = {}  # date shape → an example
        self.times: dict[tuple[str, ...], str] = {}  # time shape (for templates) → example
        self.dmy: str | None = None  # why day-first does not fit, or None
        self.mdy: str | None = None

    def feed(self, values: list[str]) -> None:
        for v in values:
            s = v.strip()
            m = _DATETIME.match(s)
            if m is None:
                t = _TIME_ONLY.match(s)
                if t is None or not _valid_time(t):
                    return self.kill(v, "is not " + WHAT_EACH_IS[self.name])
                self.n_time += 1
                continue
            if m["iy"]:
                shape: tuple[str, ...] = ("iso",)
                ok = _valid_date(int(m["iy"]), int(m["im"]), int(m["id"]))
            elif m["yy"]:
                shape = ("ymd", m["ys"])
                ok = _valid_date(int(m["yy"]), int(m["ym"]), int(m["yd"]))
            else:
                shape = ("xy", m["xs"], str(len(m["xy"])))
                y, a, b = int(m["xy"]), int(m["a"]), int(m["b"])
                y += 2000 if len(m["xy"]) == 2 else 0
                if self.dmy is None and not _valid_date(y, b, a):
                    self.dmy = f"{show(v)} is no day-first date"
                if self.mdy is None and not _valid_date(y, a, b):
                    self.mdy = f"{show(v)} is no month-first date"
                if self.dmy is not None and self.mdy is not None:
                    return self.kill(v, "fits neither day-first nor month-first with the rest")
                ok = True
            if not ok:
                return self.kill(v, "is not a valid date")
            self.shapes.setdefault(shape, s)
            if m["H"] is None:
                self.n_date += 1
                continue
            if not _valid_time(m):
                return self.kill(v, "has an invalid time")
            self.n_ts += 1
            self.n_zone += m["Z"] is not None
            if shape[0] != "iso":
                key = (m["sep"], str(bool(m["S"])), str(bool(m["F"])), m["ps"] if m["P"] else "-")
                self.times.setdefault(key, s)
        return None

    def _template(self) -> tuple[str | None, str]:
        """(to_timestamp template or None for ISO, the date reading) or raise ValueError."""
        if len(self.shapes) > 1:
            a, b = list(self.shapes.values())[:2]
            raise ValueError(f"mixes date notations ({a!r}, {b!r})")
        shape = next(iter(self.shapes))
        if shape[0] == "iso":
            return None, "ISO 8601"
        if self.n_zone:
            raise ValueError("has time zones on dates that are not ISO 8601")
        if self.n_ts and self.n_date:
            raise ValueError("mixes dates with and without times")
        if len(self.times) > 1:
            a, b = list(self.times.values())[:2]
            raise ValueError(f"mixes time notations ({a!r}, {b!r})")
        if shape[0] == "ymd":
            tpl, reading = f"YYYY{shape[1]}MM{shape[1]}DD", "year first"
        else:
            sep, year = shape[1], "YYYY" if shape[2] == "4" else "YY"
            if self.dmy is None and (self.mdy is not None or sep != "/"):
                tpl, reading = f"DD{sep}MM{sep}{year}", "day-first"
            else:
                tpl, reading = f"MM{sep}DD{sep}{year}", "month-first"
        if self.times:
            tsep, sec, frac, ampm = next(iter(self.times))
            clock = "HH24:MI" if ampm == "-" else "HH12:MI"
            clock += (":SS" if sec == "True" else "") + (".US" if frac == "True" else "")
            clock += "" if ampm == "-" else f"{ampm}AM"
            tpl += (" " if tsep.isspace() else '"T"') + clock
        return tpl, reading

    def decide(self) -> tuple[str, dict[str, Any], list[str]] | None:
        if self.n_time:
            if self.n_date or self.n_ts:
                self.dead = "mixes times of day with dates"
                return None
            return "time", {}, ["only times of day → time"]
        try:
            tpl, reading = self._template()
        except ValueError as exc:
            self.dead = str(exc)
            return None
        kind = "timestamptz" if self.n_zone else "timestamp" if self.n_ts else "date"
        example = next(iter(self.shapes.values()))
        lines = [f"{kind} values like {example!r}, read {reading}" + (f" ({tpl})" if tpl else "")]
        if reading in ("day-first", "month-first"):
            other = self.mdy if reading == "day-first" else self.dmy
            lines.append(
                f"not {'month' if reading == 'day-first' else 'day'}-first: {other}"
                if other
                else "both day-first and month-first fit every value (no day above 12); "
                f"chose {reading} for {next(iter(self.shapes))[1]!r}-separated dates"
            )
        if self.n_zone and self.n_zone < self.n_ts:
            lines.append(f"{self.n_ts - self.n_zone} values carry no zone: read in the session's")
        if kind == "timestamp" and self.n_date:
            lines.append(f"{self.n_date} values are dates only: midnight")
        return kind, {"format": tpl} if tpl else {}, lines

    def check(self, kind: str, args: tuple[int, ...]) -> dict[str, Any] | str:
        if kind == "time":
            return {} if self.n_time and not (self.n_date or self.n_ts) else "not times of day"
        if self.n_time:
            return "values are times of day"
        if kind == "date" and self.n_ts:
            return "values have times"
        if kind == "timestamp" and self.n_zone:
            return "values carry time zones"
        try:
            tpl, _ = self._template()
        except ValueError as exc:
            return str(exc)
        return {"format": tpl} if tpl else {}


# -- uuid, jsonb, inet -------------------------------------------------------------------

_UUID = re.compile(r"^(\{)?[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?(1)\})$")
_IPV4 = re.compile(
    r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?:/(?:3[0-2]|[12]?\d))?$"
)
_IPV6 = re.compile(r"^[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(?:/\d{1,3})?$")


WHAT_EACH_IS = {
    "boolean": "a boolean spelling",
    "number": "a number",
    "date/time": "a date or time",
    "uuid": "a uuid",
    "jsonb": "a JSON object or array",
    "inet": "an IP address",
}


def plain_values(plain: dict[str, list[str]]) -> list[str]:
    return [
        f"not {names[0]}: {show(value)} is not {WHAT_EACH_IS[names[0]]}"
        if len(names) == 1
        else f"not {', '.join(names)}: {show(value)} fits none"
        for value, names in plain.items()
    ]


class Simple(Family):
    """uuid, jsonb and inet: a value fits or not, no parameters."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def fits(self, v: str) -> bool:
        if self.name == "uuid":
            return _UUID.match(v) is not None
        if self.name == "inet":
            if _IPV4.match(v):
                return True
            if not _IPV6.match(v):
                return False
            try:
                ipaddress.ip_interface(v)
            except ValueError:
                return False
            return True
        s = v.strip()
        if s[:1] not in ("{", "[") or "\\u0000" in s:
            return False
        try:
            json.loads(s, parse_constant=_no_constant)
        except ValueError:
            return False
        return True

    def feed(self, values: list[str]) -> None:
        for v in values:
            if not self.fits(v):
                return self.kill(v, "is not " + WHAT_EACH_IS[self.name])
        return None

    def decide(self) -> tuple[str, dict[str, Any], list[str]]:
        return self.name, {}, [f"every value is {WHAT_EACH_IS[self.name]} → {self.name}"]

    def check(self, kind: str, args: tuple[int, ...]) -> dict[str, Any] | str:
        return {} if kind == self.name else f"values are {self.name}"


def _no_constant(name: str) -> Any:
    raise ValueError(name)
