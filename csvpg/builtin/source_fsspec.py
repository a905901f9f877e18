"""Files from anywhere fsspec reaches: local paths, directories, globs, and URLs."""

from __future__ import annotations

import posixpath
from typing import Any, BinaryIO

import fsspec
from fsspec.core import url_to_fs

from csvpg.errors import SourceError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import FileRef, Source

_GLOB_CHARS = set("*?[")


class FsspecSource(Source):
    """Lists with ``glob`` (or a directory listing) and streams with ``open``.

    Compressed files (``.gz``, ``.bz2``, ``.zst`` …) are decompressed while streaming.
    """

    #: "*": every protocol fsspec knows; a plugin that registers a scheme itself wins.
    schemes = ("*",)

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url, options=options)
        try:
            self.fs, self.root = url_to_fs(url, **options)
        except ImportError as exc:
            raise SourceError(
                f"cannot read {url!r}: {exc}",
                file=url,
                hint="install the fsspec package for this protocol (the message names it)",
            ) from exc
        except (TypeError, ValueError) as exc:
            raise SourceError(
                f"cannot open source {url!r}: {exc}", file=url, hint="check [source.options]"
            ) from exc

    @property
    def _local(self) -> bool:
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        return "file" in protocols

    def _ref(self, info: dict[str, Any]) -> FileRef:
        path = info["name"]
        mtime = info.get("mtime") or info.get("created")
        return FileRef(
            url=path if self._local else self.fs.unstrip_protocol(path),
            name=posixpath.basename(path.rstrip("/")),
            size=info.get("size"),
            mtime=float(mtime.timestamp() if hasattr(mtime, "timestamp") else mtime)
            if mtime
            else None,
        )

    def list(self, pattern: str | None) -> list[FileRef]:
        root = self.root.rstrip("/") or "/"
        try:
            if pattern:
                paths = self.fs.glob(posixpath.join(root, pattern), detail=True)
            elif _GLOB_CHARS & set(root):
                paths = self.fs.glob(root, detail=True)
            elif self.fs.isdir(root):
                paths = {i["name"]: i for i in self.fs.ls(root, detail=True)}
            else:
                paths = {root: self.fs.info(root)}
        except FileNotFoundError as exc:
            raise SourceError(
                f"source not found: {self.url}",
                file=self.url,
                hint="check [source] url (a relative path starts at the job file's folder)",
            ) from exc
        except PermissionError as exc:
            raise SourceError(
                f"permission denied listing {self.url}: {exc}", file=self.url
            ) from exc
        files = [info for info in paths.values() if info.get("type", "file") != "directory"]
        return sorted((self._ref(info) for info in files), key=lambda r: r.url)

    def open(self, ref: FileRef) -> BinaryIO:
        path = self.fs._strip_protocol(ref.url)
        try:
            stream: BinaryIO = self.fs.open(path, "rb", compression="infer")
        except FileNotFoundError as exc:
            raise SourceError(
                f"file disappeared before it was read: {ref.url}", file=ref.url
            ) from exc
        except PermissionError as exc:
            raise SourceError(f"permission denied reading {ref.url}", file=ref.url) from exc
        return stream


@hookimpl
def register_sources() -> list[type[Source]]:
    return [FsspecSource]


def protocol_of(url: str) -> str:
    """The scheme fsspec would use for ``url`` (``file`` for plain paths)."""
    protocol = fsspec.core.split_protocol(url)[0]
    return protocol or "file"
