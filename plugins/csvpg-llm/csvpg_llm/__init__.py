"""csvpg-llm: column types for ``csvpg infer`` from an OpenAI-compatible chat endpoint.

Implements the ``infer_column_types`` hook: the column names and a few sampled values
go to ``$CSVPG_LLM_URL`` (``/chat/completions``, which OpenAI, Gemini and local servers
such as llama.cpp, vLLM or Ollama speak); the answer is a proposal that csvpg checks
against the whole sample, column by column, keeping its own heuristic where a proposed
type does not take every value. A timeout, an error or an answer that is not JSON logs
one warning and leaves every column to the heuristic. See :mod:`csvpg_llm.client` for
the environment variables.
"""

from __future__ import annotations

import logging

from csvpg import hookimpl
from csvpg_llm.client import Client, Config, LlmError

__version__ = "0.1.0"
__all__ = ["Client", "Config", "LlmError", "infer_column_types"]

log = logging.getLogger("csvpg_llm")


@hookimpl
def infer_column_types(
    headers: list[str], samples: list[list[str | None]]
) -> dict[str, str] | None:
    try:
        config = Config.from_env()
    except LlmError as exc:
        log.warning("csvpg-llm: %s; csvpg's heuristic decides", exc)
        return None
    if config is None:
        return None  # not configured: say nothing, ask nobody
    client = Client(config)
    try:
        types = client.ask(headers, samples)
    except LlmError as exc:
        log.warning(
            "csvpg-llm: no usable answer from %s (%s); csvpg's heuristic decides",
            client.where,
            exc,
        )
        return None
    log.info("csvpg-llm: %s proposed %d of %d column types", client.where, len(types), len(headers))
    return types or None
