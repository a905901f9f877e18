"""csvpg-merge: many files with differently named headers into one deduplicated table.

* ``[[transform]] type = "canonical"`` maps headers to canonical column names (names and
  synonyms, then rapidfuzz matching above a threshold) and normalises values (trim,
  case, e-mail, domain, phone digits);
* ``[sink] mode = "merge"`` dedups by ``primary_key`` and merges rows field by field
  (``first``, ``last`` or ``most_complete`` non-empty value), within a file and across
  files, counting duplicates and fields filled.

It imports only from ``csvpg`` itself, as every third-party plugin should.
"""

from __future__ import annotations

from csvpg import Sink, Transform, hookimpl
from csvpg_merge.sink import MergeSink
from csvpg_merge.transform import CanonicalTransform

__version__ = "0.1.0"
__all__ = ["CanonicalTransform", "MergeSink"]


@hookimpl
def register_transforms() -> list[type[Transform]]:
    return [CanonicalTransform]


@hookimpl
def register_sinks() -> list[type[Sink]]:
    return [MergeSink]
