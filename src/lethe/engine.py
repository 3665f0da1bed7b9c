"""The engine: the composition root the CLI, the API and the web pages use. It opens the
:class:`~lethe.store.Store`, puts the privacy gate (:class:`~lethe.privacy.gate.Gate`, the one
writer of personal data) over it, builds the face pipeline on first use and exposes the services —
``search``, ``requests``, ``orders``, ``objections``, ``retention``, ``compliance_pack`` — which hold
the rules; it holds none of its own beyond wiring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from lethe.catalog import Catalog, Source
from lethe.catalog.repository import now_utc
from lethe.config import Settings
from lethe.crops import CropStore
from lethe.errors import InputError, LawfulBasisError, ModelError
from lethe.index import VectorIndex
from lethe.ingest import IngestReport, Progress, run_ingest
from lethe.ingest.roots import check_target, never_ingested
from lethe.ingest.work import Runner
from lethe.keyring import KeyRing
from lethe.model_ids import model_name
from lethe.pipeline import FacePipeline, build_pipeline
from lethe.privacy import SourceSpec, audit
from lethe.privacy.audit import AuditEntry, Verification
from lethe.privacy.audit_retention import AuditRetention
from lethe.privacy.consent import Consents
from lethe.privacy.disclosures import Disclosures
from lethe.privacy.gate import Gate, ReembedReport
from lethe.privacy.guests import GuestPages
from lethe.privacy.incidents import Incidents
from lethe.privacy.monitoring import Monitoring
from lethe.privacy.monitoring_report import audited_report
from lethe.privacy.objections import ActiveTemplates, Objections
from lethe.privacy.orders import Orders
from lethe.privacy.oversight import Oversight
from lethe.privacy.photos import matched_photo
from lethe.privacy.recipient_notices import RecipientNotices
from lethe.privacy.report import compliance_pack
from lethe.privacy.requests import SubjectRequests
from lethe.privacy.retention import Retention
from lethe.privacy.searches import AuditedSearch
from lethe.privacy.sources_lifecycle import SourceLifecycle
from lethe.privacy.verification import CandidateVerification
from lethe.search import Match, Search, SearchResult
from lethe.store import Store

__all__ = ["Lethe", "Match", "SearchResult"]

log = logging.getLogger(__name__)


class Lethe:
    """Open with ``Lethe(Settings())``; close with ``close()`` or use as a context manager."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings)
        self._pipeline: FacePipeline | None = None
        try:
            self.objection_templates = ActiveTemplates(self.store)
            self.gate = Gate(self.store, self.objection_templates)
            self.oversight = Oversight(self.store)
            self.verification = CandidateVerification(self.store)
            self.audit_retention = AuditRetention(self.store)
            self.monitoring = Monitoring(self.store)
            self.search = AuditedSearch(
                Search(self.store, lambda: self.pipeline), self.objection_templates, self.oversight, self.gate
            )
            self.uses = self.search.uses
            self.requests = SubjectRequests(self.gate, lambda: self.pipeline)
            self.orders = Orders(self.gate)
            self.source_lifecycle = SourceLifecycle(
                self.gate, self.orders, strict_declarations=settings.strict_declarations
            )
            self.objections = Objections(self.gate)
            self.retention = Retention(self.gate)
            self.consents = Consents(self.gate, lambda: self.pipeline)
            self.guests = GuestPages(self.store, self.consents)
            self.incidents = Incidents(self.store)
            self.disclosures = Disclosures(self.store)
            self.recipient_notices = RecipientNotices(self.store)
            for receipt in self.gate.resume_erasures():
                log.warning("resumed interrupted erasure job %d", receipt.job_id)
        except BaseException:
            self.store.close()
            raise

    def __enter__(self) -> Lethe:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    @property
    def pipeline(self) -> FacePipeline:
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.settings)
        return self._pipeline

    def prepare_models(self) -> FacePipeline:
        """Build the pipeline now: the model files are found (fetched when allowed) and checked, and
        the derived graphs (SFace's prepared graph, dlib's ONNX conversion) made once in the model
        cache, before ingest workers start and each would make them. Refuses an embedder whose model
        is not the one this store's templates were made with."""
        pipeline = self.pipeline
        if pipeline.embedder.model_sha256 != self.model_sha256:
            raise ModelError(
                f"the embedder's model file has sha256 {pipeline.embedder.model_sha256}, expected "
                f"{self.model_sha256} ({model_name(self.model_sha256)})"
            )
        return pipeline

    # The store's parts, for the tests and tools that inspect them.
    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def index(self) -> VectorIndex:
        return self.store.index

    @property
    def crops(self) -> CropStore:
        return self.store.crops

    @property
    def keyring(self) -> KeyRing:
        return self.store.keyring

    @property
    def model_sha256(self) -> str:
        return self.store.model_sha256

    def writing(self) -> AbstractContextManager[None]:
        return self.store.writing()

    # -- sources ---------------------------------------------------------------------------------

    def add_source(self, spec: SourceSpec, *, actor: str = "system") -> Source:
        """Register a source. Its declaration's warnings (:meth:`SourceSpec.warnings`) are recorded
        in the audit entry, or refuse it with ``strict_declarations``."""
        warnings = spec.warnings()
        if warnings and self.settings.strict_declarations:
            raise LawfulBasisError("declaration refused (LETHE_STRICT_DECLARATIONS): " + "; ".join(warnings))
        details = {
            "basis": spec.lawful_basis,
            "art9": spec.art9_condition,
            "jurisdiction": spec.jurisdiction,
            "retention_days": spec.retention_days,
            "mode": spec.mode,
            "collection": spec.collection,
            "warnings": len(warnings),
        }
        stopped = self.orders.in_force_for(spec.jurisdiction)
        source = self.catalog.add_source(
            spec,
            audit_as=audit.record(actor, "source.add", details | {"stopped": bool(stopped)}),
            status="restricted" if stopped else "active",
        )
        if stopped:  # a stop order on its country is in force: the source starts restricted
            self.orders.cover(source.id, stopped, actor=actor)
        return source

    def source_listing(self) -> list[dict[str, object]]:
        """Every source with its declaration, status and counts: what the CLI and the API show
        (``enrolled``: its active consents, people not faces; ``withdrawn``: consents withdrawn)."""
        consents = self.consents.counts()
        return [
            {
                "id": s.id,
                "source": s.name,
                "basis": s.lawful_basis,
                "art9": s.art9_condition,
                "purpose": s.purpose,
                "jurisdiction": s.jurisdiction,
                "retention_days": s.retention_days,
                "status": s.status,
                "mode": s.mode,
                "collection": s.collection,
                "legal_reference": s.legal_reference,
                "lia_reference": s.lia_reference,
                "warnings": SourceSpec.of(s).warnings(),
                "created_at": s.created_at.isoformat(),
                "images": images,
                "faces": faces,
                "enrolled": consents.get(s.id, (0, 0))[0],
                "withdrawn": consents.get(s.id, (0, 0))[1],
            }
            for s, images, faces in self.sources()
        ]

    def sources(self) -> list[tuple[Source, int, int]]:
        return self.store.sources()

    # -- ingest ----------------------------------------------------------------------------------

    def ingest(
        self,
        source_name: str,
        target: Path,
        progress: Progress | None = None,
        *,
        actor: str = "system",
        uri_for: Callable[[Path], str] | None = None,
        uploaded: bool = False,
        cancelled: Callable[[], bool] | None = None,
        workers: Callable[[], AbstractContextManager[Runner]] | None = None,
    ) -> IngestReport:
        """Ingest a folder, a manifest or one photo through the privacy gate (:mod:`lethe.privacy.gate`).
        ``uri_for`` names each photo in the catalog (default: its path as given); the service uses
        it for uploads, whose temporary files are deleted afterwards. Lethe's own folders are never
        read (:func:`never_ingested`: a target inside one is refused, a walk skips them), except
        with ``uploaded``: the service's own upload folder in the data folder's ``tmp/``.
        ``cancelled()`` stops the run between files (the report says ``cancelled``); ``workers()``
        lends workers kept warm between runs (the service's, :class:`lethe.ingest.local.WarmWorkers`)."""
        forbidden = self.never_ingested()
        if uploaded:
            uploads = (self.settings.data_dir / "tmp").resolve()
            if target.resolve().parent != uploads:
                raise InputError("uploaded photos are ingested from the service's upload folder only")
            forbidden = []
        else:
            check_target(target, forbidden)
        source = self.gate.admit(source_name)
        embedder = self.prepare_models().embedder
        with self.gate.ingesting(
            source, actor=actor, detector=self.settings.detector, embedder=embedder.name, uri_for=uri_for
        ) as writer:
            also = writer.other_models
            pipeline = self.pipeline if not also else build_pipeline(self.settings, also)
            report = run_ingest(
                target,
                self.settings,
                is_known=writer.is_known,
                is_erased=writer.is_erased,
                commit=writer.commit,
                pipeline=lambda: pipeline,
                progress=progress,
                also_models=also,
                forbidden=forbidden,
                cancelled=cancelled,
                workers=workers,
            )
        log.info(
            "ingest source_id=%s images=%d faces=%d no_face=%d skipped=%d errors=%d",
            source.id,
            report.images,
            report.faces,
            report.no_face,
            report.skipped,
            len(report.errors) + report.errors_omitted,
        )
        return report

    def never_ingested(self) -> list[Path]:
        """Lethe's own folders (data, exports, keys, temporary files): never ingested."""
        return never_ingested(self.settings, [self.keyring.master_path])

    def lift_erasure(
        self, *, actor: str, reason: str, job_id: int | None = None, sha256: str | None = None
    ) -> dict[str, object]:
        """An admin's audited override of an erasure (:meth:`lethe.privacy.gate.Gate.lift_erasure`)."""
        return self.gate.lift_erasure(actor=actor, reason=reason, job_id=job_id, sha256=sha256)

    # -- reads -----------------------------------------------------------------------------------

    def calibration(self, match_threshold: float | None = None) -> dict[str, object]:
        return self.search.calibration(match_threshold)

    def crop_jpeg(self, face_id: int) -> bytes:
        return self.store.crop_jpeg(face_id)

    def matched_photo(self, face_id: int, *, actor: str, search: int) -> bytes:
        """The photo of a face that search ``search`` returned, read again from its path, its box
        drawn; audited (:mod:`lethe.privacy.photos`). Only once that candidate identification is
        verified (:meth:`lethe.privacy.verification.CandidateVerification.require_verified`)."""
        self.verification.require_verified(search, face_id, actor)
        return matched_photo(self.store, face_id, actor=actor, forbidden=self.never_ingested())

    def candidate_probe_face(self, search_seq: int, face_id: int, *, actor: str) -> bytes:
        """The probe face search ``search_seq`` searched for, for a verifier of its candidate
        ``face_id`` to compare (:meth:`lethe.privacy.verification.CandidateVerification.probe_face`)."""
        return self.verification.probe_face(search_seq, face_id, actor=actor, pipeline=lambda: self.pipeline)

    def verify_audit(self) -> Verification:
        return self.catalog.verify_audit()

    def audit_entries(
        self, *, action: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[AuditEntry]:
        """Newest first; ``before`` a sequence number pages back."""
        with self.catalog.session() as session:
            return audit.entries(session, action=action, limit=limit, before=before)

    def count_audited(self, action: str, *, since: datetime) -> int:
        """How many times ``action`` was recorded since ``since`` (e.g. searches today)."""
        with self.catalog.session() as session:
            return audit.count(session, action, since=since)

    def compliance_pack(self, out: Path, *, actor: str) -> dict[str, object]:
        """The evidence pack for a regulator (lethe.privacy.report)."""
        return compliance_pack(self.store, self.requests, self.orders, self.objections, out, actor=actor)

    def monitoring_report(self, *, actor: str, since: datetime | None = None) -> dict[str, object]:
        """The aggregated monitoring report, no personal data (lethe.privacy.monitoring_report); audited."""
        return audited_report(self.store, actor=actor, since=since)

    def redact_audit_text(self, seq: int, *, actor: str, reason: str) -> list[str]:
        """Erase the free text (a stated purpose) of audit entry ``seq``; the chain still verifies."""
        if len(reason.strip()) < 3:
            raise InputError("a redaction needs a stated reason")
        with self.catalog.session() as session, session.begin():
            return audit.redact(session, seq, actor=actor, reason=reason.strip(), at=now_utc())

    # -- maintenance -----------------------------------------------------------------------------

    def remove_faces(self, face_ids: list[int], *, actor: str = "system", reason: str = "operator") -> int:
        """Erase faces everywhere (catalog rows, crops, vectors; physically). Returns faces erased."""
        return len(self.gate.erase(face_ids, reason=reason, actor=actor).erased_faces)

    def reembed(self, *, actor: str = "system", progress: Progress | None = None) -> ReembedReport:
        """Move faces whose templates another model made to the configured embedder (lethe.reembed)."""
        return self.gate.reembed(self.pipeline, actor=actor, progress=progress)

    def rotate_master_key(self, *, actor: str = "system") -> int:
        return self.store.rotate_master_key(audit_as=audit.record(actor, "keys.rotate", {}))

    def rebuild_index(self, *, actor: str = "system") -> dict[str, object]:
        return self.store.rebuild_index(audit_as=audit.record(actor, "index.rebuild", {}))
