"""Shell completion scripts, written from the argparse parser itself, so that a new
command or option completes without anyone editing a script.

Commands, options, and the values of options and arguments that take one of a few
(``--log-format text|json``, ``db start|stop…``) complete; other arguments complete as
file names. zsh uses the bash script through its ``bashcompinit``.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

__all__ = ["script"]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    options: list[str]
    #: option → the values it takes (only options with choices)
    values: dict[str, list[str]]
    #: the choices of its positional arguments, if any (else file names)
    words: list[str]
    #: (long or short option, help) for fish, which shows descriptions
    described: list[tuple[str, str]]


def _commands(parser: argparse.ArgumentParser) -> list[_Command]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    out = []
    for name, command in sub.choices.items():
        options, values, words, described = [], {}, [], []
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if action.option_strings:
                options += action.option_strings
                described.append((max(action.option_strings, key=len), action.help or ""))
                if action.choices:
                    for flag in action.option_strings:
                        values[flag] = [str(c) for c in action.choices]
            elif action.choices:
                words += [str(c) for c in action.choices]
        out.append(_Command(name, helps.get(name, ""), options, values, words, described))
    return out


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` ("bash", "zsh" or "fish")."""
    commands = _commands(parser)
    if shell == "fish":
        return _fish(commands)
    bash = _bash(commands)
    if shell == "zsh":
        return "autoload -U +X bashcompinit && bashcompinit\n" + bash
    return bash


def _words(items: list[str]) -> str:
    return shlex.quote(" ".join(items))


def _bash(commands: list[_Command]) -> str:
    cases, value_cases = [], []
    for c in commands:
        cases.append(f"        {c.name}) opts={_words(c.options)}; words={_words(c.words)} ;;")
        for flag, values in c.values.items():
            value_cases.append(f'        "{c.name} {flag}") values={_words(values)} ;;')
    names = _words([c.name for c in commands])
    return f"""# csvpg completion for bash: eval "$(csvpg completion bash)"
_csvpg() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local opts="" words="" values=""
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W {names} -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}} $prev" in
{chr(10).join(value_cases)}
    esac
    if [ -n "$values" ]; then
        COMPREPLY=($(compgen -W "$values" -- "$cur"))
        return
    fi
    case "${{COMP_WORDS[1]}}" in
{chr(10).join(cases)}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [ -n "$words" ]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -o filenames -F _csvpg csvpg
"""


def _fish(commands: list[_Command]) -> str:
    lines = ["# csvpg completion for fish: csvpg completion fish | source", "complete -c csvpg -f"]
    for c in commands:
        lines.append(
            f"complete -c csvpg -n __fish_use_subcommand -a {c.name} -d {shlex.quote(c.help)}"
        )
        when = f"-n '__fish_seen_subcommand_from {c.name}'"
        for flag, help_text in c.described:
            kind = "-l" if flag.startswith("--") else "-s"
            values = c.values.get(flag)
            takes = f" -xa {_words(values)}" if values else ""
            lines.append(
                f"complete -c csvpg {when} {kind} {flag.lstrip('-')} "
                f"-d {shlex.quote(help_text)}{takes}"
            )
        if c.words:
            lines.append(f"complete -c csvpg {when} -xa {_words(c.words)}")
        else:
            lines.append(f"complete -c csvpg {when} -F")
    return "\n".join(lines) + "\n"
