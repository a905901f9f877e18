"""``sftp://`` (and ``ssh://``) sources through sshfs and asyncssh.

The server's host key is checked against ``~/.ssh/known_hosts`` (and
``/etc/ssh/ssh_known_hosts``) unless ``known_hosts`` names another file; an unknown or
changed key is an error that says how to trust it. ``insecure_skip_host_key = true``
turns the check off, and only when written. Authentication: a password (in the URL or
``password``), a private key (``key_file``, with ``passphrase``), the SSH agent, or the
keys in ``~/.ssh``.

The source owns its connection: a dropped one is forgotten, and the next list or open
(the engine's retry) connects again. ``FileRef.url`` is ``sftp://user@host:port/path``,
without the password.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import posixpath
import threading
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from csvpg.builtin._remote import (
    RemoteSource,
    list_infos,
    quote_path,
    safe_name,
    size_mtime,
    stat_now,
)
from csvpg.errors import SourceError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import FileRef, Source
from csvpg.options import Option

log = logging.getLogger(__name__)

DEFAULT_PORT = 22
_SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"


def _user_known_hosts() -> Path:
    return Path("~/.ssh/known_hosts").expanduser()


class SftpSource(RemoteSource):
    """Files on an SFTP server: ``sftp://[user[:password]@]host[:port]/path``.

    ``/path`` is absolute; ``/~/path`` is relative to the login directory."""

    schemes = ("sftp", "ssh")
    options = {
        "username": Option(str, None, help="the login name, if the URL has none"),
        "password": Option(str, None, help='e.g. password = "${SFTP_PASSWORD}"'),
        "key_file": Option(
            (str, list), None, item=str, path=True, help="a private key file (or a list of them)"
        ),
        "passphrase": Option(str, None, help="the passphrase of key_file"),
        "known_hosts": Option(
            str, None, path=True, help="a known_hosts file to check the host key with"
        ),
        "insecure_skip_host_key": Option(
            bool, False, help="accept any host key: only on a network you trust"
        ),
        "agent": Option(
            (bool, str),
            True,
            path=True,
            help="use the SSH agent ($SSH_AUTH_SOCK), or a socket path",
        ),
        "port": Option(int, None),
        "timeout": Option((int, float), 30, help="seconds to connect"),
        "keepalive": Option(
            (int, float), 15, help="seconds between keepalives; 3 unanswered drop the connection"
        ),
    }

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url, options=options)
        opts = {key: options.get(key, o.default) for key, o in self.options.items()}
        parts = urlsplit(url)
        if not parts.hostname:
            raise SourceError(
                f"{parts.scheme}:// URL without a host: {url!r}",
                file=url,
                hint='write it as url = "sftp://user@host:port/path"',
            )
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError as exc:
            raise SourceError(f"bad port in {url!r}", file=url) from exc
        self.port = port or opts["port"] or DEFAULT_PORT
        self.username = unquote(parts.username) if parts.username else opts["username"]
        password = unquote(parts.password) if parts.password is not None else opts["password"]
        self.password: str | None = password
        raw_path = unquote(parts.path) or "/"
        # "/~/exports" (or "/~") is relative to the login directory, as in scp.
        if raw_path == "/~" or raw_path.startswith("/~/"):
            self.root = raw_path[3:] or "."
        else:
            self.root = raw_path
        host = f"[{self.host}]" if ":" in self.host else self.host
        who = f"{self.username}@" if self.username else ""
        where = f"{host}:{self.port}" if self.port != DEFAULT_PORT else host
        self._base = f"sftp://{who}{where}"
        self.url = self._url(self.root)
        self._secrets = [s for s in (password, opts["passphrase"]) if s]

        self._keys = _as_list(opts["key_file"])
        for key in self._keys:
            if not Path(key).expanduser().is_file():
                raise SourceError(
                    f"{self.url}: the private key file {key} does not exist",
                    file=self.url,
                    key="source.options.key_file",
                    hint="give the path of a private key (a relative one starts at the "
                    "job's folder)",
                )
        self.known_hosts = opts["known_hosts"]
        if self.known_hosts is not None and not Path(self.known_hosts).expanduser().is_file():
            raise SourceError(
                f"{self.url}: the known_hosts file {self.known_hosts} does not exist",
                file=self.url,
                key="source.options.known_hosts",
                hint="give the path of a known_hosts file (a relative one starts at the job's "
                f"folder), e.g. made with: ssh-keyscan{self._port_flag} {self.host} > known_hosts",
            )
        self.insecure = bool(opts["insecure_skip_host_key"])
        self.passphrase: str | None = opts["passphrase"]
        self.agent = opts["agent"]
        self.timeout = float(opts["timeout"])
        self.keepalive = float(opts["keepalive"])
        self._fs: Any = None
        self._generation = 0
        self._lock = threading.Lock()

    @property
    def _port_flag(self) -> str:
        return f" -p {self.port}" if self.port != DEFAULT_PORT else ""

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            path = "/~/" + (path if path != "." else "")
        return self._base + quote_path(path)

    # -- the connection ------------------------------------------------------------

    def _known_hosts(self) -> Any:
        if self.insecure:
            return None
        if self.known_hosts is not None:
            return str(Path(self.known_hosts).expanduser())
        found = [str(p) for p in (_user_known_hosts(), Path(_SYSTEM_KNOWN_HOSTS)) if p.is_file()]
        return found or b""  # none: no host is trusted

    def _connect(self) -> Any:
        import sshfs

        if self.insecure:
            log.warning("%s: the host key is not checked (insecure_skip_host_key)", self.url)
        kwargs: dict[str, Any] = {
            "port": self.port,
            "known_hosts": self._known_hosts(),
            "connect_timeout": self.timeout,
            "keepalive_interval": self.keepalive,
            "keepalive_count_max": 3,
            "skip_instance_cache": True,
        }
        if self.username:
            kwargs["username"] = self.username
        if self.password is not None:
            kwargs["password"] = self.password
        if self._keys:
            kwargs["client_keys"] = [str(Path(k).expanduser()) for k in self._keys]
        if self.passphrase is not None:
            kwargs["passphrase"] = self.passphrase
        if self.agent is False:
            kwargs["agent_path"] = None
        elif isinstance(self.agent, str):
            kwargs["agent_path"] = str(Path(self.agent).expanduser())
        return sshfs.SSHFileSystem(self.host, **kwargs)

    def fs(self) -> Any:
        with self._lock:
            if self._fs is None:
                self._fs = self._connect()
                self._generation += 1
            return self._fs

    def close(self) -> None:
        with self._lock:
            fs, self._fs = self._fs, None
        if fs is not None:
            # sshfs closes at garbage collection only: run its finalizer now (a second
            # call at collection finds nothing left to close).
            with contextlib.suppress(Exception):
                type(fs)._finalize(fs.loop, fs._pool, fs._stack)

    def generation(self) -> int:
        return self._generation

    def _reset(self, generation: int | None = None) -> None:
        with self._lock:
            if generation is None or generation == self._generation:
                # sshfs closes the old connection once no stream holds it any more.
                self._fs = None

    # -- listing and opening -------------------------------------------------------

    def _list(self, pattern: str | None) -> list[FileRef]:
        fs = self.fs()
        refs = []
        for info in list_infos(fs, self.root, pattern, real_dirs=True):
            path = posixpath.normpath(info["name"])  # "./a.csv" (home-relative) → "a.csv"
            url = self._url(path)
            self._paths[url] = path
            size, mtime = size_mtime(info)
            refs.append(FileRef(url=url, name=safe_name(path), size=size, mtime=mtime))
        return refs

    def _stat(self, path: str) -> tuple[int | None, float | None] | None:
        return stat_now(self.fs(), path)

    def _open_raw(self, ref: FileRef, path: str) -> BinaryIO:
        stream: BinaryIO = self.fs().open(path, "rb")
        return stream

    def _path_of(self, url: str) -> str:
        if not url.startswith(self._base + "/"):
            raise SourceError(f"{url} is not on {self._base}", file=url)
        path = unquote(url[len(self._base) :])
        return path[3:] if path.startswith("/~/") else path

    can_remove = True

    def _filesystem(self) -> Any:
        return self.fs()

    def _url_of(self, path: str) -> str:
        return self._url(path)

    # -- what went wrong -----------------------------------------------------------

    def _describe(self, exc: BaseException, url: str, doing: str) -> SourceError | None:
        name = type(exc).__name__
        chain = [exc, exc.__cause__, exc.__context__]
        names = {type(e).__name__ for e in chain if e is not None}
        where = f"{self.host}:{self.port}"
        if "HostKeyNotVerifiable" in names:
            return self._host_key_error(url)
        if "PermissionDenied" in names:
            return SourceError(
                f"{url}: the SFTP server at {where} refused the login of "
                f"{self.username or getpass.getuser()!r}: {exc}",
                file=url,
                hint="check the user name and the password, key_file (and passphrase) or "
                "the agent's keys in [source.options]; the server's log says which it tried",
            )
        if name in ("KeyImportError", "KeyEncryptionError"):
            text = str(exc)
            if "bcrypt" in text:
                return SourceError(
                    f"{url}: cannot read the private key: {text}",
                    file=url,
                    hint="passphrase-protected keys in OpenSSH's format need the Python package "
                    "'bcrypt' (pip install bcrypt); or load the key into ssh-agent",
                )
            return SourceError(
                f"{url}: cannot read the private key: {text}",
                file=url,
                hint='set its passphrase in [source.options], e.g. passphrase = "${SSH_KEY_PASS}"',
            )
        if isinstance(exc, (ConnectionRefusedError, TimeoutError)) or name == "gaierror":
            return SourceError(
                f"{url}: cannot connect to {where}: {exc or name}",
                file=url,
                hint="check the host and port, and that the SFTP server runs; "
                "csvpg retries dropped connections",
            )
        lost = ("ConnectionLost", "SFTPConnectionLost", "SFTPNoConnection", "DisconnectError")
        if name in lost or isinstance(exc, ConnectionError):  # a reset, a broken pipe
            return SourceError(
                f"{url}: the SFTP connection to {where} was lost while {doing}: {exc}",
                file=url,
                hint="csvpg retries dropped connections ([run] max_retries)",
            )
        return None

    def _host_key_error(self, url: str) -> SourceError:
        import asyncssh

        files = self._known_hosts()
        paths = [files] if isinstance(files, str) else list(files or [])
        target = self.known_hosts or "~/.ssh/known_hosts"
        keyscan = f"ssh-keyscan{self._port_flag} {self.host} >> {target}"
        changed = []
        for path in paths:
            try:
                known = asyncssh.read_known_hosts(path)
                host_keys = known.match(self.host, self.host, self.port)[0]
            except (OSError, ValueError, asyncssh.Error):
                continue
            if host_keys:
                changed.append(path)
        entry = f"[{self.host}]:{self.port}" if self.port != DEFAULT_PORT else self.host
        if changed:
            return SourceError(
                f"{url}: the host key of {entry} does not match the one in {changed[0]}: "
                "the server's key changed, or someone is in between",
                file=url,
                hint=f"if the change is expected, remove the old key with "
                f"ssh-keygen -R '{entry}' -f {changed[0]}, check the new fingerprint, "
                f"then add it: {keyscan}",
            )
        looked = ", ".join(paths) if paths else "~/.ssh/known_hosts (there is none)"
        return SourceError(
            f"{url}: the host key of {entry} is unknown (not in {looked})",
            file=url,
            hint=f"if you trust this server, add its key: {keyscan} (compare the fingerprint, "
            "ssh-keygen -lf, with the server's), or name a file with "
            '[source.options] known_hosts = "path"; insecure_skip_host_key = true skips the '
            "check (not recommended)",
        )


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@hookimpl
def register_sources() -> list[type[Source]]:
    return [SftpSource]
