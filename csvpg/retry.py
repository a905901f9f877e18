"""Which failures are worth another try: a dropped connection, a restarting server,
an SFTP drop, an HTTP 5xx or 429, a read that came up short or saw the file change. A
wrong password, a missing file or a bad value is not: it fails at once. And how long to
wait before it: the backoff, or what the server's ``Retry-After`` asks for."""

from __future__ import annotations

import email.utils
import errno
import random
import time
from collections.abc import Iterator

import psycopg

#: The longest wait a server's ``Retry-After`` gets (the message says when it was cut).
MAX_RETRY_AFTER = 120.0


class ReadAgain(Exception):
    """A read another attempt may get right: the body ended before the size the listing
    gave, or the file changed while it was read."""


# Connection exceptions, a server shutting down or starting, too many connections,
# serialization failures and deadlocks.
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


def _transient_one(exc: BaseException) -> bool | None:
    """True or False when ``exc`` decides it, None to look at its cause."""
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state is None:
            return isinstance(exc, psycopg.OperationalError)
        return state.startswith(_TRANSIENT_STATES)
    if isinstance(exc, ReadAgain):
        return True
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    module = type(exc).__module__.split(".")[0]
    if module == "aiohttp":
        if type(exc).__name__ in _PERMANENT_AIOHTTP:
            return False
        status = getattr(exc, "status", None)
        return status is None or status >= 500 or status == 429
    if module == "asyncssh":
        # A lost or reset connection is worth a retry; a refused key or password, or an
        # unknown host key, is not. SFTP requests on a connection that dropped fail with
        # SFTPConnectionLost, or SFTPNoConnection once it is gone.
        return type(exc).__name__ in _TRANSIENT_ASYNCSSH
    return None


# A certificate that does not verify, or a URL aiohttp cannot request, stays so.
_PERMANENT_AIOHTTP = (
    "ClientConnectorCertificateError",
    "ClientConnectorSSLError",
    "ClientSSLError",
    "InvalidURL",
    "InvalidUrlClientError",
    "NonHttpUrlClientError",
    "TooManyRedirects",
)
_TRANSIENT_ASYNCSSH = (
    "ConnectionLost",
    "DisconnectError",
    "ChannelOpenError",
    "SFTPConnectionLost",
    "SFTPNoConnection",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def is_transient(exc: BaseException) -> bool:
    for seen in _chain(exc):
        decided = _transient_one(seen)
        if decided is not None:
            return decided
    return False


def backoff(attempt: int, delay: float) -> float:
    """Exponential, with jitter so that workers that failed together do not retry together."""
    return float(delay * (2**attempt) * (0.5 + random.random()))


def retry_after(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (an HTTP 429 or 503's ``Retry-After``, in
    seconds or as a date), from ``exc`` or what it was raised from; ``None`` if none."""
    for seen in _chain(exc):
        headers = getattr(seen, "headers", None)
        value = headers.get("Retry-After") if headers is not None else None
        if value:
            return parse_retry_after(str(value))
    return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (it gives seconds or an HTTP date); ``None`` if absent
    or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def pause(exc: BaseException, attempt: int, delay: float) -> tuple[float, str]:
    """Seconds to wait before retrying after ``exc``, and what the message adds: the
    server's ``Retry-After`` when it gave one (at most :data:`MAX_RETRY_AFTER`), else the
    backoff."""
    asked = retry_after(exc)
    if asked is None:
        return backoff(attempt, delay), ""
    if asked > MAX_RETRY_AFTER:
        return MAX_RETRY_AFTER, f" (the server's Retry-After asked {asked:.0f} s; capped)"
    return asked, " (the server's Retry-After)"
