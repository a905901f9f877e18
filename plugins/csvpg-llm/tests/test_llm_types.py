"""csvpg-llm: proposals from a chat endpoint, checked by csvpg; failures fall back quietly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from csvpg_llm import infer_column_types
from csvpg_llm.client import Client, Config, LlmError, columns_payload, endpoint

from csvpg.infer import infer_file
from csvpg.plugins import get_plugin_manager

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


@pytest.fixture
def llm_env(monkeypatch, chat_server):
    monkeypatch.setenv("CSVPG_LLM_URL", chat_server.url)
    monkeypatch.setenv("CSVPG_LLM_MODEL", "test-model")
    monkeypatch.setenv("CSVPG_LLM_API_KEY", KEY)
    monkeypatch.setenv("CSVPG_LLM_TIMEOUT", "5")
    return chat_server


@pytest.fixture
def kunden(tmp_path: Path) -> Path:
    path = tmp_path / "kunden.csv"
    path.write_text(
        "Kunden Nr;Betrag;Name;PLZ\n1;1,50;Ada;01067\n2;20,25;Grace;80331\n3;;Linus;10115\n",
        encoding="utf-8",
    )
    return path


def answer(server, content: str) -> None:
    server.respond = lambda body: (200, completion(content), 0.0)


def columns(guess) -> dict[str, object]:
    return {c.name: c for c in guess.columns}


def test_proposals_that_fit_are_taken_the_rest_refused(llm_env, kunden, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    answer(
        llm_env,
        json.dumps({"kunden_nr": "BIGINT", "betrag": "integer", "name": "text", "plz": "text"}),
    )
    g = infer_file(str(kunden), pm=get_plugin_manager())
    cols = columns(g)
    assert cols["kunden_nr"].type == "bigint" and cols["kunden_nr"].source == "plugin"
    # "integer" does not take 1,50: csvpg's own guess stands, and says why.
    assert cols["betrag"].spec == {"type": "numeric(12,2)", "decimal": ","}
    assert any("not taken" in e for e in cols["betrag"].evidence)
    assert cols["plz"].type == "text"

    (request,) = llm_env.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    sent = json.loads(body["messages"][1]["content"])["columns"]
    assert sent[0] == {"name": "kunden_nr", "values": ["1", "2", "3"]}
    assert sent[1] == {"name": "betrag", "values": ["1,50", "20,25"]}  # no nulls
    assert all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"kunden_nr": "smallint"}\n```',
        '{"columns": {"kunden_nr": "smallint"}}',
        '{"columns": [{"name": "kunden_nr", "type": "smallint"}]}',
    ],
)
def test_answer_shapes(llm_env, content) -> None:
    answer(llm_env, content)
    assert infer_column_types(headers=["kunden_nr", "x"], samples=[["1", "a"]]) == {
        "kunden_nr": "smallint"
    }


def test_unknown_columns_and_odd_type_names_are_dropped(llm_env) -> None:
    answer(
        llm_env,
        json.dumps({"a": "numeric( 12 , 2 )", "b": "int; drop table x", "zz": "text", "c": 5}),
    )
    assert infer_column_types(headers=["a", "b", "c"], samples=[["1", "2", "3"]]) == {
        "a": "numeric( 12 , 2 )"
    }


GARBAGE = [
    ("not JSON", lambda body: (200, b"<html>oops</html>", 0.0), "the response is not JSON"),
    (
        "prose",
        lambda body: (200, completion("id is an integer, I think"), 0.0),
        "the answer is not a JSON object",
    ),
    ("no choices", lambda body: (200, b'{"error": "x"}', 0.0), "no choices[0].message.content"),
    ("a list", lambda body: (200, completion("[1, 2]"), 0.0), "the answer is a JSON list"),
    ("server error", lambda body: (500, b"{}", 0.0), "HTTP 500"),
    ("unauthorised", lambda body: (401, b"{}", 0.0), "HTTP 401"),
]


@pytest.mark.parametrize(("what", "respond", "said"), GARBAGE, ids=[g[0] for g in GARBAGE])
def test_garbage_falls_back_with_one_warning(llm_env, kunden, caplog, what, respond, said):
    llm_env.respond = respond
    caplog.set_level(logging.DEBUG)
    g = infer_file(str(kunden), pm=get_plugin_manager())
    assert all(c.source != "plugin" for c in g.columns)
    assert columns(g)["kunden_nr"].type == "bigint"  # the heuristic's answer (an id)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert said in warning.getMessage()
    assert "heuristic decides" in warning.getMessage()
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_a_slow_server_times_out_quietly(llm_env, monkeypatch, caplog) -> None:
    monkeypatch.setenv("CSVPG_LLM_TIMEOUT", "0.3")
    llm_env.respond = lambda body: (200, completion('{"a": "text"}'), 3.0)
    assert infer_column_types(headers=["a"], samples=[["x"]]) is None
    assert "no answer within 0.3 s" in caplog.text


def test_a_server_that_refuses_json_mode_is_asked_again(llm_env) -> None:
    def respond(body):
        if "response_format" in body:
            return 400, b'{"error": "response_format not supported"}', 0.0
        return 200, completion('{"a": "integer"}'), 0.0

    llm_env.respond = respond
    assert infer_column_types(headers=["a"], samples=[["1"]]) == {"a": "integer"}
    assert ["response_format" in r["body"] for r in llm_env.requests] == [True, False]


def test_nothing_is_asked_without_configuration(monkeypatch, chat_server, caplog) -> None:
    monkeypatch.delenv("CSVPG_LLM_URL", raising=False)
    assert infer_column_types(headers=["a"], samples=[["1"]]) is None
    assert chat_server.requests == [] and not caplog.records


def test_an_unreachable_server_falls_back(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CSVPG_LLM_URL", f"http://127.0.0.1:9/v1?key={KEY}")
    monkeypatch.setenv("CSVPG_LLM_MODEL", "m")
    monkeypatch.setenv("CSVPG_LLM_API_KEY", KEY)
    assert infer_column_types(headers=["a"], samples=[["1"]]) is None
    assert "no usable answer from m at http://127.0.0.1:9/v1/chat/completions" in caplog.text
    assert "cannot reach it" in caplog.text
    monkeypatch.setenv("CSVPG_LLM_URL", f"http://user:{KEY}@127.0.0.1:9/v1")
    assert infer_column_types(headers=["a"], samples=[["1"]]) is None
    assert "must not hold a user or password" in caplog.text
    assert KEY not in caplog.text


def test_configuration() -> None:
    assert endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/chat/completions"
    assert endpoint("https://api.openai.com/v1/") == "https://api.openai.com/v1/chat/completions"
    gemini = "https://generativelanguage.googleapis.com/v1beta/openai"
    assert endpoint(gemini) == gemini + "/chat/completions"
    assert endpoint("http://h/x/chat/completions") == "http://h/x/chat/completions"
    assert Config.from_env({}) is None
    with pytest.raises(LlmError, match="CSVPG_LLM_MODEL is not"):
        Config.from_env({"CSVPG_LLM_URL": "http://h/v1"})
    with pytest.raises(LlmError, match="must be an http"):
        Config.from_env({"CSVPG_LLM_URL": "file:///etc", "CSVPG_LLM_MODEL": "m"})
    config = Config.from_env(
        {"CSVPG_LLM_URL": "http://h/v1", "CSVPG_LLM_MODEL": "m", "CSVPG_LLM_API_KEY": KEY}
    )
    assert config is not None and KEY not in repr(config) and KEY not in Client(config).where


def test_the_sample_sent_is_small() -> None:
    rows = [[str(i % 50), "x" * 500, None] for i in range(10_000)]
    sent = columns_payload(["n", "long", "empty"], rows, 20)
    assert sent[0]["values"] == [str(i) for i in range(20)]
    assert sent[1]["values"] == ["x" * 64]
    assert sent[2]["values"] == []
