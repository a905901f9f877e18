"""Value normalisers: small, pure ``str → str`` steps a job chains per column.

An empty result becomes NULL, so that a merge sees "no value" one way only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

Step = Callable[[str], str]

_SPACES = re.compile(r"\s+")
_ANGLE = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def trim(value: str) -> str:
    return value.strip()


def collapse(value: str) -> str:
    """Trim, and fold every run of whitespace inside into one space."""
    return _SPACES.sub(" ", value).strip()


def email(value: str) -> str:
    """``"Ada <ADA@Example.org>"``, ``"mailto:ada@example.org"`` → ``ada@example.org``."""
    value = value.strip()
    m = _ANGLE.search(value)
    if m:
        value = m.group(1)
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value.strip().lower()


def domain(value: str) -> str:
    """The host name of a URL or an e-mail address, lower case, without ``www.``:
    ``"https://www.Example.com/about"``, ``"ada@example.com"``, ``"example.com"`` →
    ``example.com``."""
    value = email(value) if "@" in value and "://" not in value else value.strip()
    if "@" in value and "://" not in value:
        host = value.rsplit("@", 1)[1]
    else:
        try:
            host = urlsplit(value if "://" in value else "//" + value).hostname or ""
        except ValueError:  # e.g. an unclosed "[" of an IPv6 address
            host = ""
    host = host.strip().rstrip(".").lower()
    return host[4:] if host.startswith("www.") else host


def phone(value: str) -> str:
    """Digits only, keeping a leading ``+``: ``"+49 (30) 123-45"`` → ``+493012345``."""
    digits = "".join(ch for ch in value if ch.isdigit())
    return ("+" + digits) if value.lstrip().startswith("+") and digits else digits


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


STEPS: dict[str, Step] = {
    "trim": trim,
    "collapse": collapse,
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "email": email,
    "domain": domain,
    "phone": phone,
    "digits": digits,
}


def chain(names: Sequence[str]) -> Callable[[str | None], str | None]:
    """The named steps, in order, as one function; NULL stays NULL, "" becomes NULL."""
    steps = [STEPS[n] for n in names]

    def run(value: str | None) -> str | None:
        if value is None:
            return None
        for step in steps:
            value = step(value)
        return value or None

    return run
