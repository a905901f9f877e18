"""Webhooks: when a run ends, POST its summary to the URLs a job (or ``--callback-url``)
names. A webhook that keeps failing is recorded with the run; it never fails the load.

The body is the run's JSON summary. With a shared ``secret``, the header
``X-Csvpg-Signature: sha256=<hex>`` carries the HMAC-SHA256 of the body, so the
receiver can check that csvpg sent it: ``hmac.compare_digest(expected, received)``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from csvpg.masking import mask_text
from csvpg.options import Option
from csvpg.retry import backoff

#: What a [[notify]] entry takes.
NOTIFY: dict[str, Option] = {
    "url": Option(str, help='where to POST the summary, e.g. url = "https://n8n.example/hook"'),
    "on": Option(list, ["succeeded", "failed", "partial"], item=str),
    "headers": Option(dict, {}, item=str, help='e.g. headers = { Authorization = "Bearer ${T}" }'),
    "secret": Option(str, None, help="shared secret for the HMAC-SHA256 signature header"),
    "timeout": Option((int, float), 10.0),
    "max_retries": Option(int, 3),
    "retry_delay": Option((int, float), 1.0),
}

STATUSES = ("succeeded", "failed", "partial", "cancelled")
SIGNATURE_HEADER = "X-Csvpg-Signature"
#: 4xx answers worth another try. 409: n8n's Wait node answers it ("the execution is
#: running already") to a callback that arrives before the workflow reached the node.
RETRY_STATUSES = (408, 409, 425, 429)


@dataclass
class Webhook:
    url: str
    on: list[str] = field(default_factory=lambda: ["succeeded", "failed", "partial"])
    headers: dict[str, str] = field(default_factory=dict)
    secret: str | None = None
    timeout: float = 10.0
    max_retries: int = 3
    retry_delay: float = 1.0


@dataclass
class Delivery:
    url: str  # masked
    status: str  # delivered | failed | skipped
    attempts: int
    http_status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def masked(deliveries: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Deliveries as they may be shown: the URL and error masked, also in a history row
    written before csvpg masked them (``csvpg runs``, ``GET /runs/{id}``)."""
    return [
        {
            k: mask_text(v) if k in ("url", "error") and isinstance(v, str) else v
            for k, v in d.items()
        }
        for d in deliveries or []
    ]


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(hook: Webhook, summary: dict[str, Any]) -> Delivery:
    """POST ``summary`` to one webhook, retrying 5xx, 408, 409, 425, 429 and dropped
    connections."""
    shown = mask_text(hook.url)
    if summary.get("status") not in hook.on:
        return Delivery(shown, "skipped", 0)
    if urllib.parse.urlsplit(hook.url).scheme.lower() not in ("http", "https"):
        return Delivery(shown, "failed", 0, error="not an http:// or https:// URL")
    body = json.dumps(summary, ensure_ascii=False, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "csvpg", **hook.headers}
    if hook.secret:
        headers[SIGNATURE_HEADER] = signature(hook.secret, body)
    error: str | None = None
    status: int | None = None
    attempt = 0
    for attempt in range(1, hook.max_retries + 2):
        request = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout) as answer:
                return Delivery(shown, "delivered", attempt, answer.status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code not in RETRY_STATUSES:
                break  # the receiver refused it: trying again will not help
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # A dropped connection, a timeout, or an answer that is not HTTP.
            status, error = None, str(getattr(exc, "reason", exc)) or type(exc).__name__
        except ValueError as exc:  # a URL urllib cannot use: trying again will not help
            status, error = None, str(exc)
            break
        if attempt <= hook.max_retries:
            time.sleep(backoff(attempt - 1, hook.retry_delay))
    return Delivery(shown, "failed", attempt, status, mask_text(error) if error else None)
