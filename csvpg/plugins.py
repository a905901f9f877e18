"""The plugin manager: built-ins and third parties alike come from entry points."""

from __future__ import annotations

import importlib.metadata
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pluggy

from csvpg import hookspecs
from csvpg.errors import PluginError, SpecError
from csvpg.interfaces import FileRef, Format, Sink, Source, Transform
from csvpg.options import nearest

ENTRY_POINT_GROUP = "csvpg"

T = TypeVar("T")


def get_plugin_manager(
    plugins: Iterable[object] = (), *, entry_points: bool = True
) -> pluggy.PluginManager:
    """A new manager with csvpg's hookspecs, every installed plugin, and ``plugins``."""
    pm = pluggy.PluginManager("csvpg")
    pm.add_hookspecs(hookspecs)
    if entry_points:
        _load_entry_points(pm)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Each plugin of the group imported and registered under its entry point's name,
    with its distribution's name and version (``csvpg plugins``). A package that fails
    to import is named in the error rather than lost in a traceback. (pluggy's own
    loader reads every installed distribution's entry points again: slower to start.)"""
    dists = _DISTRIBUTIONS.setdefault(pm, {})
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            package = ep.dist.name if ep.dist else ep.value
            raise PluginError(
                f"the plugin {ep.name!r} of the package {package} failed to load: "
                f"{type(exc).__name__}: {exc}",
                hint=f"reinstall or uninstall {package}",
            ) from exc
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            dists[id(plugin)] = ep.dist


#: Per plugin manager: id(plugin) → its distribution, for the entry points' plugins.
_DISTRIBUTIONS: weakref.WeakKeyDictionary[
    pluggy.PluginManager, dict[int, importlib.metadata.Distribution]
] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Registered(Generic[T]):
    key: str
    cls: type[T]
    plugin: str
    #: The plugin's package; read only when said (its metadata costs a run's start).
    package: importlib.metadata.Distribution | str

    @property
    def distribution(self) -> str:
        """``"name version"`` of the package, or ``(registered in-process)``."""
        return _distribution(self.package)


def _distribution(package: importlib.metadata.Distribution | str) -> str:
    if isinstance(package, str):
        return package
    return f"{package.metadata['Name']} {package.version}"


class Registry:
    """Classes registered through the ``register_*`` hooks, keyed and checked for clashes."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._dist: dict[int, importlib.metadata.Distribution | str] = {
            id(plugin): f"{d.project_name} {d.version}" for plugin, d in pm.list_plugin_distinfo()
        }
        self._dist |= _DISTRIBUTIONS.get(pm, {})
        self.sources: dict[str, Registered[Source]] = self._collect(
            "source", "register_sources", "schemes"
        )
        self.formats: dict[str, Registered[Format]] = self._collect(
            "format", "register_formats", "name"
        )
        self.transforms: dict[str, Registered[Transform]] = self._collect(
            "transform", "register_transforms", "type"
        )
        self.sinks: dict[str, Registered[Sink]] = self._collect("sink", "register_sinks", "mode")

    def _collect(self, kind: str, hook_name: str, attr: str) -> dict[str, Any]:
        found: dict[str, Registered[Any]] = {}
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            classes = impl.function() or []
            plugin_name = self.pm.get_name(impl.plugin) or repr(impl.plugin)
            dist = self._dist.get(id(impl.plugin), "(registered in-process)")
            for cls in classes:
                keys = getattr(cls, attr)
                for key in (keys,) if isinstance(keys, str) else keys:
                    if not key:
                        raise PluginError(
                            f"{kind} class {cls.__qualname__} from {plugin_name} has no {attr}"
                        )
                    if key in found:
                        raise PluginError(
                            f"{kind} '{key}' is registered twice: by {found[key].plugin} "
                            f"({found[key].distribution}) and by {plugin_name} "
                            f"({_distribution(dist)})",
                            hint="uninstall one of the two packages",
                        )
                    found[key] = Registered(key, cls, plugin_name, dist)
        return found

    def pick(self, kind: str, key: str, spec_key: str, file: str | None = None) -> type[Any]:
        tables: dict[str, dict[str, Registered[Any]]] = {
            "source": self.sources,
            "format": self.formats,
            "transform": self.transforms,
            "sink": self.sinks,
        }
        table = tables[kind]
        if key in table:
            return table[key].cls
        guess = nearest(key, list(table))
        hint = f"did you mean '{guess}'? " if guess else ""
        hint += f"installed {kind}s: {', '.join(sorted(table)) or 'none'}"
        raise SpecError(
            f"'{spec_key}' names no installed {kind}: {key!r}", key=spec_key, file=file, hint=hint
        )

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(kind, key, plugin, distribution) for ``csvpg plugins``."""
        out = []
        tables: list[tuple[str, dict[str, Registered[Any]]]] = [
            ("source", self.sources),
            ("format", self.formats),
            ("transform", self.transforms),
            ("sink", self.sinks),
        ]
        for kind, table in tables:
            for key, reg in sorted(table.items()):
                out.append((kind, key, reg.plugin, reg.distribution))
        return out


def sniff(registry: Registry, source: Source, ref: FileRef) -> str:
    """The format the ``sniff_format`` hook sees in the file's first bytes; csv if none."""
    stream = source.open(ref)
    try:
        sample = stream.read(8192)
    finally:
        stream.close()
    return str(registry.pm.hook.sniff_format(ref=ref, sample=sample) or "csv")
