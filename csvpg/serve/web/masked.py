"""A job file as the pages show it: secrets masked line by line (as ``GET /jobs/{name}``
masks them, see :mod:`csvpg.masking`), and the editor's text with the masked lines a
person left alone put back as the file has them."""

from __future__ import annotations

import re

from csvpg.masking import MASK, is_secret_key, mask_text

#: ``key = "value"`` (or 'value'), the one-line form a secret is written in.
_ASSIGNMENT = re.compile(
    r"""^(?P<head>\s*(?P<key>[A-Za-z0-9_-]+)\s*=\s*)(?P<value>"[^"]*"|'[^']*')"""
)
_ONLY_VARIABLE = re.compile(r"""^["']\$\{[A-Za-z_][A-Za-z0-9_]*\}["']$""")


def mask_line(line: str) -> str:
    m = _ASSIGNMENT.match(line)
    if m and is_secret_key(m["key"]) and not _ONLY_VARIABLE.match(m["value"]):
        quote = m["value"][0]
        return f"{m['head']}{quote}{MASK}{quote}{line[m.end() :]}"
    return mask_text(line)


def masked(text: str) -> str:
    return "\n".join(mask_line(line) for line in text.split("\n"))


def unmasked(edited: str, saved: str) -> str:
    """``edited`` with each line that is a masked line of ``saved`` as ``saved`` has it:
    a secret nobody retyped stays as it was."""
    originals = {mask_line(line): line for line in saved.split("\n") if mask_line(line) != line}
    return "\n".join(originals.get(line, line) for line in edited.split("\n"))
