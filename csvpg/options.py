"""Declared options: what a spec section or a plugin accepts, checked before anything runs."""

from __future__ import annotations

import builtins
import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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


S = TypeVar("S")


def option(
    type: type | tuple[type, ...],
    *,
    help: str = "",
    choices: tuple[Any, ...] | None = None,
    item: builtins.type | None = None,
    path: bool = False,
) -> dict[str, Option]:
    """The ``metadata=`` of a section's dataclass field: what the key accepts. The field's
    own default (or its absence) is the option's, so each key is declared once::

        mode: str = field(default="append", metadata=option(str))
    """
    return {"option": Option(type, help=help, choices=choices, item=item, path=path)}


def schema_of(cls: builtins.type[Any]) -> dict[str, Option]:
    """The options of a section dataclass, in field order, with the fields' defaults."""
    out = {}
    for f in dataclasses.fields(cls):
        declared: Option = f.metadata["option"]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _MISSING
        out[f.name] = dataclasses.replace(declared, default=default)
    return out


def section(
    cls: builtins.type[S], path: str, given: Mapping[str, Any], *, file: str | None = None
) -> S:
    """``given`` checked against ``cls``'s options (the same errors as :func:`validate`),
    as a ``cls``; a ``check(path, file)`` method then checks keys against each other."""
    checked = validate(path, dict(given), schema_of(cls), file=file)
    # Keys not given take the dataclass's own default: a fresh list or table each time.
    made = cls(**{key: checked[key] for key in given})
    check = getattr(made, "check", None)
    if check is not None:
        check(path, file)
    return made


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
