"""The JSON Schema of job files: shipped up to date, true to csvpg's own validation."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csvpg import jobschema
from csvpg.engine.plan import check_plugins
from csvpg.errors import SpecError
from csvpg.options import validate
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.spec import COLUMN, SECTIONS, load_job

ROOT = Path(__file__).resolve().parents[1]
JOB_FILES = sorted([*ROOT.glob("jobs/*.toml"), *ROOT.glob("tests/tui/data/jobs/*.toml")], key=str)


def validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft7Validator(schema)


@pytest.fixture(scope="module")
def installed() -> Any:
    return validator(jobschema.job_schema())


def test_the_shipped_schema_is_the_one_of_the_builtins() -> None:
    shipped = jobschema.SHIPPED.read_text(encoding="utf-8")
    made = jobschema.dumps(jobschema.job_schema(jobschema.builtin_registry()))
    assert shipped == made, "run: uv run csvpg schema --builtin > csvpg/job.schema.json"


def test_csvpg_schema_prints_the_installed_plugins_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "csvpg", "schema"], capture_output=True, text=True, check=True
    ).stdout
    schema = json.loads(out)
    modes = schema["properties"]["sink"]["properties"]["mode"]["enum"]
    assert {"append", "upsert", "rebuild"} <= set(modes)
    assert "merge" in modes  # csvpg-merge is installed in the test environment


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_job_file_in_the_repository_is_valid(path: Path, installed: Any) -> None:
    load_job(path, env={"CSVPG_SNAPSHOT_WAREHOUSE_URL": "postgresql://h/db"})  # csvpg takes it …
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    errors = [e.message for e in installed.iter_errors(data)]
    assert errors == []  # … and so does an editor with the schema


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        ('[job]\nname = "x"\n[source]\nurl = "d/"\n[sink]\nmdoe = "append"\n', "mdoe"),
        ('[job]\nname = "x"\n[source]\nurl = "d/"\n[format]\ndelimitr = ";"\n', "delimitr"),
        ('[job]\nname = "x"\n[source]\nurl = "d/"\n[run]\nworkers = "2"\n', "workers"),
        ('[job]\nname = "x"\n[sources]\nurl = "d/"\n', "sources"),
        ('[job]\nname = "x"\n[source]\nurl = "d/"\n[columns]\nid = { typ = "int" }\n', "typ"),
    ],
)
def test_a_mistake_csvpg_refuses_is_flagged_by_the_schema(
    toml: str, where: str, installed: Any, tmp_path: Path
) -> None:
    path = tmp_path / "job.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(SpecError):  # plugin options are checked by the plan
        check_plugins(load_job(path), Registry(get_plugin_manager()))
    errors = [e.message for e in installed.iter_errors(tomllib.loads(toml))]
    assert errors, f"the schema took a job with {where!r}"


def test_a_plugins_options_are_checked_by_its_type(installed: Any) -> None:
    base = {"job": {"name": "x"}, "source": {"url": "d/"}}
    assert installed.is_valid({**base, "format": {"delimiter": ";"}})  # csv, the default
    assert not installed.is_valid({**base, "format": {"type": "csv", "sheet": 1}})
    assert installed.is_valid({**base, "transform": [{"type": "rename", "columns": {"a": "b"}}]})
    assert not installed.is_valid({**base, "transform": [{"columns": {"a": "b"}}]})


# -- the schema and csvpg agree on every section, key by key --------------------------

_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    # Not a whole number: JSON Schema counts 2.0 an integer, TOML (and csvpg) do not.
    st.floats(-2, 2, allow_nan=False).filter(lambda x: not x.is_integer()),
    st.sampled_from(["", "append", "upsert", ";", "auto", "x"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
    st.lists(st.integers(0, 2), min_size=1, max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["x", 1]), max_size=2),
)
_TABLES = {**SECTIONS, "columns.<name>": COLUMN}


@st.composite
def section_tables(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(sorted(_TABLES)))
    keys = [*_TABLES[name], "unknown", "nmae"]
    table = draw(st.dictionaries(st.sampled_from(keys), _VALUES, max_size=4))
    return name, {k: v for k, v in table.items() if v is not None}  # TOML has no null


@settings(max_examples=300, deadline=None)
@given(section_tables())
def test_the_schema_accepts_a_table_exactly_when_csvpg_does(case: tuple[str, Any]) -> None:
    name, table = case
    try:
        validate(name, dict(table), _TABLES[name])
        accepted = True
    except SpecError:
        accepted = False
    assert validator(jobschema.table(_TABLES[name])).is_valid(table) == accepted
