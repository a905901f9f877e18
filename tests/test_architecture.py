"""The layout's rules, as import-linter contracts in pyproject.toml: no import cycle,
SQL in pg/ (which imports no plugin, engine or front end), a plugin SPI free of SQL,
a core without Textual. Run here so that CI keeps them; ``nox -s lint`` runs them too."""

from __future__ import annotations

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
