"""The data-protection officer's pages: request queue, request detail, review queue, audit, orders,
and the consent ledger.

Reading goes through the read models the JSON API answers with (:mod:`lethe.views`); every action
(verify, run, extend, reject, decide, answer, stop) is a call to the JSON API from the browser, and
the destructive ones (run an erasure, answer, reject, stop a jurisdiction) first ask for
confirmation in a ``<dialog>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from lethe import views
from lethe.errors import NotFoundError
from lethe.http.params import BeforeSeq, RowId
from lethe.privacy.requests import METHODS, OPEN_STATES
from lethe.web import assessments
from lethe.web.common import DpoPage, LedgerPage, OrdersPage, PageNotFound, State, Viewer, render
from lethe.web.request_messages import context as messages_context

router = APIRouter(include_in_schema=False)
assessments.add_pages(router)  # the DPIA, the FRIA and the Art. 30 record

AUDIT_PAGE = 50
REQUEST_PAGE = 50
LEDGER_PAGE = 100


def _request(state: State, viewer: Viewer, request_id: int) -> dict[str, Any]:
    try:
        return views.request_detail(state.engine, request_id, ingest_running=state.jobs.running())
    except NotFoundError:
        raise PageNotFound(viewer, f"There is no request number {request_id}.") from None


@router.get("/requests", response_class=HTMLResponse)
def request_queue(
    request: Request,
    state: State,
    viewer: DpoPage,
    show: Annotated[str, Query(pattern="^(open|all)$")] = "open",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """Requests by due date, the overdue ones marked (in red and in words), a page at a time."""
    listed = views.request_page(state.engine, open_only=show == "open", limit=REQUEST_PAGE, page=page)
    return render(
        request,
        "requests.html",
        viewer,
        requests=listed["requests"],
        total=listed["total"],
        page=page,
        next_page=listed["next_page"],
        show=show,
        title="Requests",
    )


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_detail(request: Request, request_id: RowId, state: State, viewer: DpoPage) -> HTMLResponse:
    """One request: dates, contact, history, the requester's photos, and the actions its state allows."""
    detail = _request(state, viewer, request_id)
    is_open = detail["state"] in OPEN_STATES
    # Decisions waiting: the same face of the same photo in several sources counts once.
    waiting = views.candidate_rows(state.engine, request_id, crop_url=lambda _: None, pending_only=True)
    return render(
        request,
        "request.html",
        viewer,
        r=detail,
        is_open=is_open,
        **messages_context(state.engine, request_id),  # the messages to the requester (Art. 12)
        pending=len(waiting) if is_open else 0,
        photos=len(detail.get("probe_sha256") or []) if is_open else 0,
        has_export=detail["kind"] == "access" and bool((detail.get("outcome") or {}).get("export")),
        methods=METHODS,
        # GDPR Arts. 19 and 17(2): whom the erasure, restriction or objection must be passed on to.
        notices=[n.as_dict() for n in state.engine.recipient_notices.list_notices(request_id=request_id)],
        title=f"Request {detail['ref']}",
    )


@router.get("/requests/{request_id}/review", response_class=HTMLResponse)
def review_queue(request: Request, request_id: RowId, state: State, viewer: DpoPage) -> HTMLResponse:
    """The faces a reviewer must decide on, each beside the requester's photo."""
    detail = _request(state, viewer, request_id)
    listed = views.candidate_rows(
        state.engine,
        request_id,
        crop_url=lambda face_id: state.crop_links.url(face_id, viewer.principal.id, review=True),
    )
    review = [c for c in listed if c.get("band") == "review"]
    is_open = detail["state"] in OPEN_STATES
    return render(
        request,
        "review.html",
        viewer,
        r=detail,
        candidates=review if is_open else [],
        automatic=sum(1 for c in listed if c.get("band") == "automatic"),
        pending=sum(1 for c in review if c.get("decision") is None),
        is_open=is_open,
        ready=detail["answer_readiness"],
        photos=len(detail.get("probe_sha256") or []) if is_open else 0,
        title=f"Review — request {detail['ref']}",
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    state: State,
    viewer: DpoPage,
    action: Annotated[str | None, Query(max_length=60)] = None,
    before: BeforeSeq = None,
) -> HTMLResponse:
    """The audit log, newest first, with the result of a fresh hash-chain verification."""
    wanted = (action or "").strip() or None
    entries: list[dict[str, Any]] = views.audit_rows(
        state.engine, action=wanted, limit=AUDIT_PAGE, before=before
    )
    return render(
        request,
        "audit.html",
        viewer,
        entries=entries,
        verification=views.audit_verification(state.engine),
        action=wanted or "",
        older=entries[-1]["seq"] if len(entries) == AUDIT_PAGE and entries[-1]["seq"] > 1 else None,
        before=before,
        title="Audit log",
    )


@router.get("/orders", response_class=HTMLResponse)
def orders_page(request: Request, state: State, viewer: OrdersPage) -> HTMLResponse:
    """Regulators' orders with their proof; an admin issues a stop here."""
    listed = views.order_rows(state.engine)
    return render(
        request,
        "orders.html",
        viewer,
        orders=listed,
        pending=any(o.get("state") == "pending_delete" for o in listed),
        title="Orders",
    )


@router.get("/consents", response_class=HTMLResponse)
def consents_page(
    request: Request,
    state: State,
    viewer: LedgerPage,
    source: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """The consent ledger (of one source), ``LEDGER_PAGE`` consents a page, a withdrawal for a DPO
    (after confirmation), the versions of the chosen source's consent text (a new one by an admin or a
    DPO) and, for a DPO, the desk enrolment of a person who consents in person or on paper."""
    wanted = (source or "").strip() or None
    try:
        rows = views.consent_rows(state.engine, source=wanted, limit=LEDGER_PAGE, offset=offset)
        total = state.engine.consents.count(wanted)
        texts = views.consent_texts(state.engine, wanted) if wanted else []
    except NotFoundError:
        raise PageNotFound(viewer, f"There is no source named {wanted!r}.") from None
    listed = views.source_rows(state.engine)
    gated = [s for s in listed if s["mode"] == "enrolled_only" or s["enrolled"] or s["withdrawn"]]
    desk = any(s["source"] == wanted and s["mode"] == "enrolled_only" for s in gated)
    return render(
        request,
        "consents.html",
        viewer,
        consents=rows,
        texts=texts,
        source=wanted,
        sources=gated,
        desk=desk and viewer.can("dpo"),
        page={
            "offset": offset,
            "total": total,
            "first": offset + 1 if rows else 0,
            "last": offset + len(rows),
            "previous": max(0, offset - LEDGER_PAGE) if offset else None,
            "next": offset + LEDGER_PAGE if offset + LEDGER_PAGE < total else None,
        },
        title="Consent ledger",
    )
