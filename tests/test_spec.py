"""Job files: every broken spec in tests/data/specs fails with the words it promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.spec import SinkSection, job_from_dict, load_job, substitute

SPECS = sorted((Path(__file__).parent / "data" / "specs").glob("*.toml"))


def expected(path: Path, mark: str = "expect") -> list[str]:
    """The words a spec's error must show (``# expect:``), or never (``# absent:``)."""
    return [
        line.split(":", 1)[1].strip()
        for line in path.read_text().splitlines()
        if line.startswith(f"# {mark}:")
    ]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_broken_spec_is_explained(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert expected(path), f"{path.name} states no expected words"
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert str(path) in err, "the error names the job file"
    for words in expected(path):
        assert words in err
    for words in expected(path, "absent"):
        assert words not in err


def test_environment_variables_are_substituted() -> None:
    raw = {
        "job": {"name": "x"},
        "database": {"dsn": "postgresql://u:${PW}@h/db"},
        "source": {"url": "$${literal}/${DIR}"},
    }
    job = job_from_dict(raw, env={"PW": "s3cret", "DIR": "in"})
    assert job.database.dsn == "postgresql://u:s3cret@h/db"
    assert job.source.url == "${literal}/in"
    assert not job.embedded


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "j.toml"
    path.write_text('[job]\nname = "j"\n[source]\nurl = "data"\n')
    job = load_job(path)
    assert job.embedded
    assert job.sink == SinkSection(
        mode="append",
        table="{name}",
        primary_key=[],
        create=True,
        max_rejects="1% up to 1000",
        rejects_csv=False,
        options={},
    )
    assert job.format == {"type": "csv"}
    assert job.base_dir == tmp_path


def test_missing_job_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="job file not found"):
        load_job(tmp_path / "nope.toml")


def test_substitution_names_the_key_path() -> None:
    with pytest.raises(SpecError) as info:
        substitute({"a": [{"b": "${NOPE_X}"}]}, "", {}, None)
    assert info.value.key == "a[0].b"
