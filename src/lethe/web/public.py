"""Pages without a login: the login form and the public data-subject portal.

The portal page only submits to ``POST /api/portal/requests`` and shows the receipt (reference and
due date), and confirms a request with the code sent to the requester (``POST
/api/portal/confirm``). The status page (``/portal/status``) asks ``POST /api/portal/status`` where a
request stands, with its reference and that code: a stage and the due date. Neither has a place for
results of any kind: a submission never searches, and whether the person is in the gallery is told
only by a data-protection officer after checking who asks. Where ``LETHE_DPO_CONTACT`` is set, both
pages say where to write to that officer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from lethe.http.sessions import safe_next
from lethe.http.uploads import MAX_PORTAL_PHOTOS
from lethe.privacy.signatures import public_key_info
from lethe.web.common import State, current_viewer, render
from lethe.web.request_messages import LANGUAGE_NAMES

router = APIRouter(include_in_schema=False)

#: What each kind of request asks for, in the requester's words.
PORTAL_KINDS = (
    ("access", "Access", "Send me a copy of every photo of me you hold, and where each came from."),
    ("erasure", "Erasure", "Delete every photo of me, and my face from your search index."),
    ("objection", "Objection", "Stop using my face: never show me in a search again."),
    ("restriction", "Restriction", "Keep my photos but stop showing me in searches until this is settled."),
)


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request,
    next: Annotated[str | None, Query(max_length=500)] = None,  # noqa: A002
) -> Response:
    """The login form; it posts to ``POST /login`` (the API) and then goes to ``next``."""
    target = safe_next(next) or "/"
    viewer = await current_viewer(request)
    if viewer is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", None, next=target, title="Log in")


@router.get("/portal", response_class=HTMLResponse)
async def portal(
    request: Request,
    state: State,
    reference: Annotated[str | None, Query(max_length=32)] = None,
    code: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The public form for a data subject's access, erasure, objection or restriction request, and
    the form that confirms it with the code sent to the requester (the link in that message fills
    it in)."""
    return render(
        request,
        "portal.html",
        await current_viewer(request),
        kinds=PORTAL_KINDS,
        most=MAX_PORTAL_PHOTOS,
        reference=reference or "",
        code=code or "",
        dpo_contact=state.settings.dpo_contact,
        languages=LANGUAGE_NAMES,  # the requester picks the language of our messages (Art. 12(1))
        default_language=state.settings.default_language,
        signing_key=public_key_info(state.engine.keyring)["key_sha256"],
        title="Your rights over your photos",
    )


@router.get("/portal/status", response_class=HTMLResponse)
async def portal_status(
    request: Request,
    state: State,
    reference: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    """Where a request stands: the requester gives the reference on the receipt and the code sent to
    the contact address, and reads its stage and due date (nothing else)."""
    return render(
        request,
        "portal_status.html",
        await current_viewer(request),
        reference=reference or "",
        dpo_contact=state.settings.dpo_contact,
        title="Where is my request?",
    )
