"""[sink] schema: files whose columns or values drift from their table's, loaded by the
job's rule (freeze, evolve, discard_new), against real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from csvpg.api import run
from csvpg.summary import RunSummary
from tests.conftest import job_toml


def load(db, tmp_path: Path, files: dict[str, str], sink: str, *, extra: str = "") -> RunSummary:
    data = tmp_path / "data"
    if data.exists():
        for old in data.iterdir():
            old.unlink()
    data.mkdir(exist_ok=True)
    for name, text in files.items():
        (data / name).write_bytes(text.encode())
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(data), sink=sink, extra=extra))
    return run(job, force=True)


def test_smoke(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".sales (id integer, qty smallint, day date)')
    text = "id,qty,day,note\n1,2,2024-01-01,a\n3000000000,2.5,2024-01-02 10:00,b\n"
    result = load(db, tmp_path, {"sales.csv": text}, 'schema = "evolve"')
    print(result.files[0])
    assert result.exit_code == 0
    print(db.columns("sales"), db.rows("sales", "id"))
