"""csvpg-llm: proposals from a chat endpoint, checked by csvpg; failures fall back quietly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from csvpg_llm.client import Client, Config, LlmError, endpoint
from csvpg_llm.prompt import column_facts, spread
from llm_helpers import KEY, ask, completion

from csvpg.cli.main import main
from csvpg.infer.guess import infer_file
from csvpg.plugins import get_plugin_manager


@pytest.fixture
def llm_env(monkeypatch, chat_server):
    monkeypatch.setenv("CSVPG_LLM_URL", chat_server.url)
    monkeypatch.setenv("CSVPG_LLM_MODEL", "test-model")
    monkeypatch.setenv("CSVPG_LLM_API_KEY", KEY)
    monkeypatch.setenv("CSVPG_LLM_TIMEOUT", "5")
    monkeypatch.setenv("CSVPG_LLM_BUDGET", "1")
    monkeypatch.setenv("CSVPG_LLM_BACKOFF", "0.05")
    return chat_server


@pytest.fixture
def kunden(tmp_path: Path) -> Path:
    path = tmp_path / "kunden.csv"
    path.write_text(
        "Kunden Nr;Betrag;Name;PLZ;Datum\n"
        "1;1,50;Ada;01067;31.12.2024\n2;20,25;Grace;80331;01.02.2024\n3;;Linus;10115;\n",
        encoding="utf-8",
    )
    return path


def answer(server, content: str) -> None:
    server.respond = lambda body: (200, completion(content), 0.0)


def columns(guess) -> dict[str, object]:
    return {c.name: c for c in guess.columns}


def test_proposals_that_fit_are_taken_the_rest_refused(llm_env, kunden, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    entries = [
        ("kunden_nr", "INTEGER", 0.95, "sequential ids"),
        ("betrag", "integer", 0.8, "amounts"),
        ("name", "text", 0.99, "first names"),
        ("plz", "text", 0.9, "German zip codes keep their leading zero"),
    ]
    answer(
        llm_env,
        json.dumps(
            {
                "columns": [
                    {"name": n, "type": t, "nullable": False, "confidence": c, "reasoning": r}
                    for n, t, c, r in entries
                ]
            }
        ),
    )
    g = infer_file(str(kunden), pm=get_plugin_manager())
    cols = columns(g)
    assert cols["kunden_nr"].type == "integer" and cols["kunden_nr"].source == "plugin"
    assert cols["kunden_nr"].evidence[1] == (
        "llm test-model proposed 'integer' (confidence 0.95: 'sequential ids'), taken: it fits "
        "every value (heuristic: bigint)"
    )
    # "integer" does not take 1,50: csvpg's own guess stands, and says why.
    assert cols["betrag"].spec == {"type": "numeric(12,2)", "decimal": ","}
    (refused,) = [e for e in cols["betrag"].evidence if "not taken" in e]
    assert refused.startswith("llm test-model proposed 'integer' (confidence 0.8: 'amounts')")
    assert refused.endswith("(heuristic: numeric(12,2))")
    assert "not null, but 1 sampled values are null" in refused
    assert cols["plz"].type == "text"
    assert cols["datum"].source == "heuristic"  # the model did not name it
    assert any("no type for datum: the heuristic decides" in e for e in g.evidence)

    (request,) = llm_env.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]["schema"]
    item = schema["properties"]["columns"]["items"]
    assert item["properties"]["name"]["enum"] == ["kunden_nr", "betrag", "name", "plz", "datum"]
    assert set(item["required"]) == {"name", "type", "nullable", "confidence", "reasoning"}
    user = json.loads(body["messages"][1]["content"])
    assert user["prompt_version"] == 2
    assert user["file"] == {
        "rows_sampled": 3,
        "delimiter": ";",
        "encoding": "utf-8",
        "null_values": user["file"]["null_values"],
        "decimal_comma": True,
        "date_order": "DMY",
    }
    assert "" in user["file"]["null_values"]
    sent = user["columns"]
    assert sent[0] == {
        "name": "kunden_nr",
        "header": "Kunden Nr",
        "values": ["1", "2", "3"],
        "null_share": 0.0,
        "distinct": 3,
    }
    assert sent[1]["values"] == ["1,50", "20,25"] and sent[1]["null_share"] == 0.333
    assert sent[2]["header"] == "Name"
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_explain_shows_the_models_answer_beside_the_heuristics(llm_env, kunden, capsys) -> None:
    answer(
        llm_env,
        json.dumps(
            {
                "columns": [
                    {"name": "kunden_nr", "type": "integer", "confidence": 0.7, "reasoning": "ids"},
                    {"name": "name", "type": "date", "confidence": 0.9, "reasoning": "odd"},
                    {"name": "datum", "type": "text", "confidence": 0.3, "reasoning": "dates?"},
                ]
            }
        ),
    )
    assert main(["infer", str(kunden), "--explain", "-o", str(kunden.with_suffix(".toml"))]) == 0
    err = capsys.readouterr().err
    assert (
        "llm test-model proposed 'integer' (confidence 0.7: 'ids'), taken: it fits every value "
        "(heuristic: bigint)"
    ) in err
    assert "llm test-model proposed 'date' (confidence 0.9: 'odd'), not taken: " in err
    # Fits, but the model is unsure: the heuristic stands.
    assert (
        "llm test-model proposed 'text' (confidence 0.3: 'dates?'), not taken: confidence "
        "0.3 is below 0.5 (heuristic: date)"
    ) in err
    assert "csvpg-llm: asked test-model at http://127.0.0.1:" in err
    assert "in 1 chunk of up to 20, 1 at a time: 1 answered (0 from the cache), 0 left" in err
    job = kunden.with_suffix(".toml").read_text()
    assert 'kunden_nr = "integer"' in job and 'name = "text"' in job
    assert 'datum = { type = "date"' in job


@pytest.mark.parametrize(
    "content",
    [
        '```json\n{"kunden_nr": "smallint"}\n```',
        '{"columns": {"kunden_nr": "smallint"}}',
        '{"columns": [{"name": "kunden_nr", "type": "smallint"}]}',
        '{"kunden_nr": {"type": "smallint", "confidence": 7, "reasoning": 3}}',
    ],
)
def test_answer_shapes(llm_env, content) -> None:
    answer(llm_env, content)
    assert ask(["kunden_nr", "x"], [["1", "a"]])[0] == {"kunden_nr": "smallint"}


def test_unknown_columns_and_odd_type_names_are_dropped(llm_env) -> None:
    answer(
        llm_env,
        json.dumps({"a": "numeric( 12 , 2 )", "b": "int; drop table x", "zz": "text", "c": 5}),
    )
    assert ask(["a", "b", "c"], [["1", "2", "3"]])[0] == {"a": "numeric( 12 , 2 )"}


GARBAGE = [
    ("not JSON", lambda body: (200, b"<html>oops</html>", 0.0), "the response is not JSON"),
    (
        "malformed JSON",
        lambda body: (200, completion('{"columns": [{"name": "kunden_nr", "type": '), 0.0),
        "the answer is not a JSON object",
    ),
    (
        "prose",
        lambda body: (200, completion("id is an integer, I think"), 0.0),
        "the answer is not a JSON object",
    ),
    ("no choices", lambda body: (200, b'{"error": "x"}', 0.0), "no choices[0].message.content"),
    ("a list", lambda body: (200, completion("[1, 2]"), 0.0), "the answer is a JSON list"),
    (
        "no column named",
        lambda body: (200, completion('{"nope": "text"}'), 0.0),
        "the answer names none of its columns",
    ),
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
    assert "heuristic decides its 5 columns" in warning.getMessage()
    assert warning.getMessage() in g.evidence  # and said in --explain
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_a_slow_server_times_out_and_is_asked_again_within_the_budget(llm_env, monkeypatch):
    monkeypatch.setenv("CSVPG_LLM_TIMEOUT", "0.3")
    llm_env.respond = lambda body: (200, completion('{"a": "text"}'), 3.0)
    got, notes = ask(["a"], [["x"]])
    assert got is None
    assert any("no answer within 0.3 s; retry 1 in" in n for n in notes)
    assert "no answer within" in notes[-1] and "time budget of 1 s is spent" in notes[-1]
    assert "csvpg's heuristic decides its column" in notes[-1]
    assert len(llm_env.requests) >= 2


def test_a_server_that_refuses_the_schema_or_json_mode_is_asked_more_plainly(llm_env) -> None:
    def respond(body):
        if "response_format" in body:
            return 400, b'{"error": "response_format not supported"}', 0.0
        return 200, completion('{"a": "integer"}'), 0.0

    llm_env.respond = respond
    got, notes = ask(["a"], [["1"]])
    assert got == {"a": "integer"}
    formats = [r["body"].get("response_format", {}).get("type") for r in llm_env.requests]
    assert formats == ["json_schema", "json_object", None]
    assert any("HTTP 400 Bad Request to response_format json_schema" in n for n in notes)


def test_nothing_is_asked_without_configuration(monkeypatch, chat_server, caplog) -> None:
    monkeypatch.delenv("CSVPG_LLM_URL", raising=False)
    assert ask(["a"], [["1"]]) == (None, [])
    assert chat_server.requests == [] and not caplog.records


def test_an_unreachable_server_falls_back(monkeypatch, caplog) -> None:
    monkeypatch.setenv("CSVPG_LLM_URL", f"http://127.0.0.1:9/v1?key={KEY}")
    monkeypatch.setenv("CSVPG_LLM_MODEL", "m")
    monkeypatch.setenv("CSVPG_LLM_API_KEY", KEY)
    assert ask(["a"], [["1"]])[0] is None
    assert "no usable answer from m at http://127.0.0.1:9/v1/chat/completions" in caplog.text
    assert "cannot reach it" in caplog.text
    monkeypatch.setenv("CSVPG_LLM_URL", f"http://user:{KEY}@127.0.0.1:9/v1")
    got, notes = ask(["a"], [["1"]])
    assert got is None and "must not hold a user or password" in notes[0]
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
    with pytest.raises(LlmError, match="CSVPG_LLM_CHUNK must be a number"):
        Config.from_env(
            {"CSVPG_LLM_URL": "http://h", "CSVPG_LLM_MODEL": "m", "CSVPG_LLM_CHUNK": "x"}
        )
    with pytest.raises(LlmError, match="CSVPG_LLM_HEADERS must be a JSON object") as info:
        Config.from_env(
            {"CSVPG_LLM_URL": "http://h", "CSVPG_LLM_MODEL": "m", "CSVPG_LLM_HEADERS": KEY}
        )
    assert KEY not in str(info.value)
    config = Config.from_env(
        {"CSVPG_LLM_URL": "http://h/v1", "CSVPG_LLM_MODEL": "m", "CSVPG_LLM_API_KEY": KEY}
    )
    assert config is not None and KEY not in repr(config) and KEY not in Client(config).where
    assert (config.chunk, config.parallel, config.budget, config.timeout) == (20, 4, 120, 30)


def test_the_sample_sent_is_small_and_spread() -> None:
    rows = [[str(i % 50), "x" * 500, None] for i in range(10_000)]
    sent = column_facts(["n", "long", "empty"], rows, {"headers_as_written": ["n", "Long"]}, 20)
    assert "header" not in sent[0] and sent[1]["header"] == "Long"
    assert len(sent[0]["values"]) == 20 and sent[0]["distinct"] == 50
    assert sent[0]["values"][0] == "0" and sent[0]["values"][-1] == "49"  # not only the head
    assert sent[1]["values"] == ["x" * 64]
    assert sent[2]["values"] == [] and sent[2]["null_share"] == 1.0
    # The longest value is among those sent, so a width shows.
    assert "a-very-long-one" in spread(["1", "22", "a-very-long-one", "4", "5", "6"], 3)
