"""The plugin surface: entry points, duplicate keys, in-process plugins, events."""

from __future__ import annotations

from pathlib import Path

import pytest

from csvpg import Transform, hookimpl
from csvpg.api import run
from csvpg.errors import PluginError
from csvpg.events import BytesRead, FileLoaded, FileStarted, JobFinished, JobStarted
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.reporters import EventLog
from tests.conftest import job_toml


def test_builtins_come_from_entry_points() -> None:
    bare = Registry(get_plugin_manager(entry_points=False))
    assert not bare.sinks, "the core has no private list of built-ins"
    full = Registry(get_plugin_manager())
    assert {"append", "upsert", "rebuild"} <= set(full.sinks)
    assert full.sinks["upsert"].distribution.startswith("csvpg ")
    assert "upper" in full.transforms
    assert full.transforms["upper"].distribution.startswith("csvpg-example-upper")


def test_a_key_registered_twice_stops_startup() -> None:
    class Rename(Transform):
        type = "rename"

    class Clash:
        @hookimpl
        def register_transforms(self):
            return [Rename]

    with pytest.raises(PluginError, match="transform 'rename' is registered twice"):
        Registry(get_plugin_manager([Clash()]))


def test_in_process_transform_and_events(db, tmp_path: Path) -> None:
    class Reverse(Transform):
        type = "reverse"
        needs_rows = True
        from csvpg import Option

        options = {"type": Option(str)}

        def wrap(self, batches, relation):
            for batch in batches:
                yield [[None if v is None else v[::-1] for v in row] for row in batch]

    class Plugin:
        @hookimpl
        def register_transforms(self):
            return [Reverse]

    log = EventLog()
    (tmp_path / "w.csv").write_text("word\nabc\nxyz\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "w.csv", extra='[[transform]]\ntype = "reverse"\n'))
    summary = run(job, plugins=[Plugin(), log])
    assert summary.exit_code == 0
    assert db.rows("w") == [("cba",), ("zyx",)]
    kinds = [type(e) for e in log.events]
    assert kinds[0] is JobStarted and kinds[-1] is JobFinished
    assert kinds.index(FileStarted) < kinds.index(BytesRead) < kinds.index(FileLoaded)
    (loaded,) = log.of(FileLoaded)
    assert loaded.rows_read == 2 and loaded.details["path"] == "rows"
    assert all(e.run_id == summary.run_id for e in log.events)


def test_sniff_format_hook_picks_the_format(db, tmp_path: Path) -> None:
    """``[format] type = "auto"``: the first plugin that recognises the bytes wins."""
    from csvpg import Format
    from csvpg.builtin.format_csv import CsvFormat

    class Pipes(CsvFormat):
        name = "pipes"

        def __init__(self, **settings):
            super().__init__(**{**settings, "delimiter": "|"})

    class Plugin:
        @hookimpl
        def register_formats(self):
            return [Pipes]

        @hookimpl
        def sniff_format(self, ref, sample):
            return "pipes" if sample.startswith(b"PIPES") else None

    assert issubclass(Pipes, Format)
    (tmp_path / "p.csv").write_text("PIPES|b\n1,2|3\n")
    (tmp_path / "c.csv").write_text("a,b\n1,2\n")
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path), fmt='type = "auto"').replace(
            f'url = "{tmp_path}"', f'url = "{tmp_path}"\npattern = "*.csv"'
        )
    )
    summary = run(job, plugins=[Plugin()])
    assert summary.exit_code == 0
    assert db.rows("p") == [("1,2", "3")]
    assert db.rows("c") == [("1", "2")]


def test_a_record_sink_gets_rows_and_no_table(db, tmp_path: Path) -> None:
    """A sink that sends records elsewhere: options checked, rows handed over, no table."""
    from csvpg import LoadResult, Option, Sink

    received: list[list[str | None]] = []

    class Collect(Sink):
        mode = "collect"
        needs_rows = True
        writes_table = False
        options = {"label": Option(str)}

        def load(self, conn, load):
            assert self.settings == {"label": "x"}
            for batch in load.batches:
                received.extend(batch)
            return LoadResult(rows=len(received), inserted=len(received))

    class Plugin:
        @hookimpl
        def register_sinks(self):
            return [Collect]

    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "r.csv", sink='mode = "collect"\n[sink.options]\nlabel = "x"'))
    summary = run(job, plugins=[Plugin()])
    assert summary.exit_code == 0, summary.files[0].error
    assert received == [["1", "2"], ["3", None]]
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.r",)).fetchone() == (None,)


def test_a_plugin_that_fails_to_import_is_named(tmp_path: Path, monkeypatch) -> None:
    """A broken third-party package stops startup with its name, not a traceback."""
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[csvpg]\nbroken = broken_plugin_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    assert "the plugin 'broken' of the package broken-plugin failed to load" in info.value.message
    assert "ModuleNotFoundError" in info.value.message
