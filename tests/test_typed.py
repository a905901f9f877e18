"""Typed job sections and the typed public API: csvpg's own reads of a job are checked
by mypy as a user's job file is checked by ``csvpg check``; plugins type-check against
``import csvpg`` under ``mypy --strict``."""

from __future__ import annotations

import dataclasses
import importlib.resources
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import csvpg
from csvpg.api import run
from csvpg.errors import SpecError
from csvpg.spec import (
    SECTION_TYPES,
    SECTIONS,
    Job,
    RunSection,
    SinkSection,
    SourceSection,
    job_from_dict,
    load_job,
)
from tests.fix_pg import Db


def test_the_option_table_is_the_sections_fields() -> None:
    """One table: each section's keys and defaults are its dataclass's fields."""
    for name, cls in SECTION_TYPES.items():
        fields = dataclasses.fields(cls)
        assert list(SECTIONS[name]) == [f.name for f in fields]
        for f in fields:
            option = SECTIONS[name][f.name]
            if f.default is not dataclasses.MISSING:
                assert option.default == f.default
            elif f.default_factory is not dataclasses.MISSING:
                assert option.default == f.default_factory()
            else:
                assert option.required


def _misspelt(key: str, i: int) -> str:
    """``key`` with the letters at ``i`` and ``i + 1`` swapped."""
    return key[:i] + key[i + 1] + key[i] + key[i + 2 :]


@st.composite
def misspellings(draw: st.DrawFn) -> tuple[str, str, str]:
    section = draw(st.sampled_from(sorted(SECTIONS)))
    # "urls" misspelt may well be nearest "url": keys that extend another are left out.
    known = SECTIONS[section]
    keys = [k for k in known if len(k) >= 4 and not any(k.startswith(o) for o in known if o != k)]
    key = draw(st.sampled_from(keys)) if keys else "name"
    wrong = _misspelt(key, draw(st.integers(0, len(key) - 2)))
    return section, key, wrong


@given(misspellings())
def test_a_misspelt_key_in_any_section_names_the_right_one(case: tuple[str, str, str]) -> None:
    section, key, wrong = case
    if wrong == key:
        return  # a doubled letter swapped with itself: still the right key
    raw: dict[str, Any] = {"job": {"name": "x"}, "source": {"url": "data"}}
    raw[section] = {**raw.get(section, {}), wrong: 1}
    with pytest.raises(SpecError) as info:
        job_from_dict(raw, env={})
    assert info.value.key == f"{section}.{wrong}"
    assert f"unknown key '{section}.{wrong}'" in str(info.value)
    assert info.value.hint == f"did you mean '{key}'?"


@given(
    workers=st.integers(0, 64),
    fail_fast=st.booleans(),
    max_retries=st.integers(0, 10),
    retry_delay=st.one_of(st.integers(0, 60), st.floats(0, 60)),
    split_mb=st.integers(0, 4096),
)
def test_a_section_as_written_is_the_dataclass(
    workers: int, fail_fast: bool, max_retries: int, retry_delay: float, split_mb: int
) -> None:
    given_run: dict[str, Any] = {
        "workers": workers,
        "fail_fast": fail_fast,
        "max_retries": max_retries,
        "retry_delay": retry_delay,
        "split_mb": split_mb,
    }
    raw = {"job": {"name": "x"}, "source": {"url": "data"}, "run": given_run}
    assert job_from_dict(raw, env={}).run == RunSection(**given_run)


def test_sections_are_frozen(tmp_path: Path) -> None:
    path = tmp_path / "j.toml"
    path.write_text('[job]\nname = "j"\n[source]\nurl = "data"\n')
    job = load_job(path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.sink.mode = "upsert"  # type: ignore[misc]  # what mypy refuses, refused at run time
    assert Job.from_toml(path) == job


def test_a_job_built_in_python_loads(db: Db, tmp_path: Path) -> None:
    """Sections given as dataclasses, no job file: the rows reach the table."""
    (tmp_path / "people.csv").write_text("id,name\n1,Ada\n2,Grace\n")
    job = Job(
        name="people",
        source=SourceSection(url=str(tmp_path)),
        sink=SinkSection(mode="upsert", table=f"{db.schema}.people", primary_key=["id"]),
    )
    summary = run(job, dsn=db.dsn)
    assert summary.exit_code == 0, summary
    assert summary.status == "succeeded"
    assert db.rows("people", "id") == [("1", "Ada"), ("2", "Grace")]


@pytest.mark.parametrize(
    ("sections", "key", "words"),
    [
        ({"run": RunSection(workers=-1)}, "run.workers", "must be 0 (automatic) or more"),
        ({"run": RunSection(fail_fast="yes")}, "run.fail_fast", "must be true or false"),  # type: ignore[arg-type]
        ({"source": SourceSection()}, "source.url", "missing required key 'source.url'"),
        ({"sink": {"mode": "upsert"}}, "sink", "must be a SinkSection, not dict"),
    ],
)
def test_a_job_built_in_python_is_checked_as_a_job_file_is(
    tmp_path: Path, sections: dict[str, Any], key: str, words: str
) -> None:
    given: dict[str, Any] = {"source": SourceSection(url=str(tmp_path)), **sections}
    with pytest.raises(SpecError) as info:
        Job(name="x", **given)
    assert info.value.key == key
    assert words in str(info.value)


# --- mypy, once for the tests below ----------------------------------------------------

PLUGIN = """
from __future__ import annotations

from csvpg import Batch, Option, Relation, SpecError, Transform, hookimpl
from csvpg.spec import load_job


class Shout(Transform):
    type = "shout"
    options = {"column": Option(str)}

    def apply(self, relation: Relation, batches: object) -> object:
        return batches


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [Shout]


def primary_key(path: str) -> list[str]:
    job = load_job(path)
    if not job.sink.mode:
        raise SpecError("no mode")
    return job.sink.primery_key
"""


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    from mypy import api

    folder = tmp_path_factory.mktemp("plugin")
    (folder / "csvpg_shout.py").write_text(textwrap.dedent(PLUGIN))
    pyproject = Path(__file__).parent.parent / "pyproject.toml"
    out, err, _ = api.run(
        ["--config-file", str(pyproject), "--no-incremental", str(folder / "csvpg_shout.py")]
    )
    return out + err


def test_a_misspelt_section_key_is_a_mypy_error(mypy_report: str) -> None:
    assert '"SinkSection" has no attribute "primery_key"' in mypy_report
    assert 'maybe "primary_key"' in mypy_report


def test_a_plugin_type_checks_strictly_against_import_csvpg(mypy_report: str) -> None:
    """Under ``strict`` a name is csvpg's public API only when ``__all__`` says so."""
    errors = [line for line in mypy_report.splitlines() if ": error:" in line]
    misspelt = textwrap.dedent(PLUGIN).splitlines().index("    return job.sink.primery_key") + 1
    assert errors, mypy_report
    # Only the misspelt key's line (an Any returned, an unknown attribute); no import.
    assert all(f".py:{misspelt}: error:" in line for line in errors), mypy_report


def test_the_public_api_is_listed_once_and_loaded_lazily() -> None:
    names = csvpg.__all__
    assert names == sorted(names)
    assert set(names) == set(csvpg._EXPORTS)
    assert dir(csvpg) == names
    for name in names:
        assert getattr(csvpg, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        csvpg.Nope  # noqa: B018


def test_csvpg_ships_its_types() -> None:
    assert (importlib.resources.files("csvpg") / "py.typed").is_file()
