"""RunState folds engine events into what the dashboard shows; TuiReporter posts them."""

from __future__ import annotations

from typing import Any

from csvpg import events as ev
from csvpg.reporters import left_text
from csvpg.tui.messages import EngineEvent
from csvpg.tui.reporter import TuiReporter
from csvpg.tui.state import THROUGHPUT_SECONDS, RunState
from tests.tui.replay import recorded

R = "r1"
MiB = 1 << 20


def test_the_recorded_run_adds_up() -> None:
    state = RunState()
    for at, event in recorded():
        state.apply(event, at)
    assert state.status == "partial" and not state.running
    assert state.files_total == 6 and state.finished_files == 6 and state.queued == 0
    assert [f.status for f in state.files.values()].count("loaded") == 5
    payments = state.files["/srv/exports/payments.csv"]
    assert (payments.rejected, len(payments.rejects)) == (100, 20)
    assert payments.rejects[0]["line"] == 998
    assert state.total("rows_read") == state.finished.rows_read  # type: ignore[union-attr]


def test_queued_in_flight_and_done() -> None:
    state = RunState()
    state.apply(ev.JobStarted(R, "j", 3, "db"), 0.0)
    state.apply(ev.FileSkipped(R, "/x/empty.csv", "no header"), 0.0)  # left out by the plan
    state.apply(ev.FileStarted(R, "/x/a.csv", "s.a", 4 * MiB), 0.0)
    assert (state.queued, len(state.in_flight), state.finished_files) == (2, 1, 0)
    state.apply(ev.BytesRead(R, "/x/a.csv", 2 * MiB, 4 * MiB), 1.0)
    a = state.files["/x/a.csv"]
    assert a.rate == 2 * MiB and a.eta == 1.0
    state.apply(ev.FileFailed(R, "/x/a.csv", "s.a", "/x/a.csv: boom", "fix it", 1.5), 1.5)
    state.apply(ev.FileSkipped(R, "/x/b.csv", "not started: fail_fast"), 1.5)
    assert (state.queued, len(state.in_flight), state.finished_files) == (1, 0, 2)


def test_a_cancelled_file_is_shown_as_cancelled_not_failed() -> None:
    state = RunState()
    state.apply(ev.JobStarted(R, "j", 1, "db"), 0.0)
    state.apply(ev.FileStarted(R, "/x/a.csv", "s.a", None), 0.0)
    state.cancel_requested = True
    lines = state.apply(ev.FileCancelled(R, "/x/a.csv", "s.a", 1), 1)
    assert state.files["/x/a.csv"].status == "cancelled"
    assert lines == [("info", "cancelled a.csv → s.a: rolled back")]
    assert state.finished_files == 1 and not state.in_flight


def test_throughput_is_bytes_per_second_of_the_run() -> None:
    state = RunState()
    state.apply(ev.JobStarted(R, "j", 1, "db"), 10.0)
    state.apply(ev.FileStarted(R, "/x/a.csv", "s.a", None), 10.0)
    state.apply(ev.BytesRead(R, "/x/a.csv", 3 * MiB, None), 10.5)
    state.apply(ev.BytesRead(R, "/x/a.csv", 4 * MiB, None), 12.2)
    assert state.throughput[-3:] == [3.0, 0.0, 1.0]
    assert len(state.throughput) == THROUGHPUT_SECONDS


class Target:
    def __init__(self) -> None:
        self.posted: list[EngineEvent] = []

    def post_message(self, message: Any) -> bool:
        self.posted.append(message)
        return True


def test_reporter_thins_progress_but_never_the_end() -> None:
    now = [0.0]
    target = Target()
    reporter = TuiReporter(target, every=0.1, clock=lambda: now[0])  # type: ignore[arg-type]
    for i in range(1, 11):  # ten MiB in 50 ms
        now[0] = i * 0.005
        reporter.track_event(event=ev.BytesRead(R, "/x/a.csv", i * MiB, 10 * MiB))
    reporter.track_event(event=ev.FileLoaded(R, "/x/a.csv", "s.a", 1, 1, 0, 0, 0, 0.05))
    got = [
        (m.event.bytes_read if isinstance(m.event, ev.BytesRead) else "loaded")
        for m in target.posted
    ]
    assert got == [MiB, 10 * MiB, "loaded"]
    assert target.posted[1].at == 0.05


MiB = 1 << 20


def test_time_left_counts_postgresqls_writing_after_the_last_byte() -> None:
    """The first file took 4 s of writing after its 100 MiB were read: the second,
    100 MiB more, is expected to take as long after its read (PostgreSQL writes the
    whole file then, an upsert's INSERT say, not only its last bytes)."""
    s = RunState()
    s.apply(ev.JobStarted(R, "j", 2, "db", bytes=200 * MiB), 0.0)
    s.apply(ev.FileStarted(R, "/a.csv", "t", 100 * MiB), 0.0)
    s.apply(ev.BytesRead(R, "/a.csv", 100 * MiB, 100 * MiB), 10.0)
    assert s.files["/a.csv"].phase == "writing"
    assert s.files["/a.csv"].phase_seconds(13.0) == 3.0
    s.apply(ev.FileLoaded(R, "/a.csv", "t", 1, 1, 0, 0, 0, 14.0), 14.0)
    assert s.write_per_byte == 4.0 / (100 * MiB)
    s.apply(ev.FileStarted(R, "/b.csv", "t", 100 * MiB), 14.0)
    s.apply(ev.BytesRead(R, "/b.csv", 50 * MiB, 100 * MiB), 21.0)
    # 150 MiB in 21 s; 50 MiB left to read (7 s at that rate), then 4 s of writing
    assert s.eta is not None and round(s.eta, 6) == round(50 / (150 / 21) + 4.0, 6)
    s.apply(ev.BytesRead(R, "/b.csv", 100 * MiB, 100 * MiB), 28.0)
    s.now = 29.5
    assert s.eta == 2.5, "read at 28 s, writing since: 4 s of writing less the 1.5 s done"


def test_the_first_file_of_a_run_takes_its_write_time_from_the_jobs_earlier_runs() -> None:
    """Before any file of this run has loaded, the time left counts the write phase as
    the job's last runs took it; a job never run before says its reading time only."""
    s = RunState()
    s.apply(ev.JobStarted(R, "j", 1, "db", bytes=100 * MiB, write_per_byte=8.0 / (100 * MiB)), 0.0)
    s.apply(ev.FileStarted(R, "/a.csv", "t", 100 * MiB), 0.0)
    s.apply(ev.BytesRead(R, "/a.csv", 25 * MiB, 100 * MiB), 1.0)
    assert s.eta == 3.0 + 8.0
    fresh = RunState()
    fresh.apply(ev.JobStarted(R, "j", 1, "db", bytes=100 * MiB), 0.0)
    fresh.apply(ev.FileStarted(R, "/a.csv", "t", 100 * MiB), 0.0)
    fresh.apply(ev.BytesRead(R, "/a.csv", 25 * MiB, 100 * MiB), 1.0)
    assert fresh.eta == 3.0 and fresh.write_per_byte is None


def test_time_left_is_worded_for_what_is_known() -> None:
    assert left_text(11.0, True, True, True) == " · about 11 s left"
    assert left_text(3.0, True, False, True) == " · about 3 s of reading left"
    assert left_text(6.0, False, True, True) == " · read; PostgreSQL is writing, about 6 s left"
    assert left_text(None, False, False, True) == " · read; PostgreSQL is writing"
    assert left_text(None, True, True, True) == ""


def test_checking_bad_rows_is_a_phase_of_its_own() -> None:
    s = RunState()
    s.apply(ev.JobStarted(R, "j", 1, "db"), 0.0)
    s.apply(ev.FileStarted(R, "/a.csv", "t", 10 * MiB), 0.0)
    s.apply(ev.FilePhase(R, "/a.csv", "checking bad rows"), 3.0)
    f = s.files["/a.csv"]
    assert (f.phase, f.phase_seconds(8.0)) == ("checking bad rows", 5.0)
    assert s.eta is None  # the run's total is unknown: no time left is made up
