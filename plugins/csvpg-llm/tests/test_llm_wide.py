"""csvpg-llm on a wide file and a flaky endpoint: chunks, parallel requests, retries,
fallbacks per chunk, the cache, and each endpoint's settings."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from csvpg_llm.client import Config
from csvpg_llm.prompt import SYSTEM, AnswerError, chunks, parse, prefix
from hypothesis import given
from hypothesis import strategies as st
from llm_helpers import KEY, ask, completion, sent_columns, typed

from csvpg.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def llm_env(monkeypatch, chat_server):
    monkeypatch.setenv("CSVPG_LLM_URL", chat_server.url)
    monkeypatch.setenv("CSVPG_LLM_MODEL", "test-model")
    monkeypatch.setenv("CSVPG_LLM_API_KEY", KEY)
    monkeypatch.setenv("CSVPG_LLM_TIMEOUT", "5")
    monkeypatch.setenv("CSVPG_LLM_BUDGET", "10")
    monkeypatch.setenv("CSVPG_LLM_BACKOFF", "0.05")
    return chat_server


def wide_headers() -> list[str]:
    """300 columns: an id, an address of five parts, then 42 measures of seven parts."""
    parts = ["street", "city", "zip", "country", "region"]
    return [
        "id",
        *(f"addr_{p}" for p in parts),
        *(f"m{g:02d}_{j}" for g in range(42) for j in range(7)),
    ]


@pytest.fixture
def wide(tmp_path: Path) -> Path:
    headers = wide_headers()
    assert len(headers) == 300
    rows = [",".join(["id", *headers[1:]])]
    for i in range(1, 31):
        values = [str(i), f"Main St {i}", "Springfield", f"{10000 + i}", "US", "West"]
        values += [str(i * j) for j in range(294)]
        rows.append(",".join(values))
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def infer(path: Path, capsys, *more: str) -> tuple[int, str]:
    """``csvpg infer --explain``: the exit code and the explanation (stderr without the
    log lines, which the tests' INFO level also sends there)."""
    code = main(["infer", str(path), "--explain", "-o", str(path.with_suffix(".toml")), *more])
    err = capsys.readouterr().err
    return code, "\n".join(line for line in err.splitlines() if not line.startswith("warning: "))


def test_a_300_column_file_goes_out_in_bounded_parallel_chunks(llm_env, wide, capsys) -> None:
    lock, full = threading.Lock(), threading.Event()
    flight = {"now": 0, "peak": 0}

    def respond(body):
        # Hold each request until four are in flight at once (or give up after 5 s):
        # the peak then shows both that chunks run in parallel and that they are bounded.
        with lock:
            flight["now"] += 1
            flight["peak"] = max(flight["peak"], flight["now"])
            if flight["now"] >= 4:
                full.set()
        full.wait(5)
        with lock:
            flight["now"] -= 1
        return 200, typed(body), 0.0

    llm_env.respond = respond
    code, err = infer(wide, capsys)
    assert code == 0
    asked = [[c["name"] for c in sent_columns(r["body"])] for r in llm_env.requests]
    assert len(asked) == len(chunks(wide_headers(), 20)) >= 15
    assert all(len(names) <= 20 for names in asked)
    assert sorted(n for names in asked for n in names) == sorted(wide_headers())
    # Related columns went together: every prefix in one request.
    for group in ("addr", *(f"m{g:02d}" for g in range(42))):
        assert sum(any(prefix(n) == group for n in names) for names in asked) == 1, group
    assert flight["peak"] == 4
    assert f"about 300 columns in {len(asked)} chunks of up to 20, 4 at a time" in err
    # Each column's choice is explained: the model's type, confidence, reasoning.
    said = "llm test-model proposed 'integer' (confidence 0.9: 'whole numbers')"
    assert err.count(said) == 300
    assert err.count(f"{said}, taken") == 300 - 4  # street, city, country, region are text
    assert "'Main St 1' is not" in err
    job = wide.with_suffix(".toml").read_text()
    assert 'm41_6 = "integer"' in job and 'addr_city = "text"' in job


def test_429_with_retry_after_then_success(llm_env, kunden_like, capsys, caplog) -> None:
    caplog.set_level(logging.INFO, logger="csvpg.llm")
    replies = iter([(429, b'{"error": "slow down"}', 0.0, {"Retry-After": "1"})])
    llm_env.respond = lambda body: next(replies, (200, typed(body, "bigint"), 0.0))
    code, err = infer(kunden_like, capsys)
    assert code == 0
    assert len(llm_env.requests) == 2
    retry = "HTTP 429 Too Many Requests; retry 1 in 1.0 s as Retry-After asks"
    assert err.count(retry) == 1  # in --explain
    assert [r.getMessage() for r in caplog.records].count(
        f"csvpg-llm: chunk 1 (id, amount, code): {retry}"
    ) == 1  # and in the log
    assert "1 answered (0 from the cache), 0 left to the heuristic" in err
    assert "proposed 'bigint' (confidence 0.9: 'whole numbers'), taken" in err


def test_a_503_storm_exhausts_the_budget_and_falls_back(
    llm_env, kunden_like, capsys, caplog, monkeypatch
) -> None:
    monkeypatch.setenv("CSVPG_LLM_BUDGET", "1")
    caplog.set_level(logging.INFO, logger="csvpg.llm")
    llm_env.respond = lambda body: (503, b'{"error": "overloaded"}', 0.0)
    code, err = infer(kunden_like, capsys)
    assert code == 0  # the heuristic decides: no failure
    tries = len(llm_env.requests)
    assert tries >= 2
    retries = [line for line in err.splitlines() if "HTTP 503 Service Unavailable; retry" in line]
    assert len(retries) == tries - 1
    (fallback,) = [line for line in err.splitlines() if "no usable answer" in line]
    assert f"HTTP 503 Service Unavailable after {tries} tries" in fallback
    assert "the time budget of 1 s is spent" in fallback
    assert "csvpg's heuristic decides its 3 columns" in fallback
    assert "0 answered (0 from the cache), 1 left to the heuristic" in err
    assert "proposed" not in err
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].getMessage() in fallback
    assert 'amount = "numeric(12,2)"' in kunden_like.with_suffix(".toml").read_text()


def test_a_retry_after_beyond_the_budget_gives_up_at_once(llm_env, monkeypatch) -> None:
    monkeypatch.setenv("CSVPG_LLM_BUDGET", "2")
    llm_env.respond = lambda body: (429, b"{}", 0.0, {"Retry-After": "3600"})
    got, notes = ask(["a"], [["1"]])
    assert got is None and len(llm_env.requests) == 1
    assert "Retry-After asks 3600 s, more than the" in notes[-1]


def test_a_failing_chunk_falls_back_for_its_columns_only(llm_env, monkeypatch) -> None:
    monkeypatch.setenv("CSVPG_LLM_CHUNK", "2")
    monkeypatch.setenv("CSVPG_LLM_BUDGET", "0.5")

    def respond(body):
        names = [c["name"] for c in sent_columns(body)]
        if "b_1" in names:
            return 502, b"{}", 0.0
        if "c_1" in names:
            return 200, completion('{"columns": [{"name": "c_1", "type": '), 0.0
        return 200, typed(body), 0.0

    llm_env.respond = respond
    headers = ["a_1", "a_2", "b_1", "b_2", "c_1", "c_2", "d"]
    got, notes = ask(headers, [["1"] * 7])
    assert got == {"a_1": "integer", "a_2": "integer", "d": "integer"}
    fallbacks = [n for n in notes if "no usable answer" in n]
    assert len(fallbacks) == 2
    assert fallbacks[0].startswith("csvpg-llm: chunk 2 (b_1, b_2): no usable answer")
    assert "HTTP 502 Bad Gateway" in fallbacks[0]
    assert fallbacks[1].startswith("csvpg-llm: chunk 3 (c_1, c_2): no usable answer")
    assert "the answer is not a JSON object" in fallbacks[1]
    assert "4 chunks of up to 2" in notes[0] and "2 answered" in notes[0]


def test_an_unauthorised_key_stops_the_other_chunks(llm_env, monkeypatch) -> None:
    monkeypatch.setenv("CSVPG_LLM_CHUNK", "1")
    monkeypatch.setenv("CSVPG_LLM_PARALLEL", "1")
    llm_env.respond = lambda body: (401, b'{"error": "invalid api key"}', 0.0)
    got, notes = ask(["a", "b", "c"], [["1", "2", "3"]])
    assert got is None and len(llm_env.requests) == 1
    assert sum("not asked after HTTP 401 Unauthorized" in n for n in notes) == 2


def test_answers_are_cached_per_endpoint_model_and_prompt(
    llm_env, kunden_like, capsys, monkeypatch, tmp_path, llm_cache
) -> None:
    llm_env.respond = lambda body: (200, typed(body, "bigint"), 0.0)
    assert infer(kunden_like, capsys)[0] == 0
    assert len(llm_env.requests) == 1
    (stored,) = llm_cache.glob("*.json")
    text = stored.read_text()
    assert KEY not in text and "Main St" not in text
    assert json.loads(text)["answer"]["id"]["type"] == "bigint"

    code, err = infer(kunden_like, capsys)  # the same file again: nobody is asked
    assert code == 0 and len(llm_env.requests) == 1
    assert "1 answered (1 from the cache)" in err
    assert "proposed 'bigint' (confidence 0.9: 'whole numbers'), taken" in err

    code, err = infer(kunden_like, capsys, "--no-cache")
    assert code == 0 and len(llm_env.requests) == 2
    assert "1 answered (0 from the cache)" in err

    monkeypatch.setenv("CSVPG_LLM_MODEL", "other-model")  # another model: another key
    infer(kunden_like, capsys)
    assert len(llm_env.requests) == 3
    kunden_like.write_text(kunden_like.read_text() + "4,5.00,0x21\n")  # another sample
    infer(kunden_like, capsys)
    assert len(llm_env.requests) == 4 and len(list(llm_cache.glob("*.json"))) == 3

    # Without CSVPG_LLM_CACHE, answers live in csvpg's data folder.
    monkeypatch.delenv("CSVPG_LLM_CACHE")
    monkeypatch.setenv("CSVPG_HOME", str(tmp_path / "home"))
    infer(kunden_like, capsys)
    assert len(list((tmp_path / "home" / "llm-cache").glob("*.json"))) == 1
    monkeypatch.setenv("CSVPG_LLM_CACHE", "off")
    infer(kunden_like, capsys)
    infer(kunden_like, capsys)
    assert len(llm_env.requests) == 7


@pytest.fixture
def kunden_like(tmp_path: Path) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text("id,amount,code\n1,12.50,0x1f\n2,3.25,0x20\n3,,0x21\n", encoding="utf-8")
    return path


# The settings the README gives for each endpoint: (environment, the URL path csvpg
# posts to and its query, the header that carries the key and how).
ENDPOINTS = {
    "openai": ({"CSVPG_LLM_URL": "{base}/v1"}, "/v1/chat/completions", "Authorization", "Bearer"),
    "gemini": (
        {"CSVPG_LLM_URL": "{base}/v1beta/openai"},
        "/v1beta/openai/chat/completions",
        "Authorization",
        "Bearer",
    ),
    "azure": (
        {
            "CSVPG_LLM_URL": "{base}/openai/deployments/types-4o",
            "CSVPG_LLM_API_VERSION": "2024-10-21",
            "CSVPG_LLM_KEY_HEADER": "api-key",  # the default for *.azure.com hosts
            "CSVPG_LLM_MODEL": "",
        },
        "/openai/deployments/types-4o/chat/completions?api-version=2024-10-21",
        "api-key",
        "",
    ),
    "ollama": (
        {"CSVPG_LLM_URL": "{base}/v1", "CSVPG_LLM_API_KEY": ""},
        "/v1/chat/completions",
        "",
        "",
    ),
    "llama.cpp": ({"CSVPG_LLM_URL": "{base}"}, "/v1/chat/completions", "Authorization", "Bearer"),
}


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_each_endpoints_settings(llm_env, monkeypatch, caplog, name) -> None:
    env, path, header, scheme = ENDPOINTS[name]
    base = llm_env.url.removesuffix("/v1")
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(base=base))
    monkeypatch.setenv("CSVPG_LLM_HEADERS", json.dumps({"X-Project": "secret-project-id"}))
    caplog.set_level(logging.DEBUG)
    llm_env.respond = lambda body: (200, typed(body), 0.0)
    assert ask(["a"], [["1"]])[0] == {"a": "integer"}
    (request,) = llm_env.requests
    assert request["path"] == path
    sent = {k.lower(): v for k, v in request["headers"].items()}
    assert sent["x-project"] == "secret-project-id"
    if header:
        assert sent[header.lower()] == f"{scheme} {KEY}".strip()
    else:
        assert "authorization" not in sent and "api-key" not in sent
    if name == "azure":
        assert request["body"]["model"] == "types-4o"  # the deployment names the model
    assert KEY not in caplog.text and "secret-project-id" not in caplog.text


def test_azure_hosts_get_the_key_in_api_key() -> None:
    config = Config.from_env(
        {
            "CSVPG_LLM_URL": "https://acme.openai.azure.com/openai/deployments/gpt4o",
            "CSVPG_LLM_API_VERSION": "2024-10-21",
            "CSVPG_LLM_API_KEY": KEY,
        }
    )
    assert config is not None and config.key_header == "api-key" and config.model == "gpt4o"
    assert config.url.endswith("/gpt4o/chat/completions?api-version=2024-10-21")


def test_the_readme_documents_the_prompt_as_sent() -> None:
    readme = README.read_text(encoding="utf-8")
    assert SYSTEM in " ".join(readme.split())
    for var in (
        *("CSVPG_LLM_URL", "CSVPG_LLM_MODEL", "CSVPG_LLM_API_KEY", "CSVPG_LLM_KEY_HEADER"),
        *("CSVPG_LLM_API_VERSION", "CSVPG_LLM_HEADERS", "CSVPG_LLM_TIMEOUT", "CSVPG_LLM_BUDGET"),
        *("CSVPG_LLM_BACKOFF", "CSVPG_LLM_CHUNK", "CSVPG_LLM_PARALLEL", "CSVPG_LLM_VALUES"),
        *("CSVPG_LLM_FORMAT", "CSVPG_LLM_CACHE", "--no-cache"),
    ):
        assert f"`{var}" in readme, var


names = st.lists(
    st.builds(
        lambda head, tail: f"{head}_{tail}" if tail else head,
        st.sampled_from(["addr", "m1", "m2", "id", "x"]),
        st.sampled_from(["", "a", "b", "c", "d"]),
    ),
    max_size=80,
    unique=True,
)


@given(names=names, size=st.integers(1, 25))
def test_chunks_hold_every_column_once_and_keep_prefixes_together(names, size) -> None:
    got = chunks(names, size)
    assert sorted(i for chunk in got for i in chunk) == list(range(len(names)))
    assert all(0 < len(chunk) <= size for chunk in got)
    for group in {prefix(n) for n in names}:
        members = [i for i, n in enumerate(names) if prefix(n) == group]
        holding = [c for c in got if any(i in c for i in members)]
        if len(members) <= size:
            assert len(holding) == 1, (group, got)


# Keys an answer's objects may use, so that generated answers reach the validation.
KEYS = st.sampled_from(["a", "b", "name", "type", "confidence", "reasoning"]) | st.text(max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["integer", "a", "numeric(12,2)"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner),
    max_leaves=12,
)


@given(answer=json_values | st.builds(lambda v: {"columns": v}, json_values), fenced=st.booleans())
def test_any_answer_is_read_or_refused_never_crashes(answer, fenced) -> None:
    text = json.dumps(answer)
    if fenced:
        text = f"```json\n{text}\n```"
    try:
        got = parse(text, ["a", "b"])
    except AnswerError:
        return
    assert set(got) <= {"a", "b"}
    for read in got.values():
        assert read.type and (read.confidence is None or 0 <= read.confidence <= 1)
        assert "\n" not in read.reasoning and len(read.reasoning) <= 200
