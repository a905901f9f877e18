"""How fast csvpg loads, next to what PostgreSQL's own tools do with the same file.

Run it with ``uv run nox -s bench`` (or ``uv run python -m tests.benchmark``)::

    python -m tests.benchmark [--rows 1000000] [--runs 3] [--keep] [--dir bench-data]

It generates seeded, realistic CSV files (12 mixed columns: integers, decimals, dates,
timestamps, short and long text, quoted commas and quotes, UTF-8 accents, empty fields,
a few quoted newlines) plus an upsert snapshot of the same table (every base row, 10 %
of them changed, and 10 % new rows), starts the embedded PostgreSQL in a private
``CSVPG_HOME`` under the data dir (the user's server is never touched) and measures,
as the median of ``--runs`` repetitions with the tables reset outside the timed region:

* ``psql \\copy`` (the bundled psql 18, csvpg's COPY options) into a fresh TEXT table,
  against ``csvpg run`` append into a fresh table (in-process with ``csvpg.run``, and
  once as a ``csvpg run`` subprocess);
* the best hand-written upsert for the file (psql: COPY into a typed temporary table,
  then ``INSERT … ON CONFLICT DO UPDATE … WHERE (cols) IS DISTINCT FROM (excluded
  cols)``; it knows the file's keys are unique, so no ``DISTINCT ON``) against ``csvpg
  run`` upsert, which cannot know that, the table holding the base file each time;
* ``csvpg run`` rebuild of the loaded table against ``psql \\copy`` into an empty one;
* the base file split in 4, loaded with ``[run] workers = 1`` and ``workers = 2``;
* the base file alone over 2 connections (``[run] split_mb``) into a new table, and the
  upsert file over 2 connections;
* the loaders people would pick instead, each a fresh process on the base file into a
  new table, rounds alternating with ``psql \\copy`` and ``csvpg run``: DuckDB
  (``read_csv`` into its postgres extension), sling and pgloader (``uv sync --group
  bench``; pgloader from the system's packages). Each result is checked against
  psql's (rows, and an md5 over the rows in order_id order); a peer that is missing
  gets a row saying so;
* a 2-row file, ``csvpg run`` and ``psql \\copy`` as fresh processes (start-up);
* 100, 1,000 and 10,000 files of 100 rows loaded by one ``csvpg run``, then the same
  run again with every file unchanged (one run each).

Before the fresh processes, csvpg and the environment's packages are compiled to
bytecode, as an installer leaves them.
* the base file with 0.01 % bad values, and with 0.01 % records of the wrong width,
  against its clean load into the same typed table (``--only badrows``);
* ``[columns]`` conversions (decimal comma, a date template, boolean words) against
  ``psql \\copy`` of the same columns as text (``--only conversions``);
* the base file cut in 40, loaded in-process and through 1, 2 and 4 local
  ``csvpg worker`` processes (``csvpg run --queue``; ``--only queue``).

Each timed call also records the client's CPU seconds (this process for in-process
runs, the waited-for child for psql) and the server's (the postmaster, its live children
and the backends it reaped), so client and server costs can be told apart even when
other work on the machine skews wall times. Autovacuum is off in the private cluster,
so one run's table is not vacuumed during the next run. The client's peak RSS of each
``csvpg run`` subprocess is its own ``ru_maxrss`` as returned by ``os.wait4`` for that
child, started from a small spawner process (a child's high-water mark starts at the
RSS of the process that forked it; ``RUSAGE_CHILDREN`` would be the largest of every
child so far, psql's included). It prints one table and writes ``<dir>/results.json``.
Without ``--keep`` the generated files and the cluster are removed at the end (kept
when a run fails); with it they stay and are reused while the row count matches.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
SEED = 20240611
#: Bumped whenever the generator changes, so old data is regenerated.
GENERATOR_VERSION = 1
SCHEMA = "bench"
PARTS = 4
#: The queued-runs measurement: a job of this many files, through this many workers.
QUEUE_FILES = 40
QUEUE_WORKERS = (1, 2, 4)

TARGETS = {"append": 1.15, "upsert": 1.05, "rebuild": 1.25}
RSS_TARGET_MB = 150.0
#: What ``--only`` may name, in the order they run.
MEASUREMENTS = [
    "append", "upsert", "rebuild", "workers", "split", "parquet", "infer", "peers", "startup",
    "many", "badrows", "conversions", "queue",
]  # fmt: skip

# --- the data ------------------------------------------------------------------------

HEADER = [
    "order_id",
    "customer_id",
    "order_date",
    "created_at",
    "status",
    "sku",
    "quantity",
    "unit_price",
    "discount",
    "customer_name",
    "city",
    "comment",
]
#: The typed table (upsert, rebuild); append goes to a TEXT table, as psql's baseline.
TYPES = {
    "order_id": "bigint",
    "customer_id": "integer",
    "order_date": "date",
    "created_at": "timestamp without time zone",
    "status": "text",
    "sku": "text",
    "quantity": "integer",
    "unit_price": "numeric(12,2)",
    "discount": "numeric(5,2)",
    "customer_name": "text",
    "city": "text",
    "comment": "text",
}
KEY = "order_id"

_STATUS = ["new", "paid", "shipped", "delivered", "returned", "cancelled", "on hold"]
_FIRST = [
    "Anna", "Jörg", "Zoë", "Łukasz", "María José", "François", "Søren", "Ana", "İbrahim",
    "Chloé", "Mateo", "Noémie", "Björn", "Renée", "Ömer", "Eva", "Jürgen", "Dvořák",
    "José", "Ingrid", "Paul", "Håkon", "Élodie", "Sven",
]  # fmt: skip
_LAST = [
    "Müller", "García", "O'Brien", "Nowak", "Åberg", "Schäfer", "Dubois", "Rossi",
    "Fernández", "Kowalczyk", "Smith", "Jensen", "Núñez", "Ćosić", "Weiß", "Leclère",
    "Horváth", "Yılmaz", "Costa", "Novák", "Brown", "Lindqvist",
]  # fmt: skip
_CITY = [
    "Zürich", "São Paulo", "Kraków", "Málaga", "Göteborg", "Besançon", "Reykjavík",
    "Łódź", "München", "Île-de-France", "Århus", "Köln", "Genève", "Düsseldorf", "Brno",
    "New York", "Paris", "Lisboa", "Wien", "Montréal", "",
]  # fmt: skip
_WORDS = (  # noqa: SIM905 - a sentence reads better than 50 quoted words
    "the order was delivered late customer asked for a refund package damaged in "
    "transit please call back before Friday invoice attached déjà vu façade naïve "
    "Straße prüfen Lieferung verspätet smörgåsbord crème brûlée coöperate résumé "
    "über Ærø señor piñata café entrée São Tomé ok fine thanks again 42 units "
    "urgent — next week"
).split()


def _comment(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.30:
        return ""
    if roll < 0.80:
        words = rng.choices(_WORDS, k=rng.randint(2, 12))
    else:  # the long tail: up to ~400 characters
        words = rng.choices(_WORDS, k=rng.randint(20, 60))
    text = " ".join(words)
    roll = rng.random()
    if roll < 0.15:
        text = text.replace(" ", ", ", 2)  # quoted commas
    elif roll < 0.20:
        text = f'said "{text}"'  # doubled quotes
    elif roll < 0.2004:
        text = text.replace(" ", "\n", 1)  # a few quoted newlines
    return text


_EPOCH = date(2015, 1, 1)


def _row(rng: random.Random, order_id: int) -> list[str]:
    day = _EPOCH + timedelta(days=rng.randrange(3650))
    created = datetime(day.year, day.month, day.day) + timedelta(seconds=rng.randrange(86400))
    stamp = created.isoformat(sep=" ")
    if rng.random() < 0.3:
        stamp += f".{rng.randrange(1000000):06d}"
    if rng.random() < 0.3:
        name = f"{rng.choice(_LAST)}, {rng.choice(_FIRST)}"  # a quoted comma
    else:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    return [
        str(order_id),
        str(rng.randrange(1, 200_000)),
        day.isoformat(),
        stamp,
        rng.choice(_STATUS),
        f"SKU-{rng.randrange(100_000):05d}",
        str(rng.randint(1, 500)),
        f"{rng.randrange(10, 1_000_000) / 100:.2f}",
        "" if rng.random() < 0.6 else f"{rng.randrange(0, 5000) / 100:.2f}",
        name,
        rng.choice(_CITY),
        _comment(rng),
    ]


def _changed(rng: random.Random, row: list[str]) -> list[str]:
    new = list(row)
    new[4] = rng.choice(_STATUS)
    new[6] = str(rng.randint(1, 500))
    new[7] = f"{rng.randrange(10, 1_000_000) / 100:.2f}"
    new[11] = _comment(rng) or "changed"
    return new


class _Line:
    """A file-like object that keeps the one line ``csv.writer.writerow`` writes."""

    text = ""

    def write(self, text: str) -> int:
        self.text = text
        return len(text)


def csv_lines(rows: int, seed: int = SEED, start: int = 1) -> Iterator[str]:
    """The header line, then ``rows`` generated records (``\\n`` line ends)."""
    rng = random.Random(seed)
    line = _Line()
    writer = csv.writer(line, lineterminator="\n")
    writer.writerow(HEADER)
    yield line.text
    for order_id in range(start, start + rows):
        writer.writerow(_row(rng, order_id))
        yield line.text


@dataclass
class Data:
    rows: int
    base: Path
    upsert: Path
    parts_dir: Path
    upsert_rows: int
    changed: int
    new: int
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def parts(self) -> list[Path]:
        return sorted(self.parts_dir.glob("part_*.csv"))


def generate(folder: Path, rows: int) -> Data:
    """Write the base file, the upsert snapshot and the base split in 4, in one pass."""
    rng = random.Random(SEED)
    change_rng = random.Random(SEED + 1)
    changed = set(random.Random(SEED + 2).sample(range(rows), rows // 10))
    new = rows // 10
    for sub in ("base", "upsert", "parts"):
        shutil.rmtree(folder / sub, ignore_errors=True)
        (folder / sub).mkdir(parents=True)
    line = _Line()
    writer = csv.writer(line, lineterminator="\n")
    writer.writerow(HEADER)
    header = line.text

    def open_csv(path: Path) -> TextIO:
        handle = path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
        handle.write(header)
        return handle

    per_part = -(-rows // PARTS)
    base = open_csv(folder / "base" / "orders.csv")
    upsert = open_csv(folder / "upsert" / "orders.csv")
    part: TextIO | None = None
    try:
        for i in range(rows):
            if i % per_part == 0:
                if part is not None:
                    part.close()
                part = open_csv(folder / "parts" / f"part_{i // per_part + 1}.csv")
            row = _row(rng, i + 1)
            writer.writerow(row)
            base.write(line.text)
            part.write(line.text)  # type: ignore[union-attr]
            if i in changed:
                writer.writerow(_changed(change_rng, row))
            upsert.write(line.text)
        for order_id in range(rows + 1, rows + new + 1):
            writer.writerow(_row(change_rng, order_id))
            upsert.write(line.text)
    finally:
        for handle in (base, upsert, part):
            if handle is not None:
                handle.close()
    data = Data(
        rows,
        folder / "base" / "orders.csv",
        folder / "upsert" / "orders.csv",
        folder / "parts",
        rows + new,
        len(changed),
        new,
    )
    data.sizes = _sizes(data)
    return data


def _sizes(data: Data) -> dict[str, int]:
    return {
        "base": data.base.stat().st_size,
        "upsert": data.upsert.stat().st_size,
        "parts": sum(p.stat().st_size for p in data.parts),
    }


def ensure_data(folder: Path, rows: int) -> tuple[Data, float | None]:
    """The generated files, made again only when missing or of another size."""
    meta_path = folder / "data.json"
    try:
        meta = json.loads(meta_path.read_text())
        data = Data(
            rows=meta["rows"],
            base=folder / "base" / "orders.csv",
            upsert=folder / "upsert" / "orders.csv",
            parts_dir=folder / "parts",
            upsert_rows=meta["upsert_rows"],
            changed=meta["changed"],
            new=meta["new"],
        )
        fresh = (
            meta["rows"] == rows
            and meta["seed"] == SEED
            and meta["version"] == GENERATOR_VERSION
            and len(data.parts) == PARTS
            and _sizes(data) == meta["sizes"]
        )
    except (OSError, ValueError, KeyError):
        fresh = False
    if fresh:
        data.sizes = meta["sizes"]
        return data, None
    started = time.perf_counter()
    meta_path.unlink(missing_ok=True)
    data = generate(folder, rows)
    seconds = time.perf_counter() - started
    meta = {
        "rows": rows,
        "seed": SEED,
        "version": GENERATOR_VERSION,
        "upsert_rows": data.upsert_rows,
        "changed": data.changed,
        "new": data.new,
        "sizes": data.sizes,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    return data, seconds


# --- the server and the clients ------------------------------------------------------


@dataclass
class Sample:
    """One timed call: wall seconds, the client's CPU seconds, the server's CPU seconds."""

    wall: float
    client: float
    server: float


def _spawned(
    command: list[str], out: str, err: str, env: dict[str, str] | None
) -> tuple[int, float, float, float]:
    """In the spawner (:attr:`Bench.spawner`): run ``command``, its output to ``out`` and
    ``err`` (the same file: both); its exit code, wall and CPU seconds, peak RSS (MB)."""
    with open(out, "ab") as stdout, open(err, "ab") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(
            command, stdout=stdout, stderr=stdout if out == err else stderr, env=env
        )
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    return child.returncode, seconds, _cpu(usage), usage.ru_maxrss * 1024 / 1e6


def _cpu(usage: Any) -> float:
    return float(usage.ru_utime + usage.ru_stime)


class ServerCpu:
    """CPU seconds of the whole cluster: the postmaster, its live children (backends,
    checkpointer, WAL writer …) and the children it has reaped (backends that ended)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.postmaster = psutil.Process(pid)

    def total(self) -> float:
        t = self.postmaster.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.postmaster.children():
            try:
                c = child.cpu_times()
            except self.psutil.Error:
                continue  # ended between the two reads: counted in children_* next time
            total += c.user + c.system
        return float(total)

    def children(self) -> set[int]:
        return {child.pid for child in self.postmaster.children()}

    def quiet(self, before: set[int], timeout: float = 10.0) -> None:
        """Wait until every process started since ``before`` has ended and been reaped:
        only then is its CPU time in the postmaster's ``children_*``."""
        deadline = time.monotonic() + timeout
        while self.children() - before and time.monotonic() < deadline:
            time.sleep(0.005)


class Bench:
    def __init__(self, folder: Path, dsn: str, data: Data, runs: int, postmaster: int) -> None:
        import psycopg

        from csvpg import embedded

        self.folder = folder
        self.dsn = dsn
        self.data = data
        self.runs = runs
        self.psql = str(embedded.psql_path())
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.server = ServerCpu(postmaster)
        self.jobs = folder / "jobs"
        self.jobs.mkdir(exist_ok=True)
        self.logs = folder / "logs"
        self.logs.mkdir(exist_ok=True)
        self.results: list[dict[str, Any]] = []
        self.rss: list[dict[str, Any]] = []

    # -- SQL helpers

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(query.encode())
        return cur.fetchall() if cur.description else []

    def count(self, table: str) -> int:
        return int(self.sql(f"SELECT count(*) FROM {SCHEMA}.{table}")[0][0])

    def settle(self) -> None:
        """Outside the timed region: dirty pages flushed, so no run pays for another."""
        self.sql("CHECKPOINT")

    def text_table(self, table: str) -> None:
        cols = ", ".join(f"{c} text" for c in HEADER)
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        self.sql(f"CREATE TABLE {SCHEMA}.{table} ({cols})")

    def typed_table(self, table: str, *, loaded: bool) -> None:
        """The typed table with its primary key; ``loaded``: holding the base file."""
        cols = ", ".join(f"{c} {t}" for c, t in TYPES.items())
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        self.sql(f"CREATE TABLE {SCHEMA}.{table} ({cols})")
        if loaded:
            self.sql(f"INSERT INTO {SCHEMA}.{table} SELECT * FROM {SCHEMA}.pristine")
            self.sql(f"ALTER TABLE {SCHEMA}.{table} ADD PRIMARY KEY ({KEY})")
            self.sql(f"VACUUM ANALYZE {SCHEMA}.{table}")
        else:
            self.sql(f"ALTER TABLE {SCHEMA}.{table} ADD PRIMARY KEY ({KEY})")

    def prepare(self) -> None:
        # The private cluster only: no autovacuum of one run's table during the next run.
        self.sql("ALTER SYSTEM SET autovacuum = off")
        self.sql("SELECT pg_reload_conf()")
        self.sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        self.sql(f"CREATE SCHEMA {SCHEMA}")
        cols = ", ".join(f"{c} {t}" for c, t in TYPES.items())
        self.sql(f"CREATE TABLE {SCHEMA}.pristine ({cols})")
        self.psql_copy("pristine", self.data.base)
        self.sql(f"VACUUM ANALYZE {SCHEMA}.pristine")
        for path in [self.data.base, self.data.upsert, *self.data.parts]:
            with path.open("rb") as handle:  # warm the page cache for every contender
                while handle.read(1 << 24):
                    pass
        compile_bytecode()
        # One small in-process run first, so the timed runs do not pay for imports.
        small = self.jobs / "warm" / "warm.csv"
        small.parent.mkdir(exist_ok=True)
        with self.data.base.open(encoding="utf-8", newline="") as src:
            small.write_text("".join(src.readline() for _ in range(1000)), encoding="utf-8")
        self.csvpg_inprocess(self.job("warm", small, 'mode = "append"\ntable = "warm"'))
        self.sql(f"DROP TABLE {SCHEMA}.warm")

    # -- the contenders

    def run_psql(self, args: list[str], log: str) -> str:
        env = {**os.environ, "PGCLIENTENCODING": "UTF8"}
        done = subprocess.run(
            [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn, *args],
            capture_output=True,
            text=True,
            env=env,
        )
        (self.logs / f"{log}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            raise SystemExit(f"psql failed ({log}): {done.stderr.strip()}")
        return done.stdout

    @staticmethod
    def copy_options() -> str:
        """What csvpg's ``copy_options`` composes for these files (header, UTF-8)."""
        return "(FORMAT csv, DELIMITER ',', QUOTE '\"', ESCAPE '\"', HEADER true, ENCODING 'UTF8')"

    def psql_copy(self, table: str, path: Path) -> None:
        command = f"\\copy {SCHEMA}.{table} FROM '{path}' WITH {self.copy_options()}"
        self.run_psql(["-c", command], f"copy_{table}")

    def upsert_script(self, table: str, path: Path) -> Path:
        """The best hand-written upsert for this file (its keys are unique): COPY into a
        typed temporary table, then ``INSERT … ON CONFLICT DO UPDATE … WHERE (cols) IS
        DISTINCT FROM (excluded cols)``, counting inserted and updated rows (the rest of
        the file is unchanged)."""
        cols = ", ".join(f'"{c}"' for c in HEADER)
        others = [c for c in HEADER if c != KEY]
        sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in others)
        mine = ", ".join(f't."{c}"' for c in others)
        theirs = ", ".join(f'EXCLUDED."{c}"' for c in others)
        script = textwrap.dedent(
            f"""\
            BEGIN;
            CREATE TEMP TABLE csvpg_staging (LIKE {SCHEMA}.{table}) ON COMMIT DROP;
            \\copy csvpg_staging ({cols}) FROM '{path}' WITH {self.copy_options()}
            WITH written AS (
                INSERT INTO {SCHEMA}.{table} AS t ({cols}) SELECT {cols} FROM csvpg_staging
                ON CONFLICT ("{KEY}") DO UPDATE SET {sets}
                WHERE ({mine}) IS DISTINCT FROM ({theirs})
                RETURNING (xmax = 0) AS inserted
            )
            SELECT (SELECT count(*) FROM csvpg_staging),
                   count(*) FILTER (WHERE inserted),
                   count(*) FILTER (WHERE NOT inserted)
            FROM written;
            COMMIT;
            """
        )
        out = self.jobs / f"upsert_{table}.sql"
        out.write_text(script)
        return out

    def job(
        self,
        name: str,
        source: Path,
        sink: str,
        *,
        workers: int = 1,
        split_mb: int = 0,
        extra: str = "",
    ) -> Path:
        text = textwrap.dedent(
            f"""\
            [job]
            name = "{name}"

            [database]
            dsn = "{self.dsn}"
            schema = "{SCHEMA}"

            [source]
            url = "{source}"
            {extra}
            [sink]
            {sink}

            [run]
            workers = {workers}
            split_mb = {split_mb}
            """
        )
        path = self.jobs / f"{name}.toml"
        path.write_text(text)
        return path

    @functools.cached_property
    def force(self) -> bool:
        """Whether this csvpg skips files it loaded before unless forced (a manifest):
        every timed run must load its file again."""
        import inspect

        import csvpg

        params = inspect.signature(csvpg.run).parameters
        options = getattr(getattr(csvpg, "api", None), "RunOptions", None)
        return "force" in params or bool(options and "force" in options.__annotations__)

    def csvpg_inprocess(self, job: Path) -> Any:
        import csvpg

        summary = csvpg.run(job, force=True) if self.force else csvpg.run(job)
        problems = [
            f"{f.file}: {f.status} ({f.error})" for f in summary.files if f.status != "loaded"
        ]
        if summary.exit_code != 0 or problems:
            raise SystemExit(f"csvpg run {job.name}: " + "; ".join(problems))
        return summary

    def csvpg_subprocess(
        self, job: Path, label: str, *, force: bool | None = None, skipped: bool = False
    ) -> tuple[Sample, float, dict[str, Any]]:
        """One ``csvpg run --json`` child: its times, its own peak RSS (MB), its summary.
        ``force``: ``--force`` (default: when this csvpg has it); ``skipped``: files may
        be skipped (a re-run of unchanged files)."""
        force = self.force if force is None else force
        exe = Path(sys.executable).parent / "csvpg"
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "csvpg"]
        out_path = self.logs / f"subprocess_{label}.json"
        err_path = self.logs / f"subprocess_{label}.log"
        out_path.write_bytes(b"")
        err_path.write_bytes(b"")
        pids = self.server.children()
        server = self.server.total()
        args = [*command, "run", "--json", "-q", *(["--force"] if force else []), str(job)]
        code, seconds, cpu, peak = self.spawn(args, str(out_path), str(err_path))
        self.server.quiet(pids)
        sample = Sample(seconds, cpu, self.server.total() - server)
        if code != 0:
            raise SystemExit(f"csvpg run {job.name} exited {code}; see {err_path}")
        summary = json.loads(out_path.read_text())
        problems = [f"{f['file']}: {f['status']} ({f['error']})" for f in summary["files"]]
        allowed = {"loaded", "skipped"} if skipped else {"loaded"}
        if any(f["status"] not in allowed for f in summary["files"]):
            raise SystemExit(f"csvpg run {job.name} (subprocess): " + "; ".join(problems))
        return sample, peak, summary

    @functools.cached_property
    def spawner(self) -> Any:
        """A small process the timed children start from: a child's ``ru_maxrss``
        begins at the RSS of the process that forked it (Linux keeps the high-water mark
        across exec), and this one is an interpreter with the bench module alone, not
        the bench with its results and csvpg loaded."""
        import multiprocessing

        return multiprocessing.get_context("forkserver").Pool(1)

    def spawn(
        self, command: list[str], out: str, err: str, env: dict[str, str] | None = None
    ) -> tuple[int, float, float, float]:
        """(exit code, wall s, CPU s, peak RSS MB) of ``command`` started by the spawner."""
        result: tuple[int, float, float, float] = self.spawner.apply(
            _spawned, (command, out, err, env)
        )
        return result

    # -- the measurements

    def record(
        self,
        key: str,
        label: str,
        samples: list[Sample],
        rows: int,
        size: int,
        *,
        baseline: str | None = None,
        target: float | None = None,
        note: str = "",
    ) -> dict[str, Any]:
        times = [x.wall for x in samples]
        median = statistics.median(times)
        result: dict[str, Any] = {
            "key": key,
            "label": label,
            "rows": rows,
            "bytes": size,
            "runs": [round(t, 4) for t in times],
            "median_s": round(median, 4),
            "rows_per_s": round(rows / median),
            "mb_per_s": round(size / 1e6 / median, 2),
            "client_cpu_s": round(statistics.median(x.client for x in samples), 3),
            "server_cpu_s": round(statistics.median(x.server for x in samples), 3),
            "client_cpu_runs": [round(x.client, 3) for x in samples],
            "server_cpu_runs": [round(x.server, 3) for x in samples],
            "baseline": baseline,
            "ratio": None,
            "target": target,
            "ok": None,
            "note": note,
        }
        if baseline is not None:
            base = next(r for r in self.results if r["key"] == baseline)
            result["ratio"] = round(median / base["median_s"], 3)
            # Less sensitive to other load on the machine than the medians:
            result["ratio_of_min"] = round(min(times) / min(base["runs"]), 3)
            if target is not None:
                result["ok"] = result["ratio"] <= target
        self.results.append(result)
        return result

    def repeat(
        self, contenders: list[tuple[Callable[[], object], Callable[[], object]]]
    ) -> list[list[Sample]]:
        """Each repetition runs every contender once, in turn: reset, then the timed call.

        Client CPU is this process's (csvpg in-process) plus its waited-for children's
        (psql); server CPU is the cluster's, the backends that ended included.
        """
        samples: list[list[Sample]] = [[] for _ in contenders]
        for rep in range(self.runs):
            for i, (reset, call) in enumerate(contenders):
                reset()
                self.settle()
                pids = self.server.children()
                server = self.server.total()
                me = _cpu(resource.getrusage(resource.RUSAGE_SELF))
                kids = _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
                started = time.perf_counter()
                call()
                wall = time.perf_counter() - started
                client = (
                    _cpu(resource.getrusage(resource.RUSAGE_SELF))
                    - me
                    + _cpu(resource.getrusage(resource.RUSAGE_CHILDREN))
                    - kids
                )
                self.server.quiet(pids)
                samples[i].append(Sample(wall, client, self.server.total() - server))
            progress(
                f"  repetition {rep + 1}/{self.runs}: "
                + ", ".join(f"{t[-1].wall:.2f} s" for t in samples)
            )
        return samples

    def bench_append(self) -> None:
        d = self.data
        progress("append: psql \\copy vs csvpg run")
        job = self.job("append", d.base, 'mode = "append"\ntable = "append_csvpg"')
        checks: list[int] = []

        def csvpg_append() -> None:
            checks.append(self.csvpg_inprocess(job).total("rows_read"))

        psql_t, csvpg_t = self.repeat(
            [
                (lambda: self.text_table("copy_psql"), lambda: self.psql_copy("copy_psql", d.base)),
                (lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.append_csvpg"), csvpg_append),
            ]
        )
        assert self.count("copy_psql") == d.rows and self.count("append_csvpg") == d.rows
        assert set(checks) == {d.rows}, checks
        self.record("copy", "psql \\copy → new TEXT table", psql_t, d.rows, d.sizes["base"])
        self.record(
            "append",
            "csvpg run append → new table (in-process)",
            csvpg_t,
            d.rows,
            d.sizes["base"],
            baseline="copy",
            target=TARGETS["append"],
        )
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.append_csvpg")
        self.settle()
        sample, rss, summary = self.csvpg_subprocess(job, "append")
        assert summary["totals"]["rows_read"] == d.rows
        self.record(
            "append_subprocess",
            "csvpg run append (subprocess, 1 run)",
            [sample],
            d.rows,
            d.sizes["base"],
            baseline="copy",
            note="includes interpreter start",
        )
        self.rss.append({"run": "append", "peak_rss_mb": round(rss, 1)})
        for table in ("copy_psql", "append_csvpg"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    def bench_parquet(self) -> None:
        """The same rows as Parquet (csvpg-parquet), against the CSV append."""
        try:
            import pyarrow.csv as pacsv
            import pyarrow.parquet as pq
        except ImportError:
            progress("parquet: skipped (pyarrow is not installed)")
            return
        d = self.data
        path = self.folder / "parquet" / "orders.parquet"
        if not path.exists() or pq.ParquetFile(path).metadata.num_rows != d.rows:
            progress("parquet: writing the base file as Parquet")
            path.parent.mkdir(exist_ok=True)
            # All strings, as the CSV job loads them: the two runs fill the same table.
            table = pacsv.read_csv(
                d.base,
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: "string" for c in HEADER}, strings_can_be_null=True
                ),
            )
            pq.write_table(table, path)
        progress("parquet: csvpg run append of the Parquet file vs the CSV file")
        csv_job = self.job("append_csv", d.base, 'mode = "append"\ntable = "append_csv"')
        pq_job = self.job(
            "append_parquet",
            path,
            'mode = "append"\ntable = "append_parquet"',
            extra='[format]\ntype = "parquet"',
        )
        csv_t, pq_t = self.repeat(
            [
                (
                    lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.append_csv"),
                    lambda: self.csvpg_inprocess(csv_job),
                ),
                (
                    lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.append_parquet"),
                    lambda: self.csvpg_inprocess(pq_job),
                ),
            ]
        )
        assert self.count("append_parquet") == d.rows
        self.record(
            "csv_append", "csvpg run append, CSV (text columns)", csv_t, d.rows, d.sizes["base"]
        )
        self.record(
            "parquet_append",
            "csvpg run append, the same rows as Parquet",
            pq_t,
            d.rows,
            path.stat().st_size,
            baseline="csv_append",
            note="MB/s of the Parquet file's own (smaller) size",
        )
        for table in ("append_csv", "append_parquet"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    def bench_upsert(self) -> None:
        d = self.data
        progress("upsert: hand-written (psql) vs csvpg run, into the loaded table")
        script = self.upsert_script("upsert_hand", d.upsert)
        job = self.job(
            "upsert",
            d.upsert,
            f'mode = "upsert"\ntable = "upsert_csvpg"\nprimary_key = ["{KEY}"]',
        )
        hand_counts: list[str] = []
        csvpg_counts: list[tuple[int, int]] = []

        def hand() -> None:
            out = self.run_psql(["-At", "-f", str(script)], "upsert_hand")
            hand_counts.append(out.strip())

        def csvpg_upsert() -> None:
            summary = self.csvpg_inprocess(job)
            csvpg_counts.append((summary.total("inserted"), summary.total("updated")))

        hand_t, csvpg_t = self.repeat(
            [
                (lambda: self.typed_table("upsert_hand", loaded=True), hand),
                (lambda: self.typed_table("upsert_csvpg", loaded=True), csvpg_upsert),
            ]
        )
        # Rows the file leaves as they are count as unchanged, not updated.
        expect = (d.new, d.changed)
        assert set(hand_counts) == {f"{d.upsert_rows}|{d.new}|{d.changed}"}, hand_counts
        assert set(csvpg_counts) == {expect}, csvpg_counts
        total = d.rows + d.new
        assert self.count("upsert_hand") == total and self.count("upsert_csvpg") == total
        differ = self.sql(
            f"SELECT count(*) FROM (SELECT * FROM {SCHEMA}.upsert_hand "
            f"EXCEPT ALL SELECT * FROM {SCHEMA}.upsert_csvpg) x"
        )[0][0]
        assert differ == 0, f"{differ} rows differ between the two upserts"
        self.record(
            "upsert_hand",
            "hand-written upsert (psql: typed temp table, ON CONFLICT … IS DISTINCT FROM)",
            hand_t,
            d.upsert_rows,
            d.sizes["upsert"],
        )
        self.record(
            "upsert",
            "csvpg run upsert (in-process)",
            csvpg_t,
            d.upsert_rows,
            d.sizes["upsert"],
            baseline="upsert_hand",
            target=TARGETS["upsert"],
        )
        self.typed_table("upsert_csvpg", loaded=True)
        self.settle()
        sample, rss, summary = self.csvpg_subprocess(job, "upsert")
        assert (summary["totals"]["inserted"], summary["totals"]["updated"]) == expect
        self.record(
            "upsert_subprocess",
            "csvpg run upsert (subprocess, 1 run)",
            [sample],
            d.upsert_rows,
            d.sizes["upsert"],
            baseline="upsert_hand",
            note="includes interpreter start",
        )
        self.rss.append({"run": "upsert", "peak_rss_mb": round(rss, 1)})
        for table in ("upsert_hand", "upsert_csvpg"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    def bench_rebuild(self) -> None:
        d = self.data
        progress("rebuild: psql \\copy into an empty table vs csvpg run rebuild of the loaded one")
        job = self.job("rebuild", d.base, 'mode = "rebuild"\ntable = "rebuild_csvpg"')
        checks: list[int] = []

        def csvpg_rebuild() -> None:
            checks.append(self.csvpg_inprocess(job).total("inserted"))

        psql_t, csvpg_t = self.repeat(
            [
                (
                    lambda: self.typed_table("rebuild_psql", loaded=False),
                    lambda: self.psql_copy("rebuild_psql", d.base),
                ),
                (lambda: self.typed_table("rebuild_csvpg", loaded=True), csvpg_rebuild),
            ]
        )
        assert set(checks) == {d.rows}, checks
        assert self.count("rebuild_psql") == d.rows == self.count("rebuild_csvpg")
        self.record(
            "copy_empty",
            "psql \\copy → empty typed table (with PK)",
            psql_t,
            d.rows,
            d.sizes["base"],
        )
        self.record(
            "rebuild",
            "csvpg run rebuild of the loaded table (in-process)",
            csvpg_t,
            d.rows,
            d.sizes["base"],
            baseline="copy_empty",
            target=TARGETS["rebuild"],
        )
        self.typed_table("rebuild_csvpg", loaded=True)
        self.settle()
        sample, rss, summary = self.csvpg_subprocess(job, "rebuild")
        assert summary["totals"]["inserted"] == d.rows
        self.record(
            "rebuild_subprocess",
            "csvpg run rebuild (subprocess, 1 run)",
            [sample],
            d.rows,
            d.sizes["base"],
            baseline="copy_empty",
            note="includes interpreter start",
        )
        self.rss.append({"run": "rebuild", "peak_rss_mb": round(rss, 1)})
        for table in ("rebuild_psql", "rebuild_csvpg"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    def bench_infer(self) -> None:
        """``csvpg infer``'s sampling on a file of about 1 GB (the base file, repeated)."""
        from csvpg.infer.guess import infer_file

        d = self.data
        big = self.folder / "infer" / "big.csv"
        copies = max(1, round(1e9 / d.sizes["base"]))
        if not big.exists() or big.stat().st_size < copies * d.sizes["base"] * 0.99:
            progress(f"infer: writing a {copies * d.sizes['base'] / 1e9:.1f} GB file")
            big.parent.mkdir(exist_ok=True)
            body = d.base.read_bytes()
            header, _, rows = body.partition(b"\n")
            with big.open("wb") as out:
                out.write(header + b"\n")
                for _ in range(copies):
                    out.write(rows)
        progress("infer: sampling the big file")
        samples = []
        for _ in range(self.runs):
            self.settle()
            t0, c0 = time.perf_counter(), time.process_time()
            guess = infer_file(str(big))
            samples.append(Sample(time.perf_counter() - t0, time.process_time() - c0, 0.0))
            assert len(guess.columns) == len(HEADER)
        self.record(
            "infer",
            f"csvpg infer sampling, {big.stat().st_size / 1e9:.1f} GB file",
            samples,
            copies * d.rows,
            big.stat().st_size,
            note="target: under 5 s (the rows are the file's; a sample is read)",
        )

    def bench_workers(self) -> None:
        d = self.data
        progress(f"workers: {PARTS} files, workers = 1 vs 2")
        sink = 'mode = "append"\ntable = "{name}"'
        extra = 'pattern = "part_*.csv"\n'
        jobs = {
            w: self.job(f"workers{w}", d.parts_dir, sink, workers=w, extra=extra) for w in (1, 2)
        }
        names = [p.stem for p in d.parts]

        def drop() -> None:
            for name in names:
                self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")

        checks: list[int] = []

        def call(w: int) -> Callable[[], None]:
            return lambda: checks.append(self.csvpg_inprocess(jobs[w]).total("rows_read"))

        one, two = self.repeat([(drop, call(1)), (drop, call(2))])
        speedup = statistics.median(x.wall for x in one) / statistics.median(x.wall for x in two)
        assert set(checks) == {d.rows}, checks
        size = d.sizes["parts"]
        self.record(
            "workers1", f"csvpg run, {PARTS} files, workers = 1", one, d.rows, size, baseline="copy"
        )
        self.record(
            "workers2",
            f"csvpg run, {PARTS} files, workers = 2",
            two,
            d.rows,
            size,
            baseline="copy",
            note=f"speed-up over workers = 1: {speedup:.2f}×",
        )
        drop()
        self.settle()
        _, rss, summary = self.csvpg_subprocess(jobs[2], "workers2")
        assert summary["totals"]["rows_read"] == d.rows
        self.rss.append({"run": f"{PARTS} files, workers = 2", "peak_rss_mb": round(rss, 1)})
        drop()

    def bench_split(self) -> None:
        """One file over two connections ([run] split_mb): into a new table; and the
        upsert with the same settings (against the hand-written one when that ran),
        which stays on one connection: staged in the table's types, it is faster so."""
        d = self.data
        progress("split: one file over 2 connections (append to a new table, upsert)")
        append = self.job(
            "split_append",
            d.base,
            'mode = "append"\ntable = "split_append"',
            workers=2,
            split_mb=1,
        )
        upsert = self.job(
            "split_upsert",
            d.upsert,
            f'mode = "upsert"\ntable = "split_upsert"\nprimary_key = ["{KEY}"]',
            workers=2,
            split_mb=1,
        )
        seen: dict[str, set[Any]] = {"append": set(), "upsert": set()}

        def load(kind: str, job: Path) -> Callable[[], None]:
            def call() -> None:
                summary = self.csvpg_inprocess(job)
                (file,) = summary.files
                split = file.details.get("split", {})
                seen[kind].add((split.get("connections"), file.inserted, file.updated))

            return call

        contenders: list[tuple[Callable[[], object], Callable[[], object]]] = [
            (
                lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.split_append"),
                load("append", append),
            )
        ]
        with_upsert = any(r["key"] == "upsert_hand" for r in self.results)
        if with_upsert:
            contenders.append(
                (lambda: self.typed_table("split_upsert", loaded=True), load("upsert", upsert))
            )
        samples = self.repeat(contenders)
        assert seen["append"] == {(2, d.rows, 0)}, seen
        self.record(
            "split_append",
            "csvpg run append → new table, 1 file over 2 connections",
            samples[0],
            d.rows,
            d.sizes["base"],
            baseline="copy",
        )
        if with_upsert:
            assert seen["upsert"] == {(1, d.new, d.changed)}, seen
            self.record(
                "split_upsert",
                "csvpg run upsert, split_mb = 1, workers = 2 (stays on 1 connection)",
                samples[1],
                d.upsert_rows,
                d.sizes["upsert"],
                baseline="upsert_hand",
            )
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.split_append")
        self.settle()
        _, rss, summary = self.csvpg_subprocess(append, "split_append")
        assert summary["totals"]["rows_read"] == d.rows
        self.rss.append({"run": "1 file over 2 connections", "peak_rss_mb": round(rss, 1)})
        for table in ("split_append", "split_upsert"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    # -- the loaders people would pick instead: DuckDB, sling, pgloader --------------

    def child(
        self, command: list[str], log: str, env: dict[str, str] | None = None
    ) -> tuple[Sample, float]:
        """One timed child process: its times (the server's CPU too), its own peak RSS."""
        err_path = self.logs / f"{log}.log"
        err_path.write_bytes(b"")
        pids = self.server.children()
        server = self.server.total()
        code, seconds, cpu, peak = self.spawn(command, str(err_path), str(err_path), env)
        self.server.quiet(pids)
        if code != 0:
            raise SystemExit(f"{log} exited {code}; see {err_path}")
        return Sample(seconds, cpu, self.server.total() - server), peak

    def fingerprint(self, table: str, *, null_as_empty: bool = False) -> tuple[int, str]:
        """(rows, md5 over the rows as text in order_id order) of the 12 columns."""
        cols = ", ".join(
            f"coalesce({c}::text, '')" if null_as_empty else f"{c}::text" for c in HEADER
        )
        row = self.sql(
            f"SELECT count(*), md5(string_agg(md5(ROW({cols})::text), '' "
            f"ORDER BY order_id::bigint)) FROM {SCHEMA}.{table}"
        )[0]
        return int(row[0]), str(row[1])

    def socket(self) -> tuple[str, str]:
        """(socket folder or host, port) of the bench's server."""
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(self.dsn)
        return str(info.get("host") or "localhost"), str(info.get("port") or "5432")

    def peers(self) -> dict[str, tuple[Callable[[], object], list[str], dict[str, str]] | str]:
        """Each peer: (reset, command, environment), or why it is not there."""
        d = self.data
        host, port = self.socket()
        found: dict[str, tuple[Callable[[], object], list[str], dict[str, str]] | str] = {}
        env = dict(os.environ)
        try:
            import duckdb  # noqa: F401
            import duckdb_extension_postgres

            ext = next(Path(duckdb_extension_postgres.__file__).parent.rglob("*.duckdb_extension"))
            # DuckDB loads a file by the extension's own name: postgres_scanner.
            named = self.folder / "duckdb" / "postgres_scanner.duckdb_extension"
            named.parent.mkdir(exist_ok=True)
            shutil.copyfile(ext, named)
            script = textwrap.dedent(
                f"""\
                import duckdb
                con = duckdb.connect(config={{"allow_unsigned_extensions": "true",
                    "autoinstall_known_extensions": "false"}})
                con.execute("LOAD '{named}'")
                con.execute("ATTACH '{self.dsn}' AS pg (TYPE postgres)")
                con.execute("CREATE TABLE pg.{SCHEMA}.peer_duckdb AS SELECT * FROM read_csv("
                    "'{d.base}', header=true, all_varchar=true, delim=',', quote='\\"', "
                    "escape='\\"')")
                """
            )
            found["duckdb"] = (
                lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.peer_duckdb"),
                [sys.executable, "-c", script],
                env,
            )
        except (ImportError, StopIteration):
            found["duckdb"] = "not installed (uv sync --group bench)"
        sling = self.sling_binary()
        if sling:
            url = f"postgresql://postgres@/{self.sql('SELECT current_database()')[0][0]}"
            url += f"?host={host}&port={port}&sslmode=disable"
            found["sling"] = (
                lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.peer_sling"),
                [
                    sling,
                    "run",
                    "--src-stream",
                    f"file://{d.base}",
                    "--tgt-conn",
                    "BENCH_PG",
                    "--tgt-object",
                    f"{SCHEMA}.peer_sling",
                    "--mode",
                    "full-refresh",
                    "--src-options",
                    '{"columns": {"*": "string"}}',
                ],
                {**env, "BENCH_PG": url, "SLING_DISABLE_TELEMETRY": "true"},
            )
        else:
            found["sling"] = "not installed (uv sync --group bench)"
        pgloader = shutil.which("pgloader")
        if pgloader:
            found["pgloader"] = (
                lambda: self.text_table("peer_pgloader"),
                [pgloader, "--quiet", str(self.pgloader_script(host, port))],
                env,
            )
        else:
            found["pgloader"] = "not installed (apt-get install pgloader)"
        return found

    @staticmethod
    def sling_binary() -> str | None:
        try:
            import sling_linux_amd64

            binary = Path(sling_linux_amd64.__file__).parent / "bin" / "sling-linux-amd64"
        except ImportError:
            return shutil.which("sling")
        if binary.exists():
            binary.chmod(binary.stat().st_mode | 0o111)
            return str(binary)
        return shutil.which("sling")

    def pgloader_script(self, host: str, port: str) -> Path:
        database = self.sql("SELECT current_database()")[0][0]
        where = f"unix:{host}:{port}" if host.startswith("/") else f"{host}:{port}"
        script = self.jobs / "peer.load"
        script.write_text(
            textwrap.dedent(
                f"""\
                LOAD CSV FROM '{self.data.base}'
                     INTO postgresql://postgres@{where}/{database}
                     TARGET TABLE {SCHEMA}.peer_pgloader
                     WITH skip header = 1, fields optionally enclosed by '"',
                          fields escaped by double-quote, fields terminated by ','
                     SET client_encoding to 'utf8';
                """
            )
        )
        return script

    def bench_peers(self) -> None:
        """psql \\copy, csvpg run (a fresh process) and the loaders people would pick
        instead, on the base file into a new table, rounds alternating; each result
        checked against psql's (rows, and an md5 over the rows in order). At most 2
        rounds: pgloader alone takes about a minute a round on the 1M-row file, and
        the whole bench is to stay within 10 minutes."""
        d = self.data
        progress("peers: psql \\copy, csvpg run, DuckDB, sling, pgloader (fresh processes)")
        job = self.job("peer_csvpg", d.base, 'mode = "append"\ntable = "peer_csvpg"')
        exe = Path(sys.executable).parent / "csvpg"
        csvpg_cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "csvpg"]
        copy = f"\\copy {SCHEMA}.peer_psql FROM '{d.base}' WITH {self.copy_options()}"
        env = {**os.environ, "PGCLIENTENCODING": "UTF8"}
        contenders: dict[str, tuple[Callable[[], object], list[str], dict[str, str]]] = {
            "psql": (
                lambda: self.text_table("peer_psql"),
                [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn, "-c", copy],
                env,
            ),
            "csvpg": (
                lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.peer_csvpg"),
                [*csvpg_cmd, "run", "-q", *(["--force"] if self.force else []), str(job)],
                dict(os.environ),
            ),
        }
        missing: dict[str, str] = {}
        for name, peer in self.peers().items():
            if isinstance(peer, str):
                missing[name] = peer
            else:
                contenders[name] = peer
        samples: dict[str, list[Sample]] = {name: [] for name in contenders}
        rss: dict[str, float] = {}
        for rep in range(rounds := min(self.runs, 2)):
            for name, (reset, command, environment) in contenders.items():
                reset()
                self.settle()
                sample, peak = self.child(command, f"peer_{name}", environment)
                samples[name].append(sample)
                rss[name] = max(rss.get(name, 0.0), peak)
            progress(
                f"  repetition {rep + 1}/{rounds}: "
                + ", ".join(f"{n} {s[-1].wall:.2f} s" for n, s in samples.items())
            )
        self.record_peers(samples, rss, missing)

    def record_peers(
        self, samples: dict[str, list[Sample]], rss: dict[str, float], missing: dict[str, str]
    ) -> None:
        d = self.data
        expect = self.fingerprint("peer_psql")
        loose = self.fingerprint("peer_psql", null_as_empty=True)
        assert expect[0] == d.rows, expect
        labels = {
            "psql": "peers: psql \\copy → new TEXT table (a fresh process)",
            "csvpg": "peers: csvpg run append (a fresh process, the CLI)",
            "duckdb": "peers: DuckDB read_csv → postgres extension",
            "sling": "peers: sling run (columns as strings)",
            "pgloader": "peers: pgloader LOAD CSV",
        }
        for name, runs in samples.items():
            table = f"peer_{name}"
            got = self.fingerprint(table)
            if got == expect:
                note = "same rows as psql (count and md5)"
            elif got[0] == expect[0] and self.fingerprint(table, null_as_empty=True) == loose:
                note = "same rows as psql except empty fields: loaded as '' rather than NULL"
            else:
                note = f"differs from psql: {got[0]:,} rows, md5 {got[1][:8]} ≠ {expect[1][:8]}"
            note += f"; client peak RSS {rss[name]:.0f} MB"
            self.record(
                f"peer_{name}",
                labels[name],
                runs,
                d.rows,
                d.sizes["base"],
                baseline=None if name == "psql" else "peer_psql",
                target=1.05 if name == "csvpg" else None,
                note=note,
            )
            if name == "csvpg":
                self.rss.append({"run": "peers: csvpg", "peak_rss_mb": round(rss[name], 1)})
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        for name, why in missing.items():
            self.results.append(_absent(f"peer_{name}", labels[name], why))

    # -- many small files, and a tiny one ------------------------------------------

    def many_files(self, count: int) -> Path:
        """``count`` files of 100 rows (the base file's first rows, numbered on)."""
        folder = self.folder / "many" / str(count)
        if len(list(folder.glob("*.csv"))) != count:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for i in range(count):
                lines = csv_lines(100, seed=SEED + i, start=i * 100 + 1)
                (folder / f"part_{i:05d}.csv").write_text("".join(lines), encoding="utf-8")
        return folder

    def bench_many(self) -> None:
        """100, 1,000 and 10,000 files of 100 rows into one table, each a new file to
        load, then the same run again with every file unchanged (one run each: the
        10,000 files are the slow part of the whole bench)."""
        progress("many files: 100, 1,000, 10,000 files of 100 rows; then re-runs, unchanged")
        for count in (100, 1_000, 10_000):
            folder = self.many_files(count)
            size = sum(p.stat().st_size for p in folder.glob("*.csv"))
            name = f"many{count}"
            job = self.job(
                name, folder, f'mode = "append"\ntable = "{name}"', workers=2,
                extra='pattern = "*.csv"\n',
            )  # fmt: skip
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
            self.sql(f"DELETE FROM csvpg.manifest WHERE job = '{name}'")
            self.settle()
            load, rss, summary = self.csvpg_subprocess(job, name, force=False)
            assert summary["totals"]["rows_read"] == count * 100, summary["totals"]
            self.record(
                f"many_load_{count}",
                f"csvpg run, {count:,} new files of 100 rows (subprocess)",
                [load],
                count * 100,
                size,
                note=f"{(load.wall - self.startup_s()) / count * 1000:.1f} ms per file "
                "(less the 2-row run's time); target ≤ 2 ms",
            )
            self.rss.append({"run": f"{count:,} files", "peak_rss_mb": round(rss, 1)})
            again, _, summary = self.csvpg_subprocess(
                job, f"{name}_again", force=False, skipped=True
            )
            assert all(f["status"] == "skipped" for f in summary["files"]), summary["totals"]
            self.record(
                f"many_again_{count}",
                f"csvpg run again, the {count:,} files unchanged (all skipped)",
                [again],
                0,
                size,
                note="target ≤ 3 s for 10,000 files" if count == 10_000 else "",
            )
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")

    def startup_s(self) -> float:
        """The 2-row run's median (seconds), measured once."""
        done = next((r for r in self.results if r["key"] == "startup_csvpg"), None)
        if done is None:
            self.bench_startup()
            done = next(r for r in self.results if r["key"] == "startup_csvpg")
        return float(done["median_s"])

    def bench_startup(self) -> None:
        """A 2-row file: ``csvpg run`` as a fresh process against ``psql \\copy``."""
        if any(r["key"] == "startup_csvpg" for r in self.results):
            return
        progress("start-up: a 2-row file, csvpg run and psql \\copy as fresh processes")
        tiny = self.folder / "tiny" / "two.csv"
        tiny.parent.mkdir(exist_ok=True)
        tiny.write_text("".join(list(csv_lines(2))), encoding="utf-8")
        job = self.job("tiny", tiny, 'mode = "append"\ntable = "tiny"')
        copy = f"\\copy {SCHEMA}.tiny_psql FROM '{tiny}' WITH {self.copy_options()}"
        self.text_table("tiny_psql")
        psql = [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn, "-c", copy]
        exe = Path(sys.executable).parent / "csvpg"
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "csvpg"]
        csvpg = [*command, "run", "-q", "--force", str(job)]
        # What any loader in Python on psycopg pays before its first row: the floor
        # under csvpg's start-up, beside it.
        floor = [
            sys.executable,
            "-c",
            f"import psycopg; psycopg.connect({self.dsn!r}).execute('SELECT 1').fetchone()",
        ]
        env = {**os.environ, "PGCLIENTENCODING": "UTF8"}
        times: dict[str, list[Sample]] = {"psql": [], "csvpg": [], "floor": []}
        for _ in range(max(5, self.runs)):
            times["psql"].append(self.child(psql, "startup_psql", env)[0])
            times["floor"].append(self.child(floor, "startup_floor")[0])
            times["csvpg"].append(self.child(csvpg, "startup_csvpg")[0])
        self.record(
            "startup_psql", "psql \\copy of a 2-row file (a fresh process)", times["psql"], 2, 0
        )
        self.record(
            "startup_floor",
            "python: import psycopg, connect, SELECT 1 (a fresh process)",
            times["floor"],
            0,
            0,
            baseline="startup_psql",
            note="the floor under any loader written in Python on psycopg",
        )
        above = statistics.median(x.wall for x in times["csvpg"]) - statistics.median(
            x.wall for x in times["floor"]
        )
        self.record(
            "startup_csvpg",
            "csvpg run of a 2-row file (a fresh process)",
            times["csvpg"],
            2,
            tiny.stat().st_size,
            baseline="startup_psql",
            note=f"target ≤ 0.15 s wall; {above:.2f} s of it above the floor",
        )
        for table in ("tiny", "tiny_psql"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    # -- queued runs: csvpg run --queue through local csvpg worker processes

    def queue_files(self) -> Path:
        """The base file cut in QUEUE_FILES parts (each with the header), once."""
        folder = self.folder / "queue" / f"files{QUEUE_FILES}"
        if len(list(folder.glob("q_*.csv"))) == QUEUE_FILES:
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        per = -(-self.data.rows // QUEUE_FILES)
        with self.data.base.open(encoding="utf-8", newline="") as src:
            records = csv.reader(src)  # by record: a quoted field may hold a line end
            header = next(records)
            for i in range(QUEUE_FILES):
                with (folder / f"q_{i:02}.csv").open("w", encoding="utf-8", newline="") as out:
                    writer = csv.writer(out, lineterminator="\n")
                    writer.writerow(header)
                    for _, record in zip(range(per), records, strict=False):
                        writer.writerow(record)
        return folder

    def start_workers(self, count: int, queue: str) -> list[subprocess.Popen[bytes]]:
        """``count`` csvpg worker processes on ``queue``, once each says it started."""
        started = []
        for i in range(count):
            log = (self.logs / f"worker_{queue}_{i}.log").open("wb")
            command = [sys.executable, "-m", "csvpg", "worker", "--dsn", self.dsn]
            started.append(
                subprocess.Popen(
                    [*command, "--queue", queue, "--name", f"bench{i}", "--heartbeat", "2"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 120
        while True:
            logs = [(self.logs / f"worker_{queue}_{i}.log").read_text() for i in range(count)]
            if all("worker: started" in text for text in logs):
                return started
            if time.monotonic() > deadline or any(w.poll() is not None for w in started):
                raise SystemExit(f"csvpg worker did not start; see {self.logs}")
            time.sleep(0.1)

    def queued_run(self, job: Path, queue: str) -> None:
        """Queue the job (as csvpg run --queue does) and wait for its end."""
        from csvpg.spec import load_job
        from csvpg.worker import enqueue_run

        run_id = enqueue_run(load_job(job), self.dsn, queue_name=queue, force=True)
        while True:
            ((status,),) = self.sql(f"SELECT status FROM csvpg.runs WHERE id = '{run_id}'")
            if status not in ("queued", "running", "cancelling"):
                break
            time.sleep(0.02)
        if status != "succeeded":
            raise SystemExit(f"queued run {run_id} ended {status}; see {self.logs}")

    def timed(self, reset: Callable[[], object], call: Callable[[], object]) -> Sample:
        """One call, after its reset: wall and server CPU (the workers' CPU is theirs,
        not this process's: the client column is 0 for queued runs)."""
        reset()
        self.settle()
        server = self.server.total()
        started = time.perf_counter()
        call()
        return Sample(time.perf_counter() - started, 0.0, self.server.total() - server)

    def bench_queue(self) -> None:
        """A QUEUE_FILES-file job through 1, 2 and 4 local csvpg workers, against the
        same job in-process (csvpg run, [run] workers = 1) and one psql \\copy stream."""
        folder = self.queue_files()
        progress(f"queue: {QUEUE_FILES} files through 1, 2, 4 csvpg workers vs in-process")
        sink = 'mode = "append"\ntable = "queue_{name}"'
        job = self.job("queued", folder, sink, extra='pattern = "q_*.csv"\n')
        tables = [f"queue_{p.stem}" for p in sorted(folder.glob("q_*.csv"))]

        def drop() -> None:
            for table in tables:
                self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

        here = [self.timed(drop, lambda: self.csvpg_inprocess(job)) for _ in range(self.runs)]
        size = sum(p.stat().st_size for p in folder.glob("q_*.csv"))
        base = self.record(
            "queue_inprocess",
            f"csvpg run, {QUEUE_FILES} files, in-process (workers = 1)",
            here,
            self.data.rows,
            size,
            baseline="copy",
        )
        for count in QUEUE_WORKERS:
            queue = f"bench{count}"
            workers = self.start_workers(count, queue)
            try:
                samples = [
                    self.timed(drop, functools.partial(self.queued_run, job, queue))
                    for _ in range(self.runs)
                ]
            finally:
                for w in workers:
                    w.terminate()
                for w in workers:
                    w.wait(60)
            assert sum(self.count(t) for t in tables) == self.data.rows
            median = statistics.median(x.wall for x in samples)
            self.record(
                f"queue{count}",
                f"csvpg run --queue, {QUEUE_FILES} files, {count} local worker(s)",
                samples,
                self.data.rows,
                size,
                baseline="copy",
                note=f"{median / base['median_s']:.2f}× the in-process run's time",
            )
        drop()

    # -- bad rows and conversions (issue 18, goals 1 and 2)

    def plain_typed_table(self, table: str, types: dict[str, str] = TYPES) -> None:
        """A typed table without a key: what COPY fills, and nothing else."""
        cols = ", ".join(f"{c} {t}" for c, t in types.items())
        self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")
        self.sql(f"CREATE TABLE {SCHEMA}.{table} ({cols})")

    def bench_badrows(self) -> None:
        """The base file into a typed table, clean and with 1 row in 10,000 bad: a value
        its type refuses, or a field too many (COPY cannot skip that one)."""
        d = self.data
        progress("bad rows: 0.01 % bad values / bad field counts vs the clean file")
        folder = self.folder / "badrows"
        spoilt = {kind: spoil(d.base, folder / kind / "orders.csv", kind) for kind in BAD_KINDS}
        sink = 'mode = "append"\ntable = "{}"\nmax_rejects = "1%"'
        jobs = {"clean": self.job("bad_clean", d.base, sink.format("bad_clean"))}
        for kind, (path, _) in spoilt.items():
            jobs[kind] = self.job(f"bad_{kind}", path, sink.format(f"bad_{kind}"))
        seen: dict[str, set[tuple[int, int, int]]] = {k: set() for k in jobs}

        def load(kind: str) -> Callable[[], None]:
            def call() -> None:
                (file,) = self.csvpg_inprocess(jobs[kind]).files
                seen[kind].add((file.rows_read, file.inserted, file.rejected))

            return call

        samples = self.repeat(
            [(functools.partial(self.plain_typed_table, f"bad_{k}"), load(k)) for k in jobs]
        )
        assert seen["clean"] == {(d.rows, d.rows, 0)}, seen
        for kind, (_, bad) in spoilt.items():
            assert seen[kind] == {(d.rows, d.rows - bad, bad)}, seen
        self.record(
            "bad_clean",
            "csvpg append → typed table, clean file",
            samples[0],
            d.rows,
            d.sizes["base"],
        )
        for i, kind in enumerate(BAD_KINDS, start=1):
            self.record(
                f"bad_{kind}",
                BAD_KINDS[kind],
                samples[i],
                d.rows,
                spoilt[kind][0].stat().st_size,
                baseline="bad_clean",
                target=1.3,
            )
        for kind in jobs:
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.bad_{kind}")

    def bench_conversions(self) -> None:
        """Decimal comma, thousands separators, date and time templates and boolean words
        (``[columns]``) against psql loading the same columns as text."""
        d = self.data
        progress("conversions: [columns] decimal, thousands, format, true/false vs psql text")
        path = converted(d.base, self.folder / "conversions" / "orders.csv")
        job = self.job("conversions", path, 'mode = "append"\ntable = "conv_csvpg"')
        job.write_text(job.read_text() + CONVERSION_COLUMNS)
        text_types = {c: "text" for c in CONVERSION_TYPES}
        # The same rows as the nightly ERP export: Windows-1252, semicolons, CRLF.
        erp = as_erp(path, self.folder / "conversions" / "orders_erp.csv")
        erp_job = self.job("conversions_erp", erp, 'mode = "append"\ntable = "conv_erp"')
        erp_job.write_text(erp_job.read_text() + CONVERSION_COLUMNS)
        checks: set[int] = set()

        def csvpg_conv(job: Path = job) -> None:
            (file,) = self.csvpg_inprocess(job).files
            checks.add(file.inserted)

        command = f"\\copy {SCHEMA}.conv_text FROM '{path}' WITH {self.copy_options()}"
        # The server's own limit: the same values written as PostgreSQL reads them, COPYed
        # into the typed columns (what is left once the client has converted them).
        iso = as_read(d.base, self.folder / "conversions" / "orders_iso.csv")
        typed = f"\\copy {SCHEMA}.conv_typed FROM '{iso}' WITH {self.copy_options()}"
        psql_t, typed_t, csvpg_t, erp_t = self.repeat(
            [
                (
                    functools.partial(self.plain_typed_table, "conv_text", text_types),
                    lambda: self.run_psql(["-c", command], "copy_conv_text"),
                ),
                (
                    functools.partial(self.plain_typed_table, "conv_typed", CONVERSION_TYPES),
                    lambda: self.run_psql(["-c", typed], "copy_conv_typed"),
                ),
                (lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.conv_csvpg"), csvpg_conv),
                (
                    lambda: self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.conv_erp"),
                    functools.partial(csvpg_conv, erp_job),
                ),
            ]
        )
        assert checks == {d.rows} and self.count("conv_text") == d.rows, checks
        same = self.sql(
            f"SELECT count(*) FROM {SCHEMA}.conv_csvpg c JOIN {SCHEMA}.pristine p USING (order_id)"
            " WHERE c.order_date = p.order_date AND c.unit_price = p.unit_price"
            " AND c.created_at = date_trunc('second', p.created_at)"
        )[0][0]
        assert same == d.rows, same
        size = path.stat().st_size
        self.record("conv_text", "psql \\copy → TEXT table, conversion file", psql_t, d.rows, size)
        self.record(
            "conv_typed",
            "psql \\copy → typed table, the same values as PostgreSQL reads them (ISO)",
            typed_t,
            d.rows,
            iso.stat().st_size,
            baseline="conv_text",
        )
        self.record(
            "conversions",
            "csvpg append with [columns] conversions",
            csvpg_t,
            d.rows,
            size,
            baseline="conv_text",
            target=1.3,
        )
        self.record(
            "conversions_erp",
            "csvpg append with [columns] conversions, the rows as a Windows-1252 export (;, CRLF)",
            erp_t,
            d.rows,
            erp.stat().st_size,
            baseline="conv_text",
        )
        for table in ("conv_text", "conv_typed", "conv_csvpg", "conv_erp"):
            self.sql(f"DROP TABLE IF EXISTS {SCHEMA}.{table}")

    def close(self) -> None:
        if "spawner" in self.__dict__:
            self.spawner.terminate()
        try:
            self.sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            self.sql("ALTER SYSTEM RESET autovacuum")
        finally:
            self.conn.close()


def compile_bytecode() -> None:
    """Bytecode for csvpg and its libraries, as ``pip install`` leaves it: the fresh
    processes of the bench start from ``.pyc`` files, also where PYTHONDONTWRITEBYTECODE
    is set (then every start would compile csvpg and its libraries again)."""
    import compileall
    import sysconfig

    import csvpg

    progress("bytecode: compiling csvpg and the environment's packages (once)")
    folders = {Path(csvpg.__file__).parent, Path(sysconfig.get_paths()["purelib"])}
    folders |= {p.parent for p in REPO.glob("*/*/csvpg_*/__init__.py")}  # editable plugins
    for folder in sorted(folders):
        compileall.compile_dir(folder, quiet=2, workers=0)


# --- derived files: bad rows and conversions ---------------------------------------------

#: One record in this many is spoilt.
BAD_EVERY = 10_000
BAD_KINDS = {
    "values": "csvpg append, 0.01 % bad values (quantity 'x')",
    "widths": "csvpg append, 0.01 % bad field counts (a field too many)",
}


def _fresh(src: Path, dst: Path) -> bool:
    return dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime


def spoil(src: Path, dst: Path, kind: str) -> tuple[Path, int]:
    """``src`` with one record in :data:`BAD_EVERY` spoilt; how many."""
    rows = 0
    with src.open(encoding="utf-8", newline="") as f:
        rows = sum(1 for _ in csv.reader(f)) - 1
    bad = len(range(BAD_EVERY // 2, rows, BAD_EVERY))
    if _fresh(src, dst):
        return dst, bad
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8", newline="") as f, dst.open("w", encoding="utf-8") as out:
        reader = csv.reader(f)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i % BAD_EVERY == BAD_EVERY // 2:
                if kind == "values":
                    row[HEADER.index("quantity")] = f"x{i}"
                else:
                    row.append("extra")
            writer.writerow(row)
    return dst, bad


#: The conversion file's columns, and the job's ``[columns]`` for them.
CONVERSION_TYPES = {
    "order_id": "bigint",
    "order_date": "date",
    "created_at": "timestamp",
    "unit_price": "numeric(12,2)",
    "discount": "numeric(5,2)",
    "paid": "boolean",
    "city": "text",
}
CONVERSION_COLUMNS = """
[columns]
order_id = "bigint"
order_date = { type = "date", format = "DD.MM.YYYY" }
created_at = { type = "timestamp", format = "DD.MM.YYYY HH24:MI:SS" }
unit_price = { type = "numeric(12,2)", decimal = ",", thousands = "." }
discount = { type = "numeric(5,2)", decimal = "," }
paid = { type = "boolean", true = ["ja"], false = ["nein"] }
city = "text"
"""


def as_read(src: Path, dst: Path) -> Path:
    """The conversion file's rows as PostgreSQL reads them: 1234.56, 2024-12-31, true."""

    def row_of(row: list[str]) -> list[str]:
        values = {c: row[HEADER.index(c)] for c in CONVERSION_TYPES if c != "paid"}
        values["created_at"] = values["created_at"][:19]  # whole seconds, as converted
        values["unit_price"] = f"{float(values['unit_price']):.2f}"
        values["paid"] = "true" if int(values["order_id"]) % 3 else "false"
        return [values[c] for c in CONVERSION_TYPES]

    return _rewritten(src, dst, row_of)


def converted(src: Path, dst: Path) -> Path:
    """The base file's orders as a German export: 1.234,56, 31.12.2024, ja/nein."""
    at = {c: HEADER.index(c) for c in ("order_id", "order_date", "created_at", "unit_price")}

    def row_of(row: list[str]) -> list[str]:
        y, m, day = row[at["order_date"]].split("-")
        stamp = datetime.fromisoformat(row[at["created_at"]])
        price = f"{float(row[at['unit_price']]):,.2f}"
        discount = row[HEADER.index("discount")]
        return [
            row[at["order_id"]],
            f"{day}.{m}.{y}",
            stamp.strftime("%d.%m.%Y %H:%M:%S"),
            price.replace(",", "_").replace(".", ",").replace("_", "."),
            discount.replace(".", ","),
            "ja" if int(row[at["order_id"]]) % 3 else "nein",
            row[HEADER.index("city")],
        ]

    return _rewritten(src, dst, row_of)


def as_erp(src: Path, dst: Path) -> Path:
    """The conversion file as the ERP writes it: Windows-1252, semicolons, CRLF (a city
    the code page lacks becomes a ``?``)."""
    if _fresh(src, dst):
        return dst
    with (
        src.open(encoding="utf-8", newline="") as f,
        dst.open("w", encoding="cp1252", errors="replace", newline="") as out,
    ):
        csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(csv.reader(f))
    return dst


def _rewritten(src: Path, dst: Path, row_of: Callable[[list[str]], list[str]]) -> Path:
    """The base file's rows through ``row_of``, under the conversion file's header
    (written once: kept while newer than the base file)."""
    if _fresh(src, dst):
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8", newline="") as f, dst.open("w", encoding="utf-8") as out:
        reader = csv.reader(f)
        writer = csv.writer(out, lineterminator="\n")
        next(reader)
        writer.writerow(list(CONVERSION_TYPES))
        writer.writerows(map(row_of, reader))
    return dst


# --- the report ----------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine(dsn: str) -> dict[str, Any]:
    import psycopg

    from csvpg import __version__, embedded

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with psycopg.connect(dsn) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'wal_level', 'autovacuum', 'max_wal_size', "
                "'synchronous_commit', 'fsync', 'maintenance_work_mem', 'work_mem', "
                "'temp_buffers')"
            ).fetchall()
        )
    psql = subprocess.run(
        [str(embedded.psql_path()), "--version"], capture_output=True, text=True
    ).stdout.strip()
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 1
    import csvpg

    where = Path(csvpg.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "csvpg"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        source = f"{commit}" + (f" + {len(dirty)} changed files in csvpg/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        source = f"{where} (not a git checkout)"
    return {
        "cpu": cpu,
        "source": source,
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "postgresql": version,
        "psql": psql,
        "server_settings": settings,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "csvpg": __version__,
        "os": platform.platform(),
    }


def _absent(key: str, label: str, why: str) -> dict[str, Any]:
    """A row for a loader that is not installed: shown, never a failure."""
    return {"key": key, "label": label, "absent": why, "note": "", "baseline": None}


def mark(ok: bool | None) -> str:
    return "" if ok is None else ("✓" if ok else "✗")


def report(
    info: dict[str, Any],
    data: Data,
    results: list[dict[str, Any]],
    rss: list[dict[str, Any]],
    runs: int,
) -> str:
    lines = [
        f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"{info['memory_gb']} GB RAM; PostgreSQL {info['postgresql']} (embedded), "
        f"{info['psql']}; Python {info['python']}, psycopg {info['psycopg']}; "
        f"csvpg {info['csvpg']} at {info['source']}",
        "server: " + ", ".join(f"{k}={v}" for k, v in sorted(info["server_settings"].items())),
        f"data: {data.rows:,} rows base ({data.sizes['base'] / 1e6:.1f} MB), upsert file "
        f"{data.upsert_rows:,} rows ({data.sizes['upsert'] / 1e6:.1f} MB: {data.changed:,} "
        f"changed, {data.new:,} new), {PARTS} parts; median of {runs} runs; MB = 10^6 bytes",
        f"load average before/after: {info['load_before']} / {info['load_after']}"
        " (other work on the machine skews wall times; CPU seconds less so)",
        "",
    ]
    head = [
        "case",
        "rows",
        "median s",
        "min–max s",
        "rows/s",
        "MB/s",
        "client CPU s",
        "server CPU s",
        "ratio (of min)",
        "target",
    ]
    table: list[list[str] | None] = [head, None]
    for r in results:
        if r["key"] in (
            "upsert_hand", "copy_empty", "workers1", "split_append", "peer_psql",
            "startup_psql", "many_load_100",
        ):  # fmt: skip
            table.append(None)
        if r.get("absent"):
            table.append([r["label"], "", "", "", "", "", "", "", r["absent"], ""])
            continue
        if r["baseline"] is None:
            ratio = "baseline"
        else:
            ratio = f"{r['ratio']:.3f}× ({r['ratio_of_min']:.3f}×)"
        target = f"≤ {r['target']:.2f}× {mark(r['ok'])}" if r["target"] is not None else ""
        table.append(
            [
                r["label"],
                f"{r['rows']:,}",
                f"{r['median_s']:.2f}",
                f"{min(r['runs']):.2f}–{max(r['runs']):.2f}",
                f"{r['rows_per_s']:,}",
                f"{r['mb_per_s']:.1f}",
                f"{r['client_cpu_s']:.2f}",
                f"{r['server_cpu_s']:.2f}",
                ratio,
                target,
            ]
        )
    widths = [max(len(row[i]) for row in table if row) for i in range(len(head))]
    right = {1, 2, 3, 4, 5, 6, 7}
    for row in table:
        if row is None:
            lines.append("  ".join("-" * w for w in widths))
            continue
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    lines += [
        "",
        "ratio: median time / the baseline's median (in brackets: best run / best baseline"
        " run); CPU: medians, client = csvpg's process or psql, server = every backend.",
    ]
    notes = [f"  {r['label']}: {r['note']}" for r in results if r["note"]]
    if notes:
        lines += ["", "notes:", *notes]
    lines += [
        "",
        "client peak RSS of each `csvpg run` subprocess (os.wait4 ru_maxrss of that child):",
    ]
    for entry in rss:
        ok = entry["peak_rss_mb"] <= RSS_TARGET_MB
        lines.append(
            f"  {entry['run']:<24} {entry['peak_rss_mb']:7.1f} MB"
            f"   ≤ {RSS_TARGET_MB:.0f} MB {mark(ok)}"
        )
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the base file")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the generated data and cluster")
    parser.add_argument("--dir", type=Path, default=REPO / "bench-data", help="data folder")
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASUREMENTS,
        help="run only these measurements (append always runs: it is the baseline)",
    )
    args = parser.parse_args(argv)
    if args.rows < PARTS * 10 or args.runs < 1:
        parser.error("--rows must be at least 40 and --runs at least 1")
    folder: Path = args.dir.resolve()
    folder.mkdir(parents=True, exist_ok=True)

    progress(f"data: {args.rows:,} rows in {folder}")
    data, generated = ensure_data(folder, args.rows)
    progress(f"  generated in {generated:.1f} s" if generated is not None else "  reused")

    # A private cluster: the user's own csvpg server is never touched.
    os.environ["CSVPG_HOME"] = str(folder / "pg-home")
    from csvpg import embedded

    started = time.perf_counter()
    dsn = embedded.start()
    progress(f"server: {dsn} (up in {time.perf_counter() - started:.1f} s)")
    bench: Bench | None = None
    finished = False
    try:
        bench = Bench(folder, dsn, data, args.runs, int(embedded.status()["pid"]))
        bench.prepare()
        info = machine(dsn)
        info["load_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        wanted = set(args.only or MEASUREMENTS)
        bench.bench_append()
        for name in MEASUREMENTS[1:]:
            if name in wanted:
                getattr(bench, f"bench_{name}")()
        info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        text = report(info, data, bench.results, bench.rss, args.runs)
        print(text, flush=True)
        out = {
            "when": datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": info,
            "params": {"rows": args.rows, "runs": args.runs, "seed": SEED},
            "data": {
                **asdict(data),
                "base": str(data.base),
                "upsert": str(data.upsert),
                "parts_dir": str(data.parts_dir),
            },
            "targets": {**TARGETS, "rss_mb": RSS_TARGET_MB},
            "results": bench.results,
            "peak_rss": bench.rss,
            "table": text,
        }
        (folder / "results.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        progress(f"results: {folder / 'results.json'}")
        finished = True
    finally:
        if bench is not None:
            bench.close()
        embedded.stop()
        if not finished:
            progress(f"failed: the data, jobs and logs are kept in {folder}")
        elif not args.keep:
            for sub in ("base", "upsert", "parts", "queue", "jobs", "logs", "pg-home"):
                shutil.rmtree(folder / sub, ignore_errors=True)
            (folder / "data.json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
