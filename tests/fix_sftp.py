"""A real SFTP server on loopback for the tests.

OpenSSH's ``sshd`` when the machine has it (``/usr/sbin/sshd``, or ``$CSVPG_TEST_SSHD``):
started on a free port with a temporary host key, a temporary user key in its own
``AuthorizedKeysFile``, ``StrictModes no`` and no PAM. Otherwise an asyncssh SFTP server
(key and password auth) on an event loop in a background thread. Either way the test
gets the URL, a known_hosts file holding the host key, the client key (encrypted, with
its passphrase), a password (asyncssh only: sshd would check the system's), and the
served directory; and it can cut every connection or stop and restart the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SSHD = os.environ.get("CSVPG_TEST_SSHD") or "/usr/sbin/sshd"
USER = "csvpg"
PASSWORD = "s3cret-pw"
PASSPHRASE = "key-passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                # sshd answers with its version line once it is ready.
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the SFTP server on port {port} did not start")
        time.sleep(0.02)


@dataclass(frozen=True)
class SshKeys:
    """Keys made once per session: the server's host key and a user key."""

    folder: Path
    host_key: Path
    host_public: str
    #: The user key, PKCS#8 PEM encrypted with PASSPHRASE (needs no bcrypt).
    client_key: Path
    #: The same key in OpenSSH's own format, encrypted (bcrypt KDF, as ssh-keygen makes).
    client_key_openssh: Path
    #: The same key, unencrypted (for ssh-add).
    client_key_plain: Path
    client_public: str
    passphrase: str = PASSPHRASE


@pytest.fixture(scope="session")
def ssh_keys() -> Iterator[SshKeys]:
    import asyncssh

    folder = Path(tempfile.mkdtemp(prefix="csvpg-sftp-keys-"))
    host = asyncssh.generate_private_key("ssh-ed25519")
    host.write_private_key(str(folder / "host_ed25519"))
    os.chmod(folder / "host_ed25519", 0o600)
    user = asyncssh.generate_private_key("ssh-ed25519", comment="csvpg-test")
    user.write_private_key(str(folder / "user.pem"), "pkcs8-pem", passphrase=PASSPHRASE)
    try:
        user.write_private_key(str(folder / "user_openssh"), passphrase=PASSPHRASE)
    except asyncssh.KeyExportError:
        # Without bcrypt asyncssh cannot encrypt it; ssh-keygen can, when it is there.
        user.write_private_key(str(folder / "user_openssh"))
        os.chmod(folder / "user_openssh", 0o600)
        if shutil.which("ssh-keygen"):
            key = str(folder / "user_openssh")
            subprocess.run(
                ["ssh-keygen", "-p", "-q", "-P", "", "-N", PASSPHRASE, "-f", key],
                check=True,
                capture_output=True,
            )
    user.write_private_key(str(folder / "user_plain"))
    for name in ("user.pem", "user_openssh", "user_plain"):
        os.chmod(folder / name, 0o600)
    yield SshKeys(
        folder=folder,
        host_key=folder / "host_ed25519",
        host_public=host.export_public_key().decode().strip(),
        client_key=folder / "user.pem",
        client_key_openssh=folder / "user_openssh",
        client_key_plain=folder / "user_plain",
        client_public=user.export_public_key().decode().strip(),
    )
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class SftpServer:
    """One server: ``url(path)`` names a path under :attr:`root`, the served directory."""

    kind: str  # "openssh" | "asyncssh"
    port: int
    user: str
    root: Path
    known_hosts: Path
    keys: SshKeys
    #: None with sshd: it checks the system's passwords, which the tests do not know.
    password: str | None
    host: str = "127.0.0.1"
    _impl: Any = field(default=None, repr=False)

    @property
    def client_key(self) -> Path:
        return self.keys.client_key

    @property
    def passphrase(self) -> str:
        return self.keys.passphrase

    def url(self, path: str = "", *, user: bool = True) -> str:
        """``sftp://csvpg@127.0.0.1:PORT/…`` for ``path`` relative to :attr:`root`."""
        base = "/" if self.kind == "asyncssh" else self.root.as_posix().rstrip("/") + "/"
        who = f"{self.user}@" if user else ""
        return f"sftp://{who}{self.host}:{self.port}{base}{path.lstrip('/')}"

    def options(self, **extra: Any) -> dict[str, Any]:
        """``[source.options]`` for key auth that trusts this server's host key."""
        return {
            "key_file": str(self.client_key),
            "passphrase": self.passphrase,
            "known_hosts": str(self.known_hosts),
            **extra,
        }

    @property
    def connections(self) -> int:
        return int(self._impl.connections())

    def drop_connections(self) -> None:
        """Cut every open connection; the server keeps listening."""
        self._impl.drop()

    def stop(self) -> None:
        """Stop listening and cut every connection."""
        self._impl.stop()

    def start(self) -> None:
        """(Re)start on the same port."""
        self._impl.start()


# -- asyncssh ---------------------------------------------------------------------------


class _AsyncsshImpl:
    def __init__(self, port: int, root: Path, keys: SshKeys, authorized: Path) -> None:
        self.port, self.root, self.keys, self.authorized = port, root, keys, authorized
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.listener: Any = None
        self.conns: set[Any] = set()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def start(self) -> None:
        self._call(self._start())

    async def _start(self) -> None:
        import asyncssh

        impl = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                self.conn = conn
                impl.conns.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                impl.conns.discard(self.conn)

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == USER and password == PASSWORD

        root = str(self.root)
        self.listener = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_factory=Server,
            server_host_keys=[str(self.keys.host_key)],
            authorized_client_keys=str(self.authorized),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
            reuse_address=True,
        )

    def connections(self) -> int:
        return len(self.conns)

    def drop(self) -> None:
        async def drop() -> None:
            for conn in list(self.conns):
                conn.abort()

        self._call(drop())

    def stop(self) -> None:
        async def stop() -> None:
            if self.listener is not None:
                self.listener.close()
                await self.listener.wait_closed()
                self.listener = None
            for conn in list(self.conns):
                conn.abort()

        self._call(stop())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# -- OpenSSH ----------------------------------------------------------------------------


class _SshdImpl:
    def __init__(self, port: int, folder: Path, keys: SshKeys, authorized: Path) -> None:
        self.port = port
        self.config = folder / "sshd_config"
        self.config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {keys.host_key}",
                    f"PidFile {folder / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        self.log = folder / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
            # Debian's service creates it at boot; a container never booted one.
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stop() ends the sessions too
        )
        try:
            wait_for_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError(f"sshd did not start: {self.log.read_text()[-2000:]}") from None

    def _children(self) -> list[int]:
        """Every process under the listener: sshd puts each connection in a session of
        its own, so its process group does not find them."""
        if self.proc is None:
            return []
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # "pid (comm) state ppid …": comm may hold spaces and parentheses.
                parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            kids = [child for child, parent in parents.items() if parent == pid]
            found += kids
            todo += kids
        return found

    def connections(self) -> int:
        return len(self._children())

    def drop(self) -> None:
        for pid in self._children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.proc is None:
            return
        children = self._children()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()


def start_sftp_server(keys: SshKeys, folder: Path) -> SftpServer:
    """A server serving ``folder/served``; close it with ``server._impl.close()``."""
    root = folder / "served"
    root.mkdir(parents=True, exist_ok=True)
    authorized = folder / "authorized_keys"
    authorized.write_text(keys.client_public + "\n")
    port = free_port()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {keys.host_public}\n")
    impl: _AsyncsshImpl | _SshdImpl
    if Path(SSHD).is_file() and os.access(SSHD, os.X_OK):
        impl = _SshdImpl(port, folder, keys, authorized)
        kind, user, password = "openssh", _login_name(), None
    else:
        impl = _AsyncsshImpl(port, root, keys, authorized)
        kind, user, password = "asyncssh", USER, PASSWORD
    impl.start()
    return SftpServer(
        kind=kind,
        port=port,
        user=user,
        root=root,
        known_hosts=known_hosts,
        keys=keys,
        password=password,
        _impl=impl,
    )


def _login_name() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def sftp_server(ssh_keys: SshKeys) -> Iterator[SftpServer]:
    """A fresh SFTP server for one test (cheap: the keys are made once)."""
    folder = Path(tempfile.mkdtemp(prefix=f"csvpg-sftp-{uuid.uuid4().hex[:6]}-"))
    server = start_sftp_server(ssh_keys, folder)
    try:
        yield server
    finally:
        server._impl.close()
        shutil.rmtree(folder, ignore_errors=True)
        # The test's clients (sshfs file systems, their connections) close in finalizers:
        # run them now, not inside some later import (pytest's assertion rewriting
        # parses with a module-global AST state that a nested parse corrupts on 3.11).
        gc.collect()
