"""An event's guest pages (no account, no login session): ``/e/<code>`` (the consent text, explicit
consent, the age attestation, a selfie), the guest's private page ``/e/<code>/me/<secret>`` (only the
photos of that event they were found in, and the withdrawal of their consent), the photos themselves,
and, where the organiser allows it, the event's gallery (every photo, no face matching).

The consent form posts to ``POST /api/e/<code>/consent`` (the selfie is read in memory there, see
:mod:`lethe.api.routes.guest`) and shows the private link it answers, once; the withdrawal posts to
``POST /api/e/<code>/me/<secret>/withdraw``. The rules are :mod:`lethe.privacy.guests`'.

Anything that is not an open event, a private link of that event, or one of that guest's photos gets
the same 404 page (the same words, whatever was wrong), and counts against the portal's rate limits
(per client address and for everyone together): a code or a secret cannot be probed for. A photo is
served from its stored path as it was ingested, never cached, inline, or as a download
(``Content-Disposition: attachment``) where the event allows downloads. Guests' views are not audited
(their own photos; see :mod:`lethe.privacy.guests`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from lethe.http.errors import ApiError
from lethe.http.params import RowId
from lethe.http.state import AppState, client_ip
from lethe.http.uploads import MEDIA_TYPES
from lethe.privacy.consent import age_of_consent
from lethe.privacy.guests import Guest, PhotoFile
from lethe.web.common import State, render

router = APIRouter(include_in_schema=False)

#: The one 404 page of the guest pages, whatever was wrong.
NOT_FOUND = "There is nothing at this address. Check the link you were given."


def _missing(request: Request, state: AppState) -> Response:
    """The one 404 page; the lookup that found nothing counts against the rate limits (a 429 page
    once spent)."""
    try:
        state.portal_limit.check(f"ip:{client_ip(request)}")
    except ApiError as exc:
        page = render(
            request, "error.html", None, status=exc.status, heading="Too many tries", message=exc.message,
            title="Too many tries",
        )  # fmt: skip
        page.headers.update(exc.headers)
        return page
    return render(
        request, "error.html", None, status=404, heading="Not found", message=NOT_FOUND, title="Not found"
    )


def _photo(found: PhotoFile, *, download: bool) -> Response:
    disposition = "attachment" if download else "inline"
    return Response(
        found.data,
        media_type=MEDIA_TYPES.get(found.format, "application/octet-stream"),
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": f'{disposition}; filename="{found.name}"',
        },
    )


@router.get("/e/{code}", response_class=HTMLResponse)
async def event(request: Request, state: State, code: str) -> Response:
    """The event's consent page: the consent text, the consent box, the age attestation, a contact
    address (optional) and a selfie."""
    source = await run_in_threadpool(state.engine.guests.event, code)
    if source is None:
        return _missing(request, state)
    version, text, sha256 = await run_in_threadpool(state.engine.consents.text, source.name)
    return render(
        request,
        "guest.html",
        None,
        event=source,
        code=code,
        version=version,
        text=text,
        sha256=sha256,
        age=age_of_consent(source.jurisdiction),
        dpo_contact=state.settings.dpo_contact,
        title=f"Find your photos: {source.name}",
    )


async def _guest(state: AppState, code: str, secret: str) -> Guest | None:
    return await run_in_threadpool(state.engine.guests.guest, code, secret)


@router.get("/e/{code}/me/{secret}", response_class=HTMLResponse)
async def mine(request: Request, state: State, code: str, secret: str) -> Response:
    """The guest's private page: the photos of this event they were found in, and the withdrawal
    of their consent; once withdrawn, only the day it was."""
    guest = await _guest(state, code, secret)
    if guest is None:
        return _missing(request, state)
    photos = await run_in_threadpool(state.engine.guests.photos, guest)
    return render(
        request,
        "guest_me.html",
        None,
        event=guest.event,
        consent=guest.consent,
        paused=guest.paused,
        searching=guest.consent.active and guest.consent.scan_state == "pending",
        photos=photos,
        base=f"/e/{code}/me/{secret}",
        code=code,
        title=f"Your photos: {guest.event.name}",
    )


@router.get("/e/{code}/me/{secret}/photo/{image_id}")
async def my_photo(
    request: Request,
    state: State,
    code: str,
    secret: str,
    image_id: RowId,
    download: Annotated[bool, Query()] = False,
) -> Response:
    """One of the guest's photos, in full; as a download only where the event allows downloads."""
    guest = await _guest(state, code, secret)
    if guest is None or (download and not guest.event.guest_downloads):
        return _missing(request, state)
    found = await run_in_threadpool(state.engine.guests.photo, guest, image_id)
    if found is None:
        return _missing(request, state)
    return _photo(found, download=download)


@router.get("/e/{code}/photos", response_class=HTMLResponse)
async def gallery(
    request: Request, state: State, code: str, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> Response:
    """Every photo of the event, page by page, no face matching (where the organiser allows it)."""
    source = await run_in_threadpool(state.engine.guests.event, code)
    shown = await run_in_threadpool(state.engine.guests.gallery, source, page) if source else None
    if source is None or shown is None:
        return _missing(request, state)
    return render(
        request,
        "guest_gallery.html",
        None,
        event=source,
        code=code,
        gallery=shown,
        title=f"All photos: {source.name}",
    )


@router.get("/e/{code}/photos/{image_id}")
async def gallery_photo(request: Request, state: State, code: str, image_id: RowId) -> Response:
    source = await run_in_threadpool(state.engine.guests.event, code)
    found = await run_in_threadpool(state.engine.guests.gallery_photo, source, image_id) if source else None
    if found is None:
        return _missing(request, state)
    return _photo(found, download=False)
