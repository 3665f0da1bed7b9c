"""Notification drafts of an incident, prefilled from the catalog and the audit log, and the
incident register's part of the evidence pack (:func:`pack_files`).

Three drafts, each with its fields, its text, the fields a person must still complete (marked
``[TO COMPLETE: ...]``, never guessed) and the sha256 of its content:

- ``supervisory_authority`` (GDPR Art. 33(3)(a)-(d)): the nature of the breach with the categories
  and approximate numbers of data subjects and records (the affected sources' photos, faces and
  consents, at opening and now), the DPO's contact (``LETHE_DPO_CONTACT``), the likely consequences,
  the measures taken (the actions recorded) and, when late, the reasons for the delay; the
  authorities of the sources' countries; the Art. 34(3)(a) answer from the actual encryption state
  (:mod:`lethe.privacy.encryption_state`).
- ``data_subjects`` (GDPR Art. 34(2)): the same facts in plain language, for the people concerned.
- ``market_surveillance_authority`` (AI Act Art. 73): the reporting deployer, the AI system (version,
  models), the serious incident's category and deadline, the Member States, the persons affected,
  the causal link (for a person to state), the corrective actions, and whether it is the initial,
  incomplete report that Art. 73(5) allows.

Every draft carries the evidence: the audit chain's head (seq and hash) when it was made, what the
searches and ingests of the incident's window were (counts from the audit log: never a face, a
template or a name), and its own sha256 over its canonical JSON. Drafts are read, not recorded: a
notification recorded with ``lethe incident notify`` keeps the sha256 of the draft current then.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.catalog import audit_log
from lethe.catalog.tables import AuditEntryRow, AuditFaceRow, FaceRow, ImageRow, SourceRow
from lethe.model_ids import model_name
from lethe.privacy.access_words import art9_words, authority, basis_words
from lethe.privacy.encryption_state import encryption_state
from lethe.privacy.incident_clocks import AI_CATEGORIES, Incident, utc
from lethe.privacy.incidents import Incidents, source_counts
from lethe.privacy.pages import render

if TYPE_CHECKING:
    from lethe.store import Store

TODO = "[TO COMPLETE: {}]"
KINDS = ("supervisory_authority", "data_subjects", "market_surveillance_authority")


def _todo(what: str) -> str:
    return TODO.format(what)


def _version() -> str:
    try:
        return importlib.metadata.version("lethe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def sha256_of(payload: dict[str, Any]) -> str:
    """The sha256 of ``payload`` as canonical JSON (keys sorted, no spaces, ASCII)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- facts from the catalog and the audit log --------------------------------------------------------


def _sources(session: Session, incident: Incident) -> list[dict[str, Any]]:
    out = []
    for affected in incident.sources:
        row = session.get(SourceRow, affected.id)
        images, faces, consents = source_counts(session, affected.id)
        fact: dict[str, Any] = affected.as_dict() | {
            "images_now": images,
            "faces_now": faces,
            "consents_now": consents,
            "exists": row is not None,
        }
        if row is not None:
            fact |= {
                "jurisdiction": row.jurisdiction,
                "mode": row.mode,
                "status": row.status,
                "purpose": row.purpose,
                "lawful_basis": basis_words(row.lawful_basis, row.legal_reference),
                "art9_condition": art9_words(row.art9_condition),
            }
        out.append(fact)
    return out


def _window(session: Session, incident: Incident, now: datetime) -> dict[str, Any] | None:
    """What the audit log holds for the incident's window: counts only."""
    if incident.window_start is None and incident.window_end is None:
        return None
    start = incident.window_start or datetime.min.replace(tzinfo=incident.aware_at.tzinfo)
    end = incident.window_end or now
    inside = (AuditEntryRow.at >= start, AuditEntryRow.at <= end)
    by_action = Counter(
        {
            str(action): int(n)
            for action, n in session.execute(
                select(AuditEntryRow.action, func.count()).where(*inside).group_by(AuditEntryRow.action)
            )
        }
    )
    actors = session.scalar(select(func.count(func.distinct(AuditEntryRow.actor))).where(*inside))
    names = {s.name for s in incident.sources}
    ids = {s.id for s in incident.sources}
    searched_affected = ingests = ingested_images = ingested_faces = 0
    for action, raw in session.execute(
        select(AuditEntryRow.action, AuditEntryRow.details).where(
            *inside, AuditEntryRow.action.in_(("search", "ingest"))
        )
    ):
        details = json.loads(raw)
        if action == "search" and names.intersection(details.get("sources_searched") or []):
            searched_affected += 1
        elif action == "ingest" and details.get("source_id") in ids:
            ingests += 1
            ingested_images += int(details.get("images") or 0)
            ingested_faces += int(details.get("faces") or 0)
    returned = select(func.distinct(AuditFaceRow.face_id)).join(
        AuditEntryRow, AuditEntryRow.seq == AuditFaceRow.seq
    )
    returned = returned.where(*inside)
    faces_returned = session.scalar(select(func.count()).select_from(returned.subquery()))
    held = session.scalar(
        select(func.count(FaceRow.id))
        .join(ImageRow, FaceRow.image_id == ImageRow.id)
        .where(FaceRow.id.in_(returned), ImageRow.source_id.in_(ids or {0}))
    )
    return {
        "start": incident.window_start.isoformat() if incident.window_start else None,
        "end": end.isoformat(),
        "end_is_now": incident.window_end is None,
        "audited_actions": dict(sorted(by_action.items())),
        "actors": int(actors or 0),
        "searches": by_action.get("search", 0),
        "searches_of_affected_sources": searched_affected,
        "faces_returned": int(faces_returned or 0),
        "faces_returned_still_held_in_affected_sources": int(held or 0),
        "ingests_into_affected_sources": ingests,
        "images_ingested": ingested_images,
        "faces_ingested": ingested_faces,
    }


def facts(store: Store, incident: Incident, *, now: datetime) -> dict[str, Any]:
    """Everything the drafts say, from the catalog, the audit log and the settings."""
    with store.catalog.session() as session:
        sources = _sources(session, incident)
        window = _window(session, incident, now)
        seq, head = audit_log.head(session)
    settings = store.settings
    return {
        "incident": incident.as_dict(now),
        "sources": sources,
        "window": window,
        "actions": [s.as_dict() for s in incident.steps if s.kind == "action"],
        "encryption": encryption_state(store).as_dict(),
        "controller": settings.controller_name,
        "dpo_contact": settings.dpo_contact,
        "system": {
            "name": "Lethe",
            "version": _version(),
            "detector": settings.detector,
            "embedder": settings.embedder,
            "model": model_name(store.model_sha256),
            "model_sha256": store.model_sha256,
            "index": settings.index,
        },
        "audit_head": {"seq": seq, "hash": head},
        "generated_at": now.isoformat(),
    }


# -- the drafts --------------------------------------------------------------------------------------


def _totals(sources: Iterable[dict[str, Any]]) -> dict[str, int]:
    listed = list(sources)
    return {
        key: sum(int(s[key]) for s in listed)
        for key in ("images_at_opening", "faces_at_opening", "consents_at_opening", "faces_now")
    }


def _subjects(sources: list[dict[str, Any]]) -> list[str]:
    """Categories and approximate numbers of data subjects, per source, in words."""
    lines = []
    for s in sources:
        if s.get("mode") == "enrolled_only":
            people = (
                f"about {s['consents_at_opening']} enrolled person(s) who consented (faces of others "
                "are not stored in this source)"
            )
        else:
            people = (
                f"up to {s['faces_at_opening']} person(s): {s['faces_at_opening']} face(s) in "
                f"{s['images_at_opening']} photo(s); one person may appear in several photos and "
                "Lethe does not count persons"
            )
        purpose = f" (photos held for: {s['purpose']})" if s.get("purpose") else ""
        lines.append(f"people photographed in the source {s['name']}{purpose}: {people}")
    return lines or [_todo("the categories and approximate number of data subjects: no source was named")]


def _records(sources: list[dict[str, Any]]) -> list[str]:
    totals = _totals(sources)
    return [
        f"{totals['faces_at_opening']} face template(s) (biometric data, GDPR Art. 9) and as many face crops",
        f"{totals['images_at_opening']} photo record(s): path or URI, source page link, caption, "
        "capture and ingest dates, size, content hash; per face its box, landmarks and quality",
        f"{totals['consents_at_opening']} active consent record(s) (dates, consent text version; "
        "enrolment template and contact sealed)",
        "audit log entries of the searches that returned these faces (who searched, when, the stated "
        "purpose)",
    ]


def _consequences(encryption: dict[str, Any]) -> str:
    return (
        "Face templates are biometric data: whoever can read them can recognise these people in "
        "other photos (re-identification, tracking, profiling); crops and photo metadata show "
        "what they look like and where and when they were photographed. "
        + encryption["answer"]
        + " "
        + _todo("the consequences for these people in this incident, as assessed by the DPO")
    )


def _measures(actions: list[dict[str, Any]]) -> list[str]:
    taken = [f"{a['at'][:16].replace('T', ' ')} UTC: {a['text'] or '(text erased)'}" for a in actions]
    return taken + [_todo("measures proposed, including to mitigate possible adverse effects")]


def _authority_draft(f: dict[str, Any]) -> dict[str, Any]:
    incident = f["incident"]
    clock = next((c for c in incident["clocks"] if c["recipient"] == "supervisory_authority"), None)
    offices = sorted({s["jurisdiction"] for s in f["sources"] if s.get("jurisdiction")})
    fields: dict[str, Any] = {
        "controller": f["controller"] or _todo("the controller's name and address"),
        "authorities_of_the_sources_countries": [authority(j)["authority"] for j in offices]
        or [_todo("the competent supervisory authority (GDPR Art. 55-56)")],
        "aware_at": incident["aware_at"],
        "due_at": clock["due_at"] if clock else None,
        "clock": clock["words"] if clock else None,
        "a_nature": incident["description"] or _todo("the nature of the breach (text erased)"),
        "a_data_subjects": _subjects(f["sources"]),
        "a_records": _records(f["sources"]),
        "b_contact": f["dpo_contact"] or _todo("the DPO's name and contact details (LETHE_DPO_CONTACT)"),
        "c_likely_consequences": _consequences(f["encryption"]),
        "d_measures": _measures(f["actions"]),
        "art34_3_a": f["encryption"],
        "window": f["window"] or _todo("the time window (none was recorded with the incident)"),
    }
    if clock and clock["state"] in ("overdue", "late"):
        fields["reasons_for_delay"] = _todo("the reasons for the delay (GDPR Art. 33(1))")
    return {
        "recipient": "supervisory_authority",
        "law": "GDPR Art. 33(3)(a)-(d)",
        "title": f"Notification of a personal data breach (incident {incident['id']})",
        "fields": fields,
    }


def _subjects_draft(f: dict[str, Any]) -> dict[str, Any]:
    incident = f["incident"]
    contact = f["dpo_contact"] or _todo("the DPO's contact details")
    fields = {
        "what_happened": incident["description"] or _todo("what happened, in plain words"),
        "when": f"we learned of it on {utc(datetime.fromisoformat(incident['aware_at']))}",
        "your_data": "your face as it appears in our photos: the template we compute from it to recognise "
        "it, a small picture of it, and where and when the photo was taken",
        "likely_consequences": _consequences(f["encryption"]),
        "what_we_did": _measures(f["actions"]),
        "what_you_can_do": _todo(
            "advice to the people concerned (e.g. watch for unexpected use of their photos)"
        ),
        "contact": f"our data-protection officer: {contact}",
        "your_rights": "You can ask us for access to your data and its erasure, and complain to a "
        "supervisory authority (GDPR Art. 77).",
    }
    return {
        "recipient": "data_subjects",
        "law": "GDPR Art. 34(2), in clear and plain language",
        "title": "A security incident concerning photos of you",
        "fields": fields,
    }


def _msa_draft(f: dict[str, Any]) -> dict[str, Any]:
    incident = f["incident"]
    category = AI_CATEGORIES[incident["ai_category"]]
    clock = next((c for c in incident["clocks"] if c["recipient"] == "market_surveillance_authority"), None)
    reported = any(
        s["kind"] == "notified" and s["recipient"] == "market_surveillance_authority"
        for s in incident["steps"]
    )
    totals = _totals(f["sources"])
    fields = {
        "report_type": "follow-up report"
        if reported
        else "initial report (may be incomplete, AI Act Art. 73(5))",
        "reporter": f["controller"] or _todo("the deployer's name and address"),
        "reporter_role": "deployer (reporting under AI Act Art. 26(5); the provider is informed too)",
        "ai_system": f["system"],
        "eu_database_registration": _todo("the EU database registration number (AI Act Art. 49), if any"),
        "category": category.words,
        "deadline": f"{category.paragraph}: {category.days} days after awareness",
        "due_at": clock["due_at"] if clock else None,
        "clock": clock["words"] if clock else None,
        "occurred_at": incident["occurred_at"],
        "aware_at": incident["aware_at"],
        "member_states": sorted({s["jurisdiction"] for s in f["sources"] if s.get("jurisdiction")})
        or [_todo("the Member States where the incident occurred")],
        "description": incident["description"] or _todo("the description (text erased)"),
        "persons_affected": f"up to {totals['faces_at_opening']} face(s) in {totals['images_at_opening']} "
        f"photo(s) of the sources {', '.join(s['name'] for s in f['sources']) or '(none named)'}; "
        "Lethe does not count persons",
        "causal_link": _todo(
            "whether a causal link between the AI system and the incident is established "
            "or reasonably likely (AI Act Art. 73(2))"
        ),
        "corrective_actions": _measures(f["actions"]),
        "window": f["window"] or _todo("the time window (none was recorded with the incident)"),
    }
    return {
        "recipient": "market_surveillance_authority",
        "law": f"AI Act Art. 73 ({category.paragraph})",
        "title": f"Serious incident report (incident {incident['id']})",
        "fields": fields,
    }


def _blanks(value: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path] if "[TO COMPLETE:" in value else []
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in _blanks(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return sorted({b for v in value for b in _blanks(v, path)})
    return []


def _lines(value: Any, indent: str) -> list[str]:
    """A field's value as indented plain-text lines."""
    if isinstance(value, dict):
        if {"what", "where", "how"} <= set(value):
            return [f"{indent}{value['what']} ({value['where']}): {value['how']}"]
        out = []
        for key, item in value.items():
            if isinstance(item, dict | list):
                out += [f"{indent}{key.replace('_', ' ')}:", *_lines(item, indent + "  ")]
            else:
                out.append(f"{indent}{key.replace('_', ' ')}: {item if item is not None else '-'}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            nested = _lines(item, indent + "  ")
            out += [f"{indent}- {nested[0].strip()}", *nested[1:]] if nested else []
        return out or [f"{indent}- none"]
    return [f"{indent}{value if value is not None else '-'}"]


def _text_of(draft: dict[str, Any]) -> str:
    lines = [draft["title"], f"({draft['law']})", ""]
    for key, value in draft["fields"].items():
        label = key.replace("_", " ")
        if isinstance(value, dict | list):
            lines += [f"{label}:", *_lines(value, "  ")]
        else:
            lines.append(f"{label}: {value if value is not None else '-'}")
    return "\n".join(lines) + "\n"


def drafts(store: Store, incident: Incident, *, now: datetime) -> dict[str, Any]:
    """The incident's notification drafts at ``now`` (see the module), with the evidence."""
    f = facts(store, incident, now=now)
    made = []
    if incident.personal_data_breach:
        made += [_authority_draft(f), _subjects_draft(f)]
    if incident.ai_category:
        made.append(_msa_draft(f))
    evidence = {"audit_head": f["audit_head"], "generated_at": f["generated_at"]}
    out: dict[str, Any] = {}
    for draft in made:
        draft |= {"to_complete": _blanks(draft["fields"]), "evidence": evidence}
        draft["text"] = _text_of(draft)
        draft["sha256"] = sha256_of(draft)
        out[draft["recipient"]] = draft
    return {"incident": incident.id, "generated_at": f["generated_at"], "drafts": out, "facts": f}


# -- the evidence pack --------------------------------------------------------------------------------


def register(incidents: Incidents, *, now: datetime) -> dict[str, Any]:
    """Every incident with its clocks and drafts at ``now``."""
    listed = sorted(incidents.list(limit=100_000), key=lambda i: i.id)
    return {
        "generated_at": now.isoformat(),
        "incidents": [
            i.as_dict(now) | {"drafts": drafts(incidents.store, i, now=now)["drafts"]} for i in listed
        ],
        "overdue": [i.id for i in listed if i.overdue(now)],
        "encryption": encryption_state(incidents.store).as_dict(),
    }


def pack_files(store: Store, *, now: datetime) -> dict[str, bytes]:
    """The register's files for the compliance pack: ``incidents.json`` (every incident, its clocks
    at ``now``, its steps and its drafts; the installation's encryption state) and ``incidents.html``
    (the same, readable)."""
    payload = register(Incidents(store), now=now)
    html = render("incidents.html", register=payload, now=utc(now))
    return {
        "incidents.json": json.dumps(payload, indent=2, sort_keys=True).encode(),
        "incidents.html": html.encode(),
    }


def notify(
    incidents: Incidents,
    incident_id: int,
    *,
    actor: str,
    recipient: str,
    at: datetime | None = None,
    reference: str | None = None,
    note: str | None = None,
) -> Incident:
    """Record a notification to ``recipient`` with the sha256 of the draft for it as it stands now
    (none for a recipient without a draft, e.g. the provider)."""
    now = incidents.clock()
    current = drafts(incidents.store, incidents.get(incident_id), now=now)["drafts"].get(recipient)
    return incidents.notify(
        incident_id,
        actor=actor,
        recipient=recipient,
        at=at,
        reference=reference,
        note=note,
        draft_sha256=current["sha256"] if current else None,
        now=now,
    )
