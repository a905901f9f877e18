"""Files from anywhere fsspec reaches: local paths, directories, globs, object stores
and URLs: the generic ``"*"`` source. What it shares with the ``sftp`` and ``http(s)``
sources (decompressing streams, zip members, listing retries, checks at the end of a
read) is in :mod:`csvpg.builtin._remote`.
"""

from __future__ import annotations

import posixpath
from typing import Any, BinaryIO

import fsspec
from fsspec.core import url_to_fs

from csvpg.builtin._remote import (
    RemoteSource,
    list_infos,
    safe_name,
    secret_option,
    size_mtime,
    stat_now,
    without_password,
)
from csvpg.errors import SourceError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import FileRef, Source


class FsspecSource(RemoteSource):
    """Lists with ``glob`` (or a directory listing) and streams with ``open``, through
    whichever fsspec file system the URL names (local paths included)."""

    #: "*": every protocol fsspec knows; a plugin that registers a scheme itself wins.
    schemes = ("*",)

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url, options=options)
        self.url = without_password(url)
        self._secrets = [str(v) for k, v in options.items() if secret_option(k) and v]

        def connect() -> tuple[Any, str]:
            try:
                fs, root = url_to_fs(url, **options)
            except ImportError as exc:
                raise SourceError(
                    f"cannot read {self.url!r}: {exc}",
                    file=self.url,
                    hint=f"install the fsspec package for {protocol_of(url)}:// "
                    "(the message names it)",
                ) from exc
            except ValueError as exc:
                if "not known" not in str(exc).lower():
                    raise SourceError(
                        f"cannot open source {self.url!r}: {exc}",
                        file=self.url,
                        hint="check [source.options]",
                    ) from exc
                raise SourceError(
                    f"no fsspec file system reads {protocol_of(url)}:// ({self.url})",
                    file=self.url,
                    hint="check the URL's scheme; fsspec.available_protocols() lists those "
                    "fsspec knows",
                ) from exc
            except TypeError as exc:
                raise SourceError(
                    f"cannot open source {self.url!r}: {exc}",
                    file=self.url,
                    hint="check [source.options]",
                ) from exc
            return fs, str(root)

        self.fs, self.root = self.retrying(connect, self.url, "connecting")

    @property
    def _local(self) -> bool:
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return "file" in protocols or "local" in protocols

    def _ref(self, info: dict[str, Any]) -> FileRef:
        path = info["name"]
        url = self._url_of(path)
        self._paths[url] = path
        size, mtime = size_mtime(info)
        return FileRef(
            url=url, name=safe_name(posixpath.basename(path.rstrip("/"))), size=size, mtime=mtime
        )

    def _list(self, pattern: str | None) -> list[FileRef]:
        infos = list_infos(self.fs, self.root, pattern, real_dirs=self._local)
        return [self._ref(info) for info in infos]

    def _stat(self, path: str) -> tuple[int | None, float | None] | None:
        return stat_now(self.fs, path)

    def _open_raw(self, ref: FileRef, path: str) -> BinaryIO:
        stream: BinaryIO = self.fs.open(path, "rb")
        return stream

    def _path_of(self, url: str) -> str:
        return str(self.fs._strip_protocol(url))

    can_remove = True

    def _filesystem(self) -> Any:
        return self.fs

    def _url_of(self, path: str) -> str:
        return path if self._local else without_password(self.fs.unstrip_protocol(path))


@hookimpl
def register_sources() -> list[type[Source]]:
    return [FsspecSource]


def protocol_of(url: str) -> str:
    """The scheme fsspec would use for ``url`` (``file`` for plain paths)."""
    protocol = fsspec.core.split_protocol(url)[0]
    return protocol or "file"
