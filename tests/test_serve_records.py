"""Record sinks over the API: a running webhook sink's rate read and changed live
(``/runs/{run_id}/rate``), and one test record sent through a job's webhook settings
(``POST /jobs/{name}/test-record``). Real loopback receivers (tests.test_notify)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_notify import Receiver, unique
from tests.test_serve_security import Site, refused, site_at


@pytest.fixture(scope="module")
def site(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_at(tmp_path_factory.mktemp("records"), pg_server)


def webhook_job(site: Site, db: Any, url: str, options: str = "") -> str:
    name = unique("hook")
    (site.root / "in" / "many.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(6)))
    (site.jobs / f"{name}.toml").write_text(
        f'[job]\nname = "{name}"\n[database]\ndsn = "${{CSVPG_TEST_SECRET_DSN}}"\n'
        f'schema = "{db.schema}"\n[source]\nurl = "{site.root / "in" / "many.csv"}"\n'
        f'[sink]\nmode = "webhook"\n[sink.options]\nurl = "{url}"\n{options}'
    )
    return name


def test_the_rate_of_a_running_webhook_sink_changes_live(site: Site, db) -> None:
    with Receiver() as receiver:
        # One request in 1000 s after the first: the run ends only if the change is seen.
        name = webhook_job(site, db, receiver.url(), "rate_per_second = 0.001\n")
        run_id = site.operator.post("/runs", json={"job": name}).json()["run_id"]
        assert site.viewer.get(f"/runs/{run_id}/rate").json() == {
            "run_id": run_id,
            "rate_per_second": 0.001,
        }
        receiver.wait(1)  # the first record went; the second waits for a token
        live = site.viewer.get(f"/runs/{run_id}").json()
        assert live["live"] and live["status"] == "running"
        progress = live["progress"]
        assert (progress["phase"], progress["files_total"], progress["files_done"]) == (
            "loading",
            1,
            0,
        )
        assert progress["size"] == (site.root / "in" / "many.csv").stat().st_size
        assert live["files"][0]["status"] == "loading"
        refused(site.viewer.put(f"/runs/{run_id}/rate", json={"rate_per_second": 0}))
        assert (
            site.operator.put(f"/runs/{run_id}/rate", json={"rate_per_second": -1}).status_code
            == 422
        )
        answer = site.operator.put(f"/runs/{run_id}/rate", json={"rate_per_second": 0})
        assert answer.json() == {"run_id": run_id, "rate_per_second": 0.0}
        hits = receiver.wait(6)
        deadline = time.monotonic() + 60
        while site.operator.get(f"/runs/{run_id}").json()["live"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert sorted(int(json.loads(h.body)["id"]) for h in hits) == list(range(6))
    done = site.operator.get(f"/runs/{run_id}").json()
    assert done["status"] == "succeeded" and done["files"][0]["inserted"] == 6
    assert site.operator.get(f"/runs/{run_id}/rate").status_code == 409, "it has ended"
    assert site.operator.get(f"/runs/{'0' * 32}/rate").status_code == 404


def test_a_test_record_goes_through_the_jobs_webhook_settings(site: Site, db) -> None:
    with Receiver() as receiver:
        options = 'headers = { X-Key = "k-1" }\n'
        name = webhook_job(site, db, receiver.url("/contacts?token=abc"), options)
        refused(site.viewer.post(f"/jobs/{name}/test-record", json={}))
        answer = site.operator.post(f"/jobs/{name}/test-record", json={"record": {"id": "7"}})
        assert answer.status_code == 200, answer.text
        (hit,) = receiver.wait(1)
    assert answer.json() == {
        "url": receiver.url("/contacts"),  # no query: tokens live there
        "delivered": True,
        "http_status": 200,
        "reason": "HTTP 200",
        "attempts": 1,
    }
    assert json.loads(hit.body) == {"id": "7"} and hit.path == "/contacts?token=abc"
    assert hit.headers["X-Key"] == "k-1" and hit.headers["X-Csvpg-Test"] == "1"


def test_a_failed_test_record_says_why(site: Site, db) -> None:
    with Receiver(status=500) as receiver:
        name = webhook_job(site, db, receiver.url(), "max_retries = 1\nretry_delay = 0.01\n")
        answer = site.operator.post(f"/jobs/{name}/test-record", json={})
        hits = receiver.wait(2)
    assert (answer.json()["delivered"], answer.json()["http_status"]) == (False, 500)
    assert answer.json()["attempts"] == 2 and len(hits) == 2
    assert json.loads(hits[0].body) == {"csvpg_test": "true"}
    table = unique("table")
    (site.jobs / f"{table}.toml").write_text(
        f'[job]\nname = "{table}"\n[source]\nurl = "{site.root / "in"}"\n'
    )
    answer = site.operator.post(f"/jobs/{table}/test-record", json={})
    assert answer.status_code == 409 and "sends no records" in answer.json()["detail"]
