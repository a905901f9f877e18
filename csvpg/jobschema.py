"""A JSON Schema for job files, made from the same option tables that validate them.

Editors with TOML support (taplo, Even Better TOML) complete and check a job file as it
is typed when it names the schema (``#:schema ./job.schema.json`` on its first line, or
a ``[[tool.taplo.schema]]`` association). ``csvpg schema`` prints the schema of what is
installed, third-party plugins included; the package ships the one of csvpg's built-ins
(:data:`SHIPPED`), kept equal to :func:`job_schema` of the built-ins by a test.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from importlib.resources import files
from typing import Any

from csvpg.options import Option
from csvpg.plugins import ENTRY_POINT_GROUP, Registry, get_plugin_manager

#: The schema of csvpg's own sections and built-in plugins, as shipped in the package.
SHIPPED = files("csvpg") / "job.schema.json"

_JSON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def builtin_registry() -> Registry:
    """The plugins csvpg itself ships, without any third party's."""
    modules = [
        importlib.import_module(ep.value)
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.value.startswith("csvpg.builtin.")
    ]
    return Registry(get_plugin_manager(modules, entry_points=False))


def job_schema(registry: Registry | None = None) -> dict[str, Any]:
    """The schema of a job file for the plugins of ``registry`` (default: installed)."""
    from csvpg.notify import NOTIFY
    from csvpg.spec import COLUMN, OVERRIDE, SECTIONS

    registry = registry or Registry(get_plugin_manager())
    properties: dict[str, Any] = {name: table(options) for name, options in SECTIONS.items()}
    properties["sink"] = _sink(properties["sink"], registry)
    properties["format"] = _by_type(
        {key: reg.cls.options for key, reg in registry.formats.items()}, default="csv"
    )
    properties["transform"] = _array(
        _by_type({key: reg.cls.options for key, reg in registry.transforms.items()})
    )
    column = {"oneOf": [{"type": "string", "description": "a PostgreSQL type"}, table(COLUMN)]}
    properties["columns"] = {"type": "object", "additionalProperties": column}
    override = table(OVERRIDE)
    override["properties"]["columns"] = properties["columns"]
    properties["override"] = _array(override)
    properties["notify"] = _array(table(NOTIFY))
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "csvpg job",
        "description": "A csvpg job file: where files come from, how they are read, "
        "and how they land in PostgreSQL.",
        "type": "object",
        "required": ["job", "source"],
        "properties": properties,
        "additionalProperties": False,
    }


def table(options: dict[str, Option]) -> dict[str, Any]:
    """A TOML table whose keys are ``options``: unknown keys are errors, as in csvpg."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": {key: _value(option) for key, option in options.items()},
        "additionalProperties": False,
    }
    required = [key for key, option in options.items() if option.required]
    if required:
        out["required"] = required
    return out


def _value(option: Option) -> dict[str, Any]:
    kinds = option.type if isinstance(option.type, tuple) else (option.type,)
    names = [_JSON_TYPES.get(kind, "string") for kind in kinds]
    out: dict[str, Any] = {"type": names[0] if len(names) == 1 else names}
    if option.help:
        out["description"] = option.help
    if option.choices is not None:
        out["enum"] = list(option.choices)
    if not option.required and option.default is not None:
        out["default"] = option.default
    if option.item is not None:
        item = {"type": _JSON_TYPES.get(option.item, "string")}
        out["items" if list in kinds else "additionalProperties"] = item
    return out


def _by_type(options_of: dict[str, dict[str, Option]], default: str | None = None) -> Any:
    """A table whose ``type`` picks the plugin, and so the other keys it accepts. An
    unknown type leaves the other keys unchecked: csvpg names the installed ones."""
    branches = []
    for key, options in sorted(options_of.items()):
        schema = table({"type": Option(str), **options})
        schema.pop("required", None)
        branches.append({"if": _picks("type", key, key == default), "then": schema})
    described = {"type": "string", "enum": sorted(options_of)}
    out: dict[str, Any] = {"type": "object", "properties": {"type": described}}
    if default is None:
        out["required"] = ["type"]
    else:
        described["default"] = default
    return {**out, "allOf": branches}


def _sink(section: dict[str, Any], registry: Registry) -> dict[str, Any]:
    """[sink]: ``mode`` names an installed sink, whose own keys go in [sink.options]."""
    section["properties"]["mode"]["enum"] = sorted(registry.sinks)
    section["allOf"] = [
        {
            "if": _picks("mode", mode, mode == "append"),
            "then": {"properties": {"options": table(reg.cls.options)}},
        }
        for mode, reg in sorted(registry.sinks.items())
        if reg.cls.options
    ]
    if not section["allOf"]:
        del section["allOf"]
    return section


def _picks(key: str, value: str, is_default: bool) -> dict[str, Any]:
    """The ``if`` of a branch: the key says ``value``, or (the default) says nothing."""
    said = {"properties": {key: {"const": value}}, "required": [key]}
    return {"anyOf": [said, {"not": {"required": [key]}}]} if is_default else said


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def dumps(schema: dict[str, Any]) -> str:
    """The schema as written to the package and printed by ``csvpg schema``."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
