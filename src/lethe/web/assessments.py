"""The DPO's pages of the DPIA, the FRIA and the Art. 30 record (:mod:`lethe.privacy.assessments`):
``/assessments``, the three documents with their status, and ``/assessments/dpia``, ``/fria``,
``/art30``, one document as it reads now, its blanks highlighted, an answer form under each question
and a Sign button for a dpo (both post to the JSON API); an admin reads them. :func:`add_pages` puts
them on the DPO pages' router (:mod:`lethe.web.dpo`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from lethe.privacy.assessments import DOCUMENTS, Assessments
from lethe.web.common import LedgerPage, State, render


def assessments_page(request: Request, state: State, viewer: LedgerPage) -> HTMLResponse:
    """The DPIA, the FRIA and the Art. 30 record: unanswered questions and signature status."""
    listed = Assessments(state.engine.store).listing()
    return render(request, "assessments.html", viewer, documents=listed, title="Assessments")


def _page(document: str) -> Callable[[Request, State, LedgerPage], HTMLResponse]:
    def page(request: Request, state: State, viewer: LedgerPage) -> HTMLResponse:
        assessments = Assessments(state.engine.store)
        doc = assessments.document(document)
        # The body is rendered (and escaped) by lethe.privacy.pages, like the evidence pack's copy.
        body = Markup(assessments.body(doc, editable=viewer.can("dpo")))
        return render(request, "assessment.html", viewer, doc=doc, body=body, title=doc["title"])

    page.__doc__ = (
        f"The {DOCUMENTS[document][0]} generated now: the stale banner, the blanks, answer forms and "
        "Sign (dpo)."
    )
    return page


def add_pages(router: APIRouter) -> None:
    """Add the four pages to ``router``."""
    pages = [("/assessments", assessments_page)] + [(f"/assessments/{n}", _page(n)) for n in DOCUMENTS]
    for path, page in pages:
        router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)
