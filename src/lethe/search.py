"""Search by a probe photo, the mechanism: the faces of the probe, and the nearest faces in the index
at or above the match threshold, with where they came from and their erasure band. What search may
show and how it is accounted for — a stated purpose, restricted sources, people who objected, the
audit entry — is the privacy layer's (:mod:`lethe.privacy.searches`), which calls this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lethe.calibration import Likelihood, calibration_file, implied, likelihood
from lethe.errors import InputError
from lethe.imaging import decode_image
from lethe.pipeline import FacePipeline
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
    #: The use (case) the search belongs to and its audit entry, once the privacy layer logged it.
    use: int | None = None
    audit_seq: int | None = None

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
            "use": self.use,
            "audit_seq": self.audit_seq,
        }


class Search:
    """Searches over a store; ``pipeline`` gives the face pipeline (built on first use)."""

    def __init__(self, store: Store, pipeline: Callable[[], FacePipeline]) -> None:
        self.store = store
        self._pipeline = pipeline

    def __call__(
        self,
        probe: bytes,
        *,
        top_k: int = 10,
        threshold: float | None = None,
        face: int | None = None,
        deny_sources: np.ndarray | None = None,
        keep: Callable[[list[tuple[int, float]]], list[tuple[int, float]]] | None = None,
    ) -> SearchResult:
        """The faces of ``probe`` and, for the chosen one (``face``, default the first), the nearest
        faces at or above the threshold; faces of ``deny_sources`` never come back (the index
        filters them), ``keep`` may drop more hits before they are described."""
        limit = self.store.settings.match_threshold if threshold is None else threshold
        self.store.index.reload_if_changed()
        if top_k < 1:
            raise InputError("top must be at least 1")
        image = decode_image(
            probe,
            max_pixels=self.store.settings.max_image_pixels,
            max_bytes=self.store.settings.max_image_bytes,
        )
        faces = self._pipeline().faces(image.pixels)
        boxes = [f.box for f in faces]
        if not faces:
            return SearchResult([], None, limit, [], self.calibration(limit))
        chosen = 0 if face is None else face
        if not 0 <= chosen < len(faces):
            raise InputError(f"the probe has {len(faces)} face(s); --face must be 0..{len(faces) - 1}")
        hits = self.store.index.search(faces[chosen].embedding[None, :], top_k, deny_sources=deny_sources)[0]
        hits = [(fid, score) for fid, score in hits if score >= limit]
        if keep is not None:
            hits = keep(hits)
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
        return SearchResult(boxes, chosen, limit, matches, self.calibration(limit))

    def _band(self, score: float) -> str:
        if score >= self.store.settings.erasure_auto_threshold:
            return "automatic"
        return "review" if score >= self.store.settings.erasure_review_threshold else "below_review"

    def likelihood(self, score: float) -> Likelihood:
        """The plain-language band of a match's score at this gallery's size, with the FPIR/FNIR
        measured at that score (:func:`lethe.calibration.likelihood`)."""
        return likelihood(
            score,
            len(self.store.index),
            calibration_file(self.store.settings.embedder, self.store.settings.embed_flip),
        )

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
