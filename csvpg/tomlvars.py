"""TOML text with ``${VAR}`` secrets, as job files and ``connections.toml`` are written:
parsed with the failing line named, then each ``${VAR}`` taken from the environment
(``$$`` is a dollar)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from typing import Any

from csvpg.errors import SpecError

_VAR = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\})")


def substitute(
    value: Any,
    key: str,
    env: Mapping[str, str],
    file: str | None,
    allow: Collection[str] | None = None,
) -> Any:
    """Replace ``${VAR}`` from ``env`` in every string of ``value``; ``$$`` is a dollar.
    With ``allow``, only the variables it names may be used (a spec from elsewhere must
    not read the server's secrets out of its environment)."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            if m.group(1) == "$":
                return "$"
            var = m.group(2)
            if allow is not None and var not in allow:
                raise SpecError(
                    f"'{key}' uses ${{{var}}}, which is not taken from the environment here",
                    key=key,
                    file=file,
                    hint=f"write the value into the spec, or allow it (csvpg serve --env-allow "
                    f"{var})",
                )
            if var not in env:
                raise SpecError(
                    f"'{key}' uses ${{{var}}}, but the environment variable {var} is not set",
                    key=key,
                    file=file,
                    hint=f"export {var}=… before running, or write the value into the job",
                )
            return env[var]

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: substitute(v, f"{key}.{k}" if key else k, env, file, allow) for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute(v, f"{key}[{i}]", env, file, allow) for i, v in enumerate(value)]
    return value


def variables(value: Any) -> set[str]:
    """The ``${VAR}`` names used anywhere in ``value`` (``$$`` is no variable)."""
    if isinstance(value, str):
        return {m.group(2) for m in _VAR.finditer(value) if m.group(2)}
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value))
    return set()


def parse_toml(text: str, file: str | None) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SpecError(
            f"{file or 'the job'} is not valid TOML: {exc}",
            file=file,
            line=int(m.group(1)) if m else None,
            hint="check the quoting and brackets on that line",
        ) from exc
