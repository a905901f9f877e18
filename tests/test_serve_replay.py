"""Rejects you can act on over HTTP: ``GET /runs/{id}/rejects/export`` gives the fixable
file (the source's dialect and encoding), ``POST /runs/{id}/replay`` loads it fixed, and
``GET /runs/{id}`` says how many rejects are open and resolved."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tests.test_notify import unique
from tests.test_serve import Api, api  # noqa: F401  (the server fixture)

EXPORT = "Nr;Ort;Betrag\r\n1;Köln;1,50\r\nzwei;Düsseldorf;2,00\r\n3;Zürich;3,00\r\n"


def test_export_replay_and_counts_over_http(api: Api, db, tmp_path: Path) -> None:  # noqa: F811
    name = unique("replay")
    (tmp_path / "orte.csv").write_bytes(EXPORT.encode("latin-1"))
    extra = (
        '[format]\nencoding = "latin-1"\n'
        '[columns]\nnr = "integer"\nbetrag = { type = "numeric", decimal = "," }\n'
        f'[sink]\ntable = "{name.replace("-", "_")}"\nmax_rejects = 5\n'
    )
    api.job(db, name, tmp_path / "orte.csv", extra)
    run_id = api.start(job=name)
    assert api.wait(run_id)["status"] == "succeeded"
    run = api.client.get(f"/runs/{run_id}").json()
    assert (run["rejects_open"], run["rejects_resolved"]) == (1, 0)
    listed = api.client.get("/runs", params={"job": name}).json()
    assert (listed[0]["rejects_open"], listed[0]["rejects_resolved"]) == (1, 0)
    [reject] = api.client.get(f"/runs/{run_id}/rejects").json()
    assert reject["raw"] == "zwei;Düsseldorf;2,00\r\n" and reject["resolved_by"] is None

    answer = api.client.get(f"/runs/{run_id}/rejects/export")
    assert answer.status_code == 200, answer.text
    assert "latin-1" in answer.headers["content-type"] or "iso" in answer.headers["content-type"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("latin-1")), delimiter=";"))
    assert rows == [["csvpg_reject_id", "Nr", "Ort", "Betrag"], [f"R{reject['id']}", *rows[1][1:]]]
    assert rows[1][1:] == ["zwei", "Düsseldorf", "2,00"]
    rows[1][1] = "2"
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    fixed = out.getvalue().encode("latin-1")

    done = api.client.post(f"/runs/{run_id}/replay", files={"fixed": ("fix.csv", fixed)})
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["resolved"], body["again"], body["skipped"]) == (1, 0, 0)
    assert body["replay_of"] == run_id and body["status"] == "succeeded"
    assert db.count(name.replace("-", "_")) == 3
    run = api.client.get(f"/runs/{run_id}").json()
    assert (run["rejects_open"], run["rejects_resolved"]) == (0, 1)
    replayed = api.client.get(f"/runs/{body['run_id']}").json()
    assert replayed["replay_of"] == run_id

    twice = api.client.post(f"/runs/{run_id}/replay", files={"fixed": ("fix.csv", fixed)})
    assert twice.status_code == 200 and twice.json()["skipped"] == 1
    assert twice.json()["run_id"] is None, "nothing to load: no run"
    assert db.count(name.replace("-", "_")) == 3

    wrong = api.client.post(f"/runs/{run_id}/replay", files={"fixed": ("x.csv", b"a;b\n1;2\n")})
    assert wrong.status_code == 409 and "csvpg_reject_id" in wrong.json()["detail"]
