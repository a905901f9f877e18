"""``POST /uploads``: files saved into the local folder a job reads, and that job run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from csvpg.engine.plan import resolve_url
from csvpg.serve import ServerDep
from csvpg.serve.live import RunRequest

router = APIRouter()

UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.post("/uploads", status_code=201)
async def upload(
    job: Annotated[str, Form()],
    files: Annotated[list[UploadFile], File()],
    server: ServerDep,
    run: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    spec = server.load(job)
    inbox = Path(resolve_url(spec))
    if not inbox.is_dir():
        raise HTTPException(
            409,
            f"job {job!r} does not read a local folder; "
            "uploads go to a job whose [source] url is a directory",
        )
    saved = [await _save(upload, inbox, server.max_upload) for upload in files]
    answer: dict[str, Any] = {"job": job, "saved": saved}
    if run:
        answer["run_id"] = server.start(
            spec, RunRequest(job=job, spec=None, callback_url=None)
        ).run_id
    return answer


async def _save(upload: UploadFile, inbox: Path, limit: int) -> dict[str, Any]:
    """One uploaded file, under a safe name, streamed to disk; a 413 (and no file left
    behind) once it passes ``limit`` bytes."""
    name = UNSAFE_NAME.sub("_", Path(upload.filename or "upload").name).lstrip(".")
    target = inbox / (name or "upload")
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                target.unlink()
                raise HTTPException(
                    413, f"{name} is larger than the upload limit ({limit >> 20} MiB)"
                )
            out.write(chunk)
    return {"name": target.name, "bytes": size}
