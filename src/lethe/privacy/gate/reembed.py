"""``lethe index reembed``: move a gallery to the configured embedder from the photos themselves.

Every stored template names the model that made it; search, erasure and suppression compare only
templates of the configured model, so after a change of ``LETHE_EMBEDDER`` the faces made by the old
model are not searchable until they are embedded again. This reads each such photo at the path it was
ingested from, checks that the bytes are still the photo (its sha256), detects and embeds it with
the configured pipeline, pairs each stored face with the new detection that overlaps it most (IoU >=
0.5) and replaces the face's template. Box, crop and face id stay, so audit entries, request
candidates and erasure receipts keep pointing at the same face.

Photos that cannot be read (moved, deleted, uploads whose temporary files are gone, changed since
ingest) are reported; their faces keep the old model's templates, searchable again only by that
model. A face whose new detection does not overlap it keeps its old template too.

Objections and restrictions: before a face's old template is replaced, it is compared with the
active entries made under the same old model (at the review threshold, as search and ingest do); a
face that matches has its new template added to that request's entry under the new model, so a
restricted person stays hidden and an objector's faces stay out of search after the switch.

Crash-safe and resumable like ingest: each photo is one catalog transaction, the index is saved per
batch (a killed run leaves an index that the next open rebuilds from the catalog), and a rerun takes
up exactly the faces that still carry another model's template.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from lethe.catalog.repository import StaleImage
from lethe.errors import LetheError
from lethe.imaging import decode_image
from lethe.model_ids import model_name
from lethe.privacy import audit, objections
from lethe.privacy.gate.objections import suppress
from lethe.types import Box, FaceRecord, match_any

if TYPE_CHECKING:
    from lethe.pipeline import FacePipeline
    from lethe.store import Store

log = logging.getLogger(__name__)

BATCH_PHOTOS = 32
MIN_IOU = 0.5
MAX_LISTED = 100


@dataclass
class ReembedReport:
    photos: int = 0
    faces: int = 0
    unmatched_faces: int = 0
    carried_suppression_templates: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)
    unreadable_omitted: int = 0
    remaining_faces: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "photos": self.photos,
            "faces": self.faces,
            "unmatched_faces": self.unmatched_faces,
            "carried_suppression_templates": self.carried_suppression_templates,
            "unreadable": self.unreadable,
            "unreadable_omitted": self.unreadable_omitted,
            "remaining_faces": self.remaining_faces,
        }

    def _problem(self, path: str, reason: str) -> None:
        if len(self.unreadable) < MAX_LISTED:
            self.unreadable.append({"path": path, "reason": reason})
        else:
            self.unreadable_omitted += 1


def iou(a: Box, b: Box) -> float:
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    inter = max(0, width) * max(0, height)
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def pair_faces(stored: dict[int, Box], found: list[FaceRecord]) -> dict[int, int]:
    """face id -> index in ``found``: greedily by overlap, each detection used once."""
    pairs = sorted(
        ((iou(box, face.box), face_id, j) for face_id, box in stored.items() for j, face in enumerate(found)),
        reverse=True,
    )
    chosen: dict[int, int] = {}
    used: set[int] = set()
    for overlap, face_id, j in pairs:
        if overlap < MIN_IOU:
            break
        if face_id not in chosen and j not in used:
            chosen[face_id] = j
            used.add(j)
    return chosen


def read_photo(uri: str, limit: int) -> bytes | str:
    """The bytes at the stored path, or why they cannot be read (never more than ``limit``)."""
    try:
        fd = os.open(uri, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc.__class__.__name__}"
    try:
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        return f"cannot read it: {exc.strerror or exc.__class__.__name__}"
    finally:
        os.close(fd)
    return data if len(data) <= limit else f"over the limit of {limit} bytes"


def reembed(
    store: Store,
    pipeline: FacePipeline,
    *,
    actor: str = "system",
    progress: Callable[[int, int], None] | None = None,
) -> ReembedReport:
    """Embed every face of another model again with the configured embedder (see the module). Call
    through :meth:`lethe.privacy.gate.Gate.reembed`, which holds the write lock."""
    report = ReembedReport()
    embedder = pipeline.embedder.name
    total = store.catalog.count_faces() - len(store.catalog.face_ids())
    old_entries = objections.entries_of_other_models(store)
    carried: dict[tuple[int | None, str], list[np.ndarray]] = {}
    after = 0
    while photos := store.catalog.photos_of_other_models(after, BATCH_PHOTOS):
        ids: list[int] = []
        vectors: list[np.ndarray] = []
        sources: list[int] = []
        for photo in photos:
            after = photo.image_id
            templates = _embed_photo(store, pipeline, photo, report)
            if not templates:
                continue
            old = store.catalog.face_templates(templates, any_model=True)
            for entry in old_entries:
                hit = match_any(entry.templates, np.vstack([old[f] for f in templates]), entry.threshold)
                for face_id, matched in zip(templates, hit, strict=True):
                    if matched:
                        carried.setdefault((entry.request_id, entry.scope), []).append(templates[face_id])
            store.catalog.replace_templates(
                photo,
                templates,
                embedder=embedder,
                audit_as=audit.record(
                    actor, "reembed.photo", {"image_id": photo.image_id, "faces": sorted(templates)}
                ),
            )
            report.photos += 1
            report.faces += len(templates)
            ids += list(templates)
            vectors += list(templates.values())
            sources += [photo.source_id] * len(templates)
            if progress is not None:
                progress(report.faces, total)
        if ids:
            store.index.add(
                np.asarray(ids, dtype=np.int64),
                np.vstack(vectors).astype(np.float32),
                sources=np.asarray(sources, dtype=np.int64),
            )
            store.index.save()
    report.carried_suppression_templates = _carry_over(store, carried, actor=actor)
    report.remaining_faces = store.catalog.count_faces() - len(store.catalog.face_ids())
    store.catalog.record(
        audit.record(
            actor,
            "index.reembed",
            {"model": model_name(store.model_sha256), "model_sha256": store.model_sha256}
            | {k: v for k, v in report.as_dict().items() if k != "unreadable"}
            | {"unreadable": len(report.unreadable) + report.unreadable_omitted},
        )
    )
    log.info(
        "reembed photos=%d faces=%d unreadable=%d remaining=%d",
        report.photos,
        report.faces,
        len(report.unreadable) + report.unreadable_omitted,
        report.remaining_faces,
    )
    return report


def _carry_over(store: Store, carried: dict[tuple[int | None, str], list[np.ndarray]], *, actor: str) -> int:
    """Add the configured model's templates of faces that matched an entry of another model to that
    request's entry under the configured model (made when missing). Returns templates added."""
    added = 0
    for (request_id, scope), vectors in carried.items():
        existing = objections.active_of_model(store, request_id, scope)
        suppress(store, np.vstack([existing, *vectors]), request_id=request_id, actor=actor, scope=scope)
        added += len(vectors)
    return added


def _embed_photo(
    store: Store, pipeline: FacePipeline, photo: StaleImage, report: ReembedReport
) -> dict[int, np.ndarray]:
    data = read_photo(photo.uri, store.settings.max_image_bytes)
    if isinstance(data, str):
        report._problem(photo.uri, data)
        return {}
    if hashlib.sha256(data).hexdigest() != photo.sha256:
        report._problem(photo.uri, "the file is not the photo that was ingested (its sha256 differs)")
        return {}
    try:
        image = decode_image(data, max_pixels=store.settings.max_image_pixels, max_bytes=len(data) + 1)
    except LetheError as exc:
        report._problem(photo.uri, str(exc))
        return {}
    found = pipeline.faces(image.pixels)
    pairs = pair_faces(photo.faces, found)
    report.unmatched_faces += len(photo.faces) - len(pairs)
    return {face_id: found[j].embedding for face_id, j in pairs.items()}
