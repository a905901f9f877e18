"""A run's live state from its engine events (``LiveRun.snapshot``): phase, size, bytes
read, percent, rates and time left, as ``GET /runs/{run_id}`` shows them while it runs."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from csvpg import events as ev
from csvpg.serve.live import LiveRun
from csvpg.serve.models import LiveState

RUN = "r" * 32


def live() -> LiveRun:
    # The handle only runs and cancels; following events needs none.
    return LiveRun(RUN, "job", cast(Any, None))


def test_a_run_goes_through_its_phases() -> None:
    run = live()
    assert run.snapshot() == LiveState(phase="queued")
    run.track_event(ev.JobStarted(RUN, job="job", files=2, database="db"))
    assert run.snapshot().phase == "planning" and run.snapshot().files_total == 2
    run.track_event(ev.FileStarted(RUN, file="a.csv", table="s.a", size=1000))
    run.track_event(ev.BytesRead(RUN, file="a.csv", bytes_read=500, size=1000))
    state = run.snapshot()
    assert (state.phase, state.size, state.bytes_read, state.percent) == (
        "loading",
        1000,
        500,
        50.0,
    )
    assert state.seconds_left is not None and state.seconds_left >= 0
    assert run.to_dict()["files"] == [
        {
            "file": "a.csv",
            "table": "s.a",
            "status": "loading",
            "bytes_read": 500,
            "size": 1000,
            "percent": 50.0,
        }
    ]
    loaded = ev.FileLoaded(RUN, "a.csv", "s.a", 10, 10, 0, 0, 0, 0.5)
    run.track_event(loaded)
    assert run.snapshot().files_done == 1 and run.snapshot().percent == 100.0
    assert run.snapshot().rows_per_second is not None
    run.track_event(ev.FileStarted(RUN, file="b.csv", table="s.b", size=None))
    assert run.snapshot().size is None and run.snapshot().percent is None, "b's size is unknown"
    run.track_event(ev.FileFailed(RUN, "b.csv", "s.b", "boom", None, 0.1))
    assert run.snapshot().phase == "finishing"
    run.track_event(ev.JobFinished(RUN, "job", "partial", 1, 1, 0, 10, 10, 0, 0, 0, 1.0))
    assert run.snapshot().phase == "ended"


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=20), st.integers(1, 10**9))
def test_percent_never_passes_100(reads: list[int], size: int) -> None:
    run = live()
    run.track_event(ev.FileStarted(RUN, file="a.csv", table="s.a", size=size))
    for n in sorted(reads):
        run.track_event(ev.BytesRead(RUN, file="a.csv", bytes_read=n, size=size))
        percent = run.snapshot().percent
        assert percent is not None and 0 <= percent <= 100
