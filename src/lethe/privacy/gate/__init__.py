"""The privacy gate: the one code path that stores, changes or deletes personal data — faces and
their templates, crops and vectors; requesters' contact addresses, photos and templates; objection
and restriction templates; source keys (shredding).

Every method of :class:`Gate`
- takes the store's write lock itself (catalog, crops and index move together under it; the lock is
  re-entrant, so a gate method may call another);
- writes its audit entry in the same catalog transaction as the change it records, built by the
  audit policy (:mod:`lethe.privacy.audit`);
- applies the rules that decide whether the write may happen: a source's status (stopped by an
  order, basis lapsed) before ingest, active objections on every new face, erasure tombstones (an
  erased photo's hash is never ingested again into its source).

Its modules are the gate's internals: ``ingest`` (new faces), ``erasure`` (planned, idempotent,
resumable physical erasure), ``probes`` (a request's personal data), ``objections`` and ``reembed``
(templates of another model replaced). ``tests/test_layers.py`` proves that no other module of
Lethe writes these tables or files; later rules (consent gating, two-person confirmation) plug in
here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.orm import Session

from lethe.catalog import Source
from lethe.catalog.repository import now_utc
from lethe.errors import LawfulBasisError
from lethe.privacy.gate import enrolment, erasure, objections, probes, search_log, sources
from lethe.privacy.gate.erasure import Eraser, ErasureReceipt
from lethe.privacy.gate.ingest import IngestGate
from lethe.privacy.gate.reembed import ReembedReport, reembed
from lethe.privacy.objections import ActiveTemplates
from lethe.store import Store

if TYPE_CHECKING:
    from lethe.ingest import Progress
    from lethe.pipeline import FacePipeline

__all__ = ["ErasureReceipt", "Gate", "IngestGate", "ReembedReport"]


class Gate:
    """The personal-data writer of one open store (see the module)."""

    def __init__(self, store: Store, objection_templates: ActiveTemplates) -> None:
        self.store = store
        self.objection_templates = objection_templates
        self._eraser = Eraser(store)

    # -- new faces -------------------------------------------------------------------------------

    def admit(self, source_name: str) -> Source:
        """The source, if ingest into it is allowed now."""
        source = self.store.catalog.source(source_name)
        if source.status != "active":
            raise LawfulBasisError(f"source {source.name!r} is {source.status}; ingest is refused")
        return source

    @contextmanager
    def ingesting(
        self,
        source: Source,
        *,
        actor: str,
        detector: str,
        embedder: str,
        uri_for: Callable[[Path], str] | None = None,
    ) -> Iterator[IngestGate]:
        """Hold the write lock for one ingest into ``source`` and give the writer of its batches;
        afterwards the index is restructured if it grew past its exact size, and saved."""
        with self.store.writing():
            objections.expire(self.store)  # erasure suppressions past their period go first
            writer = IngestGate(
                self.store,
                self.objection_templates,
                self.admit(source.name),
                actor=actor,
                detector=detector,
                embedder=embedder,
                uri_for=uri_for,
            )
            yield writer
            self.store.restructure_if_grown()
            self.store.index.save()

    # -- erasure ---------------------------------------------------------------------------------

    def erase(
        self,
        face_ids: Sequence[int],
        *,
        reason: str,
        actor: str,
        request_id: int | None = None,
        order_id: int | None = None,
    ) -> ErasureReceipt:
        """Erase faces everywhere, physically: catalog rows (photos left empty become tombstones),
        crops, vectors, access exports showing them (see :mod:`lethe.privacy.gate.erasure`)."""
        with self.store.writing():
            return self._eraser.erase(
                face_ids, reason=reason, actor=actor, request_id=request_id, order_id=order_id
            )

    def resume_erasures(self) -> list[ErasureReceipt]:
        """Finish every erasure a crash interrupted."""
        if not self._eraser.pending():
            return []
        with self.store.writing():
            return self._eraser.resume()

    def receipt(self, job_id: int) -> ErasureReceipt | None:
        return self._eraser.receipt(job_id)

    def lift_erasure(
        self, *, actor: str, reason: str, job_id: int | None = None, sha256: str | None = None
    ) -> dict[str, object]:
        """An admin's audited override: the tombstones of one photo hash (``sha256``), or those of one
        erasure job and its request's erasure suppression (``job_id``), are deleted, so the photos
        may be ingested again. The caller checks that the actor is an admin."""
        with self.store.writing():
            return erasure.lift(self.store, actor=actor, reason=reason, job_id=job_id, sha256=sha256)

    def expire_erasure_suppressions(self) -> int:
        """Delete erasure suppressions past ``erasure_suppression_days`` (also done before each ingest)."""
        with self.store.writing():
            return objections.expire(self.store)

    def delete_source(self, source_id: int, *, actor: str) -> ErasureReceipt:
        """Erase a deleted source's personal data: every face through the erasure path (its
        receipt is returned), its other photo records and consent secrets, then its data key
        (:mod:`lethe.privacy.gate.sources`)."""
        with self.store.writing():
            return sources.delete_source(self.store, self._eraser, source_id, actor=actor)

    def shred(self, source_ids: Sequence[int]) -> None:
        """Crypto-erase sources: their data keys are deleted, so every template and crop of theirs
        that any copy still holds is noise."""
        with self.store.writing():
            for source_id in source_ids:
                self.store.keyring.shred(source_id)

    # -- requests --------------------------------------------------------------------------------

    def open_request(
        self,
        *,
        kind: str,
        photos: Sequence[bytes],
        templates: Sequence[np.ndarray],
        faces: Sequence[int],
        contact: str,
        channel: str,
        actor: str,
        received: datetime,
        due: datetime,
        confirm_code: str | None = None,
        confirm_hash: str | None = None,
        confirm_until: datetime | None = None,
        language: str | None = None,
    ) -> int:
        """Store a new request with the requester's sealed contact and photos; its id. With
        ``confirm_code`` (the portal) the request waits for the code, which is sent in a message
        written to the outbox (:func:`probes.outbox`)."""
        with self.store.writing():
            return probes.open_request(
                self.store,
                kind=kind,
                photos=photos,
                templates=templates,
                faces=faces,
                contact=contact,
                channel=channel,
                actor=actor,
                received=received,
                due=due,
                confirm_code=confirm_code,
                confirm_hash=confirm_hash,
                confirm_until=confirm_until,
                language=language,
            )

    def drop_confirmation(self, request_id: int) -> bool:
        """Delete a request's confirmation message still waiting in the outbox (the code came back,
        or the request expired): it holds the contact address in clear."""
        with self.store.writing():
            return probes.drop_message(self.store, request_id)

    def replace_probe_template(self, probe_id: int, template: np.ndarray) -> None:
        with self.store.writing():
            probes.replace_template(self.store, probe_id, template)

    @staticmethod
    def drop_probes(session: Session, request_id: int) -> int:
        """Delete a closing request's photos and templates inside the caller's transaction, the one
        that closes the request (a catalog-only change, atomic with the close)."""
        return probes.drop(session, request_id, now_utc())

    # -- the search log (issue 18) ---------------------------------------------------------------

    def prepare_search_log(self) -> None:
        """Make the log key ready; call it before the transaction :meth:`log_search` writes in."""
        search_log.prepare(self.store)

    def log_search(
        self,
        session: Session,
        *,
        seq: int,
        use_id: int,
        at: datetime,
        probe: bytes,
        probe_sha256: str,
        matched: bool,
        expires_at: datetime,
    ) -> None:
        """A search's log row inside the transaction appending its audit entry ``seq``; the probe
        is stored, sealed under the log key until ``expires_at``, only when the search matched (a
        catalog-only insert: no write lock, see :mod:`lethe.privacy.gate.search_log`)."""
        search_log.log(
            self.store,
            session,
            seq=seq,
            use_id=use_id,
            at=at,
            probe=probe,
            probe_sha256=probe_sha256,
            matched=matched,
            expires_at=expires_at,
        )

    def expire_search_probes(self, *, actor: str = "system", now: datetime | None = None) -> int:
        """Delete the matched searches' probes past the log retention (audited ``probe.expired``)."""
        with self.store.writing():
            return search_log.expire(self.store, now=now or now_utc(), actor=actor)

    def search_probe(self, seq: int) -> bytes | None:
        """The probe of search ``seq``, decrypted, while the log keeps it (a regulator's export)."""
        return search_log.probe(self.store, seq)

    # -- objections and restrictions -------------------------------------------------------------

    def suppress(self, templates: np.ndarray, *, request_id: int | None, actor: str, scope: str) -> int:
        """Store (or replace) a request's objection or restriction templates, or add to its erasure
        suppression (scope ``erasure``); how many it holds."""
        with self.store.writing():
            return objections.suppress(self.store, templates, request_id=request_id, actor=actor, scope=scope)

    def withdraw_objection(self, suppression_id: int, *, actor: str) -> None:
        with self.store.writing():
            objections.withdraw(self.store, suppression_id, actor=actor)

    # -- consents (enrolled_only sources) --------------------------------------------------------

    def set_consent_text(self, source: Source, text: str, *, actor: str) -> int:
        """A new version of a source's consent text; its number."""
        with self.store.writing():
            return enrolment.set_text(self.store, source, text, actor=actor)

    def enrol(
        self,
        source: Source,
        template: np.ndarray,
        *,
        text_version: int,
        contact: str | None,
        channel: str,
        age_attestation: str,
        age_threshold: int,
        link_hash: str | None,
        actor: str,
    ) -> int:
        """Record a consent with its sealed template; its id (the scan of older photos is pending)."""
        with self.store.writing():
            return enrolment.enrol(
                self.store,
                self.admit(source.name),
                template,
                text_version=text_version,
                contact=contact,
                channel=channel,
                age_attestation=age_attestation,
                age_threshold=age_threshold,
                link_hash=link_hash,
                actor=actor,
            )

    def scan_consents(self, consent_ids: Sequence[int], pipeline: FacePipeline, *, actor: str) -> int:
        """Find consents' people (of one source, their scans at the same place) in the photos stored
        before them, in one pass; how many face links it made."""
        with self.store.writing():
            report = enrolment.scan(self.store, consent_ids, pipeline, self.objection_templates, actor=actor)
            if report.stored:
                self.store.restructure_if_grown()
                self.store.index.save()
            return report.linked

    def withdraw_consent(self, consent_id: int, *, actor: str) -> ErasureReceipt | None:
        """Withdraw a consent: its faces erased (the photos stay), its template and contact deleted."""
        with self.store.writing():
            return enrolment.withdraw(self.store, self._eraser, consent_id, actor=actor)

    # -- templates of another model --------------------------------------------------------------

    def reembed(
        self, pipeline: FacePipeline, *, actor: str, progress: Progress | None = None
    ) -> ReembedReport:
        """Move faces whose templates another model made to the configured embedder."""
        with self.store.writing():
            return reembed(self.store, pipeline, actor=actor, progress=progress)
