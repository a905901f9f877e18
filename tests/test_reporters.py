"""Reporters: the plain lines (and their progress lines off a terminal), JSON lines for
log shippers, the rich bars on a terminal, and which one a run gets."""

from __future__ import annotations

import io
import json
from pathlib import Path

from csvpg import events as ev
from csvpg.cli.main import main
from csvpg.reporters import (
    JsonLinesReporter,
    LineReporter,
    ProgressLineReporter,
    RichReporter,
    for_stream,
    human_bytes,
    human_duration,
    stamp,
)
from tests.conftest import job_toml

R = "0123456789abcdef0123456789abcdef"
MiB = 1 << 20

RUN = [
    ev.JobStarted(R, "nightly", 3, "postgresql://etl:***@db/warehouse"),
    ev.FileStarted(R, "/data/big.csv", "public.big", 300 * MiB),
    ev.FileStarted(R, "/data/small.csv", "public.small", 2048),
    ev.FileLoaded(R, "/data/small.csv", "public.small", 20, 20, 0, 0, 0, 0.05),
    ev.BytesRead(R, "/data/big.csv", 100 * MiB, 300 * MiB),
    ev.Warned(R, "/data/big.csv: bad value; setting bad rows aside", "/data/big.csv"),
    ev.BytesRead(R, "/data/big.csv", 300 * MiB, 300 * MiB),
    ev.RowsRejected(
        R,
        "/data/big.csv",
        7,
        [{"line": n, "column": "id", "value": "x", "reason": "not an integer"} for n in range(7)],
    ),
    ev.FileLoaded(R, "/data/big.csv", "public.big", 1000, 990, 3, 0, 7, 30.0),
    ev.FileFailed(R, "/data/bad.csv", "public.bad", "/data/bad.csv: boom", "fix it", 0.1),
    ev.JobFinished(R, "nightly", "partial", 2, 1, 0, 1020, 1010, 3, 0, 7, 31.0),
]

LINES = [
    "job nightly: 3 files → postgresql://etl:***@db/warehouse",
    "  loaded  small.csv → public.small: 20 rows (20 inserted, 0 updated) in 0.05 s",
    "  warning: /data/big.csv: bad value; setting bad rows aside",
    "  7 rows of big.csv set aside:",
    "          line 0, column id: not an integer",
    "          line 1, column id: not an integer",
    "          line 2, column id: not an integer",
    "          line 3, column id: not an integer",
    "          line 4, column id: not an integer",
    f"          … 2 more in csvpg.rejects (run {R})",
    "  loaded  big.csv → public.big: 1,000 rows (990 inserted, 3 updated, 7 rejected) in 30.00 s",
    "  FAILED  bad.csv → public.bad: /data/bad.csv: boom",
    "          hint: fix it",
    "partial: 2 files loaded, 1 failed; 1,020 rows read, 1,010 inserted, 3 updated, 7 rejected"
    " in 31.00 s",
    f"  run {R}: csvpg runs {R} --rejects",
]


def feed(reporter: object, events: list[ev.Event]) -> None:
    for event in events:
        reporter.track_event(event=event)  # type: ignore[attr-defined]


def test_line_reporter_lines() -> None:
    out = io.StringIO()
    feed(LineReporter(out), RUN)
    assert out.getvalue().splitlines() == LINES


def test_quiet_keeps_errors_rejects_warnings_and_totals() -> None:
    out = io.StringIO()
    feed(LineReporter(out, quiet=True), RUN)
    assert out.getvalue().splitlines() == LINES[2:10] + LINES[11:]


def test_a_cancelled_file_says_so() -> None:
    out = io.StringIO()
    feed(LineReporter(out, quiet=True), [ev.FileCancelled(R, "/data/big.csv", "public.big", 2)])
    assert out.getvalue() == "  cancelled big.csv → public.big: rolled back\n"


def test_a_failure_is_a_failure_whatever_its_message_says() -> None:
    """Cancellation is its own event: a FileFailed whose message happens to end like a
    cancelled file's is still a failure."""
    out = io.StringIO()
    message = "/data/big.csv: cancelled; its rows were rolled back"
    feed(LineReporter(out), [ev.FileFailed(R, "/data/big.csv", "public.big", message, None, 2)])
    assert out.getvalue() == f"  FAILED  big.csv → public.big: {message}\n"


def test_rich_reporter_lists_a_cancelled_file_as_cancelled() -> None:
    out = io.StringIO()
    reporter = RichReporter(out, width=100)
    feed(
        reporter,
        [
            ev.JobStarted(R, "nightly", 1, "db"),
            ev.FileStarted(R, "/data/big.csv", "public.big", 300 * MiB),
            ev.FileCancelled(R, "/data/big.csv", "public.big", 2.5),
            ev.JobFinished(R, "nightly", "cancelled", 0, 0, 0, 0, 0, 0, 0, 0, 2.6),
        ],
    )
    reporter.close()
    text = out.getvalue()
    assert "cancelled big.csv → public.big: rolled back" in text
    assert ["big.csv", "public.big", "cancelled", "2.50"] in [
        line.split() for line in text.splitlines()
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_off_a_terminal_only_for_long_files() -> None:
    """Off a terminal a run prints LineReporter's lines, plus, for a file still loading
    after ``every`` seconds, a progress line at most every ``every`` seconds."""
    out, clock = io.StringIO(), Clock()
    reporter = ProgressLineReporter(out, every=10, clock=clock)
    feed(reporter, RUN[:4])  # small.csv loads at once: no progress line
    clock.now = 4
    feed(reporter, [ev.BytesRead(R, "/data/big.csv", 40 * MiB, 300 * MiB)])
    clock.now = 10
    feed(reporter, [RUN[4]])
    clock.now = 15
    feed(reporter, [ev.BytesRead(R, "/data/big.csv", 150 * MiB, 300 * MiB)])  # too soon
    clock.now = 20
    feed(reporter, RUN[5:7])  # a warning; all read
    clock.now = 25
    reporter.tick()  # too soon
    clock.now = 30
    reporter.tick()  # PostgreSQL still works on it, with no event to say so: the heartbeat
    feed(reporter, RUN[7:])
    assert out.getvalue().splitlines() == [
        *LINES[:2],
        "  loading big.csv: 100.0 MiB of 300.0 MiB (33%), 10.0 MiB/s, about 20 s left",
        LINES[2],
        "  loading big.csv: all 300.0 MiB read, PostgreSQL is writing it (20 s so far)",
        "  loading big.csv: all 300.0 MiB read, PostgreSQL is writing it (30 s so far)",
        *LINES[3:],
    ]


def test_the_heartbeat_thread_prints_and_stops(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    reporter = ProgressLineReporter(out, every=0.01, clock=clock, heartbeat=True)
    feed(reporter, RUN[:2])
    clock.now = 5
    for _ in range(500):
        if "opening it" in out.getvalue():
            break
        reporter._stop.wait(0.01)
    reporter.close()
    assert "  loading big.csv: opening it, for 5 s" in out.getvalue().splitlines()


def test_json_lines_are_the_events() -> None:
    out = io.StringIO()
    feed(JsonLinesReporter(out), RUN)
    objects = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [{k: v for k, v in o.items() if k not in ("time", "level")} for o in objects] == [
        e.to_dict() for e in RUN
    ]
    quiet = io.StringIO()
    feed(JsonLinesReporter(quiet, quiet=True), RUN)
    kinds = [json.loads(line)["event"] for line in quiet.getvalue().splitlines()]
    assert kinds == ["Warned", "RowsRejected", "FileFailed", "JobFinished"]


def test_every_event_has_a_stable_name_and_its_time() -> None:
    out = io.StringIO()
    cancelled = ev.FileCancelled(R, "/data/big.csv", "public.big", 2.0, created=1767225600.0)
    feed(JsonLinesReporter(out, quiet=True), [cancelled])
    assert json.loads(out.getvalue()) == {
        "time": stamp(1767225600.0),
        "level": "warning",
        "event": "FileCancelled",
        "name": "file_cancelled",
        "created": 1767225600.0,
        "run_id": R,
        "file": "/data/big.csv",
        "table": "public.big",
        "seconds": 2.0,
    }
    names = [e.name for e in RUN]
    assert names[:4] == ["job_started", "file_started", "file_started", "file_loaded"]
    assert names[-2:] == ["file_failed", "job_finished"]


def test_rich_reporter_ends_with_a_summary_table() -> None:
    out = io.StringIO()
    reporter = RichReporter(out, width=100)
    feed(reporter, RUN)
    reporter.close()
    text = out.getvalue()
    assert "FAILED  bad.csv → public.bad: /data/bad.csv: boom" in text
    table = [line.split() for line in text.splitlines()]
    assert ["big.csv", "public.big", "loaded", "1,000", "990", "3", "7", "30.00"] in table
    assert ["small.csv", "public.small", "loaded", "20", "20", "0", "0", "0.05"] in table
    assert text.rstrip().endswith(LINES[-1].strip())


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_run_gets_bars_on_a_terminal_and_lines_elsewhere() -> None:
    assert type(for_stream(io.StringIO())) is ProgressLineReporter
    assert type(for_stream(Tty())) is RichReporter
    assert type(for_stream(Tty(), quiet=True)) is ProgressLineReporter
    assert type(for_stream(Tty(), log_format="json")) is JsonLinesReporter


def test_human_units() -> None:
    assert [human_bytes(n) for n in (512, 1536, 3 * MiB, 5 << 30)] == [
        "512 B",
        "1.5 KiB",
        "3.0 MiB",
        "5.0 GiB",
    ]
    assert [human_duration(s) for s in (4.4, 75, 3725)] == ["4 s", "1 min 15 s", "1 h 02 min"]


def test_cli_log_format_json(db, tmp_path: Path, capsys) -> None:
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "people.csv"))
    assert main(["run", str(job), "--log-format", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == [
        "JobStarted",
        "FileStarted",
        "BytesRead",
        "FileLoaded",
        "JobFinished",
    ]
    assert events[3]["rows_read"] == 1 and len({e["run_id"] for e in events}) == 1
    assert [e["name"] for e in events][::4] == ["job_started", "job_finished"]
    created = [e["created"] for e in events]
    assert created == sorted(created) and all(isinstance(t, float) for t in created)

    assert main(["run", str(job), "--log-format", "json", "--json", "-q", "--force"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["totals"]["rows_read"] == 1  # the summary on stdout
    assert [json.loads(line)["event"] for line in captured.err.splitlines()] == ["JobFinished"]


def test_log_lines_carry_their_time_and_the_files_number() -> None:
    """Off a terminal (cron, Airflow) every line starts with its time; a file's lines
    say which of the run's files it is."""
    out = io.StringIO()
    events = [
        ev.JobStarted(R, "nightly", 2, "db", created=1767225600.0),
        ev.FileStarted(R, "/data/a.csv", "public.a", 10, created=1767225601.0),
        ev.FileStarted(R, "/data/b.csv", "public.b", 10, created=1767225601.0),
        ev.FileLoaded(R, "/data/b.csv", "public.b", 2, 2, 0, 0, 0, 0.1, created=1767225602.0),
        ev.FileFailed(R, "/data/a.csv", "public.a", "boom", "fix it", 1.0, created=1767225603.0),
        ev.JobFinished(R, "nightly", "partial", 1, 1, 0, 2, 2, 0, 0, 0, 3.0, created=1767225604.0),
    ]
    feed(LineReporter(out, stamped=True), events)
    at = stamp
    assert out.getvalue().splitlines() == [
        f"{at(1767225600.0)} job nightly: 2 files → db",
        f"{at(1767225602.0)} [2/2] loaded  b.csv → public.b: 2 rows (2 inserted, 0 updated)"
        " in 0.10 s",
        f"{at(1767225603.0)} [1/2] FAILED  a.csv → public.a: boom",
        f"{at(1767225603.0)} [1/2]         hint: fix it",
        f"{at(1767225604.0)} partial: 1 file loaded, 1 failed; 2 rows read, 2 inserted, 0 updated"
        " in 3.00 s",
        f"{at(1767225604.0)}   run {R}",
    ]


def test_the_totals_count_unchanged_and_collapsed_rows() -> None:
    out = io.StringIO()
    done = ev.JobFinished(R, "j", "succeeded", 1, 0, 0, 5000, 1200, 300, 2, 0, 1.0, unchanged=3498)
    feed(LineReporter(out), [done])
    assert out.getvalue().splitlines()[0] == (
        "succeeded: 1 file loaded; 5,000 rows read, 1,200 inserted, 300 updated, "
        "3,498 unchanged, 2 duplicate keys collapsed in 1.00 s"
    )


def test_a_dry_run_says_so_on_every_line() -> None:
    out = io.StringIO()
    events = [
        ev.JobStarted(R, "nightly", 1, "db", dry_run=True),
        ev.FileLoaded(R, "/data/b.csv", "public.b", 2, 2, 0, 0, 0, 0.1),
        ev.JobFinished(R, "nightly", "succeeded", 1, 0, 0, 2, 2, 0, 0, 0, 3.0),
    ]
    feed(LineReporter(out), events)
    lines = out.getvalue().splitlines()
    assert all(line.startswith("dry run: ") for line in lines)
    assert (
        lines[1] == "dry run: would load b.csv → public.b: 2 rows (2 inserted, 0 updated) in 0.10 s"
    )
    assert lines[2].startswith("dry run: succeeded: 1 file; 2 rows read")


def test_json_progress_is_throttled_but_its_end_is_kept() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = JsonLinesReporter(out, every=5.0, clock=clock)
    for mib in range(1, 301):  # one event a MiB, 0.1 s apart: 30 s in all
        clock.now = mib / 10
        reporter.track_event(event=ev.BytesRead(R, "/data/big.csv", mib * MiB, 300 * MiB))
    read = [json.loads(line)["bytes_read"] // MiB for line in out.getvalue().splitlines()]
    assert read == [1, 51, 101, 151, 201, 251, 300]


def test_json_levels_follow_what_happened() -> None:
    out = io.StringIO()
    feed(JsonLinesReporter(out), RUN)
    levels = {
        json.loads(line)["name"]: json.loads(line)["level"] for line in out.getvalue().splitlines()
    }
    assert levels["file_loaded"] == "info"
    assert levels["rows_rejected"] == "warning"
    assert levels["file_failed"] == "error"
    assert levels["job_finished"] == "error"  # partial


def test_progress_lines_name_the_phase_bytes_do_not_show() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = ProgressLineReporter(out, every=10, clock=clock)
    feed(reporter, [ev.JobStarted(R, "j", 1, "db"), ev.FileStarted(R, "/d/big.csv", "t", MiB)])
    clock.now = 3.0
    feed(reporter, [ev.FilePhase(R, "/d/big.csv", "checking bad rows")])
    clock.now = 12.0
    reporter.tick()
    assert out.getvalue().splitlines()[-1] == ("  loading big.csv: checking bad rows (12 s so far)")


def test_the_overall_bar_counts_bytes_with_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = RichReporter(out, width=160, clock=clock)
    feed(reporter, [ev.JobStarted(R, "j", 2, "db", bytes=200 * MiB)])
    feed(reporter, [ev.FileStarted(R, "/d/a.csv", "t", 100 * MiB)])
    clock.now = 10.0
    feed(reporter, [ev.BytesRead(R, "/d/a.csv", 50 * MiB, 100 * MiB)])
    assert reporter._overall_detail() == (
        "0 of 2 files · 50.0 MiB of 200.0 MiB · 5.0 MiB/s · about 30 s of reading left"
    )
    reporter.close()


def test_the_time_left_counts_postgresqls_writing_as_the_jobs_last_runs_took_it() -> None:
    """With the job's write time per byte from its history, the time left counts the
    write phase from the first second, and it goes on falling while PostgreSQL writes
    (no event comes then: the text is made at each refresh)."""
    out, clock = io.StringIO(), Clock()
    reporter = RichReporter(out, width=160, clock=clock)
    feed(
        reporter,
        [ev.JobStarted(R, "j", 1, "db", bytes=100 * MiB, write_per_byte=10.0 / (100 * MiB))],
    )
    feed(reporter, [ev.FileStarted(R, "/d/a.csv", "t", 100 * MiB)])
    clock.now = 1.0
    feed(reporter, [ev.BytesRead(R, "/d/a.csv", 20 * MiB, 100 * MiB)])
    assert reporter._overall_detail().endswith("· about 14 s left"), "4 s to read, 10 to write"
    clock.now = 5.0
    feed(reporter, [ev.BytesRead(R, "/d/a.csv", 100 * MiB, 100 * MiB)])
    clock.now = 8.0
    assert reporter._overall_detail().endswith("read; PostgreSQL is writing, about 7 s left")
    assert reporter._file_detail("/d/a.csv") == (
        "100.0 MiB read, PostgreSQL is writing it, about 7 s left"
    )
    reporter.close()
