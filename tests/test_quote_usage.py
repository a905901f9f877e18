"""``quote_usage`` steps over the fields that hold no quote (csvpg.detect, ``sparse``):
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
