"""Schemathesis over ``csvpg serve``'s own OpenAPI schema: requests generated for every
route (valid and invalid ones, NUL bytes included), against the ASGI app in-process and a
real PostgreSQL, with the bearer token, and every check schemathesis has: no 5xx, every
status and body as the schema documents it, invalid requests refused, valid ones taken.

Needs ``schemathesis`` (the dev group); skipped without it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

TOKEN = "tok-" + uuid.uuid4().hex
SPEC_CHECKS = {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
}


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
            # A spec's keys are the installed plugins' options, checked by the server
            # (a 422 naming the key), not a JSON Schema: a schema-valid spec may be refused.
            "operations": [
                {"include-path": path, "include-method": method, "checks": SPEC_CHECKS}
                for method, path in (("PUT", "/jobs/{name}"), ("POST", "/runs"))
            ],
        }
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case) -> None:
    case.call_and_validate()  # all checks
