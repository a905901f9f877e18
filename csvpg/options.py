"""Declared options: what a spec section or a plugin accepts, checked before anything runs."""

from __future__ import annotations

import builtins
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csvpg.errors import SpecError
from csvpg.masking import shown

_MISSING: Any = object()

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


@dataclass(frozen=True)
class Option:
    """One accepted key: its type(s), default (absent → required), allowed values."""

    type: type | tuple[type, ...]
    default: Any = _MISSING
    help: str = ""
    choices: tuple[Any, ...] | None = None
    #: For lists: the type of each item; for tables: the type of each value.
    item: builtins.type | None = None
    #: A file path (or a list of them): ``~`` is the home folder, and a relative path
    #: starts at the job file's folder, wherever csvpg is started from.
    path: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING


def _describe(types: type | tuple[type, ...]) -> str:
    kinds = types if isinstance(types, tuple) else (types,)
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in kinds)


def _is_instance(value: Any, types: type | tuple[type, ...]) -> bool:
    kinds = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool):  # bool is an int in Python, never in a spec
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


def nearest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key(
    path: str, key: str, known: list[str] | tuple[str, ...], file: str | None
) -> SpecError:
    guess = nearest(key, known)
    where = f"{path}.{key}" if path else key
    hint = f"did you mean '{guess}'?" if guess else None
    if not hint:
        hint = "valid keys here: " + ", ".join(sorted(known)) if known else None
    return SpecError(f"unknown key '{where}'", hint=hint, key=where, file=file)


def validate(
    path: str,
    given: dict[str, Any],
    schema: dict[str, Option],
    *,
    file: str | None = None,
    base_dir: Path | None = None,
) -> dict[str, Any]:
    """Check ``given`` against ``schema``; return it with defaults filled in, and
    path options resolved from ``base_dir``."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        option = schema.get(key)
        if option is None:
            raise unknown_key(path, key, list(schema), file)
        where = f"{path}.{key}" if path else key
        if not _is_instance(value, option.type):
            raise SpecError(
                f"'{where}' must be {_describe(option.type)}, not {shown(value, where)}",
                key=where,
                file=file,
            )
        if option.choices is not None and value not in option.choices:
            choices = ", ".join(repr(c) for c in option.choices)
            raise SpecError(
                f"'{where}' must be one of {choices}, not {shown(value, where)}",
                key=where,
                file=file,
            )
        if option.item is not None:
            items = value.values() if isinstance(value, dict) else value
            for item in items if isinstance(value, (list, dict)) else ():
                if not _is_instance(item, option.item):
                    raise SpecError(
                        f"every item of '{where}' must be {_describe(option.item)}, "
                        f"not {shown(item, where)}",
                        key=where,
                        file=file,
                    )
        out[key] = _resolved(value, base_dir) if option.path else value
    for key, option in schema.items():
        if key in out:
            continue
        if option.required:
            where = f"{path}.{key}" if path else key
            raise SpecError(
                f"missing required key '{where}'", key=where, file=file, hint=option.help or None
            )
        out[key] = option.default
    return out


def _resolved(value: Any, base_dir: Path | None) -> Any:
    if isinstance(value, list):
        return [_resolved(v, base_dir) for v in value]
    if not isinstance(value, str):
        return value  # e.g. agent = false
    path = Path(value).expanduser()
    return str(path if path.is_absolute() or base_dir is None else base_dir / path)
