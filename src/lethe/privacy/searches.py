"""Search as the law allows it: a search states its purpose, never shows faces of restricted
sources (a jurisdiction stop) or of people who objected or asked for restriction, and is audited —
who, the stated purpose (kept off the chain, erasable: :mod:`lethe.privacy.audit`), the probe's
hash, the model, the gallery and what it returned; none runs while an administrator's global stop is
in force (:mod:`lethe.privacy.oversight`). The mechanism is :class:`lethe.search.Search`.

A search asked over the service (:meth:`AuditedSearch.on_request`) may raise the threshold, never
lower it below the floor: the deployment's calibrated match threshold (``LETHE_MATCH_THRESHOLD``,
by default the embedder's calibrated value), the point whose false-match rate the calibration
states. Below it a search pages through the nearest faces of any probe, mostly other people
(security review, finding 11). The floor is fixed there rather than an admin's runtime setting:
lowering it is a change of the deployment's configuration, made on the host, where the calibration
table shows what it costs. In-process callers (the engine's own checks, the host's CLI, whose user
can read the data folder anyway) keep the whole range.

Every search belongs to a use (:mod:`lethe.privacy.uses`): the one it names, else its actor's
current use, else a new one opened with its purpose. Its audit entry is the per-search log of the EU
AI Act Art. 12(3)(a): the use, the reference database (``sources_searched``, ``sources_restricted``
by a stop order, ``sources_excluded`` for any other reason, ``index_generation``, ``gallery_faces``,
``model_sha256``, ``threshold``), the input (``probe_sha256`` always; the probe itself only when the
search matched, sealed under the log key for ``LETHE_LOG_RETENTION_DAYS``: :mod:`lethe.privacy.gate.
search_log`), and what it returned. Its verifiers are recorded later, by entries that name its seq.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from lethe.calibration import Likelihood
from lethe.catalog.repository import now_utc
from lethe.errors import InputError, PrivacyError
from lethe.model_ids import model_name
from lethe.privacy import audit
from lethe.privacy.disclosures import record_token_search
from lethe.privacy.objections import ActiveTemplates
from lethe.privacy.oversight import Oversight
from lethe.privacy.uses import Uses
from lethe.search import Search, SearchResult
from lethe.store import Store
from lethe.types import match_any

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate

#: The shortest purpose a search may state.
MIN_PURPOSE = 3


class AuditedSearch:
    """``lethe.search(probe, purpose=..., actor=...)``: see the module."""

    def __init__(self, search: Search, objections: ActiveTemplates, oversight: Oversight, gate: Gate) -> None:
        self.mechanism = search
        self.store: Store = search.store
        self._objections = objections
        self._oversight = oversight
        self._gate = gate
        self.uses = Uses(self.store)

    def __call__(
        self,
        probe: bytes,
        *,
        purpose: str,
        actor: str = "system",
        top_k: int = 10,
        threshold: float | None = None,
        face: int | None = None,
        use: int | None = None,
        token_sha256: str | None = None,
    ) -> SearchResult:
        """Search by a probe photo, in ``use`` (default: the actor's current use, or a new one).
        Every search is audited: who, why, the use, the reference database, the probe's hash, what
        it found. Asked through an API token bound to a recipient (``token_sha256``), what it found
        is recorded as disclosed to them (:mod:`lethe.privacy.disclosures`), in the same transaction."""
        if len(purpose.strip()) < MIN_PURPOSE:
            raise InputError(f"a search must state its purpose (at least {MIN_PURPOSE} characters)")
        self._oversight.check()  # a global stop (AI Act Art. 14(4)(e)) halts every identification
        chosen = self.uses.for_search(actor=actor, use_id=use, purpose=purpose)
        result = self.mechanism(
            probe,
            top_k=top_k,
            threshold=threshold,
            face=face,
            deny_sources=self._restricted_source_ids(),
            keep=self._without_objections,
        )
        seq = self._audit(actor, purpose, probe, result, top_k, chosen.id, token_sha256)
        return dataclasses.replace(result, use=chosen.id, audit_seq=seq)

    @property
    def threshold_floor(self) -> float:
        """The lowest threshold a search over the service may ask for (see the module)."""
        return float(self.store.settings.match_threshold)

    def on_request(
        self,
        probe: bytes,
        *,
        purpose: str,
        actor: str,
        top_k: int = 10,
        threshold: float | None = None,
        face: int | None = None,
        use: int | None = None,
        token_sha256: str | None = None,
    ) -> SearchResult:
        """A search asked by a user of the service: as :meth:`__call__`, and a threshold below
        :attr:`threshold_floor` is refused (``PrivacyError``) before anything is searched."""
        if threshold is not None and threshold < self.threshold_floor:
            raise PrivacyError(
                f"a search threshold below {self.threshold_floor:.4f} (the calibrated match threshold) "
                "is refused: matches below it are mostly other people"
            )
        return self(
            probe,
            purpose=purpose,
            actor=actor,
            top_k=top_k,
            threshold=threshold,
            face=face,
            use=use,
            token_sha256=token_sha256,
        )

    def calibration(self, match_threshold: float | None = None) -> dict[str, object]:
        return self.mechanism.calibration(match_threshold)

    def likelihood(self, score: float) -> Likelihood:
        return self.mechanism.likelihood(score)

    def _audit(
        self,
        actor: str,
        purpose: str,
        probe: bytes,
        result: SearchResult,
        top_k: int,
        use_id: int,
        token_sha256: str | None = None,
    ) -> int:
        """The search's audit entry and log row (with its probe only on a match), and the use's
        count, in one transaction; the entry's seq."""
        at = now_utc()
        face_ids = [m.face_id for m in result.matches]
        matched = bool(face_ids)
        probe_sha256 = hashlib.sha256(probe).hexdigest()
        expires = at + timedelta(days=self.store.settings.log_retention_days)
        sources = self.store.catalog.sources()
        details = {
            "use": use_id,
            "probe_sha256": probe_sha256,
            "probe_stored": matched,
            "probe_expires_at": expires.isoformat() if matched else None,
            "threshold": result.threshold,
            "top": top_k,
            "probe_faces": len(result.probe_faces),  # 0: failure to acquire (the monitoring report)
            "probe_face": result.used_face,  # which probe face was searched for (the verifiers see it)
            "face_ids": face_ids,
            "scores": [round(float(m.score), 4) for m in result.matches],
            "model_sha256": self.store.model_sha256,
            "model": model_name(self.store.model_sha256),
            "gallery_faces": len(self.store.index),
            "index_generation": self.store.index.generation,
            "sources_searched": sorted(s.name for s in sources if s.status == "active"),
            "sources_restricted": sorted(s.name for s in sources if s.status == "restricted"),
            "sources_excluded": sorted(s.name for s in sources if s.status not in ("active", "restricted")),
        }
        if matched:
            self._gate.prepare_search_log()
        with self.store.catalog.session() as session, session.begin():
            entry = audit.append(
                session,
                actor=actor,
                action="search",
                details=details,
                at=at,
                faces=face_ids,
                texts={"purpose": purpose.strip()},
            )
            self._gate.log_search(
                session,
                seq=entry.seq,
                use_id=use_id,
                at=at,
                probe=probe,
                probe_sha256=probe_sha256,
                matched=matched,
                expires_at=expires,
            )
            self.uses.touch(session, use_id, self.uses.clock())
            if token_sha256 is not None:
                record_token_search(
                    session, token_sha256=token_sha256, seq=entry.seq, face_ids=face_ids, actor=actor, at=at
                )
        return entry.seq

    def _without_objections(self, hits: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """Drop faces of people who objected or asked for restriction: they are never returned."""
        hidden_templates = self._objections.hidden
        if not hits or not len(hidden_templates):
            return hits
        templates = self.store.catalog.face_templates([fid for fid, _ in hits])
        ids = [fid for fid, _ in hits if fid in templates]
        if not ids:
            return hits
        objected = match_any(
            hidden_templates,
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
