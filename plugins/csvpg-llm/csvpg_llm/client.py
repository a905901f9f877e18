"""Talks to an OpenAI-compatible ``/chat/completions`` endpoint: settings, retries, formats.

Configured by the environment, read on every ``csvpg infer``:

``CSVPG_LLM_URL``          the API base, as ``OPENAI_BASE_URL`` takes it: ``…/v1`` (OpenAI,
                           llama.cpp, vLLM, Ollama), ``…/v1beta/openai`` (Gemini),
                           ``…/openai/deployments/<name>`` (Azure OpenAI); a URL without a
                           path gets ``/v1``; one ending in ``/chat/completions`` is used
                           as it is. Unset: the plugin stays silent.
``CSVPG_LLM_MODEL``        the model name (required, except for an Azure deployment URL)
``CSVPG_LLM_API_KEY``      the key; never logged
``CSVPG_LLM_KEY_HEADER``   the header that carries it: ``Authorization`` (as ``Bearer …``,
                           the default) or another, e.g. ``api-key`` (the default for
                           ``*.azure.com`` hosts), which gets the key as it is
``CSVPG_LLM_API_VERSION``  added as ``?api-version=…`` (Azure OpenAI)
``CSVPG_LLM_HEADERS``      extra headers, a JSON object; their values are never logged
``CSVPG_LLM_TIMEOUT``      seconds to wait for one request to connect or send (default 30)
``CSVPG_LLM_BUDGET``       seconds all requests and retries of one file may take (120)
``CSVPG_LLM_BACKOFF``      the first retry's wait in seconds, doubled each time (1)
``CSVPG_LLM_CHUNK``        columns per request (default 20)
``CSVPG_LLM_PARALLEL``     requests at a time (default 4)
``CSVPG_LLM_VALUES``       distinct sample values sent per column (default 20)
``CSVPG_LLM_FORMAT``       ``json_schema`` (default), ``json_object`` or ``none``: what
                           ``response_format`` asks first; a server that refuses it (HTTP
                           400/422) is asked again with the next
``CSVPG_LLM_CACHE``        the answers' folder (default ``llm-cache`` in csvpg's data
                           folder), or ``off``

Sample values leave the machine: point it at a local server for data that must not.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from csvpg import retry
from csvpg_llm import cache
from csvpg_llm.prompt import schema

log = logging.getLogger("csvpg.llm")

#: What ``response_format`` asks for, from the strictest; a 400 steps to the next.
FORMATS = ("json_schema", "json_object", "none")
#: The longest wait between two tries, whatever the backoff has grown to.
MAX_WAIT = 30.0
_AZURE = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")


class LlmError(Exception):
    """No usable answer; the message never holds the API key.

    ``stops``: asking again (for another chunk) would fail the same way (a 401, an
    unreachable host), so the chunks not asked yet are not asked.
    """

    def __init__(self, message: str, *, stops: bool = False) -> None:
        super().__init__(message)
        self.stops = stops


def safe_url(url: str) -> str:
    """The URL without user, password or query (a key may live there)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def endpoint(base: str, api_version: str | None = None) -> str:
    """``CSVPG_LLM_URL`` → the chat completions URL."""
    base = base.strip()
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = (path or "/v1") + "/chat/completions"
    query = parts.query
    if api_version:
        pairs = [(k, v) for k, v in parse_qsl(query) if k != "api-version"]
        query = urlencode([*pairs, ("api-version", api_version)])
    return urlunsplit(parts._replace(path=path, query=query))


def _azure_deployment(url: str) -> str | None:
    parts = urlsplit(url).path.strip("/").split("/")
    if "deployments" in parts[:-1]:
        return parts[parts.index("deployments") + 1]
    return None


def _number(env: dict[str, str], name: str, default: float, low: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise LlmError(f"{name} must be a number, not {raw!r}") from None
    return max(value, low)


def _headers(raw: str) -> dict[str, str]:
    if not raw.strip():
        return {}
    try:
        headers = json.loads(raw)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        # The values may be secrets: the message shows none of them.
        raise LlmError('CSVPG_LLM_HEADERS must be a JSON object of strings: {"Name": "value"}')
    return headers


@dataclass(frozen=True)
class Config:
    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    key_header: str = "Authorization"
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 30.0
    budget: float = 120.0
    backoff: float = 1.0
    chunk: int = 20
    parallel: int = 4
    values: int = 20
    response_format: str = "json_schema"
    cache: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config | None:
        """``None`` when ``CSVPG_LLM_URL`` is unset; a bad setting is an :class:`LlmError`."""
        env = dict(os.environ) if env is None else env
        base = env.get("CSVPG_LLM_URL", "").strip()
        if not base:
            return None
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LlmError(f"CSVPG_LLM_URL must be an http(s) URL, not {safe_url(base)!r}")
        if "@" in parts.netloc:
            raise LlmError(
                "CSVPG_LLM_URL must not hold a user or password; put the key in CSVPG_LLM_API_KEY"
            )
        url = endpoint(base, env.get("CSVPG_LLM_API_VERSION", "").strip() or None)
        model = env.get("CSVPG_LLM_MODEL", "").strip() or _azure_deployment(url) or ""
        if not model:
            raise LlmError("CSVPG_LLM_URL is set but CSVPG_LLM_MODEL is not")
        azure = parts.hostname.endswith(_AZURE)
        fmt = env.get("CSVPG_LLM_FORMAT", "").strip() or FORMATS[0]
        if fmt not in FORMATS:
            raise LlmError(f"CSVPG_LLM_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return cls(
            url=url,
            model=model,
            api_key=env.get("CSVPG_LLM_API_KEY") or None,
            key_header=env.get("CSVPG_LLM_KEY_HEADER", "").strip()
            or ("api-key" if azure else "Authorization"),
            headers=_headers(env.get("CSVPG_LLM_HEADERS", "")),
            timeout=_number(env, "CSVPG_LLM_TIMEOUT", 30, 0.1),
            budget=_number(env, "CSVPG_LLM_BUDGET", 120, 0.1),
            backoff=_number(env, "CSVPG_LLM_BACKOFF", 1, 0.0),
            chunk=int(_number(env, "CSVPG_LLM_CHUNK", 20, 1)),
            parallel=int(_number(env, "CSVPG_LLM_PARALLEL", 4, 1)),
            values=int(_number(env, "CSVPG_LLM_VALUES", 20, 1)),
            response_format=fmt,
            cache=cache.folder(env),
        )


def request_body(
    config: Config, messages: list[dict[str, str]], names: Sequence[str], fmt: str
) -> bytes:
    body: dict[str, Any] = {"model": config.model, "temperature": 0, "messages": messages}
    if fmt == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "column_types", "strict": True, "schema": schema(names)},
        }
    elif fmt == "json_object":
        body["response_format"] = {"type": "json_object"}
    return json.dumps(body, ensure_ascii=False).encode()


class Client:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.where = f"{config.model} at {safe_url(config.url)}"
        #: Index into FORMATS: the strictest the server took (shared by the chunks).
        self.format = FORMATS.index(config.response_format)

    def clean(self, text: str) -> str:
        """``text`` without the key or an extra header's value."""
        for secret in [self.config.api_key, *self.config.headers.values()]:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers.update(self.config.headers)
        key = self.config.api_key
        if key:
            bearer = self.config.key_header.lower() == "authorization"
            headers[self.config.key_header] = f"Bearer {key}" if bearer else key
        return headers

    def _post(self, body: bytes, timeout: float) -> Any:
        headers = self._request_headers()
        request = urllib.request.Request(self.config.url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise _HttpStatus(
                    exc.code,
                    f"HTTP {exc.code} {exc.reason}".strip(),
                    retry.parse_retry_after(exc.headers.get("Retry-After")),
                ) from None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, TimeoutError):
                within = f"{timeout:g} s"
                if timeout < self.config.timeout:
                    within = f"the {timeout:.1f} s left of the time budget"
                raise _Transient(f"no answer within {within}") from None
            if isinstance(reason, ConnectionResetError | http.client.HTTPException):
                raise _Transient(self.clean(f"the connection broke: {reason!r}")) from None
            raise LlmError(self.clean(f"cannot reach it: {reason}"), stops=True) from None
        try:
            return json.loads(raw)
        except ValueError:
            # No snippet: an answer may echo sampled values, and logs carry none.
            raise LlmError(f"the response is not JSON ({len(raw)} bytes)") from None

    def complete(
        self,
        messages: list[dict[str, str]],
        names: Sequence[str],
        deadline: float,
        say: Callable[[str], None],
    ) -> Any:
        """The answer's message content; 429, 5xx, timeouts and broken connections are
        tried again (each retry told to ``say``) until ``deadline`` (``time.monotonic``)."""
        attempt = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LlmError(f"the time budget of {self.config.budget:g} s is spent")
            fmt = self.format
            body = request_body(self.config, messages, names, FORMATS[fmt])
            try:
                data = self._post(body, min(self.config.timeout, left))
            except _HttpStatus as exc:
                if exc.status in (400, 422) and fmt < len(FORMATS) - 1:
                    # Some servers refuse response_format (or a schema): ask more plainly.
                    say(f"{exc.message} to response_format {FORMATS[fmt]}: asking with the next")
                    self.format = max(self.format, fmt + 1)
                    continue
                if exc.status != 429 and exc.status < 500:
                    raise LlmError(exc.message, stops=exc.status in (401, 403, 404)) from None
                wait = self._wait(exc.message, attempt, exc.retry_after, deadline)
            except _Transient as exc:
                wait = self._wait(str(exc), attempt, None, deadline)
            else:
                return _content(data)
            attempt += 1
            said = " as Retry-After asks" if wait.asked else ""
            say(f"{wait.why}; retry {attempt} in {wait.seconds:.1f} s{said}")
            time.sleep(wait.seconds)

    def _wait(self, why: str, attempt: int, asked: float | None, deadline: float) -> _Wait:
        """Exponential backoff with jitter, at least what ``Retry-After`` asks; an
        :class:`LlmError` when the wait would not end within the budget."""
        backoff = min(MAX_WAIT, retry.backoff(attempt, self.config.backoff))
        seconds = max(backoff, asked or 0.0)
        left = deadline - time.monotonic()
        if seconds >= left:
            spent = f"the time budget of {self.config.budget:g} s is spent"
            if asked is not None and asked >= left:
                spent = f"Retry-After asks {asked:g} s, more than the {max(left, 0):.1f} s left"
            raise LlmError(f"{why} after {attempt + 1} tries, and {spent}")
        return _Wait(why, seconds, asked is not None and asked >= backoff)


@dataclass(frozen=True)
class _Wait:
    why: str
    seconds: float
    asked: bool


def _content(data: Any) -> Any:
    try:
        return data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LlmError("the response has no choices[0].message.content") from None


class _HttpStatus(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class _Transient(Exception):
    """A timeout or a broken connection: worth another try."""
