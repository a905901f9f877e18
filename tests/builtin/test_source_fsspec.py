"""The generic fsspec source and what all sources share: clear errors for schemes whose
package is missing, safe names, URLs that round-trip, and which failures are transient."""

from __future__ import annotations

import pytest

from csvpg.builtin import _remote
from csvpg.builtin._remote import quote_path, safe_name, without_password
from csvpg.builtin.source_fsspec import FsspecSource
from csvpg.compression import codec_for
from csvpg.errors import SourceError
from csvpg.retry import is_transient


@pytest.fixture(autouse=True)
def quick_list_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_remote, "LIST_RETRY_DELAY", 0.01)


def test_a_scheme_whose_package_is_missing_names_it() -> None:
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("s3fs is installed")
    with pytest.raises(SourceError) as info:
        FsspecSource(url="s3://bucket/exports/", options={})
    assert "s3fs" in info.value.message
    assert "install" in (info.value.hint or "")


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match=r"no fsspec file system reads nosuch://"):
        FsspecSource(url="nosuch://host/x.csv", options={})


def test_a_refused_connection_hides_the_password() -> None:
    with pytest.raises(SourceError) as info:
        FsspecSource(url="ftp://etl:hunter2@127.0.0.1:1/x.csv", options={})
    text = info.value.message + (info.value.hint or "")
    assert "hunter2" not in text
    assert "ftp://etl@127.0.0.1:1/x.csv" in info.value.message
    assert is_transient(info.value), "a refused connection is worth a retry"


def test_a_missing_codec_package_is_named() -> None:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(SourceError) as info:
            codec_for("orders.csv.zst")
        assert "'zstandard'" in info.value.message
    else:
        assert codec_for("orders.csv.zst") == "zstd"
    assert codec_for("orders.csv.gz") == "gzip"
    assert codec_for("orders.csv") is None


@pytest.mark.parametrize(
    ("remote", "name"),
    [
        ("../../x.csv", "x.csv"),
        ("a/b\\c.csv", "c.csv"),
        ("..", "file"),
        ("", "file"),
        ("bad\x00name\n.csv", "bad_name_.csv"),
        ("ok name.csv", "ok name.csv"),
    ],
)
def test_safe_names(remote: str, name: str) -> None:
    assert safe_name(remote) == name


def test_paths_round_trip_through_urls() -> None:
    from urllib.parse import unquote, urlsplit

    path = "/exports/a b#1?.csv"
    url = "sftp://etl@host:2222" + quote_path(path)
    assert url == "sftp://etl@host:2222/exports/a b%231%3F.csv"
    assert unquote(urlsplit(url).path) == path


def test_passwords_leave_urls() -> None:
    assert without_password("sftp://etl:pw@host:22/x") == "sftp://etl@host:22/x"
    assert without_password("see https://u:p@h/x and ftp://a:b@c/") == (
        "see https://u@h/x and ftp://a@c/"
    )


def test_what_sshfs_asyncssh_and_aiohttp_raise_is_classified() -> None:
    import aiohttp
    import asyncssh
    from asyncssh.sftp import SFTPConnectionLost, SFTPNoConnection

    assert is_transient(SFTPNoConnection("Connection not open"))
    assert is_transient(SFTPConnectionLost("Connection lost"))
    assert is_transient(asyncssh.ConnectionLost("lost"))
    assert not is_transient(asyncssh.HostKeyNotVerifiable("not trusted"))
    assert not is_transient(asyncssh.PermissionDenied("denied"))
    assert not is_transient(PermissionError("Permission denied for user x"))
    assert is_transient(ConnectionRefusedError(111, "refused"))
    assert is_transient(aiohttp.ServerDisconnectedError())
    assert is_transient(aiohttp.ClientPayloadError("not completed"))

    def status(code: int) -> aiohttp.ClientResponseError:
        return aiohttp.ClientResponseError(None, (), status=code)  # type: ignore[arg-type]

    assert is_transient(status(503)) and is_transient(status(429))
    assert not is_transient(status(401)) and not is_transient(status(404))
    wrapped = SourceError("x")
    wrapped.__cause__ = SFTPNoConnection("Connection not open")
    assert is_transient(wrapped), "a SourceError chained to a drop stays transient"
