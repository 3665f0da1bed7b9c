"""The operators' pages: dashboard, search, sources and ingest.

Each page reads through the read models the JSON API answers with (:mod:`lethe.views`: the same
figures, the same fields) and the browser changes data through the JSON API (``static/app.js``,
``search.js``, ``ingest.js``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lethe import views
from lethe.errors import NotFoundError
from lethe.http.params import RowId
from lethe.http.uploads import MAX_UPLOAD_PHOTOS
from lethe.privacy import ART6_BASES, ART9_CONDITIONS
from lethe.privacy.assessments import Assessments
from lethe.privacy.notice import COLLECTION_WORDS
from lethe.privacy.sources import COLLECTIONS
from lethe.web.common import AnyReader, OperatorPage, PageNotFound, State, render

router = APIRouter(include_in_schema=False)

#: The lettered points of GDPR Art. 6(1) and Art. 9(2), in the order the engine lists them.
ART6_CHOICES = [(b, f"({chr(97 + i)}) {b.replace('_', ' ')}") for i, b in enumerate(ART6_BASES)]
ART9_CHOICES = [(c, f"({chr(97 + i)}) {c.replace('_', ' ')}") for i, c in enumerate(ART9_CONDITIONS)]
#: The collection methods a source may attest, in plain words.
COLLECTION_CHOICES = [(c, COLLECTION_WORDS.get(c, c.replace("_", " "))) for c in COLLECTIONS]


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, state: State, viewer: AnyReader) -> HTMLResponse:
    """Gallery size, searches today, open requests and their due dates; open misuse alerts, and the
    assessments not signed or stale, for the admin and dpo roles."""
    stats = views.dashboard_stats(state.engine)
    register = state.engine.incidents
    overdue = register.overdue() if viewer.can("admin", "dpo") else []
    overdue_incidents = [i.as_dict(register.clock()) for i in overdue]
    due = views.request_rows(state.engine, open_only=True)[:5] if viewer.can("dpo") else []
    searched = state.engine.count_audited("search", since=datetime.min.replace(tzinfo=UTC)) > 0
    alerts = state.engine.monitoring.alerts(open_only=True, limit=20) if viewer.can("admin", "dpo") else []
    overseen = viewer.can("admin", "dpo")
    assessments = Assessments(state.engine.store).listing() if overseen else []
    return render(
        request,
        "dashboard.html",
        viewer,
        stats=stats,
        overdue_incidents=overdue_incidents,
        due=due,
        searched=searched,
        alerts=alerts,
        assessments=[a for a in assessments if a["signature"]["state"] != "signed"],
        title="Dashboard",
    )


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, state: State, viewer: OperatorPage) -> HTMLResponse:
    """Probe upload, purpose, results; the search itself runs in the browser through the API."""
    return render(
        request,
        "search.html",
        viewer,
        threshold=state.settings.match_threshold,
        verifier=state.engine.verification.holds(viewer.principal.actor),
        title="Search",
    )


@router.get("/searches/{seq}/candidates/{face_id}", response_class=HTMLResponse)
def candidate_page(
    request: Request, state: State, viewer: OperatorPage, seq: RowId, face_id: RowId
) -> HTMLResponse:
    """One candidate identification for a verifier (the searcher, or a second person the link was
    passed to): the probe's face beside the candidate's crop, the verdict form, and the photo once
    verified. Only for holders of the ``verifier`` competence; what it tells follows the API's
    candidate view (never the others' verdicts before the viewer's own)."""
    verification = state.engine.verification
    actor = viewer.principal.actor
    if not verification.holds(actor):
        return render(
            request,
            "error.html",
            viewer,
            status=403,
            heading="Not a verifier",
            message="Candidate identifications are verified by users holding the verifier competence "
            "(trained, not lapsed): an admin records it with your training date.",
        )
    try:
        verification.candidate(seq, face_id, actor=actor)
    except NotFoundError as exc:
        raise PageNotFound(viewer, str(exc)) from exc
    face = state.engine.catalog.faces([face_id]).get(face_id)
    uploaded = face is None or face.image_uri.startswith("upload:")
    return render(
        request,
        "candidate.html",
        viewer,
        seq=seq,
        face_id=face_id,
        face=face,
        crop_url=state.crop_links.url(face_id, viewer.principal.id) if face else None,
        photo_url=None if uploaded else state.crop_links.photo_url(face_id, viewer.principal.id, seq),
        probe_url=f"/api/searches/{seq}/candidates/{face_id}/probe",
        candidate_url=f"/api/searches/{seq}/candidates/{face_id}",
        title=f"Candidate {face_id} of search {seq}",
    )


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, state: State, viewer: AnyReader) -> HTMLResponse:
    """Every source with its lawful basis, mode, warnings and counts (photos, faces, people enrolled,
    withdrawals); an admin registers new ones here."""
    return render(
        request,
        "sources.html",
        viewer,
        sources=views.source_rows(state.engine),
        art6=ART6_CHOICES,
        art9=ART9_CHOICES,
        collections=COLLECTION_CHOICES,
        title="Sources",
    )


@router.get("/ingest", response_class=HTMLResponse)
def ingest_page(
    request: Request,
    state: State,
    viewer: OperatorPage,
    job: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> HTMLResponse:
    """Upload photos or name a server folder; the job's progress is polled from the API. Opening
    the page starts the ingest workers (their models load while the operator chooses), follows the
    running job when there is one, and lists the last jobs."""
    active = [s for s in views.source_rows(state.engine) if s.get("status") == "active"]
    state.jobs.warm()
    recent = [j.as_dict() for j in state.jobs.recent()]
    running = next((j["id"] for j in recent if j["state"] == "running"), None)
    return render(
        request,
        "ingest.html",
        viewer,
        sources=active,
        job=job or running,
        recent=recent,
        most=MAX_UPLOAD_PHOTOS,
        ingest_root=state.settings.ingest_root,
        title="Ingest",
    )
