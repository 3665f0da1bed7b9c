"""Search by a probe photo: the faces of the probe, the nearest faces in the index at or above the
match threshold, without restricted sources and people who objected, each search audited (who,
why, the probe's hash, what it found).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lethe.calibration import calibration_file, implied
from lethe.errors import InputError
from lethe.imaging import decode_image
from lethe.model_ids import model_name
from lethe.pipeline import FacePipeline
from lethe.privacy.audit import AuditRecord
from lethe.privacy.suppression import ActiveTemplates
from lethe.privacy.suppression import matches as suppression_matches
from lethe.store import Store
from lethe.types import Box


@dataclass(frozen=True, slots=True)
class Match:
    face_id: int
    score: float
    image: str
    source: str
    source_url: str | None
    box: Box
    crop_path: str
    #: Where the score falls among the erasure bands: "automatic", "review" or "below_review".
    band: str

    def as_dict(self) -> dict[str, object]:
        return {
            "face_id": self.face_id,
            "image": self.image,
            "score": round(self.score, 6),
            "band": self.band,
            "source": self.source,
            "source_url": self.source_url,
            "box": self.box.as_list(),
            "crop": self.crop_path,
        }


@dataclass(frozen=True, slots=True)
class SearchResult:
    probe_faces: list[Box]
    used_face: int | None
    threshold: float
    matches: list[Match]
    #: The thresholds in force and what the match threshold implies at this gallery size.
    calibration: dict[str, object]

    @property
    def no_match(self) -> bool:
        return not self.matches

    def as_dict(self) -> dict[str, object]:
        return {
            "probe_faces": len(self.probe_faces),
            "probe_boxes": [b.as_list() for b in self.probe_faces],
            "face": self.used_face,
            "threshold": self.threshold,
            "calibration": self.calibration,
            "matches": [m.as_dict() for m in self.matches],
            "no_match": self.no_match,
        }


class Search:
    """Searches over a store; ``pipeline`` gives the face pipeline (built on first use)."""

    def __init__(
        self, store: Store, pipeline: Callable[[], FacePipeline], objections: ActiveTemplates
    ) -> None:
        self.store = store
        self._pipeline = pipeline
        self._objections = objections

    def __call__(
        self,
        probe: bytes,
        *,
        purpose: str,
        actor: str = "system",
        top_k: int = 10,
        threshold: float | None = None,
        face: int | None = None,
    ) -> SearchResult:
        """Search by a probe photo. Every search is audited: who, why, the probe's hash, what it found."""
        limit = self.store.settings.match_threshold if threshold is None else threshold
        self.store.index.reload_if_changed()
        if top_k < 1:
            raise InputError("top must be at least 1")
        if len(purpose.strip()) < 3:
            raise InputError("a search must state its purpose")
        image = decode_image(
            probe,
            max_pixels=self.store.settings.max_image_pixels,
            max_bytes=self.store.settings.max_image_bytes,
        )
        faces = self._pipeline().faces(image.pixels)
        boxes = [f.box for f in faces]
        if not faces:
            self._audit_search(actor, purpose, probe, limit, top_k, [])
            return SearchResult([], None, limit, [], self.calibration(limit))
        chosen = 0 if face is None else face
        if not 0 <= chosen < len(faces):
            raise InputError(f"the probe has {len(faces)} face(s); --face must be 0..{len(faces) - 1}")
        restricted = self._restricted_source_ids()
        hits = self.store.index.search(faces[chosen].embedding[None, :], top_k, deny_sources=restricted)[0]
        hits = [(fid, score) for fid, score in hits if score >= limit]
        hits = self._without_objections(hits)
        infos = self.store.catalog.faces([fid for fid, _ in hits])
        matches = [
            Match(
                face_id=fid,
                score=score,
                image=infos[fid].image_uri,
                source=infos[fid].source_name,
                source_url=infos[fid].source_url,
                box=infos[fid].box,
                crop_path=str(self.store.crops.root / infos[fid].crop_path),
                band=self._band(score),
            )
            for fid, score in hits
            if fid in infos
        ]
        self._audit_search(actor, purpose, probe, limit, top_k, [m.face_id for m in matches])
        return SearchResult(boxes, chosen, limit, matches, self.calibration(limit))

    def _searched_sources(self) -> list[str]:
        return sorted(s.name for s in self.store.catalog.sources() if s.status == "active")

    def _band(self, score: float) -> str:
        if score >= self.store.settings.erasure_auto_threshold:
            return "automatic"
        return "review" if score >= self.store.settings.erasure_review_threshold else "below_review"

    def calibration(self, match_threshold: float | None = None) -> dict[str, object]:
        """The thresholds in force, and the FPIR/FNIR measured on LFW nearest to the match
        threshold at this gallery's size (see :mod:`lethe.calibration`)."""
        limit = self.store.settings.match_threshold if match_threshold is None else match_threshold
        measured = implied(
            limit,
            len(self.store.index),
            calibration_file(self.store.settings.embedder, self.store.settings.embed_flip),
        )
        return {
            "match_threshold": limit,
            "erasure_automatic_threshold": self.store.settings.erasure_auto_threshold,
            "erasure_review_threshold": self.store.settings.erasure_review_threshold,
            "gallery_faces": len(self.store.index),
            "implied": measured.as_dict() if measured else None,
        }

    def _audit_search(
        self, actor: str, purpose: str, probe: bytes, threshold: float, top_k: int, face_ids: list[int]
    ) -> None:
        details = {
            "purpose": purpose.strip(),
            "probe_sha256": hashlib.sha256(probe).hexdigest(),
            "threshold": threshold,
            "top": top_k,
            "face_ids": face_ids,
            "model_sha256": self.store.model_sha256,
            "model": model_name(self.store.model_sha256),
            "gallery_faces": len(self.store.index),
            "sources_searched": self._searched_sources(),
        }
        self.store.catalog.record(AuditRecord(actor, "search", details, tuple(face_ids)))

    def _without_objections(self, hits: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Drop faces of people who objected: they are never returned."""
        if not hits or not len(self._objections.hidden):
            return hits
        templates = self.store.catalog.face_templates([fid for fid, _ in hits])
        ids = [fid for fid, _ in hits if fid in templates]
        if not ids:
            return hits
        objected = suppression_matches(
            self._objections.hidden,
            np.vstack([templates[f] for f in ids]),
            self.store.settings.erasure_review_threshold,
        )
        hidden = {fid for fid, out in zip(ids, objected, strict=True) if out}
        return [(fid, score) for fid, score in hits if fid not in hidden]

    def _restricted_source_ids(self) -> np.ndarray | None:
        """Sources whose faces ordinary search must not show; the index filters them out itself
        (every vector carries its source id), so no list of their faces is built per search."""
        restricted = [s.id for s in self.store.catalog.sources() if s.status != "active"]
        return np.asarray(restricted, dtype=np.int64) if restricted else None
