"""jobs/merge_contacts.toml: three files, three spellings of each header, one table."""

from __future__ import annotations

import dataclasses
import io
import logging
from pathlib import Path

import pytest
from csvpg_merge.transform import UNMAPPED_LEVEL

from csvpg import LoadResult, Transform
from csvpg.api import run
from csvpg.cli.check import check
from csvpg.events import FileLoaded, Warned
from csvpg.reporters import EventLog

REPO = Path(__file__).resolve().parents[3]
JOB = REPO / "jobs" / "merge_contacts.toml"


def job_for(csvpg_db, tmp_path: Path) -> Path:
    """The example job, aimed at the test's schema and server."""
    text = JOB.read_text(encoding="utf-8").replace(
        'url = "../examples/merge"', f'url = "{REPO / "examples" / "merge"}"'
    )
    path = tmp_path / "merge_contacts.toml"
    path.write_text(text + f'\n[database]\ndsn = "{csvpg_db.dsn}"\nschema = "{csvpg_db.schema}"\n')
    return path


def test_three_files_merge_into_one_deduplicated_table(csvpg_db, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="csvpg_merge")
    log = EventLog()
    summary = run(job_for(csvpg_db, tmp_path), plugins=[log])
    assert summary.exit_code == 0, [f.error for f in summary.files]

    assert csvpg_db.columns("contacts") == dict.fromkeys(
        ["email", "name", "phone", "company", "website"], "text"
    )
    assert csvpg_db.rows("contacts", order_by="email") == [
        (
            "ada@example.org",
            "Ada Lovelace",
            "+442079460001",
            "Analytical Engines Ltd",
            "analytical.example",
        ),
        ("barbara@example.edu", "Barbara Liskov", None, "MIT", None),
        ("grace@navy.example", "Rear Admiral Grace Hopper", "+12025550143", "US Navy", None),
        (
            "linus@example.net",
            "Linus Torvalds",
            "+35891234567",
            "Linux Foundation",
            "kernel.example",
        ),
        ("margaret@example.com", "Margaret Hamilton", "+16175550100", "MIT", "mit.example"),
    ]
    # Files in name order (workers = 1): crm, events, newsletter. Counts add up per file.
    counts = {
        Path(f.file).name: (f.rows_read, f.inserted, f.updated, f.collapsed) for f in summary.files
    }
    assert counts == {
        "crm.csv": (4, 3, 0, 1),  # ADA@Example.org is ada@example.org: merged in the file
        "events.csv": (3, 2, 1, 0),  # linus was there
        "newsletter.csv": (2, 0, 2, 0),  # grace and margaret were there
    }
    assert all(e.details["path"] == "rows" for e in log.of(FileLoaded))

    # Every mapping and every unmapped header is reported.
    said = [r.getMessage() for r in caplog.records]
    for line in (
        "canonical: 'E-Mail' → email (name 'email')",
        "canonical: 'Mail' → email (fuzzy: 'email', score 88.9)",
        "canonical: 'email address' → email (synonym 'email address')",
        "canonical: 'Organisation' → company (fuzzy: 'Organization', score 91.7)",
        "canonical: 'Tel.' → phone (synonym 'Tel')",
    ):
        assert line in said
    (unmapped,) = [r for r in caplog.records if "maps to no column" in r.getMessage()]
    assert unmapped.levelno == UNMAPPED_LEVEL
    assert unmapped.getMessage().startswith("canonical: header 'Notes' maps to no column")
    merged = [m for m in said if m.startswith("merge: newsletter.csv")]
    assert "'fields_filled': {'phone': 1}" in merged[0]
    assert "'fields_replaced': {'name': 2}" in merged[0]
    assert "'unmapped': ['Notes']" in merged[0]


def test_running_it_again_changes_nothing(csvpg_db, tmp_path: Path) -> None:
    job = job_for(csvpg_db, tmp_path)
    assert run(job).exit_code == 0
    before = csvpg_db.rows("contacts", order_by="email")
    again = run(job, force=True)
    assert again.exit_code == 0
    assert csvpg_db.rows("contacts", order_by="email") == before
    assert again.total("inserted") == 0


def test_check_shows_where_each_header_goes(csvpg_db, tmp_path: Path) -> None:
    out = io.StringIO()
    assert check(str(job_for(csvpg_db, tmp_path)), dsn=None, out=out) == 0
    text = out.getvalue()
    assert "column 1: 'Mail' → email" in text
    assert "column 4: 'Organisation' → company" in text
    assert "column 4: 'Notes' (not loaded)" in text
    assert "PRIMARY KEY" in text


REPORTS = "details" in {f.name for f in dataclasses.fields(LoadResult)} and hasattr(
    Transform, "report"
)


@pytest.mark.skipif(not REPORTS, reason="this csvpg keeps no sink or transform reports yet")
def test_the_mappings_and_statistics_land_in_each_files_details(csvpg_db, tmp_path: Path) -> None:
    log = EventLog()
    summary = run(job_for(csvpg_db, tmp_path), plugins=[log])
    assert summary.exit_code == 0
    details = {Path(f.file).name: f.details for f in summary.files}
    events = details["events.csv"]
    assert events["transforms"]["canonical"]["mapped"]["Mail"] == {
        "to": "email",
        "how": "fuzzy",
        "score": 88.9,
        "via": "email",
    }
    assert events["merge"]["duplicates_of_existing"] == 1
    news = details["newsletter.csv"]
    assert list(news["transforms"]["canonical"]["unmapped"]) == ["Notes"]
    assert news["transforms"]["canonical"]["missing"] == ["company", "website"]
    assert news["merge"]["fields_filled"] == {"phone": 1}
    (warned,) = [e for e in log.of(Warned) if "Notes" in e.message]
    assert warned.file.endswith("newsletter.csv")
