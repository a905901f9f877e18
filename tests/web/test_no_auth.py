"""``csvpg serve --no-auth`` (loopback only): the pages open without signing in, and a
form still needs the page's CSRF token."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from csvpg.serve import make_app
from csvpg.testing import CsvpgDb, fresh_schema
from tests.web.conftest import serving


def test_without_a_token_everybody_is_the_operator(pg_server: str, tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (tmp_path / "good.csv").write_text("id,name\n1,Ada\n")
    app = make_app(jobs_dir=jobs, dsn=pg_server, token=None)
    with fresh_schema(pg_server, CsvpgDb) as db, serving(app) as url:
        (jobs / "open.toml").write_text(
            f'[job]\nname = "open"\n[database]\ndsn = "{db.dsn}"\nschema = "{db.schema}"\n'
            f'[source]\nurl = "{tmp_path / "good.csv"}"\n'
        )
        with httpx.Client(base_url=url, timeout=30) as browser:
            assert browser.get("/app/sign-in").headers["location"] == "/"
            first = browser.get("/app/jobs/open")
            assert first.status_code == 200 and 'id="run"' in first.text
            assert "Sign out" not in first.text, "nobody to sign out"
            csrf = re.search(r'name="csrf" value="([^"]+)"', first.text)
            assert csrf is not None
            refused = browser.post("/app/jobs/open/run", data={"csrf": "forged"})
            assert refused.status_code == 403
            started = browser.post("/app/jobs/open/run", data={"csrf": csrf[1]})
            assert started.status_code == 303
            assert re.fullmatch(r"/app/runs/[0-9a-f]{32}", started.headers["location"])
            run_id = started.headers["location"].rsplit("/", 1)[1]
            app.state.server.live[run_id].handle.result(timeout=60)
        assert db.rows("good") == [("1", "Ada")]  # text: the job sets no type
