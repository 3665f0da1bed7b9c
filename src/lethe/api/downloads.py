"""Folders the service hands out as one zip download (the access export, the compliance pack).

The zip is built in memory from the folder's files (sorted, under one top folder named ``name``)
and answered as a private, never-cached attachment.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from fastapi.responses import Response


def zip_download(folder: Path, *, name: str, filename: str) -> Response:
    """Every file under ``folder`` as ``name/<relative path>`` in a zip, answered as ``filename``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(file, f"{name}/{file.relative_to(folder)}")
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )
