"""Every hook csvpg calls. Plugins implement them with ``@csvpg.hookimpl``.

``register_*`` hooks return classes; each class carries its own key (``schemes``,
``name``, ``type`` or ``mode``) and a key registered twice stops startup with a
``PluginError``. Hooks are always called with keyword arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from csvpg.events import Event
    from csvpg.interfaces import FileRef, Format, Sink, Source, Transform

hookspec = pluggy.HookspecMarker("csvpg")
hookimpl = pluggy.HookimplMarker("csvpg")


@hookspec
def register_sources() -> list[type[Source]]:
    """Return Source classes; each is chosen by the URL schemes in its ``schemes``."""


@hookspec
def register_formats() -> list[type[Format]]:
    """Return Format classes; ``[format] type`` picks one by its ``name``."""


@hookspec
def register_transforms() -> list[type[Transform]]:
    """Return Transform classes; a ``[[transform]]`` entry picks one by its ``type``."""


@hookspec
def register_sinks() -> list[type[Sink]]:
    """Return Sink classes; ``[sink] mode`` picks one by its ``mode``."""


@hookspec(firstresult=True)
def sniff_format(ref: FileRef, sample: bytes) -> str | None:
    """Name the format of a file whose job says ``[format] type = "auto"``.

    ``sample`` is the file's first bytes. Return a format name, or ``None`` to let
    another plugin decide; the first answer wins and ``csv`` is the fallback.
    """


@hookspec
def track_event(event: Event) -> None:
    """Observe an engine event (file started, bytes read, file loaded, job finished …).

    Called from the thread that loads the file; return quickly. The result is ignored.
    Reporters (the progress bar, the JSON summary, the dashboard) are such plugins.
    """


@hookspec(firstresult=True)
def infer_column_types(
    headers: list[str],
    samples: list[list[str | None]],
    hints: dict[str, Any],
    use_cache: bool,
    notes: list[str],
) -> dict[str, str | dict[str, Any]] | None:
    """Propose PostgreSQL types for ``csvpg infer``.

    ``headers`` are the column names as csvpg will create them (safe names); ``samples``
    are the sampled rows, each aligned with ``headers`` (``None`` for an empty field).
    ``hints`` is what csvpg found out about the file: ``headers_as_written``,
    ``encoding``, ``delimiter``, ``quote``, ``null_values`` (the markers read as null),
    ``decimal_comma`` (bool), ``date_order`` (``"DMY"``, ``"MDY"``, ``"YMD"`` or
    ``None``) and ``heuristic`` (column → the type csvpg would choose on its own).
    ``use_cache`` is false under ``csvpg infer --no-cache``: ask afresh, store nothing.
    ``notes`` is a list to append lines to (a retry, a fallback); csvpg shows them in
    ``--explain``. A hookimpl may take any subset of these arguments.

    Return a mapping column name → type (``"bigint"``, ``"numeric(12,2)"`` …) or → a
    dict with ``type`` and optionally ``confidence`` (0–1), ``reasoning`` (one line),
    ``nullable`` (bool) and ``by`` (who proposed it, for ``--explain``); it may be
    partial, and ``None`` lets the next plugin answer. csvpg checks every proposal
    against the sample: a type that does not take every non-null sampled value, or one
    proposed with a confidence below 0.5, is ignored (with a note in ``--explain``), and
    the built-in heuristic decides that column, as it does every column no plugin names.
    """
