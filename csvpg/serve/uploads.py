"""``POST /uploads``: files saved into the local folder a job reads, and that job run.

Only data files (a format's extension, compressed or not) are taken, only into a folder
under the data root; each saved file is noted in the jobs folder's :data:`LEDGER`, and
removed once older than ``--keep-uploads-days`` (at startup and on each upload). Files
put there otherwise are never touched.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from starlette.datastructures import UploadFile as StarletteUpload

from csvpg.compression import COMPRESSION_EXTENSIONS
from csvpg.engine.plan import resolve_url
from csvpg.serve import Server, ServerDep
from csvpg.serve.live import RunRequest
from csvpg.serve.models import Saved, Uploaded, refusals
from csvpg.serve.policy import inside

router = APIRouter()

UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
#: Uploaded files and when they came, one JSON object a line, in the jobs folder.
LEDGER = ".csvpg-uploads.jsonl"


@router.post(
    "/uploads", status_code=201, responses=refusals(400, 401, 403, 404, 409, 413, 415, 422)
)
async def upload(
    job: Annotated[str, Form(min_length=1)],
    files: Annotated[list[UploadFile], File(min_length=1)],
    server: ServerDep,
    run: Annotated[bool, Form()] = False,
) -> Uploaded:
    saved = await store(server, job, files)
    run_id = None
    if run:
        loaded = server.load(job)
        run_id = server.start(loaded, RunRequest(job=job, spec=None, callback_url=None)).run_id
    return Uploaded(job=job, saved=[Saved(**s) for s in saved], run_id=run_id)


async def store(server: Server, job: str, files: Sequence[StarletteUpload]) -> list[dict[str, Any]]:
    """``files`` saved into the upload folder of ``job`` (its [source] folder), as
    ``{"name", "bytes"}``: only data files, only under the data root, each within the
    upload limit; uploads older than ``--keep-uploads-days`` are removed first. Used by
    ``POST /uploads`` and the web app's upload alike."""
    spec = server.load(job)
    inbox = Path(resolve_url(spec))
    if not inbox.is_dir():
        raise HTTPException(
            409,
            f"job {job!r} does not read a local folder; "
            "uploads go to a job whose [source] url is a directory",
        )
    root = server.policy.root(server.jobs_dir)
    if not inside(inbox, root):
        raise HTTPException(403, f"job {job!r} reads {inbox}, outside the data root {root}")
    endings = data_extensions(server)
    names = [_safe_name(u.filename) for u in files]
    for name in names:
        if not name.lower().endswith(endings):
            raise HTTPException(
                415, f"{name} is not a data file; uploads take {', '.join(sorted(endings))}"
            )
    prune(server)
    saved = [
        await _save(u, inbox / n, server.max_upload) for u, n in zip(files, names, strict=True)
    ]
    _note(server, [inbox / s["name"] for s in saved])
    return saved


def data_extensions(server: Server) -> tuple[str, ...]:
    """``.csv``, ``.csv.gz``, …: every installed format's endings, plain or compressed."""
    plain = {e.lower() for f in server.registry.formats.values() for e in f.cls.extensions}
    return tuple(plain | {f"{e}.{c}" for e in plain for c in COMPRESSION_EXTENSIONS})


def _safe_name(filename: str | None) -> str:
    name = UNSAFE_NAME.sub("_", Path(filename or "upload").name).lstrip(".")
    return name or "upload"


async def _save(upload: StarletteUpload, target: Path, limit: int) -> dict[str, Any]:
    """One uploaded file, streamed to disk; a 413 (and no file left behind) once it
    passes ``limit`` bytes."""
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                target.unlink()
                raise HTTPException(
                    413, f"{target.name} is larger than the upload limit ({limit >> 20} MiB)"
                )
            out.write(chunk)
    return {"name": target.name, "bytes": size}


def _note(server: Server, paths: list[Path]) -> None:
    now = time.time()
    with server.lock, (server.jobs_dir / LEDGER).open("a", encoding="utf-8") as ledger:
        for path in paths:
            ledger.write(json.dumps({"path": str(path.resolve()), "saved": now}) + "\n")


def prune(server: Server) -> list[Path]:
    """Removes uploaded files older than ``--keep-uploads-days``; returns them."""
    ledger = server.jobs_dir / LEDGER
    cutoff = time.time() - server.keep_uploads_days * 86400
    removed: list[Path] = []
    with server.lock:
        if not ledger.is_file():
            return removed
        kept = []
        for line in ledger.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                path, saved = Path(entry["path"]), float(entry["saved"])
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line names nothing to remove
            if saved >= cutoff:
                kept.append(line)
            elif path.is_file() and path.stat().st_mtime < cutoff:  # not saved again since
                path.unlink()
                removed.append(path)
        ledger.write_text("".join(f"{k}\n" for k in kept), encoding="utf-8")
    return removed
