"""``csvpg check``: the pre-flight lives in :mod:`csvpg.preflight`, which the web app
shows too."""

from __future__ import annotations

from csvpg.preflight import check

__all__ = ["check"]
