"""The layout's rules, as import-linter contracts in pyproject.toml: no import cycle,
SQL in pg/ (which imports no plugin, engine or front end), a plugin SPI free of SQL,
a core without Textual. Run here so that CI keeps them; ``nox -s lint`` runs them too.
And no function in csvpg/ is longer than :data:`MAX_LINES` lines."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO


def lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_contracts_hold() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "KEPT" in done.stdout


def test_a_cycle_breaks_them(tmp_path: Path) -> None:
    """The contract can fail: a package of two modules importing each other."""
    pkg = tmp_path / "csvpg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from csvpg import b\n")
    (pkg / "b.py").write_text("from csvpg import a\n")
    (tmp_path / ".importlinter").write_text(
        textwrap.dedent(
            """
            [importlinter]
            root_package = csvpg

            [importlinter:contract:cycles]
            name = No import cycle anywhere in csvpg
            type = acyclic_siblings
            ancestors = csvpg
            """
        )
    )
    done = lint_imports(tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN" in done.stdout


# -- function length ----------------------------------------------------------------------

#: The longest a function may be, decorators and docstring included.
MAX_LINES = 60


def long_functions(source: str, name: str) -> list[str]:
    """``file:line name (n lines)`` for each function in ``source`` over MAX_LINES."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_LINES:
                found.append(f"{name}:{start} {node.name} ({length} lines)")
    return found


def test_no_function_in_csvpg_is_over_60_lines() -> None:
    too_long = [
        found
        for path in sorted((REPO / "csvpg").rglob("*.py"))
        for found in long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert too_long == [], "split these into named steps: " + "; ".join(too_long)


def test_a_long_function_is_found() -> None:
    """The check can fail: a method of 61 lines, counted from its decorator."""
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_LINES - 1))
    source = f"class A:\n    @staticmethod\n    def long():\n{body}"
    assert long_functions(source, "a.py") == [f"a.py:2 long ({MAX_LINES + 1} lines)"]
    assert long_functions(source.replace("    @staticmethod\n", ""), "a.py") == []
