"""Record ``data/run_events.json``: the events of a real run, made fixed (run id, paths,
database, times from the start) for the snapshot tests and the README's screenshots.

    uv run python -m tests.tui.record_events [--dsn URL]    # default: the embedded server

Re-record only when the events themselves change; then update the snapshots
(``uv run pytest tests/tui --snapshot-update``) and the screenshots
(``uv run python -m tests.tui.screenshots``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from csvpg import events as ev
from csvpg.api import run
from csvpg.hookspecs import hookimpl
from tests.tui.replay import RECORDED

REPO = Path(__file__).resolve().parents[2]
RUN_ID = "5f3c2a7e9d1b4c8fa06e2d4b7c9a1e3f"
FOLDER = "/srv/exports"
DATABASE = "postgresql://etl:***@db.internal/warehouse"

JOB = """
[job]
name = "nightly-sales"

[database]
dsn = "{dsn}"
schema = "sales"

[source]
url = "{folder}"
pattern = "*.csv"

[sink]
mode = "upsert"
primary_key = ["id"]

[[override]]
match = "customers.csv"
primary_key = ["customer_id"]

[[override]]
match = "orders.csv"
primary_key = ["order_id"]

[[override]]
match = "ledger-*.csv"
mode = "append"

[columns]
id = "bigint"
amount = "numeric(12,2)"
booked_on = "date"

[run]
workers = 3
"""


def write_files(folder: Path) -> None:
    for name in ("customers.csv", "orders.csv"):
        shutil.copy(REPO / "examples" / "data" / name, folder / name)
    rnd = random.Random(7)
    with (folder / "payments.csv").open("w") as out:
        out.write("id,customer,amount,booked_on\n")
        for i in range(1, 60_001):
            amount = "n/a" if i % 997 == 0 else f"{rnd.uniform(1, 5000):.2f}"
            day = "2026-02-30" if i % 1499 == 0 else f"2026-02-{1 + i % 28:02d}"
            out.write(f"{i},C{rnd.randint(1, 300):04d},{amount},{day}\n")
    for month, rows in (("01", 4_000_000), ("02", 2_500_000)):
        with (folder / f"ledger-2026-{month}.csv").open("w") as out:
            out.write("id,account,amount,booked_on,memo\n")
            for i in range(1, rows + 1):
                out.write(
                    f"{i},{rnd.randint(1000, 9999)},{rnd.uniform(-9000, 9000):.2f},"
                    f"2026-{month}-{1 + i % 28:02d},posting {i} of the ledger\n"
                )
    (folder / "legacy.csv").write_text("ident;name\n1;old\n")  # no id column: it fails


class Recorder:
    """Keeps the events as the dashboard gets them: a file's progress at most every
    quarter second (and at its end), everything else as it comes."""

    def __init__(self) -> None:
        self.events: list[tuple[float, ev.Event]] = []
        self._last: dict[str, float] = {}

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        now = time.monotonic()
        if isinstance(event, ev.BytesRead) and event.bytes_read != event.size:
            if now - self._last.get(event.file, -1.0) < 0.25:
                return
            self._last[event.file] = now
        self.events.append((now, event))


def fixed(value: Any, replace: dict[str, str]) -> Any:
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: fixed(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [fixed(v, replace) for v in value]
    if isinstance(value, float):
        return round(value, 2)
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn")
    args = parser.parse_args()
    if args.dsn is None:
        from csvpg import embedded

        args.dsn = embedded.start()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS sales CASCADE")
        conn.execute("CREATE SCHEMA sales")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder)
        (folder / "job.toml").write_text(JOB.format(dsn=args.dsn, folder=folder))
        recorder = Recorder()
        summary = run(folder / "job.toml", plugins=[recorder], force=True)
        t0 = recorder.events[0][0]
        replace = {summary.run_id: RUN_ID, str(folder): FOLDER, summary.database: DATABASE}
        rows = [
            [round(at - t0, 2), fixed(event.to_dict(), replace)] for at, event in recorder.events
        ]
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA sales CASCADE")
    RECORDED.write_text(
        "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    )
    print(f"wrote {len(rows)} events to {RECORDED}")


if __name__ == "__main__":
    main()
