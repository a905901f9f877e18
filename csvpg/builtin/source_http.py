"""``http://`` and ``https://`` sources, through aiohttp on fsspec's I/O loop.

A URL is one file, or, when it ends with ``/``, or ``[source] pattern`` is given and it
answers with HTML, an index page whose links are the files (matched by ``pattern``).
Only links on the same host and under the page's folder are followed: a link that
climbs out (``../x.csv``, ``%2e%2e/x.csv``) or leaves the host is ignored, so that
headers and tokens go nowhere else. Headers come from ``[source.options] headers``
(``Authorization = "Bearer ${TOKEN}"``); basic auth from ``username``/``password`` or the
URL. Files stream (one GET each); only a ``.zip`` is downloaded whole, to a temporary
file, since reading one needs random access.

fsspec's own HTTP file system turns a 401 or a 503 while it looks up a file into
``FileNotFoundError``; this source makes its requests itself, so that a 5xx, a 429 or a
dropped connection reaches the engine as the transient ``aiohttp`` error it is, and a
401, 403 or 404 as a :class:`SourceError` that says what to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import posixpath
import re
import weakref
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, BinaryIO
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from csvpg.builtin._remote import RemoteSource, safe_name, without_password
from csvpg.errors import SourceError
from csvpg.hookspecs import hookimpl
from csvpg.interfaces import FileRef, Source
from csvpg.options import Option

#: Requests at once when the links of an index page are looked up.
HEAD_CONCURRENCY = 8
_HTML = ("text/html", "application/xhtml+xml")
_TRANSPORT_GZIP = ("gzip", "x-gzip")
#: Headers whose values are never shown.
_SECRET_HEADER = re.compile(r"auth|token|key|secret|cookie|session|signature", re.I)
#: Query parameters whose values are never shown (signed URLs, tokens).
_SECRET_PARAM = re.compile(
    r"auth|token|key|secret|session|sig|credential|password|passwd|pwd", re.I
)


class _Links(HTMLParser):
    """The ``href`` of every ``<a>`` on a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            for key, value in attrs:
                if key.lower() == "href" and value:
                    self.links.append(value.strip())


def _masked_query(query: str) -> tuple[str, list[str]]:
    """The query with the values of credential parameters as ``***``, and those values."""
    if not query:
        return query, []
    out, hidden = [], []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and value and _SECRET_PARAM.search(unquote(key)):
            hidden += [value, unquote(value)]
            pair = f"{key}=***"
        out.append(pair)
    return "&".join(out), hidden


def _decoded_parts(path: str) -> list[str]:
    """The segments of a URL path, percent-decoded, split at ``/`` and ``\\`` too."""
    return unquote(path).replace("\\", "/").split("/")


class _Client:
    """One aiohttp session on fsspec's I/O loop, used from any thread."""

    def __init__(
        self, headers: dict[str, str], auth: tuple[str, str] | None, timeout: float
    ) -> None:
        from fsspec.asyn import get_loop

        self.loop = get_loop()
        self.headers = headers
        self.auth = auth
        self.timeout = timeout
        self._session: Any = None

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            _close_session(self.loop, session)

    def call(self, func: Any, *args: Any) -> Any:
        from fsspec.asyn import sync

        return sync(self.loop, func, *args)

    async def session(self) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self.headers,
                auth=aiohttp.BasicAuth(*self.auth) if self.auth else None,
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout, sock_read=self.timeout
                ),
            )
            weakref.finalize(self, _close_session, self.loop, self._session)
        return self._session

    async def request(self, method: str, url: str, allow: tuple[int, ...] = ()) -> Any:
        """The response (status checked; the body not yet read)."""
        import yarl

        session = await self.session()
        response = await session.request(method, yarl.URL(url, encoded=True))
        if response.status >= 400 and response.status not in allow:
            response.release()
            if response.status == 404:
                raise FileNotFoundError(url)
            response.raise_for_status()
        return response

    async def head(self, url: str) -> dict[str, str]:
        """A file's headers: HEAD, or a GET left unread when HEAD is not allowed."""
        # A URL signed for GET only (S3, GCS) answers HEAD with 403: ask with GET then.
        response = await self.request("HEAD", url, allow=(403, 405, 501))
        if response.status in (403, 405, 501):
            response.release()
            response = await self.request("GET", url)
        headers = dict(response.headers)
        response.release()
        return headers

    async def text(self, url: str) -> tuple[str, str, dict[str, str]]:
        """(content type, body as text when it is HTML, headers)."""
        response = await self.request("GET", url)
        try:
            kind = response.headers.get("Content-Type", "").partition(";")[0].strip().lower()
            body = await response.text(errors="replace") if kind in _HTML else ""
            return kind, body, dict(response.headers)
        finally:
            response.release()


def _close_session(loop: Any, session: Any) -> None:
    if loop is not None and loop.is_running():
        # Closing at exit: nothing to report to.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(session.close(), loop).result(1)


class _Body:
    """A response body as a blocking, forward-only stream."""

    def __init__(self, client: _Client, response: Any) -> None:
        self.client = client
        self.response = response
        self.encoding = response.headers.get("Content-Encoding", "").lower()
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer only at the end): one trip to the I/O loop per block."""

        async def read() -> bytes:
            content = self.response.content
            if size is None or size < 0:
                everything: bytes = await content.read()
                return everything
            parts, got = [], 0
            while got < size:
                part = await content.read(size - got)
                if not part:
                    break
                parts.append(part)
                got += len(part)
            return b"".join(parts)

        if size == 0:
            return b""
        result: bytes = self.client.call(read)
        return result

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True

        async def close() -> None:
            self.response.close()

        self.client.call(close)


class HttpSource(RemoteSource):
    """Files over HTTP(S): one URL, a list (``[source] urls``), or an index page."""

    schemes = ("http", "https")
    # aiohttp checks each body against its own Content-Length (ClientPayloadError when
    # it falls short); the stream checks it against the listing's (the HEAD's) too, so
    # that a body cut without one, or shorter than the HEAD said, is never complete.
    random_access = False
    options = {
        "headers": Option(
            dict, {}, item=str, help='e.g. headers = { Authorization = "Bearer ${TOKEN}" }'
        ),
        "username": Option(str, None, help="basic auth, with password"),
        "password": Option(str, None, help='e.g. password = "${HTTP_PASSWORD}"'),
        "timeout": Option((int, float), 60, help="seconds to connect, and between two reads"),
    }

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url, options=options)
        opts = {key: options.get(key, o.default) for key, o in self.options.items()}
        parts = urlsplit(url)
        if not parts.hostname:
            raise SourceError(f"URL without a host: {without_password(url)!r}", file=url)
        username = unquote(parts.username) if parts.username else opts["username"]
        password = unquote(parts.password) if parts.password is not None else opts["password"]
        netloc = parts.netloc.rpartition("@")[2]
        # Basic auth travels in the session, never in the URL shown or recorded; nor do
        # the values of a signed URL's credentials (?X-Amz-Signature=…, ?token=…).
        self._request_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        query, hidden = _masked_query(parts.query)
        self.url = urlunsplit((parts.scheme, netloc, parts.path or "/", query, ""))
        headers = {str(k): str(v) for k, v in opts["headers"].items()}
        self._secrets = [s for s in (password, *hidden) if s]
        for name, value in headers.items():
            if _SECRET_HEADER.search(name) and value.split():
                self._secrets += [value, value.split()[-1]]
        self._secrets = [s for s in self._secrets if len(s) >= 4]
        auth = (username or "", password or "") if username or password else None
        self.client = _Client(headers, auth, float(opts["timeout"]))

    # -- listing -------------------------------------------------------------------

    def close(self) -> None:
        self.client.close()

    def _list(self, pattern: str | None) -> list[FileRef]:
        if not urlsplit(self.url).path.endswith("/") and not pattern:
            headers = self.client.call(self.client.head, self._request_url)
            return [self._ref(self._request_url, headers)]
        kind, page, headers = self.client.call(self.client.text, self._request_url)
        if kind not in _HTML:
            # Not an index page: the URL is the file itself.
            ref = self._ref(self._request_url, headers)
            return [ref] if not pattern or fnmatch.fnmatchcase(ref.name, pattern) else []
        links = self._links(page, pattern)
        return list(self.client.call(self._head_all, links))

    def _links(self, page: str, pattern: str | None) -> list[str]:
        """The page's links to files under its folder (same scheme and host)."""
        parser = _Links()
        parser.feed(page)
        base = urlsplit(self.url)
        folder = base.path if base.path.endswith("/") else posixpath.dirname(base.path) + "/"
        found: list[str] = []
        for href in parser.links:
            link = urlsplit(urljoin(self.url, href))
            if (link.scheme, link.netloc) != (base.scheme, base.netloc) or link.query:
                continue
            if link.username or link.password:
                continue
            path = link.path
            if not path.startswith(folder) or path.endswith("/") or path == base.path:
                continue
            rel = path[len(folder) :]
            parts = _decoded_parts(rel)
            # Encoded or not, a path that climbs (or hides) is not a file of this index.
            if any(p in ("", ".", "..") for p in parts) or any(
                not c.isprintable() for c in unquote(rel)
            ):
                continue
            name = unquote(rel)
            if pattern and not fnmatch.fnmatchcase(
                name if "/" in pattern else posixpath.basename(name), pattern
            ):
                continue
            url = urlunsplit((link.scheme, link.netloc, path, "", ""))
            if url not in found:
                found.append(url)
        return found

    async def _head_all(self, urls: list[str]) -> list[FileRef]:
        gate = asyncio.Semaphore(HEAD_CONCURRENCY)

        async def one(url: str) -> FileRef:
            async with gate:
                return self._ref(url, await self.client.head(url))

        return list(await asyncio.gather(*(one(u) for u in urls)))

    def _ref(self, url: str, headers: dict[str, str]) -> FileRef:
        size = headers.get("Content-Length")
        encoded = headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        modified = headers.get("Last-Modified")
        mtime = None
        if modified:
            try:
                mtime = parsedate_to_datetime(modified).timestamp()
            except (TypeError, ValueError):
                mtime = None
        parts = urlsplit(url)
        shown = urlunsplit(parts._replace(query=_masked_query(parts.query)[0]))
        self._paths[shown] = url
        return FileRef(
            url=shown,
            name=safe_name(unquote(parts.path)),
            size=int(size) if size and size.isdigit() and not encoded else None,
            mtime=mtime,
        )

    # -- opening -------------------------------------------------------------------

    def _path_of(self, url: str) -> str:
        # A fresh source reopening its own URL, whose credentials the ref does not show.
        return self._request_url if url == self.url else url

    def _open_raw(self, ref: FileRef, path: str) -> BinaryIO:
        response = self.client.call(self.client.request, "GET", path)
        return _Body(self.client, response)  # type: ignore[return-value]

    def _sized(self, raw: BinaryIO) -> bool:
        # A body aiohttp decoded (Content-Encoding) is longer than any length sent.
        return getattr(raw, "encoding", "") in ("", "identity")

    def _codec_after_transport(self, raw: BinaryIO, codec: str | None) -> str | None:
        # A server that sends "x.csv.gz" with Content-Encoding: gzip has aiohttp unzip it.
        if codec == "gzip" and getattr(raw, "encoding", "") in _TRANSPORT_GZIP:
            return None
        return codec

    # -- what went wrong -----------------------------------------------------------

    def _describe(self, exc: BaseException, url: str, doing: str) -> SourceError | None:
        status = getattr(exc, "status", None)
        reason = getattr(exc, "message", "") or ""
        if type(exc).__module__.split(".")[0] != "aiohttp":
            if isinstance(exc, FileNotFoundError):
                return SourceError(
                    f"{url}: HTTP 404 Not Found",
                    file=url,
                    hint="check the URL" + (" and [source] pattern" if doing == "listing" else ""),
                )
            return None
        if status in (401, 403):
            sent = ", ".join(sorted(self.client.headers)) or "no headers"
            auth = " and basic auth" if self.client.auth else ""
            return SourceError(
                f"{url}: HTTP {status} {reason}: the server refused the request "
                f"(sent {sent}{auth})",
                file=url,
                hint="send credentials with [source.options] "
                'headers = { Authorization = "Bearer ${TOKEN}" } (or username and password '
                "for basic auth), and check that the token is valid for this URL",
            )
        if status is not None and (status >= 500 or status == 429):
            return SourceError(
                f"{url}: HTTP {status} {reason} while {doing}",
                file=url,
                hint="the server is busy or failing; csvpg retries ([run] max_retries)",
            )
        if status is not None:
            return SourceError(f"{url}: HTTP {status} {reason} while {doing}", file=url)
        text = str(exc).strip() or type(exc).__name__
        return SourceError(
            f"{url}: {doing} failed: {text}",
            file=url,
            hint="check that the server is reachable; csvpg retries dropped connections",
        )


@hookimpl
def register_sources() -> list[type[Source]]:
    return [HttpSource]
