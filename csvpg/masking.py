"""Secrets out of everything csvpg shows: messages, the API, the run history.

One place decides what a secret looks like, so a DSN in an error, a webhook URL in
``csvpg runs`` and a job spec in ``GET /jobs/{name}`` are masked alike:

- a URL's password (``postgresql://user:***@host``), and for http(s) a user name
  without a password too, which is how tokens travel (``https://***@host``);
- query parameters that carry one: ``password=``, ``token=``, ``key=``, ``secret=``,
  ``sig=`` and names ending so (``access_token=``, ``api_key=``);
- ``password=`` in a key=value DSN;
- the whole value of a key that holds one: ``password``, ``passphrase``, ``secret``,
  ``token``, ``headers`` … (a ``dsn`` keeps its host and user: it is masked as a URL).

``${VAR}`` stays readable: it names the variable, not the secret.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^:/@?#\s]*)(?::(?P<pw>[^@/?#\s]*))?@", re.I
)
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;][\w.-]*(?:password|passwd|token|key|secret|sig|signature)=)(?P<pw>[^&#\s'\"]*)",
    re.I,
)
#: Keys whose whole value is a secret (a spec's, a header's, a plugin option's).
SECRET_KEYS = frozenset(
    {"password", "passphrase", "secret", "token", "api_key", "apikey", "key", "headers"}
)


def _userinfo(m: re.Match[str]) -> str:
    scheme, user, pw = m["scheme"], m["user"], m["pw"]
    if pw is not None:
        return f"{scheme}{user}:{MASK if pw else ''}@"
    if scheme.lower().startswith("http") and user:
        return f"{scheme}{MASK}@"  # https://<token>@host
    return m.group(0)


def mask_text(text: str) -> str:
    """``text`` with every password, token and key in URLs and DSNs replaced by ``***``."""
    out = _URL_USERINFO.sub(_userinfo, text)
    out = _KV_PASSWORD.sub(lambda m: m["head"] + MASK, out)
    return _QUERY_SECRET.sub(lambda m: m["head"] + (MASK if m["pw"] else ""), out)


def is_secret_key(key: str) -> bool:
    """``sink.options.password``, ``notify[0].secret``: the last part of a key path."""
    last = re.split(r"[.\[\]]+", key.strip(".[]"))[-1].lower() if key else ""
    return last in SECRET_KEYS or last.endswith(("password", "passphrase", "_token", "_secret"))


def mask_value(value: Any, key: str = "") -> Any:
    """A spec value (string, list, table) as it may be shown: a secret key's strings
    become ``***``, and every other string is masked with :func:`mask_text`."""
    if isinstance(value, dict):
        inner = "secret" if is_secret_key(key) else None  # headers: each value may be one
        return {k: mask_value(v, inner or k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v, key) for v in value]
    if not isinstance(value, str):
        return value
    if is_secret_key(key) and not value.startswith("${"):
        return MASK
    return mask_text(value)


def shown(value: Any, key: str = "") -> str:
    """``repr(value)`` for a message, masked: what an error may echo of a spec value."""
    if is_secret_key(key) and not isinstance(value, (dict, list)):
        return f"{MASK} (a secret's value is never shown)"
    return repr(mask_value(value, key))
