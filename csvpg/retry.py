"""Which failures are worth another try: a dropped connection, a restarting server,
an SFTP drop, an HTTP 5xx or 429. A wrong password, a missing file or a bad value is
not: it fails at once."""

from __future__ import annotations

import errno
import random

import psycopg

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


def is_transient(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        decided = _transient_one(seen)
        if decided is not None:
            return decided
        seen = seen.__cause__ or seen.__context__
    return False


def backoff(attempt: int, delay: float) -> float:
    """Exponential, with jitter so that workers that failed together do not retry together."""
    return float(delay * (2**attempt) * (0.5 + random.random()))
