"""``--help`` of every command, and the shell completion written from the same parser."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from csvpg.cli.completion import script
from csvpg.cli.main import build_parser

PARSER = build_parser()
SUB = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction))
COMMANDS = sorted(SUB.choices)


def csvpg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "csvpg", *args], capture_output=True, text=True)


def test_top_level_help_lists_every_command_and_the_exit_codes() -> None:
    out = csvpg("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout
    for code in ("0", "1", "2", "130", "143"):
        assert f"{code} " in out.stdout.split("exit codes:")[1]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_an_example_and_says_its_defaults(name: str) -> None:
    command = SUB.choices[name]
    text = command.format_help()
    assert "csvpg " in text.partition("example:\n  ")[2], f"csvpg {name} --help: no example"
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"csvpg {name}: {action.option_strings or action.dest} has no help"
        takes_a_value = action.option_strings and action.nargs != 0
        if takes_a_value and action.default not in (None, [], argparse.SUPPRESS):
            assert f"default: {action.default}" in " ".join(text.split()), (
                f"csvpg {name} --help does not say the default of {action.option_strings[0]}"
            )


def complete(line: str) -> list[str]:
    """What bash offers after ``line`` (the word being typed is its last one)."""
    words = line.split(" ")
    program = (
        script("bash", PARSER)
        + f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        + '_csvpg; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return [w for w in out.stdout.splitlines() if w]


def test_bash_completes_commands_options_and_their_values() -> None:
    assert complete("csvpg ru") == ["run", "runs"]
    assert complete("csvpg run --log-format ") == ["text", "json"]
    assert complete("csvpg db st") == ["start", "stop", "status"]
    assert set(complete("csvpg infer --")) >= {"--output", "--explain", "--sample-rows"}
    assert complete("csvpg completion f") == ["fish"]


def test_bash_completes_a_jobs_file_name(tmp_path, monkeypatch) -> None:
    (tmp_path / "nightly.toml").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert complete("csvpg run night") == ["nightly.toml"]


def test_zsh_and_fish_scripts_name_every_command() -> None:
    zsh, fish = script("zsh", PARSER), script("fish", PARSER)
    assert zsh.startswith("autoload -U +X bashcompinit && bashcompinit\n")
    for name in COMMANDS:
        assert f"-a {name} " in fish
    assert "-l log-format" in fish and "-xa 'text json'" in fish
