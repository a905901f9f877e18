"""``csvpg run`` starts fast: the command line and a run's code import no front end
(the dashboard's Textual, the queue's procrastinate, the API's FastAPI) and no
scorer of a plugin the job does not use. Checked in a fresh interpreter, whose
``sys.modules`` is what importing costs; no timing (speed is tests/benchmark.py's)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["textual", "procrastinate", "fastapi", "uvicorn", "croniter", "rapidfuzz"]


def loaded_after(code: str) -> dict[str, bool]:
    probe = (
        f"import sys\n{code}\nimport json\n"
        f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_the_command_line_imports_no_front_end() -> None:
    loaded = loaded_after("import csvpg.cli.main")
    assert not any(loaded.values()), loaded


def test_a_run_imports_no_front_end_and_no_unused_plugin_library() -> None:
    # What `csvpg run` imports before its first file: the API, the engine, every
    # installed plugin (through entry points), a job without [schedule] checked.
    loaded = loaded_after(
        "import csvpg.api, csvpg.engine.run, csvpg.reporters\n"
        "from csvpg.plugins import Registry, get_plugin_manager\n"
        "from csvpg.spec import job_from_dict\n"
        "Registry(get_plugin_manager())\n"
        "job_from_dict({'job': {'name': 'j'}, 'source': {'url': 'x.csv'}, 'sink': {'table': 't'}})"
    )
    assert not any(loaded.values()), loaded


def test_the_probe_sees_an_import() -> None:
    """The check can fail: a module imported is reported as such."""
    assert loaded_after("import croniter")["croniter"] is True
