"""One test per hook in ``csvpg/hookspecs.py``, named ``test_hook_<name>``.

Each registers a small plugin for that test only and checks what a user would: the
rows in the table, the events seen, the types ``csvpg infer`` picks. ``tests/test_docs.py``
fails when a hook has no test here (or anywhere under tests/).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pytest

from csvpg import (
    Batch,
    Column,
    FileRef,
    Format,
    LoadResult,
    Option,
    Reader,
    Relation,
    Sink,
    Source,
    SpecError,
    Transform,
    hookimpl,
    run,
)
from csvpg import events as ev
from csvpg.infer.guess import explain, infer_file
from csvpg.plugins import Registry, get_plugin_manager
from tests.conftest import job_toml


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- register_sources -------------------------------------------------------------------


def test_hook_register_sources(db, tmp_path: Path) -> None:
    """A source for a new URL scheme: ``[source] url = "box://…"`` lists and opens its files."""
    shelf = {"a.csv": b"id,word\n1,one\n", "b.csv": b"id,word\n2,two\n", "c.txt": b"x\n"}

    class BoxSource(Source):
        schemes: ClassVar[tuple[str, ...]] = ("box",)
        options: ClassVar[dict[str, Option]] = {"lid": Option(str, "closed")}

        def list(self, pattern: str | None) -> list[FileRef]:
            assert self.settings == {"lid": "open"}, "[source.options] reach the source"
            names = sorted(n for n in shelf if n.endswith(".csv") or not pattern)
            return [FileRef(f"box://shelf/{n}", n, size=len(shelf[n])) for n in names]

        def open(self, ref: FileRef) -> BinaryIO:
            return io.BytesIO(shelf[ref.name])

    class Plugin:
        @hookimpl
        def register_sources(self) -> list[type[Source]]:
            return [BoxSource]

    job = job_toml(db, "box://shelf", sink='table = "words"') + '[source.options]\nlid = "open"\n'
    job = job.replace('url = "box://shelf"', 'url = "box://shelf"\npattern = "*.csv"')
    summary = run(write(tmp_path, "job.toml", job), plugins=[Plugin()])
    assert summary.exit_code == 0, [f.error for f in summary.files]
    assert [f.file for f in summary.files] == ["box://shelf/a.csv", "box://shelf/b.csv"]
    assert db.rows("words", order_by="id") == [("1", "one"), ("2", "two")]
    registry = Registry(get_plugin_manager([Plugin()]))
    assert registry.sources["box"].distribution == "(registered in-process)"


# -- register_formats -------------------------------------------------------------------


class KvReader(Reader):
    """``key=value;key=value`` lines; the keys of the first line name the columns."""

    def __init__(self, stream: BinaryIO, ref: FileRef, separator: str) -> None:
        self.lines = stream.read().decode().splitlines()
        self.separator = separator
        first = self.lines[0].split(separator) if self.lines else []
        self.headers = [pair.split("=", 1)[0] for pair in first]
        self.details = {"format": "kv", "separator": separator}
        self.types = {"n": "integer"}

    def iter_batches(self) -> Iterator[Batch]:
        yield [
            [pair.split("=", 1)[1] or None for pair in line.split(self.separator)]
            for line in self.lines
        ]


class KvFormat(Format):
    name: ClassVar[str] = "kv"
    options: ClassVar[dict[str, Option]] = {
        "type": Option(str, "kv"),
        "separator": Option(str, ";", help="between pairs"),
    }

    def open(self, stream: BinaryIO, ref: FileRef) -> Reader:
        return KvReader(stream, ref, self.settings["separator"])


class KvPlugin:
    @hookimpl
    def register_formats(self) -> list[type[Format]]:
        return [KvFormat]


def test_hook_register_formats(db, tmp_path: Path) -> None:
    """A format without a byte path: its rows go the row path, its types make the table."""
    write(tmp_path, "pairs.kv", "n=1|word=one\nn=2|word=\n")
    job = write(tmp_path, "job.toml", job_toml(db, "pairs.kv", fmt='type = "kv"\nseparator = "|"'))
    summary = run(job, plugins=[KvPlugin()])
    assert summary.exit_code == 0, summary.files[0].error
    details = summary.files[0].details
    assert details["format"] == "kv" and details["separator"] == "|"
    assert details["path"] == "rows"
    assert db.columns("pairs") == {"n": "integer", "word": "text"}
    assert db.rows("pairs", order_by="n") == [(1, "one"), (2, None)]

    bad = write(tmp_path, "bad.toml", job_toml(db, "pairs.kv", fmt='type = "kv"\nseperator = "|"'))
    with pytest.raises(SpecError, match=r"format\.seperator") as caught:
        run(bad, plugins=[KvPlugin()])
    assert "separator" in (caught.value.hint or "")


# -- register_transforms ----------------------------------------------------------------


def test_hook_register_transforms(db, tmp_path: Path) -> None:
    """A schema-level transform changes names only, so the file keeps the byte path."""

    class Prefix(Transform):
        type: ClassVar[str] = "prefix"
        options: ClassVar[dict[str, Option]] = {"type": Option(str), "with": Option(str)}

        def relation(self, relation: Relation) -> Relation:
            return relation.with_columns(
                [
                    Column(c.index, c.header, self.settings["with"] + c.name)
                    for c in relation.columns
                ]
            )

    class Plugin:
        @hookimpl
        def register_transforms(self) -> list[type[Transform]]:
            return [Prefix]

    write(tmp_path, "t.csv", "id,name\n1,x\n")
    extra = '[[transform]]\ntype = "prefix"\nwith = "src_"\n'
    summary = run(
        write(tmp_path, "job.toml", job_toml(db, "t.csv", extra=extra)), plugins=[Plugin()]
    )
    assert summary.exit_code == 0, summary.files[0].error
    assert summary.files[0].details["path"] == "bytes"
    assert list(db.columns("t")) == ["src_id", "src_name"]
    assert db.rows("t") == [("1", "x")]


# -- register_sinks ---------------------------------------------------------------------


def test_hook_register_sinks(db, tmp_path: Path) -> None:
    """A sink with a mode of its own: its DDL runs first, its rows land as it writes them."""
    from psycopg import sql

    class JsonSink(Sink):
        """Each row as one jsonb document in a table ``(doc jsonb)``."""

        mode: ClassVar[str] = "json"
        needs_rows: ClassVar[bool] = True

        def ddl(self, load: Any, exists: bool) -> list[Any]:
            if exists:
                return []
            return [
                sql.SQL("CREATE TABLE {}.{} (doc jsonb)").format(
                    sql.Identifier(load.schema), sql.Identifier(load.table)
                )
            ]

        def load(self, conn: Any, load: Any) -> LoadResult:
            names = [c.name for c in load.relation.columns]
            target = sql.SQL("COPY {}.{} (doc) FROM STDIN").format(
                sql.Identifier(load.schema), sql.Identifier(load.table)
            )
            rows = 0
            with conn.cursor() as cur, cur.copy(target) as copy:
                for batch in load.batches:
                    for row in batch:
                        copy.write_row([json.dumps(dict(zip(names, row, strict=True)))])
                        rows += 1
            return LoadResult(rows=rows, inserted=rows)

    class Plugin:
        @hookimpl
        def register_sinks(self) -> list[type[Sink]]:
            return [JsonSink]

    write(tmp_path, "docs.csv", "id,tag\n1,a\n2,\n")
    job = write(tmp_path, "job.toml", job_toml(db, "docs.csv", sink='mode = "json"'))
    summary = run(job, plugins=[Plugin()])
    assert summary.exit_code == 0, summary.files[0].error
    assert (summary.files[0].rows_read, summary.files[0].inserted) == (2, 2)
    assert db.rows("docs") == [({"id": "1", "tag": "a"},), ({"id": "2", "tag": None},)]

    typo = write(tmp_path, "typo.toml", job_toml(db, "docs.csv", sink='mode = "jsn"'))
    with pytest.raises(SpecError) as caught:
        run(typo, plugins=[Plugin()])
    assert "did you mean 'json'" in (caught.value.hint or "")


# -- sniff_format -----------------------------------------------------------------------


def test_hook_sniff_format(db, tmp_path: Path) -> None:
    """``type = "auto"``: the first plugin that recognises a file's first bytes picks its
    format; files no plugin claims are CSV."""
    asked: list[tuple[str, bytes]] = []

    class Sniffer:
        @hookimpl
        def sniff_format(self, ref: FileRef, sample: bytes) -> str | None:
            asked.append((ref.name, sample[:3]))
            return "kv" if b"=" in sample.split(b"\n", 1)[0] else None

    class Never:
        @hookimpl
        def sniff_format(self, ref: FileRef, sample: bytes) -> str | None:
            return None

    write(tmp_path, "a.kv", "n=1;word=one\n")
    write(tmp_path, "b.csv", "n,word\n2,two\n")
    job = job_toml(db, str(tmp_path), fmt='type = "auto"')
    job = job.replace(f'url = "{tmp_path}"', f'url = "{tmp_path}"\npattern = "*.[ck]*"')
    summary = run(write(tmp_path, "job.toml", job), plugins=[KvPlugin(), Sniffer(), Never()])
    assert summary.exit_code == 0, [f.error for f in summary.files]
    assert sorted(asked) == [("a.kv", b"n=1"), ("b.csv", b"n,w")]
    formats = {Path(f.file).name: f.details.get("format", "csv") for f in summary.files}
    assert formats == {"a.kv": "kv", "b.csv": "csv"}
    assert db.columns("a") == {"n": "integer", "word": "text"}, "the kv reader's types"
    assert db.rows("a") == [(1, "one")]
    assert db.rows("b") == [("2", "two")]


# -- track_event ------------------------------------------------------------------------


def test_hook_track_event(db, tmp_path: Path) -> None:
    """Reporters see every step in order, with counts that add up, and a failure as an event."""
    seen: list[ev.Event] = []

    class Recorder:
        @hookimpl
        def track_event(self, event: ev.Event) -> None:
            seen.append(event)

    write(tmp_path, "good.csv", "id\n1\n2\n")
    write(tmp_path, "bad.csv", "id\n1\n")
    override = '[[override]]\nmatch = "bad.csv"\nmode = "upsert"\nprimary_key = ["key"]\n'
    job = job_toml(db, str(tmp_path), extra=override)
    job = job.replace(f'url = "{tmp_path}"', f'url = "{tmp_path}"\npattern = "*.csv"')
    summary = run(write(tmp_path, "job.toml", job), plugins=[Recorder()])
    assert summary.exit_code == 1  # bad.csv has no column "key": that file fails

    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "JobStarted" and kinds[-1] == "JobFinished"
    assert all(e.run_id == summary.run_id for e in seen)
    (loaded,) = [e for e in seen if isinstance(e, ev.FileLoaded)]
    assert loaded.file.endswith("good.csv") and loaded.rows_read == loaded.inserted == 2
    (failed,) = [e for e in seen if isinstance(e, ev.FileFailed)]
    assert failed.file.endswith("bad.csv") and "primary key" in failed.message
    good = [type(e).__name__ for e in seen if getattr(e, "file", "").endswith("good.csv")]
    assert good[0] == "FileStarted" and good[-1] == "FileLoaded"
    finished = seen[-1]
    assert isinstance(finished, ev.JobFinished)
    assert (finished.files_loaded, finished.files_failed, finished.rows_read) == (1, 1, 2)
    json.dumps([e.to_dict() for e in seen])  # every event serialises, as --json needs
    with pytest.raises(AttributeError):
        finished.status = "changed"  # type: ignore[misc]  # events are frozen


# -- infer_column_types -----------------------------------------------------------------


def test_hook_infer_column_types(tmp_path: Path) -> None:
    """``csvpg infer`` takes a plugin's proposal when every sampled value fits it, and keeps
    its own guess (saying why) when one does not."""

    class Proposer:
        @hookimpl
        def infer_column_types(
            self, headers: list[str], samples: list[list[str | None]]
        ) -> dict[str, str] | None:
            assert headers == ["code", "amount"]
            assert samples[0] == ["0x1f", "12.50"]
            return {"code": "text", "amount": "integer"}

    path = write(tmp_path, "prices.csv", "code,amount\n0x1f,12.50\n0x20,3.25\n")
    guess = infer_file(str(path), pm=get_plugin_manager([Proposer()]))
    types = {c.name: c.type for c in guess.columns}
    assert types["code"] == "text"
    assert types["amount"].startswith("numeric"), "integer does not fit 12.50: not taken"
    amount = next(c for c in guess.columns if c.name == "amount")
    assert any("integer" in line and "not taken" in line for line in amount.evidence)


def test_hook_infer_column_types_hints_notes_and_rich_answers(tmp_path: Path) -> None:
    """A plugin gets the dialect and locale hints and ``use_cache``; its notes and each
    proposal's confidence and reasoning show in ``--explain`` beside the heuristic's
    type; an unsure proposal is not taken even though it fits."""

    seen: dict[str, Any] = {}

    class Proposer:
        @hookimpl
        def infer_column_types(
            self, headers: list[str], hints: dict[str, Any], use_cache: bool, notes: list[str]
        ) -> dict[str, Any]:
            seen.update(hints=hints, use_cache=use_cache)
            notes.append("proposer: asked once, retried once")
            return {
                "id": {"type": "integer", "confidence": 0.9, "reasoning": "ids", "by": "rules"},
                "betrag": {"type": "text", "confidence": 0.2, "reasoning": "not sure"},
                "tag": {"type": "integer", "nullable": False, "by": "rules"},
                "nope": {"confidence": 1},
                "Tag": {"reasoning": "a type forgotten"},
            }

    path = write(tmp_path, "b.csv", "Id;Betrag;Tag\n1;1,50;31.12.2024\n2;;01.02.2024\n")
    pm = get_plugin_manager([Proposer()])
    guess = infer_file(str(path), pm=pm, use_cache=False)
    hints = seen["hints"]
    assert seen["use_cache"] is False
    assert hints["headers_as_written"] == ["Id", "Betrag", "Tag"]
    assert (hints["delimiter"], hints["encoding"], hints["quote"]) == (";", "utf-8", '"')
    assert hints["decimal_comma"] is True and hints["date_order"] == "DMY"
    assert "" in hints["null_values"] and "NULL" in hints["null_values"]
    assert hints["heuristic"] == {"id": "bigint", "betrag": "numeric(12,2)", "tag": "date"}
    cols = {c.name: c for c in guess.columns}
    assert cols["id"].type == "integer" and cols["id"].source == "plugin"
    assert cols["id"].evidence[1] == (
        "rules proposed 'integer' (confidence 0.9: 'ids'), taken: it fits every value "
        "(heuristic: bigint)"
    )
    assert cols["betrag"].type == "numeric(12,2)"
    assert cols["betrag"].evidence[-1] == (
        "a plugin proposed 'text' (confidence 0.2: 'not sure'), not taken: confidence 0.2 is "
        "below 0.5 (heuristic: numeric(12,2))"
    )
    assert cols["tag"].type == "date"
    assert "rules proposed 'integer', not taken:" in cols["tag"].evidence[-1]
    # After what the reader's sniffing found (the dialect's evidence comes first).
    at = guess.evidence.index("proposer: asked once, retried once")
    assert guess.evidence[at + 1 : at + 3] == [
        "ignored a plugin's proposal 'nope' = {'confidence': 1}: no such column",
        "ignored a plugin's proposal 'Tag' = {'reasoning': 'a type forgotten'}: no type",
    ]
    assert "proposer: asked once, retried once" in explain(guess)
