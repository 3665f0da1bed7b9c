"""The facts the DPIA, the FRIA and the Art. 30 record are generated from, read live from the running
system (:mod:`lethe.privacy.assessments`): never typed in by hand, so the documents cannot drift from
what the installation does.

- :func:`material`: the facts a signature vouches for (sources with their basis, purpose, mode,
  jurisdiction and retention; the model and the version of its known limits; the thresholds; the
  verification policy and the oversight modes; the retention settings; the controller, the DPO and
  the recipients). A change of any of them after a document was signed makes it stale.
- :func:`gather`: those (as ``material``) and everything else a document states: counts of photos,
  faces and consents, the error rates measured at the thresholds and the known limits of those
  measurements (``lethe/known_limits.json``), usage volumes (from the monitoring report), the rights
  workflow's figures (requests by kind, response times, overdue), the technical and organisational
  measures in force (keys, audit chain, roles, sessions).

Counts and settings only: no template, no photo, no data subject's name or contact. Staff appear by
role counts; the signer and the stop's author by the audit log's actor name.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from lethe.calibration import calibration_file, implied, model_family
from lethe.catalog.consent_tables import ConsentRow
from lethe.catalog.privacy_tables import LegalOrderRow, RequestRow, SourceKeyRow
from lethe.catalog.tables import AuditEntryRow
from lethe.catalog.user_tables import UserRow
from lethe.model_ids import model_name
from lethe.privacy.access_words import art9_words, authority, basis_words, long_date, third_person
from lethe.privacy.disclosures import recipient_list
from lethe.privacy.monitoring_report import monitoring_report
from lethe.privacy.notice import COLLECTION_WORDS, MODE_WORDS
from lethe.privacy.orders import IN_FORCE
from lethe.privacy.oversight import Oversight
from lethe.privacy.requests.workflow import OPEN_STATES
from lethe.privacy.sources import SourceSpec
from lethe.privacy.technical_facts import known_limits
from lethe.privacy.verification import CandidateVerification

if TYPE_CHECKING:
    from lethe.catalog import Source
    from lethe.config import Settings
    from lethe.store import Store

#: The detectors, in words (their pinned files: lethe.models.registry).
DETECTOR_WORDS = {
    "yunet": "YuNet 2023mar (OpenCV Zoo, ONNX Runtime)",
    "hog": "dlib's HOG detector (histogram of oriented gradients)",
}


def source_words(source: Source) -> dict[str, str]:
    return {
        "basis_words": third_person(basis_words(source.lawful_basis, source.legal_reference)),
        "art9_words": third_person(art9_words(source.art9_condition)),
        "mode_words": MODE_WORDS.get(source.mode, source.mode),
        "collection_words": COLLECTION_WORDS.get(source.collection, source.collection.replace("_", " ")),
    }


def material(store: Store) -> dict[str, Any]:
    """The facts a signature vouches for (see the module), in a canonical shape."""
    settings = store.settings
    verification = CandidateVerification(store).policy()
    return {
        "controller": {"name": settings.controller_name, "dpo_contact": settings.dpo_contact},
        "sources": {
            s.name: {
                "lawful_basis": s.lawful_basis,
                "art9_condition": s.art9_condition,
                "legal_reference": s.legal_reference,
                "purpose": s.purpose,
                "jurisdiction": s.jurisdiction,
                "retention_days": s.retention_days,
                "mode": s.mode,
                "collection": s.collection,
            }
            for s in store.catalog.sources()
        },
        "model": {
            "embedder": settings.embedder,
            "model_sha256": store.model_sha256,
            "detector": settings.detector,
            "embed_flip": settings.embed_flip,
            "known_limits_version": _known_limits(settings)["version"],
        },
        "thresholds": {
            "match": settings.match_threshold,
            "erasure_automatic": settings.erasure_auto_threshold,
            "erasure_review": settings.erasure_review_threshold,
        },
        "oversight": {
            "verifiers_required": verification.required,
            "exemption": verification.legal_reference,
            "score_after_judgement": settings.verify_score_after_judgement,
            "erasure_second_signoff": settings.erasure_second_signoff,
        },
        "retention": {
            "log_days": settings.log_retention_days,
            "suppression_days": settings.erasure_suppression_days,
        },
        "recipients": {
            str(r["name"]): {
                "kind": r["kind"],
                "country": r["country"],
                "outside_eea": bool(r["outside_eea"]),
                "safeguard": r["safeguard"],
            }
            for r in recipient_list(store)
        },
    }


def gather(store: Store, *, now: datetime) -> dict[str, Any]:
    """Every fact of the three documents (see the module), read now."""
    settings = store.settings
    facts = material(store)
    sources = _sources(store)
    gallery = len(store.index)
    table = calibration_file(settings.embedder, settings.embed_flip)
    at_match = implied(settings.match_threshold, gallery, table)
    at_auto = implied(settings.erasure_auto_threshold, gallery, table)
    return {
        "generated_at": now.isoformat(),
        "generated_words": long_date(now),
        "material": facts,
        "controller": facts["controller"],
        "sources": sources,
        "totals": {
            "sources": len(sources),
            "images": sum(s["images"] for s in sources),
            "faces": sum(s["faces"] for s in sources),
            "consents_active": sum(s["consents_active"] for s in sources),
            "consents_withdrawn": sum(s["consents_withdrawn"] for s in sources),
            "consents_parental": sum(s["consents_parental"] for s in sources),
            "jurisdictions": sorted({s["jurisdiction"] for s in sources}),
            "all_faces_sources": sum(1 for s in sources if s["mode"] == "all_faces"),
            "enrolled_only_sources": sum(1 for s in sources if s["mode"] == "enrolled_only"),
        },
        "model": facts["model"]
        | {
            "embedder_model": model_name(store.model_sha256),
            "detector_words": DETECTOR_WORDS.get(settings.detector, settings.detector),
            "index": settings.index,
            "index_kind": settings.index_kind,
            "gallery_faces": gallery,
            "known_limits": _known_limits(settings),
        },
        "thresholds": facts["thresholds"],
        "error_rates": {
            "at_match_threshold": at_match.as_dict() if at_match else None,
            "at_erasure_automatic_threshold": at_auto.as_dict() if at_auto else None,
            "calibration": table.name,
        },
        "oversight": _oversight(store, facts["oversight"]),
        "usage": _usage(store, now),
        "retention": facts["retention"]
        | {
            "per_source_days": {s["source"]: s["retention_days"] for s in sources},
            "request_contact_confirmation_s": settings.contact_confirmation_ttl_s,
        },
        "rights": _rights(store, now),
        "security": _security(store),
        "recipients": recipient_list(store),
    }


def _known_limits(settings: Settings) -> dict[str, Any]:
    """The packaged known limits of the measurements (``lethe/known_limits.json``, shared with the
    technical documentation) that apply to this embedder and detector."""
    packaged = known_limits({model_family(settings.embedder), settings.detector})
    return {
        "file": packaged["file"],
        "version": packaged["version"],
        "limits": [
            {k: limit[k] for k in ("id", "title", "measured", "what", "deployer_action")}
            for limit in packaged["limits"]
        ],
    }


def _sources(store: Store) -> list[dict[str, Any]]:
    with store.catalog.session() as session:
        consents = session.execute(
            select(
                ConsentRow.source_id,
                ConsentRow.withdrawn_at.is_(None),
                ConsentRow.age_attestation,
                func.count(),
            ).group_by(ConsentRow.source_id, ConsentRow.withdrawn_at.is_(None), ConsentRow.age_attestation)
        ).all()
    counts: dict[int, Counter[str]] = {}
    for source_id, active, attestation, n in consents:
        tally = counts.setdefault(int(source_id), Counter())
        tally["active" if active else "withdrawn"] += int(n)
        if attestation == "parental" and active:
            tally["parental"] += int(n)
    out = []
    for source, images, faces in store.sources():
        tally = counts.get(source.id, Counter())
        out.append(
            {
                "source": source.name,
                "lawful_basis": source.lawful_basis,
                "art9_condition": source.art9_condition,
                "legal_reference": source.legal_reference,
                "lia_reference": source.lia_reference,
                "purpose": source.purpose,
                "jurisdiction": source.jurisdiction,
                "authority": authority(source.jurisdiction)["authority"],
                "retention_days": source.retention_days,
                "mode": source.mode,
                "collection": source.collection,
                "status": source.status,
                "registered_at": source.created_at.isoformat(),
                "images": images,
                "faces": faces,
                "consents_active": tally["active"],
                "consents_withdrawn": tally["withdrawn"],
                "consents_parental": tally["parental"],
                "warnings": SourceSpec.of(source).warnings(),
                **source_words(source),
            }
        )
    return out


def _oversight(store: Store, declared: dict[str, Any]) -> dict[str, Any]:
    settings = store.settings
    verification = CandidateVerification(store)
    competences = verification.competences.listing()
    with store.catalog.session() as session:
        orders = session.execute(select(LegalOrderRow.state, LegalOrderRow.jurisdiction)).all()
    return declared | {
        "verifiers_trained": sum(1 for c in competences if c["competence"] == "verifier" and c["held"]),
        "verifiers_lapsed": sum(1 for c in competences if c["competence"] == "verifier" and not c["held"]),
        "verifier_training_days": settings.verifier_training_days,
        "global_stop": Oversight(store).state().as_dict(),
        "orders_in_force": sorted({j for state, j in orders if state in IN_FORCE}),
        "orders_total": len(orders),
        "misuse_alerts": {
            "daily_searches": settings.alert_daily_searches,
            "volume_factor": settings.alert_volume_factor,
            "repeated_probe": settings.alert_repeated_probe,
            "working_hours": settings.working_hours or None,
            "open_use_searches": settings.alert_open_use_searches,
        },
        "search_rate_per_minute": settings.search_rate_per_minute,
        "use_timeout_minutes": settings.use_timeout_minutes,
    }


def _usage(store: Store, now: datetime) -> dict[str, Any]:
    """Volumes from the monitoring report (aggregated, no personal data) and the first and last
    search."""
    report = monitoring_report(store, now=now)
    weeks = [w for w in report["weeks"] if w["searches"]]
    with store.catalog.session() as session:
        first, last = session.execute(
            select(func.min(AuditEntryRow.at), func.max(AuditEntryRow.at)).where(
                AuditEntryRow.action == "search"
            )
        ).one()
    searches = sum(w["searches"] for w in weeks)
    span_weeks = max(1, ((now - first).days // 7) + 1) if first else 0
    alerts: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    for week in report["weeks"]:
        alerts.update(week["alerts"])
        bands.update(week["matches_by_band"])
    return {
        "searches": searches,
        "searches_with_match": sum(w["searches_with_match"] for w in weeks),
        "matches": sum(bands.values()),
        "matches_by_band": dict(bands),
        "first_search_at": first.isoformat() if first else None,
        "last_search_at": last.isoformat() if last else None,
        "first_search_words": long_date(first),
        "last_search_words": long_date(last),
        "weeks_with_searches": len(weeks),
        "searches_per_week": round(searches / span_weeks, 1) if span_weeks else 0.0,
        "busiest_week": max(weeks, key=lambda w: w["searches"])["searches"] if weeks else 0,
        "most_operators_in_a_week": max((w["operators"] for w in weeks), default=0),
        "alerts": dict(alerts),
        "drift_flagged": report["drift_flagged"],
    }


def _rights(store: Store, now: datetime) -> dict[str, Any]:
    """The rights workflow as a complaint channel: requests by kind and channel, response times,
    what is open and overdue."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(
                RequestRow.kind,
                RequestRow.state,
                RequestRow.channel,
                RequestRow.received_at,
                RequestRow.due_at,
                RequestRow.answered_at,
                RequestRow.extension_reason,
            )
        ).all()
    days = [(r.answered_at - r.received_at).total_seconds() / 86400 for r in rows if r.answered_at]
    return {
        "requests": len(rows),
        "by_kind": dict(Counter(r.kind for r in rows)),
        "by_channel": dict(Counter(r.channel for r in rows)),
        "open": sum(1 for r in rows if r.state in OPEN_STATES),
        "overdue": sum(1 for r in rows if r.state in OPEN_STATES and r.due_at < now),
        "answered": len(days),
        "answered_late": sum(1 for r in rows if r.answered_at and r.answered_at > r.due_at),
        "extended": sum(1 for r in rows if r.extension_reason),
        "median_response_days": round(statistics.median(days), 1) if days else None,
        "max_response_days": round(max(days), 1) if days else None,
    }


def _security(store: Store) -> dict[str, Any]:
    """The technical and organisational measures as they are, not as they should be."""
    settings = store.settings
    data_dir = settings.data_dir.resolve()
    master = (settings.master_key_file or settings.data_dir / "keys" / "master.key").resolve()
    with store.catalog.session() as session:
        source_ids = {s.id for s in store.catalog.sources()}
        keys = session.scalars(select(SourceKeyRow.source_id)).all()
        roles: Counter[str] = Counter()
        for role_list, disabled in session.execute(select(UserRow.roles, UserRow.disabled_at)):
            if disabled is None:
                roles.update(filter(None, role_list.split(",")))
    verification = store.verify_audit()
    checkpoints, _, _ = store.audit_checkpoints()
    return {
        "encryption": "AES-256-GCM",
        "source_keys": sum(1 for k in keys if k in source_ids),
        "master_key_inside_data_folder": master.is_relative_to(data_dir),
        "index": settings.index,
        "index_sealed": settings.index == "faiss",
        "audit_chain_ok": verification.ok,
        "audit_entries": verification.entries,
        "audit_checkpoints": len(checkpoints),
        "log_retention_days": settings.log_retention_days,
        "roles": dict(sorted(roles.items())),
        "session_max_age_s": settings.session_max_age_s,
        "token_days": settings.token_days,
        "login_failures": settings.login_failures,
        "cookie_secure": settings.cookie_secure,
    }
