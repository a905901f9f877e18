"""mode = "webhook": the rate asked for, retries, rejects, and no secret in any log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from csvpg_records.ratelimit import TokenBucket
from csvpg_records.webhook import WebhookSink

from csvpg import FileRef, LoadInput, SinkError, SpecError
from csvpg.api import run
from csvpg.engine.plan import file_relation
from csvpg.options import validate
from tests.conftest import job_toml

TOKEN = "s3cr3t-token-value"


def sink(**options) -> WebhookSink:
    return WebhookSink(**validate("sink.options", options, WebhookSink.options))


def load_input(rows: list[list[str | None]], headers=("id", "name")) -> LoadInput:
    return LoadInput(
        ref=FileRef(url="file:///in/people.csv", name="people.csv"),
        schema="public",
        table="people",
        relation=file_relation(list(headers)),
        types={},
        primary_key=[],
        create=False,
        dialect=None,
        batches=iter([rows]),
    )


def load_all(s: WebhookSink, rows: list[list[str | None]]) -> str:
    """Load; returns the reasons of the records set aside as rejects."""
    result = s.load(None, load_input(rows))
    assert result.rows == len(rows) and result.inserted == len(rows) - len(s.failed)
    return " ".join(r.reason for r in result.rejects)


def people(n: int) -> list[list[str | None]]:
    return [[str(i), f"person {i}" if i % 3 else None] for i in range(1, n + 1)]


def webhook_job(csvpg_db, tmp_path: Path, n: int, options: str, sink: str = "") -> Path:
    (tmp_path / "people.csv").write_text(
        "id,name\n" + "".join(f"{i},person {i}\n" for i in range(1, n + 1))
    )
    path = tmp_path / "job.toml"
    path.write_text(
        job_toml(
            csvpg_db, "people.csv", sink=f'mode = "webhook"\n{sink}\n[sink.options]\n{options}'
        )
    )
    return path


# -- the rate ------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "rate", "burst"), [(20, 20, 1), (15, 10, 5)])
def test_a_job_delivers_every_record_at_a_rate(
    csvpg_db, tmp_path, receiver, n, rate, burst
) -> None:
    """Every record arrives once, in order, with the headers; how the rate spaces them
    is the token bucket's test below (a fake clock, not the wall's)."""
    options = (
        f'url = "{receiver.url}"\nrate_per_second = {rate}\nburst = {burst}\n'
        f'headers = {{ Authorization = "Bearer {TOKEN}" }}'
    )
    job = webhook_job(csvpg_db, tmp_path, n, options)
    summary = run(job)
    assert summary.exit_code == 0, summary.files[0].error
    assert receiver.records() == [{"id": str(i), "name": f"person {i}"} for i in range(1, n + 1)]
    assert {r.headers["Authorization"] for r in receiver.received} == {f"Bearer {TOKEN}"}
    assert receiver.received[0].headers["Content-Type"] == "application/json"
    f = summary.files[0]
    assert (f.rows_read, f.inserted, f.rejected) == (n, n, 0)
    assert f.details["path"] == "rows"
    assert csvpg_db.execute(
        "SELECT to_regclass(%s)", (f"{csvpg_db.schema}.people",)
    ).fetchone() == (None,)


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(2, 3, clock=lambda: now[0], sleep=sleep)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 10  # a quiet spell saves up no more than the burst
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    assert TokenBucket(0).take() == 0.0


# -- batches, retries, rejects -------------------------------------------------------


def test_batches_are_json_arrays(receiver) -> None:
    s = sink(url=receiver.url, batch_size=4)
    result = s.load(None, load_input(people(10)))
    assert [len(r.json()) for r in receiver.received] == [4, 4, 2]
    assert receiver.received[0].json()[2] == {"id": "3", "name": None}
    assert (result.rows, result.inserted) == (10, 10)


def test_server_errors_429_and_dropped_connections_are_retried(receiver) -> None:
    receiver.answers = [(503, {}), (429, {"Retry-After": "0"}), (0, {}), (200, {})]
    s = sink(url=receiver.url, retry_delay=0.01, max_retries=3)
    result = s.load(None, load_input(people(2)))
    assert (result.rows, result.inserted) == (2, 2)
    assert s.failed == []
    assert [r.json()["id"] for r in receiver.received] == ["1", "1", "1", "1", "2"]


def test_retry_after_is_waited_for(receiver) -> None:
    receiver.answers = [(429, {"Retry-After": "1"})]
    s = sink(url=receiver.url, retry_delay=0.01)
    s.load(None, load_input(people(1)))
    first, second = receiver.received
    assert second.at - first.at >= 0.95


def test_refused_and_exhausted_records_become_rejects(receiver) -> None:
    def respond(request):
        record = request.json()
        if record["id"] == "2":
            return 400, {}
        if record["id"] == "4":
            return 500, {}
        return 200, {}

    receiver.respond = respond
    s = sink(url=receiver.url, retry_delay=0.01, max_retries=2)
    rows = people(5)
    result = s.load(None, load_input(rows))
    assert (result.rows, result.inserted, len(result.rejects)) == (5, 3, 2)
    refused, exhausted = s.failed
    assert (refused.record, refused.status, refused.attempts) == (2, 400, 1)
    assert refused.reason == "HTTP 400 Bad Request (not retried)"
    assert refused.raw == '{"id": "2", "name": "person 2"}'
    assert (exhausted.record, exhausted.status, exhausted.attempts) == (4, 500, 3)
    assert exhausted.reason == "HTTP 500 Internal Server Error (after 3 tries)"
    assert [r.json()["id"] for r in receiver.received] == ["1", "2", "3", "4", "4", "4", "5"]


def test_an_endpoint_that_keeps_failing_fails_the_file(receiver) -> None:
    receiver.default = (502, {})
    s = sink(url=receiver.url, max_retries=0, give_up_after=3)
    with pytest.raises(SinkError, match="failed 3 requests in a row"):
        s.load(None, load_input(people(50)))
    assert len(receiver.received) == 3


def test_an_unreachable_endpoint_is_a_reject_not_a_crash() -> None:
    s = sink(url="http://127.0.0.1:9/nothing", max_retries=1, retry_delay=0.01, timeout=2)
    assert "cannot reach http://127.0.0.1:9/nothing" in load_all(s, people(1))
    (failed,) = s.failed
    assert failed.status is None and failed.attempts == 2


def test_redirects_are_not_followed(receiver) -> None:
    receiver.answers = [(307, {"Location": receiver.url + "/elsewhere"})]
    s = sink(url=receiver.url)
    assert "HTTP 307" in load_all(s, people(1))
    assert len(receiver.received) == 1


def test_failed_deliveries_in_a_job(csvpg_db, tmp_path, receiver) -> None:
    receiver.respond = lambda r: (422, {}) if r.json()["id"] == "2" else (200, {})
    # One refused record in three: more than the default max_rejects allows.
    summary = run(
        webhook_job(csvpg_db, tmp_path, 3, f'url = "{receiver.url}"', sink="max_rejects = 1")
    )
    f = summary.files[0]
    assert summary.exit_code == 0
    assert (f.rows_read, f.inserted, f.rejected) == (3, 2, 1)


# -- secrets and options -------------------------------------------------------------


def test_no_token_in_logs_or_errors(receiver, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.default = (500, {})
    url = receiver.url.replace("http://", f"http://user:{TOKEN}@") + f"?token={TOKEN}"
    s = sink(url=url, headers={"Authorization": f"Bearer {TOKEN}"}, max_retries=1, retry_delay=0.01)
    said = load_all(s, people(1))
    assert receiver.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert receiver.received[0].path == f"/hook?token={TOKEN}"
    assert "HTTP 500" in said
    assert TOKEN not in said + repr(s.failed)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert any("try 2 of 2" in r.getMessage() for r in caplog.records)


def test_user_and_password_in_the_url_become_basic_auth(receiver) -> None:
    s = sink(url=receiver.url.replace("http://", "http://ada:p%40ss@"))
    s.load(None, load_input(people(1)))
    assert receiver.received[0].headers["Authorization"] == "Basic YWRhOnBAc3M="  # ada:p@ss


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://example.com/x"}, "must be an http:// or https:// URL"),
        ({"url": "http://h/x", "rate_per_second": -1}, "rate_per_second' must be 0 or more"),
        ({"url": "http://h/x", "batch_size": 0}, "batch_size' must be 1 or more"),
        ({"url": "http://h/x", "timeout": 0}, "timeout' must be more than 0"),
    ],
)
def test_bad_options(options, message) -> None:
    with pytest.raises(SpecError, match=message):
        sink(**options)


def test_a_dry_run_sends_nothing(receiver) -> None:
    """Once csvpg tells sinks about --dry-run (``LoadInput.dry_run``), nothing goes out."""
    load = load_input(people(3))
    load.dry_run = True  # type: ignore[attr-defined]
    result = sink(url=receiver.url).load(None, load)
    assert (result.rows, result.inserted) == (3, 3)
    assert receiver.received == []
