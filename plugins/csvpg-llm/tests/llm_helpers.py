"""Canned chat completions and a direct call of the hook, for the csvpg-llm tests."""

from __future__ import annotations

import json
from typing import Any

from csvpg_llm import infer_column_types

KEY = "sk-test-0123456789abcdef"


def completion(content: str) -> bytes:
    """A chat completion whose one message says ``content``."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "test-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


def sent_columns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns a request asked about (the user message's ``columns``)."""
    return json.loads(body["messages"][1]["content"])["columns"]


def typed(body: dict[str, Any], pgtype: str = "integer", confidence: float = 0.9) -> bytes:
    """An answer in the schema's shape giving every asked column ``pgtype``."""
    columns = [
        {
            "name": c["name"],
            "type": pgtype,
            "nullable": False,
            "confidence": confidence,
            "reasoning": "whole numbers",
        }
        for c in sent_columns(body)
    ]
    return completion(json.dumps({"columns": columns}))


def ask(
    headers: list[str],
    samples: list[list[str | None]],
    hints: dict[str, Any] | None = None,
    *,
    use_cache: bool = True,
) -> tuple[dict[str, str] | None, list[str]]:
    """The hook called as csvpg calls it: (column → proposed type, the notes)."""
    notes: list[str] = []
    got = infer_column_types(
        headers=headers, samples=samples, hints=hints or {}, use_cache=use_cache, notes=notes
    )
    return (None if got is None else {k: v["type"] for k, v in got.items()}), notes
