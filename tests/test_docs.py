"""docs/plugins.md keeps up with the plugin surface, and every hook has a test.

Fails when a hook in ``pm.hook`` is not described (with its arguments) in
docs/plugins.md, when a class a ``register_*`` hook returns — or one of its public
attributes — is missing from its section, when an event is not in the events table, and
when a hook has no test named ``test_hook_<name>`` somewhere under tests/. The worked
example in the page is run, end to end, against the database.
"""

from __future__ import annotations

import ast
import functools
import re
import types
from pathlib import Path

import pytest

from csvpg import events, hookspecs, interfaces
from csvpg.plugins import ENTRY_POINT_GROUP, get_plugin_manager

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "plugins.md"
TESTS = REPO / "tests"


def _hooks() -> dict[str, list[str]]:
    """Hook name → argument names, as pluggy knows them from csvpg/hookspecs.py."""
    pm = get_plugin_manager(entry_points=False)
    out = {}
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if not name.startswith("_") and spec is not None:
            out[name] = list(spec.argnames)
    return out


HOOKS = _hooks()


@functools.cache
def docs() -> str:
    return DOCS.read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text under the ``###`` heading ``title`` (in backticks), up to the next heading."""
    match = re.search(rf"^### `{re.escape(title)}`\s*$(.*?)(?=^#{{1,3}} |\Z)", docs(), re.M | re.S)
    assert match, f"docs/plugins.md has no section '### `{title}`'"
    return match.group(1)


def _kinds() -> dict[str, type]:
    """``register_*`` hook → the base class its classes subclass (from its annotation)."""
    out = {}
    for name in HOOKS:
        if name.startswith("register_"):
            returns = str(getattr(hookspecs, name).__annotations__.get("return", ""))
            found = re.search(r"type\[(\w+)\]", returns)
            assert found, f"{name} must be annotated as returning list[type[<BaseClass>]]"
            out[name] = getattr(interfaces, found.group(1))
    return out


KINDS = _kinds()


def test_the_surface_is_what_these_checks_cover() -> None:
    assert {"register_sources", "sniff_format", "track_event"} <= set(HOOKS)
    assert set(KINDS.values()) >= {interfaces.Source, interfaces.Format, interfaces.Sink}


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_is_documented_with_its_arguments(hook: str) -> None:
    headings = re.findall(rf"^### `{hook}\((.*?)\)`\s*$", docs(), re.M)
    assert headings, f"docs/plugins.md has no heading '### `{hook}(…)`'"
    documented = [a.strip() for a in headings[0].split(",") if a.strip()]
    assert documented == HOOKS[hook], f"{hook}: the docs say ({headings[0]})"
    text = section(f"{hook}({headings[0]})")
    assert len(text.split()) >= 25, f"say more about {hook}: when it is called, what it returns"


def _public(cls: type) -> set[str]:
    names = set(vars(cls)) | set(vars(cls).get("__annotations__", {}))
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize(
    "cls", sorted({*KINDS.values(), interfaces.Reader}, key=lambda c: c.__name__), ids=str
)
def test_every_registered_kind_and_its_attributes_are_documented(cls: type) -> None:
    text = section(cls.__name__)
    missing = sorted(n for n in _public(cls) if f"`{n}" not in text)
    assert not missing, f"the `{cls.__name__}` section does not mention {missing}"


def test_every_event_is_in_the_events_table() -> None:
    fired = [
        name
        for name, obj in vars(events).items()
        if isinstance(obj, type) and issubclass(obj, events.Event) and obj is not events.Event
    ]
    assert fired
    missing = [name for name in fired if f"| `{name}` |" not in docs()]
    assert not missing, f"docs/plugins.md's events table lacks {missing}"


def test_the_entry_point_group_and_the_testing_fixtures_are_documented() -> None:
    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in docs()
    for fixture in ("csvpg_db", "csvpg_run", "csvpg_server", "csvpg_home"):
        assert f"**`{fixture}" in docs(), fixture


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        }
    return names


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_a_test(hook: str) -> None:
    assert f"test_hook_{hook}" in _test_names(), (
        f"no test_hook_{hook} under tests/: add one to tests/test_hooks.py"
    )


def _example(first_line: str) -> str:
    for block in re.findall(r"^```python\n(.*?)^```", docs(), re.M | re.S):
        if block.startswith(first_line + "\n"):
            return block
    raise AssertionError(f"docs/plugins.md has no python block starting {first_line!r}")


def test_the_worked_example_runs(db, tmp_path: Path) -> None:
    """The format and the test shown in the page, run as written (the plugin passed in
    rather than installed)."""
    from csvpg.testing import JobRunner

    plugin = types.ModuleType("csvpg_jsonl")
    exec(compile(_example("# csvpg_jsonl/__init__.py"), "csvpg_jsonl", "exec"), vars(plugin))
    scope: dict[str, object] = {}
    exec(compile(_example("# tests/test_jsonl.py"), "test_jsonl", "exec"), scope)
    runner = JobRunner(db, tmp_path)  # type: ignore[arg-type]  # fix_pg's Db has the same helpers
    csvpg_run = functools.partial(runner, plugins=[plugin])
    scope["test_jsonl_loads_typed_columns"](csvpg_run, db)  # type: ignore[operator]
