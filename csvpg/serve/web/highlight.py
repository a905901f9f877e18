"""A small TOML highlighter for the job page: table headers, keys, strings, numbers,
booleans and comments as ``<span class="t-…">``, everything else escaped as it is."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# One alternative a token kind; the first that matches at a position wins.
_TOKENS = re.compile(
    r"""
    (?P<comment>\#.*$)
  | (?P<table>^\s*\[\[?[^\]\n]*\]\]?)
  | (?P<key>^\s*(?:[A-Za-z0-9_.-]+|"[^"\n]*"|'[^'\n]*')(?:\s*\.\s*[A-Za-z0-9_-]+)*(?=\s*=))
  | (?P<string>\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')
  | (?P<bool>\b(?:true|false)\b)
  | (?P<number>(?<![\w.])[+-]?\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?(?![\w.]))
  | (?P<ikey>(?<=[{,])\s*[A-Za-z0-9_-]+(?=\s*=))
    """,
    re.VERBOSE | re.MULTILINE,
)


def toml_html(text: str) -> Markup:
    """``text`` as HTML with its tokens in spans (one ``<span class="line">`` a line)."""
    out: list[str] = []
    at = 0
    for m in _TOKENS.finditer(text):
        out.append(str(escape(text[at : m.start()])))
        kind = m.lastgroup or ""
        kind = "key" if kind == "ikey" else kind
        out.append(_span(kind, m.group()))
        at = m.end()
    out.append(str(escape(text[at:])))
    lines = "".join(out).split("\n")
    return Markup("\n".join(f'<span class="line">{line}</span>' for line in lines))


def _span(kind: str, token: str) -> str:
    # A multi-line string is cut at its line ends, so each line's span stays whole.
    parts = [f'<span class="t-{kind}">{escape(part)}</span>' for part in token.split("\n")]
    return "\n".join(parts)
