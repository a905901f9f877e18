"""No secret in what csvpg shows: spec errors, webhook deliveries in the run history
and in ``csvpg runs``. (The API's answers: tests/test_serve.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csvpg.api import run
from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.masking import mask_text, mask_value
from csvpg.spec import job_from_dict
from tests.test_notify import Receiver, unique, write_job

secret = st.text("abcdefXYZ0123456789-_.~!$*", min_size=8, max_size=30)


@given(secret)
def test_a_password_in_a_url_is_never_shown(pw: str) -> None:
    for text in (
        f"postgresql://etl:{pw}@db.example:5432/erp",
        f"error at postgresql://etl:{pw}@db/erp?sslmode=require, giving up",
        f"host=db user=etl password={pw} dbname=erp",
        f"https://hooks.example/x?a=1&token={pw}&b=2",
        f"https://hooks.example/x?api_key={pw}",
        f"https://{pw}@hooks.example/x",
        f"sftp://etl:{pw}@files.example/in",
    ):
        assert pw not in mask_text(text), text


def test_what_masking_keeps() -> None:
    assert mask_text("postgresql://etl:pw@db/erp") == "postgresql://etl:***@db/erp"
    assert (
        mask_text("postgresql://postgres@127.0.0.1/test") == "postgresql://postgres@127.0.0.1/test"
    )
    assert (
        mask_text("https://h.example/x?token=abc&page=2") == "https://h.example/x?token=***&page=2"
    )
    assert mask_text("https://tok@h.example/x") == "https://***@h.example/x"
    assert mask_value({"password": "${PW}", "secret": "s", "headers": {"Authorization": "t"}}) == {
        "password": "${PW}",
        "secret": "***",
        "headers": {"Authorization": "***"},
    }


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"database": {"dsn": ["postgresql://etl:S3cretPW@h/db"]}}, "'postgresql://etl:***@h/db'"),
        ({"database": {"dsn": 5, "schema": ["x"]}}, "'database.dsn' must be a string, not 5"),
        ({"sink": {"options": {"token": 42424242}}}, "'sink.options'"),
        ({"notify": [{"url": "https://h/x", "secret": ["S3cretPW"]}]}, "not ['***']"),
        ({"notify": [{"url": "https://h/x", "headers": {"Authorization": 42424242}}]}, "not ***"),
    ],
)
def test_spec_errors_never_echo_a_secret(raw: dict, words: str) -> None:
    spec = {"job": {"name": "x"}, "source": {"url": "."}, **raw}
    try:
        job_from_dict(spec, env={})
        message = ""
    except SpecError as exc:
        message = f"{exc.message} {exc.hint or ''}"
    assert "S3cretPW" not in message and "42424242" not in message
    if "token" not in str(raw):  # sink.options is the sink's: checked by the plan
        assert words in message


def test_webhook_urls_are_masked_in_the_history_and_in_runs(db, tmp_path: Path, capsys) -> None:
    name = unique("masked")
    with Receiver() as receiver:
        url = receiver.url("/hook").replace("http://", "http://hookuser:Hook-S3cret@")
        job = write_job(db, tmp_path, name, f'[[notify]]\nurl = "{url}?token=Tok-S3cret"\n')
        summary = run(job)
    assert summary.status == "succeeded"
    (stored,) = db.execute(
        "SELECT notifications FROM csvpg.runs WHERE id = %s", (summary.run_id,)
    ).fetchone()[0]
    # (urllib takes no user in a URL: the delivery fails, which is also recorded)
    assert "S3cret" not in json.dumps(stored) and stored["url"].endswith("/hook?token=***")
    assert main(["runs", summary.run_id, "--dsn", db.dsn]) == 0
    out = capsys.readouterr().out
    assert "webhook http://hookuser:***@127.0.0.1:" in out and "S3cret" not in out


def test_runs_masks_a_history_written_before_masking(db, tmp_path: Path, capsys) -> None:
    name = unique("old")
    summary = run(write_job(db, tmp_path, name))
    old = [{"url": "https://h.example/x?token=Old-S3cret", "status": "delivered", "attempts": 1}]
    db.execute(
        "UPDATE csvpg.runs SET notifications = %s::jsonb WHERE id = %s",
        (json.dumps(old), summary.run_id),
    )
    assert main(["runs", summary.run_id, "--dsn", db.dsn]) == 0
    out = capsys.readouterr().out
    assert "webhook https://h.example/x?token=***: delivered" in out and "S3cret" not in out
