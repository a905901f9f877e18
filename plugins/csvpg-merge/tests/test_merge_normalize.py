"""Value steps: pure functions; an empty result is NULL."""

from __future__ import annotations

import pytest
from csvpg_merge.normalize import chain, collapse, domain, email, phone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://www.Example.com/about?x=1", "example.com"),
        ("http://shop.example.co.uk:8080", "shop.example.co.uk"),
        ("Example.com/path", "example.com"),
        ("www.example.org", "example.org"),
        ("ada@Example.ORG", "example.org"),
        ("Ada <ada@www.example.org>", "example.org"),
        ("mailto:grace@navy.example", "navy.example"),
        ("http://[::1", ""),
    ],
)
def test_domain(value: str, expected: str) -> None:
    assert domain(value) == expected


def test_email_phone_collapse() -> None:
    assert email(" Ada Lovelace <ADA@Example.org> ") == "ada@example.org"
    assert email("MAILTO:grace@navy.example") == "grace@navy.example"
    assert phone("+49 (30) 123-45") == "+493012345"
    assert phone("030 / 123 45") == "03012345"
    assert phone("n/a") == ""
    assert collapse("  Ada \t  Lovelace ") == "Ada Lovelace"


def test_chain_runs_steps_in_order_and_empties_become_null() -> None:
    run = chain(["trim", "lower"])
    assert run("  ADA ") == "ada"
    assert run("   ") is None
    assert run(None) is None
    assert chain(["phone"])("call me") is None
    assert chain(["title"])("ada lovelace") == "Ada Lovelace"
