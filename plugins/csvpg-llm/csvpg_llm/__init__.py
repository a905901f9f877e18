"""csvpg-llm: column types for ``csvpg infer`` from an OpenAI-compatible chat endpoint.

Implements the ``infer_column_types`` hook. The columns go to ``$CSVPG_LLM_URL`` in
chunks (related columns together), a few chunks at a time; each chunk's answer gives,
per column, a type, whether it may be null, a confidence and a one-line reasoning.
csvpg checks every proposal against the whole sample, column by column, and keeps its
own heuristic where a proposed type does not take every value. 429s, 5xx and timeouts
are retried within a time budget; a chunk that gets no usable answer leaves its columns
to the heuristic (one warning, one ``--explain`` line). Answers are cached. See
:mod:`csvpg_llm.client` for the environment variables, :mod:`csvpg_llm.prompt` for the
prompt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from csvpg import hookimpl
from csvpg.infer.families import plural
from csvpg_llm.cache import Cache, key
from csvpg_llm.client import Client, Config, LlmError, safe_url
from csvpg_llm.prompt import (
    PROMPT_VERSION,
    Answer,
    AnswerError,
    chunks,
    column_facts,
    file_facts,
    messages,
    parse,
    stored,
)

__version__ = "0.1.0"
__all__ = ["Client", "Config", "LlmError", "infer_column_types"]

log = logging.getLogger("csvpg.llm")


@hookimpl
def infer_column_types(
    headers: list[str],
    samples: list[list[str | None]],
    hints: dict[str, Any],
    use_cache: bool,
    notes: list[str],
) -> dict[str, dict[str, Any]] | None:
    try:
        config = Config.from_env()
    except LlmError as exc:
        _say(notes, logging.WARNING, f"csvpg-llm: {exc}; csvpg's heuristic decides")
        return None
    if config is None:
        return None  # not configured: say nothing, ask nobody
    return Inference(config, use_cache=use_cache).propose(headers, samples, hints, notes) or None


def _say(notes: list[str], level: int, line: str) -> None:
    """One line, in the log and in ``--explain``."""
    log.log(level, "%s", line)
    notes.append(line)


@dataclass
class _Chunk:
    number: int
    names: list[str]
    answers: dict[str, Answer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cached: bool = False

    @property
    def label(self) -> str:
        names = self.names
        shown = ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]}"
        return f"chunk {self.number} ({shown})"

    def say(self, level: int, line: str) -> None:
        _say(self.notes, level, f"csvpg-llm: {self.label}: {line}")


class Inference:
    """One file's columns, asked for in chunks, a few at a time."""

    def __init__(self, config: Config, *, use_cache: bool = True) -> None:
        self.config = config
        self.client = Client(config)
        self.cache = Cache(config.cache if use_cache else None)
        #: Set when asking again is pointless (a 401, no route): later chunks are not sent.
        self.stopped: str | None = None
        self.deadline = 0.0

    def propose(
        self,
        headers: Sequence[str],
        samples: Sequence[Sequence[str | None]],
        hints: dict[str, Any],
        notes: list[str],
    ) -> dict[str, dict[str, Any]]:
        facts = column_facts(headers, samples, hints, self.config.values)
        file = file_facts(hints, len(samples))
        parts = chunks(headers, self.config.chunk)
        self.deadline = time.monotonic() + self.config.budget
        todo = [
            (_Chunk(n, [headers[i] for i in part]), [facts[i] for i in part])
            for n, part in enumerate(parts, 1)
        ]
        workers = max(1, min(self.config.parallel, len(todo)))
        with ThreadPoolExecutor(workers, thread_name_prefix="csvpg-llm") as pool:
            done = list(pool.map(lambda job: self._ask(job[0], job[1], file), todo))
        answered = [c for c in done if c.answers]
        cached = sum(c.cached for c in done)
        _say(
            notes,
            logging.INFO,
            f"csvpg-llm: asked {self.client.where} about {len(headers)} columns in "
            f"{plural(len(done), 'chunk')} of up to {self.config.chunk}, {workers} at a time: "
            f"{len(answered)} answered ({cached} from the cache), "
            f"{len(done) - len(answered)} left to the heuristic",
        )
        by = f"llm {self.config.model}"
        proposals: dict[str, dict[str, Any]] = {}
        for chunk in done:
            notes.extend(chunk.notes)
            proposals.update({n: a.proposal(by) for n, a in chunk.answers.items()})
        return proposals

    def _ask(self, chunk: _Chunk, columns: list[dict[str, Any]], file: dict[str, Any]) -> _Chunk:
        sent = messages(file, columns)
        name = key(safe_url(self.config.url), self.config.model, sent)
        chunk.answers = stored(self.cache.get(name), chunk.names)
        if chunk.answers:
            chunk.cached = True
            return chunk
        if self.stopped:
            self._fallback(chunk, f"not asked after {self.stopped}")
            return chunk
        try:
            content = self.client.complete(
                sent, chunk.names, self.deadline, lambda line: chunk.say(logging.INFO, line)
            )
            chunk.answers = parse(content, chunk.names)
        except LlmError as exc:
            if exc.stops:
                self.stopped = self.stopped or str(exc)
            self._fallback(chunk, str(exc))
            return chunk
        except AnswerError as exc:
            self._fallback(chunk, str(exc))
            return chunk
        if not chunk.answers:
            self._fallback(chunk, "the answer names none of its columns with a type")
            return chunk
        missing = [n for n in chunk.names if n not in chunk.answers]
        if missing:
            chunk.say(logging.INFO, f"no type for {', '.join(missing)}: the heuristic decides")
        about = {"prompt_version": PROMPT_VERSION, "model": self.config.model}
        self.cache.put(name, {n: a.stored() for n, a in chunk.answers.items()}, about)
        return chunk

    def _fallback(self, chunk: _Chunk, why: str) -> None:
        chunk.say(
            logging.WARNING,
            f"no usable answer from {self.client.where} ({self.client.clean(why)}); "
            "csvpg's heuristic decides its "
            + (f"{len(chunk.names)} columns" if len(chunk.names) > 1 else "column"),
        )
