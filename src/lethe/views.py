"""Read models: what the JSON API answers and the web pages show, built once from the engine.

Each function takes the engine and returns plain JSON-ready data (dicts of str, numbers, ISO dates,
lists). ``lethe.api.routes`` wraps them in its answers and ``lethe.web`` renders them, so a page
shows exactly what the API would answer the same user: the same figures, the same fields, no route
function called from a page. Who may read what is the front ends' business (roles); what is read
and how it is shaped is this module's.

- :func:`dashboard_stats`: gallery size, searches today, open requests and the next due date;
- :func:`source_rows`: every source with its lawful basis, status and counts;
- :func:`request_rows`, :func:`request_page`, :func:`request_detail`: data-subject requests by due
  date (a bounded page), and one with its history, identity checks and contact;
- :func:`candidate_rows`, :func:`candidate_row`: the faces found for a request, with a crop link, the
  same face of the same photo in several sources once (its ``members``, ``also_in`` their sources);
- :func:`face_crops`: faces' crops, or "shredded" (``None``) where their source key was destroyed;
- :func:`audit_rows`, :func:`audit_verification`: audit entries newest first, and a fresh check of
  the hash chain;
- :func:`order_rows`: regulators' orders with their state and proof;
- :func:`consent_rows`, :func:`consent_text`, :func:`consent_texts`: the consent ledger (never a
  template or a contact address) and the versions of a source's consent text;
- :func:`source_notice`, :func:`notice_index`: the public transparency notices of the sources.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lethe.errors import KeyShreddedError, NotFoundError
from lethe.privacy.notice import transparency_notice

if TYPE_CHECKING:
    from lethe.engine import Lethe
    from lethe.privacy.requests import CandidateGroup

#: A signed link to a face's crop for the user who is shown it (``lethe.http.state.CropLinks``).
CropUrl = Callable[[int], str | None]


def dashboard_stats(engine: Lethe, *, now: datetime | None = None) -> dict[str, object]:
    """Figures for a dashboard: gallery size, searches since midnight (UTC), open requests, how many
    are overdue and the next due date."""
    midnight = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    queue = engine.requests.queue_summary()
    next_due = queue["next_due_at"]
    return {
        "faces": engine.catalog.count_faces(),
        "images": engine.catalog.count_images(),
        "sources": len(engine.catalog.sources()),
        "index_vectors": len(engine.index),
        "searches_today": engine.count_audited("search", since=midnight),
        "open_requests": queue["open"],
        "overdue_requests": queue["overdue"],
        "next_due_at": next_due.isoformat() if isinstance(next_due, datetime) else None,
    }


def source_rows(engine: Lethe) -> list[dict[str, object]]:
    """Every source with its declaration (basis, Art. 9 condition, purpose, jurisdiction, retention,
    mode, collection, references), its warnings, status and counts of images, faces and consents."""
    return engine.source_listing()


def request_rows(
    engine: Lethe, *, state: str | None = None, open_only: bool = False, limit: int = 50
) -> list[dict[str, object]]:
    """The first ``limit`` requests by due date (soonest first), each with its ``overdue`` flag."""
    return request_page(engine, state=state, open_only=open_only, limit=limit)["requests"]  # type: ignore[return-value]


def request_page(
    engine: Lethe, *, state: str | None = None, open_only: bool = False, limit: int = 50, page: int = 1
) -> dict[str, object]:
    """One page of requests by due date: ``requests``, ``total`` matched, ``page`` and
    ``next_page`` (``None`` on the last page)."""
    views = engine.requests.list_requests(state=state, open_only=open_only, limit=limit, page=page)
    return {
        "requests": [v.as_dict() for v in views],
        "total": views.total,
        "page": views.page,
        "next_page": views.next_page,
    }


def request_detail(engine: Lethe, request_id: int, *, ingest_running: bool = False) -> dict[str, object]:
    """One request: state, dates, candidate counts, its history (``events``), its identity checks
    (``verifications``), the contact address to answer, whether it can be answered now
    (``answer_readiness``), what its runs acted on per photo (``acted_on``) and, once closed, the
    answer to send (``answer_draft``). ``NotFoundError`` for an unknown request."""
    requests = engine.requests
    view = requests.get(request_id)
    return view.as_dict() | {
        "events": requests.events(request_id),
        "verifications": requests.verifications(request_id),
        "contact": requests.contact(request_id),
        "answer_readiness": requests.readiness(request_id, ingest_running=ingest_running),
        "acted_on": requests.acted_on(request_id),
        "answer_draft": requests.answer_draft(request_id),
    }


def candidate_row(
    candidate: CandidateGroup, crop_url: CropUrl, place: dict[str, object] | None = None
) -> dict[str, object]:
    """One face found for a request: score, band, search round, the reviewer's decision, a crop link,
    its ``photo`` (id, name and source page of its photo, ``None`` once erased), and its ``members``:
    the same face of the same photo in every source that holds it (face id and source), one decision
    for all; ``also_in`` names the other members' sources."""
    return {
        "face_id": candidate.face_id,
        "score": round(candidate.score, 6),
        "band": candidate.band,
        "round": candidate.round,
        "decision": candidate.decision,
        "decided_by": candidate.decided_by,
        "crop_url": crop_url(candidate.face_id),
        "members": [{"face_id": m.face_id, "source": m.source} for m in candidate.members],
        "also_in": candidate.also_in,
        "photo": {k: v for k, v in place.items() if k != "source"} if place else None,
    }


def candidate_rows(
    engine: Lethe, request_id: int, *, crop_url: CropUrl, pending_only: bool = False
) -> list[dict[str, object]]:
    """The faces found for a request, best first, one row per group of the same face of the same
    photo (``pending_only``: those still waiting for a reviewer). ``NotFoundError`` for an unknown
    request."""
    requests = engine.requests
    view = requests.get(request_id)  # an unknown request is an error, not an empty list
    if view.closed_at is not None:  # no crop link for a closed request: nothing is left to decide
        crop_url = _no_link
    found = requests.groups(request_id, pending_only=pending_only)
    places = requests.places([c.face_id for c in found])
    return [candidate_row(c, crop_url, places.get(c.face_id)) for c in found]


def _no_link(_face_id: int) -> None:
    return None


def face_crops(engine: Lethe, face_ids: Iterable[int]) -> dict[int, bytes | None]:
    """Each face's crop (JPEG, decrypted), or ``None`` where the face's source key was shredded: that
    crop can never be read again, so a listing shows the face without it instead of failing.
    ``NotFoundError`` for a face the catalog does not hold."""
    crops: dict[int, bytes | None] = {}
    for face_id in face_ids:
        try:
            crops[face_id] = engine.crop_jpeg(face_id)
        except KeyShreddedError:
            crops[face_id] = None
    return crops


def audit_rows(
    engine: Lethe, *, action: str | None = None, limit: int = 50, before: int | None = None
) -> list[dict[str, object]]:
    """Audit entries, newest first; ``before`` (a sequence number) pages back."""
    return [
        {"seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details,
         "hash": e.hash}
        for e in engine.audit_entries(action=action, limit=limit, before=before)
    ]  # fmt: skip


def audit_verification(engine: Lethe) -> dict[str, object]:
    """The hash chain recomputed now: ``ok``, entries, head, and the first break if any."""
    return engine.verify_audit().as_dict()


def order_rows(engine: Lethe) -> list[dict[str, object]]:
    """Regulators' orders with their state and proof."""
    return engine.orders.list_orders()


def consent_rows(
    engine: Lethe, *, source: str | None = None, limit: int | None = None, offset: int = 0
) -> list[dict[str, object]]:
    """The consent ledger (of one source), oldest first, or a page of it: who gave it (by id), to
    which text version and its sha256, how, the age attestation, when and by whom, its withdrawal and
    the erasure job it ran. Never a template or a contact address. ``NotFoundError`` for an unknown
    source."""
    return [v.as_dict() for v in engine.consents.listing(source, limit=limit, offset=offset)]


def consent_texts(engine: Lethe, source: str) -> list[dict[str, object]]:
    """Every version of a source's consent text with its sha256, oldest first (none recorded yet:
    an empty list). ``NotFoundError`` for an unknown source."""
    return engine.consents.texts(source)


def consent_text(engine: Lethe, source: str) -> dict[str, object]:
    """The consent text in force for a source (``version``, ``sha256``, ``text``; the first read
    records version 1, written from the declaration) and every ``versions``."""
    version, text, digest = engine.consents.text(source)
    return {
        "source": source,
        "version": version,
        "sha256": digest,
        "text": text,
        "versions": consent_texts(engine, source),
    }


def source_notice(engine: Lethe, name: str) -> dict[str, Any]:
    """The public transparency notice of one source, from its declaration (no count).
    ``NotFoundError`` for an unknown source."""
    try:
        source = engine.catalog.source(name)
    except NotFoundError:
        raise NotFoundError(f"no source named {name!r}") from None
    return transparency_notice(source, contact=engine.settings.dpo_contact)


def notice_index(engine: Lethe) -> list[dict[str, object]]:
    """Every source's name and purpose, each with the address of its notice."""
    return [
        {"source": s.name, "purpose": s.purpose, "notice": f"/notice/{quote(s.name)}"}
        for s in engine.catalog.sources()
    ]
