"""Dialect detection's shortcuts (csvpg.detect): ``quote_usage`` steps over the fields that
hold no quote (``sparse``), and header detection stops reading a column that is text;
it counts exactly what reading every field one by one counts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from csvpg.detect import _field_quotes, quote_usage

TEXT = st.text(alphabet="ab ,;\"'\\\r\n", max_size=80)


@settings(max_examples=600, deadline=None)
@given(
    TEXT,
    st.sampled_from([",", ";", "|", "\t"]),
    st.sampled_from([('"', None), ("'", None), ('"', "\\")]),
    st.booleans(),
)
def test_sparse_counts_equal_the_field_by_field_counts(
    text: str, delimiter: str, quoting: tuple[str, str | None], final: bool
) -> None:
    quote, escape = quoting
    every = list(_field_quotes(text, delimiter, quote, escape, final=final))
    expected = (sum(o for o, _ in every), sum(b for _, b in every))
    assert quote_usage(text, delimiter, quote, escape, final=final) == expected


def test_counts_of_a_known_sample() -> None:
    text = 'id,name\n1,"Smith, Anna"\n2,Robert "Bumps" Blackwell\n3,"x"y\n'
    assert quote_usage(text, ",", '"') == (2, 2)  # two open with a quote; two strays
    assert quote_usage("a,b\n1,2\n", ",", '"') == (0, 0)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["", " ", "12", "1,200", "3.5", "2024-01-02", "abc"]),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_column_kinds_cut_short_give_the_kind_all_of_them_give(rows: list[list[str]]) -> None:
    """Header detection stops reading a column once too much of it is text: the kind
    it settles on is the one every value gives."""
    from csvpg.detect import _column_kind, _kind, _kinds

    for j in range(3):
        every = [k for r in rows if (k := _kind(r[j]))]
        assert _column_kind(_kinds(rows, j)) == _column_kind(every)
