"""``[sink] mode = "webhook"``: each record (or batches of them) as JSON to a URL.

    [sink]
    mode = "webhook"
    [sink.options]
    url = "https://hooks.example.com/contacts"
    rate_per_second = 5          # requests a second (0: no limit), shared by the job's files
    burst = 10                   # requests that may go at once after a quiet spell
    batch_size = 1               # 1: one JSON object per request; more: a JSON array
    headers = { Authorization = "Bearer ${HOOK_TOKEN}" }   # values are never logged
    max_retries = 3              # after the first try, on 5xx, 429, 408 and connection errors

Delivery is at least once: a file that fails after some requests went out sends them
again on the next run. Records the endpoint refuses (4xx) or that still fail after the
retries are set aside as rejects — the record as sent, and why.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit, urlunsplit

from csvpg import LoadInput, LoadResult, Option, Reject, Sink, SinkError, SpecError
from csvpg.rates import Rate, rate_for
from csvpg.retry import parse_retry_after
from csvpg_records.ratelimit import shared_bucket

log = logging.getLogger("csvpg_records")

#: Worth another try: a timeout, too early, too many requests, a server error.
RETRY_STATUSES = frozenset({408, 425, 429}) | frozenset(range(500, 600))
#: The longest pause between tries, whatever the backoff or Retry-After say.
MAX_PAUSE = 60.0


def safe_url(url: str) -> str:
    """The URL as it may appear in messages: no user, password or query (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class FailedRecord:
    """A record the endpoint did not take; it becomes a row of ``csvpg.rejects``."""

    #: 1-based position among the file's data records.
    record: int
    reason: str
    #: The record as JSON, as it was sent.
    raw: str
    status: int | None
    attempts: int


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: urllib would turn a POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


@dataclass
class _Answer:
    ok: bool
    status: int | None
    reason: str
    retry_after: float | None = None

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRY_STATUSES


class WebhookSink(Sink):
    """Sends the file's records to a URL as JSON, rate-limited, with retries."""

    mode: ClassVar[str] = "webhook"
    needs_rows: ClassVar[bool] = True
    writes_table: ClassVar[bool] = False
    options: ClassVar[dict[str, Option]] = {
        "url": Option(str, help="the http(s) URL records are sent to"),
        "rate_per_second": Option(
            (int, float), default=0, help="requests a second for the whole job; 0: no limit"
        ),
        "burst": Option(int, default=1, help="requests that may go at once"),
        "batch_size": Option(int, default=1, help="records per request (more: a JSON array)"),
        "headers": Option(dict, default={}, item=str, help="extra request headers"),
        "max_retries": Option(int, default=3, help="tries after the first"),
        "retry_delay": Option((int, float), default=1.0, help="first backoff pause, seconds"),
        "timeout": Option((int, float), default=30.0, help="seconds to wait for an answer"),
        "method": Option(str, default="POST", choices=("POST", "PUT", "PATCH")),
        "give_up_after": Option(
            int, default=10, help="failed requests in a row that fail the file; 0: never"
        ),
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        url = settings["url"]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError(
                f"'sink.options.url' must be an http:// or https:// URL, not {safe_url(url)!r}",
                key="sink.options.url",
            )
        for key, low in (
            ("rate_per_second", 0),
            ("burst", 1),
            ("batch_size", 1),
            ("max_retries", 0),
            ("retry_delay", 0),
            ("give_up_after", 0),
        ):
            if settings[key] < low:
                raise SpecError(
                    f"'sink.options.{key}' must be {low} or more, not {settings[key]!r}",
                    key=f"sink.options.{key}",
                )
        if settings["timeout"] <= 0:
            raise SpecError(
                "'sink.options.timeout' must be more than 0", key="sink.options.timeout"
            )
        self.where = safe_url(url)
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": "csvpg-records/0.1",
            **settings["headers"],
        }
        if parts.username is not None or parts.password is not None:
            # urllib cannot send user:password@ itself: it becomes Basic authentication.
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            if not any(k.lower() == "authorization" for k in self.headers):
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                self.headers["Authorization"] = f"Basic {token}"
            url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        self.url: str = url
        #: The records of the last load the endpoint did not take (see :class:`FailedRecord`).
        self.failed: list[FailedRecord] = []
        self.requests = 0
        #: The rate this sink sends at: its run's shared one once it loads in a run
        #: (``PUT /runs/{run_id}/rate`` changes that one while it sends).
        self.rate: float | Rate = float(settings["rate_per_second"])

    # -- one request ---------------------------------------------------------------

    def _post(self, body: bytes) -> _Answer:
        request = urllib.request.Request(
            self.url, data=body, headers=self.headers, method=self.settings["method"]
        )
        try:
            with _opener.open(request, timeout=self.settings["timeout"]) as response:
                response.read()
                return _Answer(True, response.status, f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            with exc:
                return _Answer(
                    False,
                    exc.code,
                    f"HTTP {exc.code} {exc.reason}".strip(),
                    parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None),
                )
        except (OSError, http.client.HTTPException, ValueError) as exc:  # unreachable, timeout …
            reason = getattr(exc, "reason", None) or exc
            return _Answer(False, None, f"cannot reach {self.where}: {reason}")

    def _pause(self, attempt: int, answer: _Answer) -> float:
        backoff: float = self.settings["retry_delay"] * 2**attempt * random.uniform(1.0, 1.25)
        return min(MAX_PAUSE, max(backoff, answer.retry_after or 0.0))

    def deliver(self, body: bytes) -> tuple[_Answer, int]:
        """Send one request, with retries; returns the last answer and the tries made."""
        bucket = shared_bucket(self.url, self.rate, self.settings["burst"])
        attempt = 0
        while True:
            bucket.take()
            self.requests += 1
            answer = self._post(body)
            if answer.ok or not answer.retryable or attempt >= self.settings["max_retries"]:
                return answer, attempt + 1
            pause = self._pause(attempt, answer)
            log.info(
                "webhook %s: %s; try %d of %d in %.2f s",
                self.where,
                answer.reason,
                attempt + 2,
                self.settings["max_retries"] + 1,
                pause,
            )
            time.sleep(pause)
            attempt += 1

    # -- a file ----------------------------------------------------------------------

    def _chunks(self, load: LoadInput) -> Iterator[list[dict[str, str | None]]]:
        names = [c.name for c in load.relation.columns]
        size = self.settings["batch_size"]
        chunk: list[dict[str, str | None]] = []
        for row in load.rows():
            chunk.append(dict(zip(names, row, strict=True)))
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def send_test(self, record: dict[str, Any]) -> dict[str, Any]:
        """One record sent as a load would send it (headers, retries, rate), marked with
        ``X-Csvpg-Test: 1``; what became of it (``POST /jobs/{name}/test-record``)."""
        self.headers = {**self.headers, "X-Csvpg-Test": "1"}
        payload: Any = record if self.settings["batch_size"] == 1 else [record]
        answer, tries = self.deliver(json.dumps(payload, ensure_ascii=False).encode())
        return {
            "url": self.where,
            "delivered": answer.ok,
            "http_status": answer.status,
            "reason": answer.reason,
            "attempts": tries,
        }

    def load(self, conn: Any, load: LoadInput) -> LoadResult:
        self.failed = []
        if load.run_id is not None:  # every file of the run sends at the run's one rate
            self.rate = rate_for(load.run_id, float(self.settings["rate_per_second"]))
        if load.dry_run:
            rows = sum(len(chunk) for chunk in self._chunks(load))
            return LoadResult(rows=rows, inserted=rows)
        sent = delivered = in_a_row = 0
        single = self.settings["batch_size"] == 1
        give_up = self.settings["give_up_after"]
        for chunk in self._chunks(load):
            first = sent + 1
            sent += len(chunk)
            payload: Any = chunk[0] if single else chunk
            answer, tries = self.deliver(json.dumps(payload, ensure_ascii=False).encode())
            if answer.ok:
                delivered += len(chunk)
                in_a_row = 0
                continue
            in_a_row += 1
            how = f"after {tries} tries" if tries > 1 else "not retried"
            for i, record in enumerate(chunk):
                self.failed.append(
                    FailedRecord(
                        record=first + i,
                        reason=f"{answer.reason} ({how})",
                        raw=json.dumps(record, ensure_ascii=False),
                        status=answer.status,
                        attempts=tries,
                    )
                )
            if give_up and in_a_row >= give_up:
                raise SinkError(
                    f"{load.ref.url}: {self.where} failed {in_a_row} requests in a row "
                    f"(last: {answer.reason}); {delivered} of {sent} records were delivered",
                    file=load.ref.url,
                    hint="check the endpoint; delivery is at least once, so a new run sends "
                    "this file's records again",
                )
        log.info(
            "webhook %s: %s: %d of %d records delivered in %d requests",
            self.where,
            load.ref.name,
            delivered,
            sent,
            self.requests,
        )
        return self.result(load, sent, delivered)

    def result(self, load: LoadInput, sent: int, delivered: int) -> LoadResult:
        """Counts, and the failed records handed to the engine as rejects (the row path
        knows no physical line numbers: the reason names the record)."""
        rejects = [
            Reject(line=None, reason=f"record {f.record}: {f.reason}", raw=f.raw)
            for f in self.failed
        ]
        return LoadResult(rows=sent, inserted=delivered, rejects=rejects)
