"""Header mapping: names and synonyms exactly, then fuzzy above a threshold, one to one."""

from __future__ import annotations

import pytest
from csvpg_merge.headers import HeaderMatcher, compact

COLUMNS = {
    "email": ["E-Mail", "email address"],
    "name": ["Full Name", "Contact"],
    "phone": ["Telephone", "Tel"],
    "company": ["Organization", "Firm"],
}


def one(headers: list[str], **kw) -> dict[str, str | None]:
    mapping = HeaderMatcher(COLUMNS, **kw).map([(h, h) for h in headers])
    return dict(zip(headers, mapping.targets, strict=True))


def test_compact_ignores_case_spaces_and_punctuation() -> None:
    assert compact("E-Mail Address") == "emailaddress"
    assert compact("  Tel. ") == "tel"
    assert compact("Straße") == "strasse"


def test_names_and_synonyms_map_exactly() -> None:
    m = HeaderMatcher(COLUMNS).map(
        [("EMAIL", "email"), ("full_name", "full_name"), ("Tel.", "tel")]
    )
    assert m.targets == ("email", "name", "phone")
    assert [(x.how, x.via, x.score) for x in m.matches] == [
        ("name", "email", 100.0),
        ("synonym", "Full Name", 100.0),
        ("synonym", "Tel", 100.0),
    ]
    assert m.missing == ("company",)
    assert not m.unmapped


def test_fuzzy_above_the_threshold_only() -> None:
    assert one(["Mail", "Organisation", "Notes"]) == {
        "Mail": "email",  # 88.9 against "email"
        "Organisation": "company",  # 91.7 against "Organization"
        "Notes": None,
    }
    assert one(["Mail"], threshold=90) == {"Mail": None}
    assert one(["Organisation"], threshold=100) == {"Organisation": None}


def test_each_canonical_column_takes_one_header_the_best() -> None:
    m = HeaderMatcher(COLUMNS).map([("Mail", "mail"), ("E-Mail", "e_mail")])
    # The exact synonym wins although the fuzzy one comes first in the file.
    assert m.targets == (None, "email")
    (lost,) = m.unmapped
    assert lost.header == "Mail" and "went to 'E-Mail'" in lost.reason


def test_unmapped_headers_say_how_close_they_came() -> None:
    m = HeaderMatcher(COLUMNS).map([("Notes", "notes"), ("", "column_2")])
    assert [u.header for u in m.unmapped] == ["Notes", ""]
    assert "no canonical column scores 85 or more; closest" in m.unmapped[0].reason
    assert m.to_dict()["unmapped"]["Notes"] == m.unmapped[0].reason


def test_a_renamed_column_matches_by_its_new_name_too() -> None:
    m = HeaderMatcher(COLUMNS).map([("Spalte 3", "phone")])
    assert m.targets == ("phone",)
    assert m.matches[0].header == "Spalte 3"


@pytest.mark.parametrize("scorer", ["ratio", "token_sort_ratio", "token_set_ratio", "WRatio"])
def test_every_scorer_keeps_exact_matches(scorer: str) -> None:
    assert one(["E-Mail", "Contact"], scorer=scorer) == {"E-Mail": "email", "Contact": "name"}


def test_word_scorers_match_more_loosely() -> None:
    assert one(["Phone Number"]) == {"Phone Number": None}
    assert one(["Phone Number"], scorer="token_set_ratio") == {"Phone Number": "phone"}
