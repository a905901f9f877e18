"""Answers stored per (endpoint, model, prompt hash): inferring the same file again asks nobody.

One JSON file per chunk's answer under ``llm-cache/`` in csvpg's data folder
(``$CSVPG_HOME`` or the platform's user data folder, as the embedded PostgreSQL uses),
or under ``$CSVPG_LLM_CACHE``; ``CSVPG_LLM_CACHE=off`` turns it off. The prompt holds
the sampled values, so a changed file or a new :data:`~csvpg_llm.prompt.PROMPT_VERSION`
is a new key. Files hold the validated answer only (no key, no sample values).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("csvpg.llm")

OFF = ("off", "0", "no", "false")


def folder(env: dict[str, str]) -> Path | None:
    """Where answers are stored, or ``None`` when ``CSVPG_LLM_CACHE`` turns it off."""
    configured = env.get("CSVPG_LLM_CACHE", "").strip()
    if configured.lower() in OFF:
        return None
    if configured:
        return Path(configured).expanduser()
    from csvpg.embedded import home  # the same root as csvpg's own data

    return home() / "llm-cache"


def key(endpoint: str, model: str, messages: list[dict[str, str]]) -> str:
    prompt = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
    return hashlib.sha256(json.dumps([endpoint, model, prompt]).encode()).hexdigest()


class Cache:
    def __init__(self, root: Path | None) -> None:
        self.root = root

    def get(self, name: str) -> Any:
        if self.root is None:
            return None
        try:
            return json.loads((self.root / f"{name}.json").read_text(encoding="utf-8"))["answer"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("csvpg-llm: cache entry %s unreadable (%s): asking again", name, exc)
            return None

    def put(self, name: str, answer: Any, about: dict[str, Any]) -> None:
        if self.root is None:
            return
        text = json.dumps({**about, "answer": answer}, ensure_ascii=False, indent=1)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: a parallel chunk or run never reads half a file.
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(tmp, self.root / f"{name}.json")
        except OSError as exc:
            log.info("csvpg-llm: cannot store the answer in %s (%s)", self.root, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
