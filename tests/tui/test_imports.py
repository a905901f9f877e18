"""Headless stays light: the library, its hooks and the engine never load Textual."""

from __future__ import annotations

import subprocess
import sys


def test_textual_is_not_imported_without_the_dashboard() -> None:
    code = (
        "import sys, csvpg, csvpg.hookspecs, csvpg.engine, csvpg.reporters, csvpg.cli\n"
        "csvpg.run\n"
        "tops = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(tops & {'textual', 'textual_serve'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_dashboard_does_load_it() -> None:
    code = "import sys, csvpg.tui.app; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
