"""[columns] conversions of a large file done on the client (csvpg.engine.clientconvert):
the same rows in the table as the conversions in SQL give, and every value the client
cannot promise handed to SQL, which sets aside the bad rows with their lines."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from csvpg.engine.clientconvert import MIN_SIZE, NotConverted, template, text_for_copy
from csvpg.interfaces import ColumnType

pytest.importorskip("pyarrow")

# -- templates ---------------------------------------------------------------------------

#: A template's fields but the year, as strftime writes them.
PARTS = {"DD": "%d", "MM": "%m", "HH24": "%H", "MI": "%M", "SS": "%S"}


@given(
    day=st.dates(min_value=date(1, 1, 1)),
    clock=st.times().map(lambda t: t.replace(microsecond=0)),
    order=st.permutations(["DD", "MM", "YYYY"]),
    times=st.sampled_from([[], ["HH24"], ["HH24", "MI"], ["HH24", "MI", "SS"]]),
    seps=st.lists(st.sampled_from([".", "-", "/", " ", ":", ""]), min_size=5, max_size=5),
)
def test_a_template_reads_what_it_writes_as_iso(day, clock, order, times, seps) -> None:
    """A value written with the template goes to COPY as the ISO text of the same date
    and time (a NULL as NULL)."""
    fields = [*order, *times]
    fmt = "".join(f + (seps[k] if k < len(fields) - 1 else "") for k, f in enumerate(fields))
    assert template(fmt, timestamp=bool(times)) is not None, fmt
    text = written(fmt, datetime.combine(day, clock))
    ct = ColumnType(type="timestamp" if times else "date", format=fmt)
    expected = day.isoformat()
    if times:
        kept = {"HH24": clock.hour, "MI": clock.minute, "SS": clock.second}
        expected += " " + ":".join(f"{kept[f]:02d}" if f in times else "00" for f in kept)
    assert text_for_copy([text, None], ct) == [expected, None]


def written(fmt: str, stamp: datetime) -> str:
    """``stamp`` as PostgreSQL's to_char writes it with the template."""
    text = fmt.replace("YYYY", f"{stamp.year:04d}")  # (strftime's %Y does not pad)
    for name, code in PARTS.items():
        text = text.replace(name, stamp.strftime(code))
    return text


@pytest.mark.parametrize(
    "value",
    ["31.04.2024", "29.02.2023", "1.2.2024", "00.01.2024", "01.13.2024", " 01.01.2024", ""],
)
def test_a_value_the_template_does_not_read_exactly_stops_the_client(value: str) -> None:
    """A day the month does not have, a loose or padded value, an empty string: the
    client does not decide (SQL rejects them, or reads them loosely)."""
    with pytest.raises(NotConverted):
        text_for_copy([value], ColumnType(type="date", format="DD.MM.YYYY"))


@given(
    number=st.decimals(min_value=-(10**9), max_value=10**9, places=3),
    words=st.sampled_from(["ja", "JA", "Ja", "nein", "NEIN", "true", "0", "", "jein"]),
)
def test_numbers_and_words_are_rewritten_as_sql_does(number, words: str) -> None:
    """``decimal``/``thousands`` as SQL's replace(), boolean words as CASE lower()."""
    german = f"{number:,.3f}".replace(",", "_").replace(".", ",").replace("_", ".")
    money = ColumnType(type="numeric(14,3)", decimal=",", thousands=".")
    assert text_for_copy([german], money) == [f"{number:.3f}"]
    flag = ColumnType(type="boolean", true=("ja",), false=("nein",))
    sql_case = {"ja": "true", "nein": "false"}.get(words.lower(), words)
    assert text_for_copy([words, None], flag) == [sql_case, None]


@pytest.mark.parametrize(
    ("fmt", "timestamp"),
    [
        ("DD.MM.YY", False),  # a two-digit year: the server decides its century
        ("DDD.YYYY", False),  # the day of the year
        ("DD Mon YYYY", False),  # a month's name
        ("FMDD.MM.YYYY", False),  # fill mode
        ('DD"th".MM.YYYY', False),  # quoted text
        ("HH:MI DD.MM.YYYY", True),  # a 12-hour clock
        ("DD.MM.YYYY HH24:MI", False),  # a time in a date column: the server refuses it
        ("MM.YYYY", False),  # no day
        ("DD.MM.YYYY.DD", False),  # a field twice
    ],
)
def test_templates_the_client_leaves_to_the_server(fmt: str, timestamp: bool) -> None:
    assert template(fmt, timestamp=timestamp) is None


# -- loads -------------------------------------------------------------------------------

COLUMNS = """
[columns]
id = "bigint"
day = { type = "date", format = "DD.MM.YYYY" }
at = { type = "timestamp", format = "DD.MM.YYYY HH24:MI:SS" }
price = { type = "numeric(12,2)", decimal = ",", thousands = "." }
paid = { type = "boolean", true = ["ja", "j"], false = ["nein"] }
note = "text"
"""
HEADER = ["id", "day", "at", "price", "paid", "note"]


def job(name: str, mode: str = "append", extra: str = "") -> str:
    key = 'primary_key = ["id"]\n' if mode == "upsert" else ""
    return (
        f'[source]\nurl = "files/{name}.csv"\n{extra}'
        f'[sink]\nmode = "{mode}"\ntable = "{name}"\n{key}{COLUMNS}'
    )


def rows(n: int, seed: int, start: int = 1) -> list[list[str]]:
    """A German export's rows: every kind of value the conversions meet, valid."""
    rnd = random.Random(seed)
    base = datetime(1990, 1, 1)
    out = []
    for i in range(start, start + n):
        stamp = base + timedelta(seconds=rnd.randrange(60 * 365 * 86400))
        price = f"{rnd.uniform(-99999, 99999):,.3f}".replace(",", "_").replace(".", ",")
        out.append(
            [
                str(i),
                "" if i % 97 == 0 else stamp.strftime("%d.%m.%Y"),
                stamp.strftime("%d.%m.%Y %H:%M:%S"),
                price.replace("_", "."),
                rnd.choice(["ja", "JA", "Nein", "j", "true", "f", "", "nein"]),
                rnd.choice(
                    [
                        "",
                        "Müller, Söhne",
                        'a "quote"',
                        "two\nlines",
                        "CR\r\nLF",
                        "plain",
                        "NULL",
                    ]
                ),
            ]
        )
    return out


def csv_bytes(records: list[list[str]], *, crlf: bool = False, delimiter: str = ",") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerows([HEADER, *records])
    return out.getvalue().encode()


def large(records: list[list[str]], **kw: Any) -> bytes:
    """The rows, then more of them until the file is one the client converts."""
    data, seed = csv_bytes(records, **kw), 1
    while len(data) < MIN_SIZE:
        more = rows(20_000, seed, start=len(records) + 1)
        records, seed = [*records, *more], seed + 1
        data = csv_bytes(records, **kw)
    return data


def rejects(db: Any, summary: Any) -> list[tuple[int, str, str]]:
    found = db.execute(
        "SELECT line, column_name, value FROM csvpg.rejects WHERE run_id = %s ORDER BY line",
        (summary.run_id,),
    )
    return [tuple(r) for r in found]


def converted_on(summary: Any) -> dict[str, str] | None:
    (file,) = summary.files
    return file.details.get("conversions")


def table(db: Any, name: str, first: int) -> list[tuple[Any, ...]]:
    return db.execute(
        f"SELECT id, day, at, price, paid, note FROM {db.schema}.{name} WHERE id <= %s ORDER BY id",
        (first,),
    ).fetchall()


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_the_client_loads_the_rows_sql_would(csvpg_run, csvpg_db, mode: str) -> None:
    """The same rows, in a small file (converted in SQL) and at the head of a large one
    (converted on the client), make the same table rows."""
    head = rows(3_000, seed=7)
    small = csvpg_run(job("small", mode), files={"small.csv": csv_bytes(head)})
    big = csvpg_run(job("big", mode), files={"big.csv": large(head)})
    assert small.status == big.status == "succeeded"
    assert converted_on(small) is None, "a small file converts in SQL"
    assert converted_on(big) == {"on": "client"}
    assert table(csvpg_db, "big", 3_000) == table(csvpg_db, "small", 3_000)
    (file,) = big.files
    assert file.rows_read == file.inserted == csvpg_db.count("big") == records(large(head))


def records(data: bytes) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline=""))) - 1


def line_of(records_before: list[list[str]]) -> int:
    """The file line a record starts on, after the header and these records."""
    return csv_bytes(records_before).count(b"\n") + 1


def test_windows_line_ends_and_semicolons_convert_on_the_client(csvpg_run, csvpg_db) -> None:
    """CRLF line ends, and line breaks of either kind in quoted values."""
    head = rows(2_000, seed=3)
    fmt = '[format]\ndelimiter = ";"\n'
    summary = csvpg_run(
        job("crlf", extra=fmt), files={"crlf.csv": large(head, crlf=True, delimiter=";")}
    )
    assert converted_on(summary) == {"on": "client"}
    small = csvpg_run(job("lf"), files={"lf.csv": csv_bytes(head)})
    assert small.status == "succeeded"
    assert table(csvpg_db, "crlf", 2_000) == table(csvpg_db, "lf", 2_000)


@pytest.mark.parametrize(
    ("value", "column", "rejected"),
    [
        ("1.2.2024", "day", False),  # read loosely by the server's check: it loads
        ("31.02.2024", "day", True),  # no such day
        ("29.02.2024 24:00:00", "at", True),  # the write-back check refuses it
        ("12,5x", "price", True),
        ("jä", "paid", True),  # beyond ASCII: the server's lower() decides
    ],
)
def test_a_value_the_client_cannot_promise_goes_to_sql(
    csvpg_run, csvpg_db, value: str, column: str, rejected: bool
) -> None:
    """The file loads again with its conversions in SQL, which sets aside a bad row with
    its line (and loads a loose one): never a row lost, never one the client decided."""
    head = rows(1_000, seed=11)
    head[499][HEADER.index(column)] = value
    data = large(head)
    summary = csvpg_run(job("odd"), files={"odd.csv": data})
    assert summary.status == "succeeded"
    assert converted_on(summary)["on"] == "server"
    (file,) = summary.files
    total = records(data)
    assert file.rows_read == total
    assert csvpg_db.count("odd") == total - rejected
    if rejected:
        assert rejects(csvpg_db, summary) == [(line_of(head[:499]), column, value)]
    else:
        loaded = csvpg_db.execute(
            f"SELECT day FROM {csvpg_db.schema}.odd WHERE id = 500"
        ).fetchone()
        assert loaded == (date(2024, 2, 1),)


def test_a_timestamp_template_stays_in_sql_where_the_clock_jumps(csvpg_run, csvpg_db) -> None:
    """In a session zone with summer time, to_timestamp moves a time in the spring gap
    on and the check refuses it: the client, which would load it, leaves the file to SQL."""
    head = rows(1_000, seed=5)
    head[9][HEADER.index("at")] = "29.03.2026 02:30:00"
    berlin = make_conninfo(csvpg_db.dsn, options="-c TimeZone=Europe/Berlin")
    summary = csvpg_run(job("gap"), files={"gap.csv": large(head)}, dsn=berlin)
    assert converted_on(summary) is None, "not tried on the client"
    found = rejects(csvpg_db, summary)
    assert (line_of(head[:9]), "at", "29.03.2026 02:30:00") in found
    berlin_zone = ZoneInfo("Europe/Berlin")
    for _, _, value in found:  # (the random rows hold a few more such times)
        wall = datetime.strptime(value, "%d.%m.%Y %H:%M:%S").replace(tzinfo=berlin_zone)
        back = wall.astimezone(UTC).astimezone(berlin_zone)
        assert back.replace(tzinfo=None) != wall.replace(tzinfo=None), f"{value} is no gap"
    assert csvpg_db.count("gap") == records(large(head)) - len(found)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data.replace(b"plain", b'pl"ain', 1),  # a quote inside a bare field
        lambda data: data.replace(b"\n", b"\n\n", 5)[:-1],  # blank lines
        lambda data: data.replace(b"ja,", b"ja,,", 1),  # a field too many
        lambda data: data.replace(b"\n", b"\r\n", 3),  # line ends of two kinds
        lambda data: data.replace(b"plain", b"pl\rain", 1),  # a CR in a bare field
    ],
    ids=["stray quote", "blank lines", "field too many", "CRLF then LF", "bare CR"],
)
def test_odd_bytes_load_as_they_do_in_sql(csvpg_run, csvpg_db, spoil) -> None:
    """Bytes Arrow's reader might take otherwise than PostgreSQL's: the large file ends
    as the small one with the same head does, its rows and rejects alike."""
    head = rows(1_000, seed=13)
    small_data = spoil(csv_bytes(head))
    big_data = spoil(large(head))
    small = csvpg_run(job("small"), files={"small.csv": small_data})
    big = csvpg_run(job("big"), files={"big.csv": big_data})
    assert converted_on(big) != {"on": "client"} or not rejects(csvpg_db, small)
    assert big.status == small.status
    if small.status == "succeeded":
        assert table(csvpg_db, "big", 1_000) == table(csvpg_db, "small", 1_000)
        assert rejects(csvpg_db, big) == rejects(csvpg_db, small)


@pytest.mark.parametrize("codec", ["latin-1", "iso8859-15", "windows-1252"])
def test_a_european_export_converts_on_the_client_byte_for_byte(
    csvpg_run, csvpg_db, codec: str
) -> None:
    """The nightly ERP dump in a single-byte encoding: every byte its codec defines, in
    a text column, loads as the same character whichever side converts the file."""
    defined = []
    for b in range(0x20, 0x100):
        try:
            char = bytes([b]).decode(codec)
        except UnicodeDecodeError:
            continue
        if char not in ';"':
            defined.append(char)
    head = rows(1_000, seed=17)
    for k, row in enumerate(head):
        row[HEADER.index("note")] = "".join(defined[k % 7 :: 7])
    fmt = f'[format]\ndelimiter = ";"\nencoding = "{codec}"\n'

    def data(records: list[list[str]]) -> bytes:
        return csv_bytes(records, delimiter=";", crlf=True).decode().encode(codec)

    small = csvpg_run(job("small", extra=fmt), files={"small.csv": data(head)})
    padded = large(head, delimiter=";", crlf=True)
    big = csvpg_run(job("big", extra=fmt), files={"big.csv": padded.decode().encode(codec)})
    assert converted_on(small) is None
    assert converted_on(big) == {"on": "client"}
    assert table(csvpg_db, "big", 1_000) == table(csvpg_db, "small", 1_000)
    notes = {r[-1] for r in table(csvpg_db, "big", 1_000)}
    assert set("".join(notes)) == set(defined)


@pytest.mark.parametrize("bad", [False, True], ids=["clean", "a bad value"])
def test_a_split_load_converts_on_the_client_too(csvpg_run, csvpg_db, bad: bool) -> None:
    """A new table over two connections, each COPYing chunks of the converted bytes; a
    chunk's COPY that refuses a value sends the file to SQL (split as staged TEXT), which
    finds the bad row's line in the whole file."""
    head = rows(1_000, seed=19)
    if bad:
        head[699][HEADER.index("price")] = "12,5x"
    split = "[run]\nworkers = 2\nsplit_mb = 1\n"
    small = csvpg_run(job("small"), files={"small.csv": csv_bytes(head)})
    big = csvpg_run(job("big", extra=split), files={"big.csv": large(head)})
    (file,) = big.files
    if not bad:  # (the bad row's file is set aside row by row: on one connection)
        assert file.details["split"]["connections"] == 2, file.details["split"]
    assert converted_on(big)["on"] == ("server" if bad else "client")
    assert table(csvpg_db, "big", 1_000) == table(csvpg_db, "small", 1_000)
    assert (
        rejects(csvpg_db, big)
        == rejects(csvpg_db, small)
        == ([(line_of(head[:699]), "price", "12,5x")] if bad else [])
    )
