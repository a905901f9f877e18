"""``GET /runs/{run_id}/output``: the file a run's sink wrote (a CSV sink's, the merge
sink's merged table), recorded in the run's history and downloaded as written."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_notify import unique
from tests.test_serve_security import Site, site_at


@pytest.fixture(scope="module")
def site(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_at(tmp_path_factory.mktemp("outputs"), pg_server)


def wait(site: Site, run_id: str) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 60
    while True:
        answer = site.operator.get(f"/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        if not answer.json()["live"]:
            return answer.json()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def job(site: Site, db: Any, sink: str, source: str = "in") -> str:
    name = unique("out")
    (site.jobs / f"{name}.toml").write_text(
        f'[job]\nname = "{name}"\n[database]\ndsn = "${{CSVPG_TEST_SECRET_DSN}}"\n'
        f'schema = "{db.schema}"\n[source]\nurl = "{site.root / source}"\n{sink}'
    )
    return name


def test_a_csv_sinks_file_is_downloaded(site: Site, db) -> None:
    name = job(site, db, '[sink]\nmode = "csv"\n[sink.options]\npath = "../out/{name}.csv"\n')
    done = wait(site, site.operator.post("/runs", json={"job": name}).json()["run_id"])
    assert done["status"] == "succeeded", done
    answer = site.viewer.get(f"/runs/{done['run_id']}/output")
    assert answer.status_code == 200, answer.text
    assert 'filename="good.csv"' in answer.headers["content-disposition"]
    assert answer.content == (site.root / "out" / "good.csv").read_bytes()
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["id", "name"],
        ["1", "Ada"],
        ["2", "Grace"],
    ]
    missing = site.viewer.get(f"/runs/{done['run_id']}/output", params={"file": "other.csv"})
    assert missing.status_code == 404


def test_the_merged_table_is_downloaded(site: Site, db) -> None:
    inbox = site.root / "contacts"
    inbox.mkdir()
    (inbox / "a.csv").write_text("email,name\nada@x.org,Ada\ngrace@x.org,\n")
    (inbox / "b.csv").write_text("email,name\ngrace@x.org,Grace\nalan@x.org,Alan\n")
    sink = (
        '[run]\nworkers = 1\n[sink]\nmode = "merge"\ntable = "contacts"\nprimary_key = ["email"]\n'
        '[sink.options]\noutput = "../merged.csv"\n'
    )
    name = job(site, db, sink, source="contacts")
    done = wait(site, site.operator.post("/runs", json={"job": name}).json()["run_id"])
    assert done["status"] == "succeeded", done
    answer = site.viewer.get(f"/runs/{done['run_id']}/output")
    assert answer.status_code == 200, answer.text
    assert list(csv.reader(io.StringIO(answer.text))) == [
        ["email", "name"],
        ["ada@x.org", "Ada"],
        ["alan@x.org", "Alan"],
        ["grace@x.org", "Grace"],
    ]
    assert db.count("contacts") == 3


def test_a_table_sink_has_no_output(site: Site, db) -> None:
    name = job(site, db, "")
    done = wait(site, site.operator.post("/runs", json={"job": name}).json()["run_id"])
    answer = site.viewer.get(f"/runs/{done['run_id']}/output")
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"run {done['run_id']} produced no output file"
