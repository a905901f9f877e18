"""Asks an OpenAI-compatible ``/chat/completions`` endpoint for column types.

Configured by the environment, read on every call:

``CSVPG_LLM_URL``      the API base, as ``OPENAI_BASE_URL`` takes it: ``…/v1`` (OpenAI,
                       llama.cpp, vLLM, Ollama), ``…/v1beta/openai`` (Gemini); a URL
                       without a path gets ``/v1``; one ending in ``/chat/completions``
                       is used as it is. Unset: the plugin stays silent.
``CSVPG_LLM_MODEL``    the model name (required with the URL)
``CSVPG_LLM_API_KEY``  sent as ``Authorization: Bearer …``; never logged
``CSVPG_LLM_TIMEOUT``  seconds to wait for the server to connect or send (default 30)
``CSVPG_LLM_VALUES``   distinct sample values sent per column (default 20)

Sample values leave the machine: point it at a local server for data that must not.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("csvpg_llm")

#: Longest sample value sent, in characters.
MAX_VALUE = 64

SYSTEM = (
    "You are a PostgreSQL schema assistant. You get the columns of a CSV file, each with "
    "its name and sampled values (null values left out). For each column answer the "
    "narrowest PostgreSQL type that takes every sampled value as it is written: boolean, "
    "smallint, integer, bigint, numeric(p,s), double precision, date, time, timestamp, "
    "timestamptz, uuid, jsonb, inet, or text. Values with leading zeros (zip codes, phone "
    "numbers) are text. Answer with one JSON object only, mapping each column name to "
    'its type, e.g. {"id": "integer", "name": "text"}.'
)

# A type name as an answer may give it: words, an optional (p) or (p,s), time zone.
_TYPE = re.compile(r"[a-z][a-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?( with(out)? time zone)?(\[\])?")
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.S)


class LlmError(Exception):
    """No usable answer; the message never holds the API key."""


def safe_url(url: str) -> str:
    """The URL without user, password or query (a key may live there)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def endpoint(base: str) -> str:
    """``CSVPG_LLM_URL`` → the chat completions URL."""
    base = base.strip()
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        return base
    if not path:
        path = "/v1"
    return urlunsplit(parts._replace(path=path + "/chat/completions"))


@dataclass(frozen=True)
class Config:
    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    values: int = 20

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
        model = env.get("CSVPG_LLM_MODEL", "").strip()
        if not model:
            raise LlmError("CSVPG_LLM_URL is set but CSVPG_LLM_MODEL is not")
        try:
            timeout = float(env.get("CSVPG_LLM_TIMEOUT") or 30)
            values = int(env.get("CSVPG_LLM_VALUES") or 20)
        except ValueError as exc:
            raise LlmError(f"CSVPG_LLM_TIMEOUT / CSVPG_LLM_VALUES: {exc}") from None
        return cls(
            url=endpoint(base),
            model=model,
            api_key=env.get("CSVPG_LLM_API_KEY") or None,
            timeout=max(timeout, 0.1),
            values=max(values, 1),
        )


def columns_payload(
    headers: Sequence[str], samples: Sequence[Sequence[str | None]], per_column: int
) -> list[dict[str, Any]]:
    """Each column's name and up to ``per_column`` distinct non-null values, shortened."""
    out = []
    for i, name in enumerate(headers):
        seen: dict[str, None] = {}
        for row in samples:
            value = row[i] if i < len(row) else None
            if value is None:
                continue
            seen.setdefault(value[:MAX_VALUE], None)
            if len(seen) >= per_column:
                break
        out.append({"name": name, "values": list(seen)})
    return out


def request_body(config: Config, columns: list[dict[str, Any]], *, json_mode: bool) -> bytes:
    body: dict[str, Any] = {
        "model": config.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": json.dumps({"columns": columns}, ensure_ascii=False)},
        ],
    }
    if json_mode:
        body["response_format"] = {"type": "json_object"}
    return json.dumps(body, ensure_ascii=False).encode()


class Client:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.where = f"{config.model} at {safe_url(config.url)}"

    def _clean(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text

    def _post(self, body: bytes) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.config.api_key:
            headers["Authorization"] = f"Bearer {self.config.api_key}"
        request = urllib.request.Request(self.config.url, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                raise _HttpStatus(exc.code, f"HTTP {exc.code} {exc.reason}".strip()) from None
        except TimeoutError:
            raise LlmError(f"no answer within {self.config.timeout:g} s") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, TimeoutError):
                raise LlmError(f"no answer within {self.config.timeout:g} s") from None
            raise LlmError(self._clean(f"cannot reach it: {reason}")) from None
        try:
            return json.loads(raw)
        except ValueError:
            # No snippet: an answer may echo sampled values, and logs carry none.
            raise LlmError(f"the response is not JSON ({len(raw)} bytes)") from None

    def ask(
        self, headers: Sequence[str], samples: Sequence[Sequence[str | None]]
    ) -> dict[str, str]:
        columns = columns_payload(headers, samples, self.config.values)
        try:
            data = self._post(request_body(self.config, columns, json_mode=True))
        except _HttpStatus as exc:
            if exc.status != 400:
                raise LlmError(exc.message) from None
            # Some servers refuse response_format: ask once more without it.
            try:
                data = self._post(request_body(self.config, columns, json_mode=False))
            except _HttpStatus as again:
                raise LlmError(again.message) from None
        return self.parse(data, headers)

    def parse(self, data: Any, headers: Sequence[str]) -> dict[str, str]:
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LlmError("the response has no choices[0].message.content") from None
        if not isinstance(content, str):
            raise LlmError("the message content is not text")
        text = content.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        try:
            answer = json.loads(text)
        except ValueError:
            raise LlmError(
                f"the answer is not a JSON object ({len(content)} characters of text)"
            ) from None
        if isinstance(answer, dict) and isinstance(answer.get("columns"), (dict, list)):
            answer = answer["columns"]
        if isinstance(answer, list) and all(isinstance(a, dict) for a in answer):
            # [{"name": …, "type": …}, …]
            answer = {a.get("name"): a.get("type") for a in answer}
        if not isinstance(answer, dict):
            raise LlmError(f"the answer is a JSON {type(answer).__name__}, not an object")
        wanted = set(headers)
        types: dict[str, str] = {}
        for name, typ in answer.items():
            if name not in wanted or not isinstance(typ, str):
                log.debug("csvpg-llm: ignored %r = %r (no such column, or not a type)", name, typ)
                continue
            typ = " ".join(typ.lower().split())
            if not _TYPE.fullmatch(typ):
                log.debug("csvpg-llm: ignored %r = %r (not a type name)", name, typ)
                continue
            types[name] = typ
        return types


class _HttpStatus(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
