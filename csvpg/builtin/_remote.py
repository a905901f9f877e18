"""What the remote sources share (fsspec's file systems, SFTP, HTTP): listing with
retries, streams that decompress, fail as :class:`~csvpg.errors.SourceError` and check
at their end that they read the file the listing described; names made safe. Not a
plugin: ``source_fsspec``, ``source_sftp`` and ``source_http`` build on it."""

from __future__ import annotations

import calendar
import contextlib
import functools
import io
import os
import posixpath
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, unquote

from csvpg.compression import codec_for
from csvpg.errors import CsvpgError, SourceError
from csvpg.interfaces import FileRef, Source
from csvpg.retry import ReadAgain, is_transient, pause

GLOB_CHARS = set("*?[")

#: Tries at listing (the plan): a dropped connection or a 5xx there is retried too.
LIST_RETRIES = 3
LIST_RETRY_DELAY = 0.5

#: Programming errors are bugs and keep their traceback; anything else a source raises
#: while reading is a failure of the source.
_BUGS = (TypeError, AttributeError, NameError, AssertionError, NotImplementedError)

_URL_USERINFO = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@?#\s]*):[^@/?#\s]*@", re.I)

T = TypeVar("T")


def without_password(url: str) -> str:
    """``scheme://user:pw@host/…`` → ``scheme://user@host/…`` (anywhere in the text)."""
    return _URL_USERINFO.sub(lambda m: f"{m['head']}{m['user']}@", url)


def safe_name(name: str, default: str = "file") -> str:
    """A remote file name fit to show and to name a table: its last part, with path
    separators, control characters and dot-only names taken out."""
    name = re.split(r"[/\\]", name.rstrip("/\\"))[-1]
    name = "".join(c if c.isprintable() else "_" for c in name).strip()
    return default if not name.strip(".") else name


def quote_path(path: str) -> str:
    """A remote path as it appears in a URL: readable, and unambiguous to parse back."""
    return "".join(c if c.isprintable() and c not in "%#?" else quote(c, safe="") for c in path)


def secret_option(key: str) -> bool:
    return bool(re.search(r"pass|secret|token|key|auth|credential", key, re.I))


def _is_bug(exc: BaseException) -> bool:
    return isinstance(exc, _BUGS) and not isinstance(exc, CsvpgError)


def _timestamp(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


class _Counted:
    """The transport's bytes under a decompressor, counted, so that the end of the
    stream can be checked against the size the listing gave."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return bytes(data)

    def drain(self) -> None:
        """Read what the decompressor left (a trailer it did not need): counted too."""
        while self.read(1 << 16):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


#: (size, mtime) of a file as its source sees it now, or None when it cannot tell.
Stat = Callable[[], "tuple[int | None, float | None] | None"]


class _Stream(io.RawIOBase):
    """A source stream as the engine reads it: decompressed, closed whole, and failing
    with a :class:`SourceError` (chained to the library's exception).

    At its end it checks that the file is the one listed: as many transport bytes as the
    listed size, and (where the source can look) the same size and mtime as listed. A
    short body or a file that changed while it was read fails the attempt, as a transient
    failure the engine retries, before anything of it is committed: so the manifest
    never records a size or checksum other than those of the bytes loaded."""

    def __init__(
        self,
        source: RemoteSource,
        ref: FileRef,
        outer: BinaryIO,
        inner: list[BinaryIO],
        *,
        seekable: bool,
        counted: _Counted | None = None,
        stat: Stat | None = None,
    ) -> None:
        self._source = source
        self._ref = ref
        self._outer = outer
        self._inner = inner
        self._seekable = seekable
        #: The transport's bytes, when they are not those of ``outer`` (decompressed).
        self._counted = counted
        self._stat = stat
        self._check_count = ref.size is not None
        self._count = 0
        self._checked = False
        #: The connection this stream reads on: its failure must not drop a newer one.
        self._generation = source.generation()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def _fail(self, exc: BaseException) -> CsvpgError:
        if _is_bug(exc):
            raise exc
        error = self._source.failure(exc, self._ref.url, "reading", self._generation)
        return error

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = self._outer.read(-1 if size is None else size)
        except Exception as exc:
            error = self._fail(exc)
            raise error from error.__cause__
        self._count += len(data)
        if not data and size != 0 and not self._checked:
            self._checked = True
            try:
                self._check_end()
            except Exception as exc:
                error = self._fail(exc)
                raise error from error.__cause__
        return bytes(data)

    def _check_end(self) -> None:
        """Raise when the bytes read are not the file the listing described."""
        ref, url = self._ref, self._ref.url
        if self._counted is not None:
            self._counted.drain()
        got = self._counted.count if self._counted is not None else self._count
        now = self._stat() if self._stat is not None else None
        if now is not None and _differs(now, (ref.size, ref.mtime)):
            raise changed(url, f"listed as {_said(ref.size, ref.mtime)}, now {_said(*now)}")
        if not self._check_count or ref.size is None or got == ref.size:
            return
        if got > ref.size:
            raise changed(url, f"{got} bytes read where the listing said {ref.size}")
        # Fewer bytes than listed: a cut connection (with or without a Content-Length),
        # or a file rewritten while it was read; never a complete file.
        lost = ReadAgain(f"the stream ended after {got} of {ref.size} bytes")
        raise SourceError(
            f"{url}: reading failed: {lost}",
            file=url,
            hint="a cut connection, or a file rewritten while it was read; csvpg retries it "
            "([run] max_retries)",
        ) from lost

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def seek(self, offset: int, whence: int = 0) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("this remote stream cannot seek")
        self._check_count = False  # a seek makes the byte count meaningless
        try:
            return int(self._outer.seek(offset, whence))
        except Exception as exc:
            error = self._fail(exc)
            raise error from error.__cause__

    def tell(self) -> int:
        return int(self._outer.tell()) if self._seekable else self._count

    def close(self) -> None:
        if self.closed:
            return
        for stream in (self._outer, *reversed(self._inner)):
            # A stream on a dropped connection cannot close cleanly; it is gone anyway.
            with contextlib.suppress(Exception):
                stream.close()
        super().close()


def _differs(now: tuple[int | None, float | None], listed: tuple[int | None, float | None]) -> bool:
    """A size or mtime known both times that is not the same."""
    return any(a is not None and b is not None and a != b for a, b in zip(now, listed, strict=True))


def _said(size: int | None, mtime: float | None) -> str:
    when = "?" if mtime is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(mtime))
    return f"{'?' if size is None else size} bytes, modified {when} UTC"


def changed(url: str, how: str) -> SourceError:
    """The file changed between its listing and the end of its read (it grew, or was
    rewritten): transient, so the engine reads it again."""
    error = SourceError(
        f"{url} changed while it was read ({how})",
        file=url,
        hint="csvpg retries it, and loads nothing of it until a read sees it whole; for "
        "files still being written into the folder, set [source] min_age = 60 (seconds "
        "since the last change) to leave them for the next run",
    )
    error.__cause__ = ReadAgain(how)
    return error


class RemoteSource(Source):
    """What every built-in source shares: listing with retries, ``.zip`` members,
    decompression, and errors as :class:`SourceError`.

    A subclass lists with :meth:`_list` (refs, each noted in :attr:`_paths` with the path
    its file system opens), opens with :meth:`_open_raw`, and may describe its failures
    better in :meth:`_describe`."""

    #: Whether the streams of :meth:`_open_raw` may seek (a ``.zip`` is read in place);
    #: else an archive is downloaded once to a temporary file.
    random_access = True

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url, options=options)
        #: FileRef.url → the path the file system opens.
        self._paths: dict[str, str] = {}
        #: FileRef.url of a zip member → (FileRef of the archive, member name).
        self._members: dict[str, tuple[FileRef, str]] = {}
        #: Strings never to show: passwords, passphrases, tokens.
        self._secrets: list[str] = []
        self._spooled: dict[str, str] = {}
        self._spool_lock = threading.Lock()
        self._spool_dir: tempfile.TemporaryDirectory[str] | None = None

    # -- to implement --------------------------------------------------------------

    def _list(self, pattern: str | None) -> list[FileRef]:
        raise NotImplementedError

    def _open_raw(self, ref: FileRef, path: str) -> BinaryIO:
        raise NotImplementedError

    def _describe(self, exc: BaseException, url: str, doing: str) -> SourceError | None:
        """A clearer error for ``exc`` than the generic one, or ``None``."""
        return None

    def _reset(self, generation: int | None = None) -> None:
        """Forget a connection that failed (the ``generation``-th, or the current one),
        so that the next call makes a new one."""

    def generation(self) -> int:
        """Counts the connections made: a stream remembers the one it reads on."""
        return 0

    # -- errors --------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        text = without_password(text)
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def failure(
        self, exc: BaseException, url: str, doing: str, generation: int | None = None
    ) -> CsvpgError:
        """``exc`` as a csvpg error chained to it; a transient one also drops the
        connection, so that a retry starts afresh."""
        if isinstance(exc, CsvpgError):
            error = exc
        else:
            error = self._describe(exc, url, doing) or self._generic(exc, url, doing)
            error.__cause__ = exc
        error.message = self.scrub(error.message)
        error.args = (error.message,)
        if error.hint:
            error.hint = self.scrub(error.hint)
        if is_transient(error):
            self._reset(generation)
        return error

    def _generic(self, exc: BaseException, url: str, doing: str) -> SourceError:
        text = str(exc).strip() or type(exc).__name__
        if isinstance(exc, FileNotFoundError):
            if doing == "listing":
                return SourceError(
                    f"source not found: {url}",
                    file=url,
                    hint="check [source] url (a relative path starts at the job file's folder)",
                )
            return SourceError(f"file disappeared before it was read: {url}", file=url)
        if isinstance(exc, PermissionError):
            return SourceError(f"permission denied {doing} {url}: {text}", file=url)
        if is_transient(exc):
            return SourceError(
                f"{url}: {doing} failed: {text}",
                file=url,
                hint="check that the source is reachable; csvpg retries dropped connections",
            )
        return SourceError(f"{url}: {doing} failed: {text}", file=url)

    def retrying(self, what: Callable[[], T], url: str, doing: str = "listing") -> T:
        """``what()``, tried again after a transient failure (the plan has no retries of
        its own)."""
        attempt = 0
        while True:
            try:
                return what()
            except Exception as exc:
                if _is_bug(exc):
                    raise
                error = self.failure(exc, url, doing)
                if attempt >= LIST_RETRIES or not is_transient(error):
                    raise error from error.__cause__
            time.sleep(pause(error, attempt, LIST_RETRY_DELAY)[0])
            attempt += 1

    # -- zip archives --------------------------------------------------------------

    def _zip_members(self, archive: FileRef) -> list[FileRef]:
        zf, raw = self._open_zip(archive)
        try:
            infos = zf.infolist()
        finally:
            zf.close()
            raw.close()
        refs = []
        for info in infos:
            member = info.filename
            parts = member.replace("\\", "/").split("/")
            if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
                continue
            url = f"{archive.url}#{quote_path(member)}"
            self._members[url] = (archive, member)
            refs.append(
                FileRef(
                    url=url,
                    name=safe_name(member),
                    size=info.file_size,
                    mtime=float(calendar.timegm((*info.date_time, 0, 0, 0))),
                )
            )
        return refs

    def _open_zip(self, archive: FileRef) -> tuple[zipfile.ZipFile, BinaryIO]:
        """The archive, read with random access, and the stream under it (to close)."""
        path = self._paths.get(archive.url) or self._path_of(archive.url)
        raw: BinaryIO | None = None
        if self.random_access and archive.url not in self._spooled:
            raw = self._open_raw(archive, path)
            if not _can_seek(raw):
                raw.close()
                raw = None
        if raw is None:
            raw = open(self._spool(archive, path), "rb")  # noqa: SIM115 - closed with the zip
        try:
            return zipfile.ZipFile(raw), raw
        except BaseException:
            raw.close()
            raise

    def _spool(self, archive: FileRef, path: str) -> str:
        """One local copy of an archive the remote cannot seek in, under a name of our
        own (the remote name never becomes a path)."""
        with self._spool_lock:
            if archive.url in self._spooled:
                return self._spooled[archive.url]
            if self._spool_dir is None:
                self._spool_dir = tempfile.TemporaryDirectory(prefix="csvpg-zip-")
            local = os.path.join(self._spool_dir.name, f"{len(self._spooled)}.zip")
            raw = self._open_raw(archive, path)
            try:
                with open(local, "wb") as out:
                    shutil.copyfileobj(raw, out, 1 << 20)
            finally:
                raw.close()
            self._spooled[archive.url] = local
            return local

    # -- opening -------------------------------------------------------------------

    def open(self, ref: FileRef) -> BinaryIO:
        try:
            return self._open(ref)
        except Exception as exc:
            if _is_bug(exc):
                raise
            error = self.failure(exc, ref.url, "opening")
            raise error from error.__cause__

    def _open(self, ref: FileRef) -> BinaryIO:
        member = self._members.get(ref.url) or _member_of(ref.url)
        if member is not None:
            archive, name = member
            zf, raw = self._open_zip(archive)
            try:
                opened: BinaryIO = zf.open(name)  # type: ignore[assignment]
            except BaseException:
                zf.close()
                raw.close()
                raise
            # zipfile checks a member's length and CRC itself.
            return _Stream(self, ref, opened, [raw, zf], seekable=False)  # type: ignore[list-item,return-value]
        codec = codec_for(ref.name)
        path = self._paths.get(ref.url) or self._path_of(ref.url)
        raw = self._open_raw(ref, path)
        codec = self._codec_after_transport(raw, codec)
        sized = ref if self._sized(raw) else replace(ref, size=None)
        stat = functools.partial(self._stat, path)
        if codec is None:
            return _Stream(self, sized, raw, [], seekable=_can_seek(raw), stat=stat)  # type: ignore[return-value]
        from fsspec.compression import compr

        counted = _Counted(raw)
        outer = compr[codec](counted, mode="rb")
        return _Stream(self, sized, outer, [raw], seekable=False, counted=counted, stat=stat)  # type: ignore[return-value]

    def _sized(self, raw: BinaryIO) -> bool:
        """Whether the bytes of ``raw`` are those the listing's size counts (not a body
        the transport decoded)."""
        return True

    def _stat(self, path: str) -> tuple[int | None, float | None] | None:
        """The file's size and mtime now, to compare with the listing's after reading;
        ``None`` when the source cannot look."""
        return None

    def _codec_after_transport(self, raw: BinaryIO, codec: str | None) -> str | None:
        """The codec still to apply once the transport decoded what it could."""
        return codec

    def _path_of(self, url: str) -> str:
        return url

    # -- after the load: delete or move (``[source] after_load``) ----------------------

    def _filesystem(self) -> Any:
        """The fsspec file system the files are on (a source that can remove them)."""
        raise NotImplementedError

    def _url_of(self, path: str) -> str:
        """The URL a file at ``path`` of :meth:`_filesystem` is listed with."""
        return path

    def _file_path(self, ref: FileRef) -> str:
        if ref.url in self._members or _member_of(ref.url) is not None:
            raise SourceError(
                f"{ref.url} is a member of a .zip archive: it cannot be moved or deleted alone",
                file=ref.url,
                hint='keep after_load = "keep" for zip archives',
            )
        return self._paths.get(ref.url) or self._path_of(ref.url)

    def remove(self, ref: FileRef) -> None:
        path = self._file_path(ref)
        self.retrying(lambda: self._filesystem().rm_file(path), ref.url, "deleting")

    def move(self, ref: FileRef, to: str) -> str:
        path = self._file_path(ref)
        if "://" in to:
            folder = self._path_of(to)
        elif to.startswith("/"):
            folder = to
        else:
            folder = posixpath.join(posixpath.dirname(path), to)
        folder = folder.rstrip("/") or "/"

        def move_once() -> str:
            fs = self._filesystem()
            fs.makedirs(folder, exist_ok=True)
            target = free_name(fs, folder, posixpath.basename(path))
            fs.mv(path, target)
            return target

        return self._url_of(self.retrying(move_once, ref.url, "moving"))

    # -- listing (last: the name `list` shadows the builtin below it) ----------------

    def list(self, pattern: str | None) -> list[FileRef]:
        refs = self.retrying(lambda: self._list(pattern), self.url)
        out: list[FileRef] = []
        for ref in refs:
            if is_zip(ref.name):
                out.extend(self.retrying(functools.partial(self._zip_members, ref), ref.url))
            else:
                out.append(ref)
        return sorted(out, key=lambda r: r.url)


def _member_of(url: str) -> tuple[FileRef, str] | None:
    """``…/bundle.zip#orders.csv`` → (the archive, the member), for a ref this source
    did not list itself."""
    archive, sep, member = url.rpartition("#")
    if not sep or not is_zip(archive) or not member:
        return None
    return FileRef(url=archive, name=safe_name(archive)), unquote(member)


def _can_seek(stream: Any) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def size_mtime(info: dict[str, Any]) -> tuple[int | None, float | None]:
    """An fsspec info dict's size and modification time."""
    return info.get("size"), _timestamp(info.get("mtime") or info.get("created"))


def stat_now(fs: Any, path: str) -> tuple[int | None, float | None] | None:
    """``path``'s size and mtime as the file system says now (not from its cache);
    ``None`` when it cannot say: a file moved away once read (its bytes were checked
    against the listed size), or a file system without ``info``."""
    with contextlib.suppress(Exception):
        fs.invalidate_cache(path)
    try:
        return size_mtime(fs.info(path))
    except (FileNotFoundError, NotImplementedError):
        return None


def list_infos(
    fs: Any, root: str, pattern: str | None, *, real_dirs: bool = False
) -> list[dict[str, Any]]:
    """Files (not directories) under ``root`` matching ``pattern``, as fsspec info dicts.

    With ``real_dirs`` (a local disk, SFTP: folders exist apart from their files), a
    folder that does not exist raises FileNotFoundError even with a pattern; on an
    object store an empty prefix is just an empty listing."""
    root = root.rstrip("/") or "/"
    if pattern:
        paths = fs.glob(posixpath.join(root, pattern), detail=True)
        if not paths and real_dirs and not GLOB_CHARS & set(root) and not fs.isdir(root):
            raise FileNotFoundError(root)
    elif GLOB_CHARS & set(root):
        paths = fs.glob(root, detail=True)
    elif fs.isdir(root):
        paths = {i["name"]: i for i in fs.ls(root, detail=True)}
    else:
        paths = {root: fs.info(root)}
    return [info for info in paths.values() if info.get("type", "file") != "directory"]


def free_name(fs: Any, folder: str, name: str) -> str:
    """``folder/name``, or ``folder/stem-1.ext``, ``-2`` … when a file has that name:
    a drop folder's ``orders.csv`` of every hour, archived in one folder a day."""
    stem, dot, ext = name.partition(".")
    candidate, n = posixpath.join(folder, name), 0
    while fs.exists(candidate):
        n += 1
        candidate = posixpath.join(folder, f"{stem}-{n}{dot}{ext}")
    return candidate
