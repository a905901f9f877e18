"""The web app's parts that need no browser: numbers, the TOML highlighter, the session
cookie, spreadsheet-safe cells, and the history's filters."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csvpg.pg import history
from csvpg.serve.auth import role_for
from csvpg.serve.web import session as web_session
from csvpg.serve.web.highlight import toml_html
from csvpg.serve.web.render import num
from csvpg.serve.web.runs import spreadsheet_safe


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_a_count_reads_back_as_the_same_number(value: int) -> None:
    shown = num(value)
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*", shown), shown
    assert int(shown.replace(",", "")) == value


def test_every_unit_is_written_alike() -> None:
    assert [num(1234567), num(None), num(float("nan")), num(2.5)] == ["1,234,567", "–", "–", "2.50"]
    assert [num(999, "B"), num(12_500_000, "B"), num(3_200_000, "B/s")] == [
        "999 B",
        "12.5 MB",
        "3.2 MB/s",
    ]
    assert [num(1.44, "s"), num(42.4, "s"), num(125, "s"), num(7300, "s")] == [
        "1.4 s",
        "42 s",
        "2 min 05 s",
        "2 h 01 min",
    ]
    assert [num(12.345, "%"), num(1234.4, "/s")] == ["12.3 %", "1,234/s"]


@given(st.text(alphabet=st.sampled_from(list("[]{}=#\"'.,_-ab1 \n<>&\\")), max_size=80))
def test_the_highlighter_shows_the_text_as_it_is(text: str) -> None:
    shown = html.unescape(re.sub(r"<[^>]+>", "", str(toml_html(text))))
    assert shown == text


def test_the_highlighter_marks_tables_keys_values_and_comments() -> None:
    out = str(toml_html('[sink]\nmode = "upsert"  # how\nmax_rejects = 5\nok = true\n'))
    assert '<span class="t-table">[sink]</span>' in out
    assert '<span class="t-key">mode</span> = <span class="t-string">&#34;upsert&#34;</span>' in out
    assert '<span class="t-comment"># how</span>' in out
    assert '<span class="t-number">5</span>' in out and '<span class="t-bool">true</span>' in out
    assert "<script>" not in str(toml_html('a = "<script>"'))


def _state(token: str | None = "op", read_only: str | None = "ro") -> SimpleNamespace:
    return SimpleNamespace(token=token, read_only_token=read_only)


def test_a_session_cookie_holds_its_role_and_cannot_be_forged() -> None:
    state = _state()
    assert role_for(state, "op") == "operator"
    assert role_for(state, "ro") == "viewer"
    assert role_for(state, "nope") is None
    assert role_for(_state(read_only=None), "ro") is None
    made = web_session.new_session("viewer")
    cookie = web_session.encode(state, made)
    back = web_session.decode(state, cookie)
    assert back is not None and (back.role, back.csrf) == ("viewer", made.csrf)
    signature = cookie.rpartition(".")[2]
    promoted = web_session.encode(_state(token="other"), web_session.new_session("operator"))
    forged = promoted.rpartition(".")[0] + "." + signature
    assert web_session.decode(state, forged) is None, "a payload with another's signature"
    assert web_session.decode(_state(token="rotated"), cookie) is None, "a new token signs out"
    assert web_session.decode(state, "garbage") is None
    assert web_session.decode(state, None) is None


def test_a_session_ends_after_a_working_day(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state()
    cookie = web_session.encode(state, web_session.new_session("operator"))
    later = time.time() + web_session.MAX_AGE + 1
    monkeypatch.setattr(web_session.time, "time", lambda: later)
    assert web_session.decode(state, cookie) is None


def test_sign_in_only_sends_to_this_server() -> None:
    assert web_session.safe_next("/app/runs?job=x") == "/app/runs?job=x"
    for elsewhere in ("https://evil.example/", "//evil.example", "/\\evil.example", "", None):
        assert web_session.safe_next(elsewhere) == "/"


def test_a_cell_a_spreadsheet_would_run_is_text() -> None:
    cells = ["=1+1", "+1", "-2", "@SUM(A1)", "\t=x", "\r=x", "plain", "1-2", None, 3]
    assert [spreadsheet_safe(c) for c in cells] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\t=x",
        "'\r=x",
        "plain",
        "1-2",
        "",
        "3",
    ]


def test_runs_filter_by_rejects_and_a_date_range(db) -> None:
    from csvpg.pg.schema import ensure_schema

    ensure_schema(db.conn)
    job = "webfilter-" + db.schema
    old, new = "a" * 24 + db.schema[-8:], "b" * 24 + db.schema[-8:]
    for run_id, rejected, started in [(old, 0, "2026-01-05"), (new, 3, "2026-02-10")]:
        history.run_started(db.conn, run_id, job, "digest", "db")
        db.conn.execute(
            "UPDATE csvpg.runs SET rejected = %s, started_at = %s::timestamptz WHERE id = %s",
            (rejected, started + "T12:00:00Z", run_id),
        )

    def ids(**filters: object) -> list[str]:
        return [r.id for r in history.runs(db.conn, job=job, **filters)]  # type: ignore[arg-type]

    assert ids() == [new, old]
    assert ids(rejects=True) == [new] and ids(rejects=False) == [old]
    day = datetime(2026, 2, 10, tzinfo=UTC)
    assert ids(since=day) == [new]
    assert ids(until=day) == [old], "until is the first moment not included"
    assert ids(since=day - timedelta(days=40), until=day + timedelta(days=1)) == [new, old]
    db.conn.execute("DELETE FROM csvpg.runs WHERE job = %s", (job,))


_LINES = st.lists(
    st.sampled_from(
        [
            'password = "hunter2"',
            'secret = "${HOOK_SECRET}"',
            "token = 'abc'",
            'dsn = "postgresql://etl:pw@db/erp"',
            'url = "https://h.example/x?token=t0k"',
            'name = "shop"',
            "[sink]",
            "",
        ]
    ),
    max_size=12,
)


@given(_LINES)
def test_masked_lines_left_alone_are_saved_as_they_were(lines: list[str]) -> None:
    from csvpg.serve.web.masked import masked, unmasked

    text = "\n".join(lines)
    shown = masked(text)
    for secret in ("hunter2", "'abc'", ":pw@", "t0k"):
        assert secret not in shown
    assert unmasked(shown, text) == text


def test_a_retyped_secret_is_saved_and_variables_stay_readable() -> None:
    from csvpg.serve.web.masked import masked, unmasked

    saved = 'password = "old"\nsecret = "${HOOK_SECRET}"\n'
    shown = masked(saved)
    assert shown == 'password = "***"\nsecret = "${HOOK_SECRET}"\n'
    assert unmasked(shown.replace('"***"', '"new"'), saved) == 'password = "new"\n' + (
        'secret = "${HOOK_SECRET}"\n'
    )
