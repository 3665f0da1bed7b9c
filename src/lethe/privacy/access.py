"""The access export (GDPR Art. 15): every photo of the person, where it came from, on what basis,
until when it is kept, and every search that returned it — as JSON and as a readable HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.privacy import audit
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.privacy.requests import RequestView
    from lethe.store import Store


def exports_root(store: Store) -> Path:
    return store.settings.exports_dir or store.settings.data_dir / "exports"


def write_export(store: Store, request: RequestView, face_ids: Sequence[int]) -> tuple[Path, int]:
    """Write ``export.json``, ``index.html`` and the face crops; returns (folder, faces listed)."""
    folder = private_dir(exports_root(store) / f"request-{request.id}-{request.ref}")
    crops = private_dir(folder / "crops")
    with store.catalog.session() as session:
        rows = session.execute(
            select(FaceRow, ImageRow, SourceRow)
            .join(ImageRow, FaceRow.image_id == ImageRow.id)
            .join(SourceRow, ImageRow.source_id == SourceRow.id)
            .where(FaceRow.id.in_(list(face_ids)))
            .order_by(ImageRow.ingested_at, FaceRow.id)
        ).all()
        searches = audit.entries_for_faces(session, [f.id for f, _, _ in rows])
    items = []
    for face, image, source in rows:
        crop_name = f"{face.id}.jpg"
        atomic_write(crops / crop_name, store.crop_jpeg(face.id), durable=False)
        items.append(
            {
                "face_id": face.id,
                "crop": f"crops/{crop_name}",
                "image": image.uri,
                "source_url": image.source_url,
                "captured_at": image.captured_at.isoformat() if image.captured_at else None,
                "ingested_at": image.ingested_at.isoformat(),
                "box": [face.box_left, face.box_top, face.box_right, face.box_bottom],
                "source": source.name,
                "lawful_basis": source.lawful_basis,
                "art9_condition": source.art9_condition,
                "purpose": source.purpose,
                "jurisdiction": source.jurisdiction,
                "retention_until": (image.ingested_at + timedelta(days=source.retention_days)).isoformat(),
                "searches": [
                    {"at": e.at.isoformat(), "operator": e.actor, "purpose": e.details.get("purpose")}
                    for e in searches.get(face.id, [])
                ],
            }
        )
    document: dict[str, Any] = {
        "request": {"id": request.id, "ref": request.ref, "received_at": request.received_at.isoformat()},
        "generated_at": now_utc().isoformat(),
        "controller_note": "Every photo in which Lethe found your face, and every search that returned it.",
        "faces": items,
    }
    atomic_write(folder / "export.json", json.dumps(document, indent=2).encode())
    atomic_write(folder / "index.html", _html(document).encode())
    return folder, len(items)


def _html(document: dict[str, Any]) -> str:
    e = html.escape
    request = document["request"]
    assert isinstance(request, dict)  # noqa: S101 - built above
    faces = document["faces"]
    assert isinstance(faces, list)  # noqa: S101
    cards = []
    for item in faces:
        searches = (
            "".join(
                f"<li>{e(s['at'])} — {e(str(s['operator']))}: {e(str(s['purpose']))}</li>"
                for s in item["searches"]
            )
            or "<li>never returned by a search</li>"
        )
        link = f'<a href="{e(item["source_url"])}">{e(item["source_url"])}</a>' if item["source_url"] else "—"
        cards.append(
            f"""<article>
  <img src="{e(item["crop"])}" alt="face {item["face_id"]}" width="150" height="150">
  <dl>
    <dt>Photo</dt><dd>{e(item["image"])}</dd>
    <dt>Published at</dt><dd>{link}</dd>
    <dt>Source</dt><dd>{e(item["source"])} ({e(item["jurisdiction"])})</dd>
    <dt>Lawful basis</dt><dd>{e(item["lawful_basis"])}; Art. 9(2): {e(item["art9_condition"])}</dd>
    <dt>Purpose</dt><dd>{e(item["purpose"])}</dd>
    <dt>Ingested</dt><dd>{e(item["ingested_at"])}</dd>
    <dt>Kept until</dt><dd>{e(item["retention_until"])}</dd>
    <dt>Searches that returned it</dt><dd><ul>{searches}</ul></dd>
  </dl>
</article>"""
        )
    body = "\n".join(cards) or "<p>No photo of you was found.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your data — request {request["id"]}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:auto;padding:1rem}}
article{{display:flex;gap:1rem;border-bottom:1px solid #ccc;padding:1rem 0;flex-wrap:wrap}}
dt{{font-weight:600}}dd{{margin:0 0 .4rem 0}}</style></head>
<body><h1>Your data held by this service</h1>
<p>Request {request["id"]} (reference {e(str(request["ref"]))}), received {e(str(request["received_at"]))}.
Generated {e(str(document["generated_at"]))}. {len(faces)} photo(s) found.</p>
{body}
</body></html>
"""
