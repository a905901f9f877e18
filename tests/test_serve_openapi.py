"""Schemathesis over ``csvpg serve``'s own OpenAPI schema: requests generated for every
route (valid and invalid ones, NUL bytes included), against the ASGI app in-process and a
real PostgreSQL, with the bearer token. No request may get a 5xx.

Needs ``schemathesis`` (the dev group); skipped without it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

TOKEN = "tok-" + uuid.uuid4().hex


@pytest.fixture
def api_schema(pg_server: str, tmp_path: Path):
    from csvpg.serve import make_app

    # No jobs: a generated request never starts a real run (nor calls a generated URL back).
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    app = make_app(jobs_dir=jobs, dsn=pg_server, token=TOKEN, max_upload_mb=1)
    config = SchemathesisConfig.from_dict(
        {
            "headers": {"Authorization": f"Bearer {TOKEN}"},
            "generation": {
                "mode": "all",  # schema-valid requests and invalid ones
                "max-examples": 25,
                "allow-x00": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case) -> None:
    case.call_and_validate(checks=[not_a_server_error])
