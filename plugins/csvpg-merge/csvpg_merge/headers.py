"""Headers → canonical column names: names and synonyms first, then fuzzy matching.

Matching compares *compact* forms (case-folded, letters and digits only), so
``"E-Mail"``, ``"e_mail"`` and ``"EMAIL"`` are all exactly ``email``. A header that is
no canonical name or synonym is scored against every one of them with a rapidfuzz
scorer; the best pairs at or above the threshold are taken, best first, each header and
each canonical column at most once. The result says, for every header, where it went
and why, and which canonical columns no header filled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def _rapidfuzz(name: str, *, compacted: bool = False) -> Callable[[str, str], float]:
    """A rapidfuzz scorer, imported on first use: loading the plugin (every csvpg run
    does) stays cheap."""

    def score(a: str, b: str) -> float:
        from rapidfuzz import fuzz, utils

        scorer = getattr(fuzz, name)
        if compacted:
            return float(scorer(compact(a), compact(b)))
        return float(scorer(a, b, processor=utils.default_process))

    return score


#: The scorers a job may name; "ratio" compares the compact forms (robust to spaces,
#: dashes and case), the token scorers compare words.
SCORERS: dict[str, Callable[[str, str], float]] = {
    "ratio": _rapidfuzz("ratio", compacted=True),
    "token_sort_ratio": _rapidfuzz("token_sort_ratio"),
    "token_set_ratio": _rapidfuzz("token_set_ratio"),
    "partial_ratio": _rapidfuzz("partial_ratio"),
    "WRatio": _rapidfuzz("WRatio"),
}


def compact(text: str) -> str:
    """``"E-Mail Address"`` → ``"emailaddress"``: case-folded letters and digits."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


@dataclass(frozen=True)
class Match:
    """One header mapped to a canonical column."""

    header: str
    column: str
    #: "name" (the canonical name itself), "synonym", or "fuzzy".
    how: str
    score: float
    #: The canonical name or synonym it matched.
    via: str

    def to_dict(self) -> dict[str, object]:
        return {"to": self.column, "how": self.how, "score": round(self.score, 1), "via": self.via}

    def describe(self) -> str:
        if self.how == "fuzzy":
            return f"{self.header!r} → {self.column} (fuzzy: {self.via!r}, score {self.score:.1f})"
        return f"{self.header!r} → {self.column} ({self.how} {self.via!r})"


@dataclass(frozen=True)
class Unmapped:
    """A header no canonical column took, and why."""

    header: str
    reason: str


@dataclass(frozen=True)
class HeaderMapping:
    """Where each header of one file goes. ``targets[i]`` is the canonical column of
    input position ``i``, or ``None``."""

    targets: tuple[str | None, ...]
    matches: tuple[Match, ...]
    unmapped: tuple[Unmapped, ...]
    #: Canonical columns no header maps to.
    missing: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "mapped": {m.header: m.to_dict() for m in self.matches},
            "unmapped": {u.header: u.reason for u in self.unmapped},
            "missing": list(self.missing),
        }


@dataclass(frozen=True)
class _Candidate:
    exact: bool
    score: float
    position: int
    term_order: int
    column: str
    how: str
    via: str

    def rank(self) -> tuple[bool, float, int, int]:
        return (not self.exact, -self.score, self.position, self.term_order)


class HeaderMatcher:
    """Maps the headers of any number of files to one set of canonical columns."""

    def __init__(
        self, columns: Mapping[str, Sequence[str]], *, threshold: float = 85, scorer: str = "ratio"
    ) -> None:
        self.columns = list(columns)
        self.threshold = float(threshold)
        self.scorer = SCORERS[scorer]
        #: (canonical column, term, "name" | "synonym"), in the job's order.
        self.terms: list[tuple[str, str, str]] = []
        for column, synonyms in columns.items():
            self.terms.append((column, column, "name"))
            self.terms.extend((column, s, "synonym") for s in synonyms)

    def map(self, inputs: Sequence[Sequence[str]]) -> HeaderMapping:
        """``inputs[i]``: the names column ``i`` goes by (its header as written, and its
        current name); the header (first) is the one reported."""
        best: dict[tuple[int, str], _Candidate] = {}
        closest: dict[int, tuple[float, str]] = {}
        for position, names in enumerate(inputs):
            keys = {compact(n) for n in names} - {""}
            for order, (column, term, kind) in enumerate(self.terms):
                exact = compact(term) in keys
                if exact:
                    score = 100.0
                elif keys:
                    score = max(float(self.scorer(n, term)) for n in names if compact(n))
                else:
                    score = 0.0
                if score > closest.get(position, (-1.0, ""))[0]:
                    closest[position] = (score, column)
                if not exact and score < self.threshold:
                    continue
                cand = _Candidate(
                    exact, score, position, order, column, kind if exact else "fuzzy", term
                )
                key = (position, column)
                if key not in best or cand.rank() < best[key].rank():
                    best[key] = cand
        targets: list[str | None] = [None] * len(inputs)
        taken: dict[str, int] = {}
        wanted: dict[int, _Candidate] = {}
        for cand in sorted(best.values(), key=_Candidate.rank):
            wanted.setdefault(cand.position, cand)
            if targets[cand.position] is None and cand.column not in taken:
                targets[cand.position] = cand.column
                taken[cand.column] = cand.position
        matches: list[Match] = []
        unmapped: list[Unmapped] = []
        for position, names in enumerate(inputs):
            header = names[0]
            target = targets[position]
            if target is not None:
                c = best[(position, target)]
                matches.append(Match(header, target, c.how, c.score, c.via))
            elif position in wanted:
                c = wanted[position]
                rival = inputs[taken[c.column]][0]
                unmapped.append(
                    Unmapped(
                        header,
                        f"its match {c.column!r} (score {c.score:.1f}) went to {rival!r}",
                    )
                )
            else:
                score, nearest = closest.get(position, (0.0, ""))
                near = f"; closest: {nearest!r}, score {score:.1f}" if nearest else ""
                unmapped.append(
                    Unmapped(header, f"no canonical column scores {self.threshold:g} or more{near}")
                )
        missing = tuple(c for c in self.columns if c not in taken)
        return HeaderMapping(tuple(targets), tuple(matches), tuple(unmapped), missing)
