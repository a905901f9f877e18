"""Compressed files: which names are compressed, and with what. Sources decompress
while they stream; the plan uses the extensions to tell data files from the rest."""

from __future__ import annotations

import fsspec

from csvpg.errors import SourceError

__all__ = ["COMPRESSION_EXTENSIONS", "codec_for"]

#: Codecs fsspec knows once their package is installed: extension → (codec, package).
CODEC_PACKAGES = {
    "zst": ("zstd", "zstandard"),
    "zstd": ("zstd", "zstandard"),
    "lz4": ("lz4", "lz4"),
    "sz": ("snappy", "python-snappy"),
}


#: The extensions of compressed files, decompressed as they stream (or once installed).
COMPRESSION_EXTENSIONS = frozenset(fsspec.utils.compressions) | frozenset(CODEC_PACKAGES)


def codec_for(name: str) -> str | None:
    """fsspec's codec for a file name; a known codec whose package is missing is an error."""
    codec = fsspec.utils.infer_compression(name)
    if codec is not None:
        return str(codec)
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in CODEC_PACKAGES:
        _, package = CODEC_PACKAGES[ext]
        raise SourceError(
            f"{name} is compressed with {ext}, but the Python package {package!r} is not installed",
            file=name,
            hint=f"install it (pip install {package}, or uv add {package}) and run again",
        )
    return None
