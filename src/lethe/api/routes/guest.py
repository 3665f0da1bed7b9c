"""An event's guest page, as JSON (no account): the event's consent text, a guest's consent with a
selfie, the guest's own photos through their private link, and the withdrawal of their consent. The
pages (``/e/<code>``, :mod:`lethe.web.guest`) post here; the rules are :mod:`lethe.privacy.guests`'.

**The selfie never reaches disk.** The form is read whole into memory before it is parsed
(:func:`lethe.http.uploads.in_memory_form`: Starlette would spool a file over 1 MB to a temporary
file; here no part can), within the portal's limits (:class:`lethe.http.uploads.PortalUploads`:
bytes, then the pixel count from the header before decoding, concurrent submissions); its bytes go
to :meth:`lethe.privacy.consent.Consents.add`, which keeps only the template, and are dropped.

**Anti-oracle** (the portal's rules): an unknown or disabled code, a stopped event, a wrong link
secret and a secret of another event all get the same ``404 not_found`` with the same message; the
answer to a consent is the same whether or not the guest appears in any photo (it carries the
private link only: the photos are on the private page, found by a scan after the answer). Every
consent and withdrawal, and every lookup that finds nothing, counts against the portal's rate
limits (per client address, ``LETHE_TRUSTED_PROXIES`` respected, and for everyone together).
Consents and withdrawals must come from this site's pages (``Origin``/``Referer``, as for login).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, cast

import fastapi
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from lethe.engine import Lethe
from lethe.errors import ConflictError, InputError, LetheError
from lethe.http.clients import same_site
from lethe.http.errors import ApiError
from lethe.http.state import AppState, app_state, client_ip
from lethe.http.uploads import FORM_OVERHEAD_BYTES, in_memory_form
from lethe.privacy.consent import ATTESTATIONS, age_of_consent
from lethe.privacy.guests import Guest, event_path, guest_path, new_link_secret

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/e", tags=["guests"])
State = Annotated[AppState, Depends(app_state)]

#: Who acts for a guest in the consent ledger and the audit log.
GUEST_ACTOR = "guest"
#: The one answer to an unknown code, a stopped event, a wrong secret and a photo not theirs.
NOT_FOUND = "there is nothing at this address: check the link you were given"
ENROLLED = (
    "Thank you: your consent is recorded. Keep your private link: it is the only way back to your "
    "photos and to withdraw your consent, and it is shown only this once. The photos you appear in "
    "show there as they are found, also those added later."
)

CONSENT_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["consent", "age", "text_version", "selfie"],
                    "properties": {
                        "consent": {
                            "type": "string",
                            "enum": ["yes"],
                            "description": "`yes`: I consent to the consent text shown (explicit).",
                        },
                        "age": {
                            "type": "string",
                            "enum": list(ATTESTATIONS),
                            "description": "`of_age`: I am at least the age of digital consent of the "
                            "event's country (`age_of_consent`); `parental`: I am a parent or guardian "
                            "consenting for my child.",
                        },
                        "text_version": {
                            "type": "integer",
                            "description": "The version of the consent text that was shown.",
                        },
                        "contact": {
                            "type": "string",
                            "maxLength": 320,
                            "description": "Optional e-mail or postal address (stored encrypted).",
                        },
                        "selfie": {
                            "type": "string",
                            "format": "binary",
                            "description": "A photo of the guest's face (kept in memory only).",
                        },
                    },
                }
            }
        },
    }
}


def not_found() -> ApiError:
    return ApiError(404, "not_found", NOT_FOUND)


def _charge(request: Request, state: AppState) -> None:
    """One token of the portal's rate limits (429 when spent)."""
    state.portal_limit.check(f"ip:{client_ip(request)}")


def _missing(request: Request, state: AppState) -> ApiError:
    """A lookup that found nothing: it counts against the rate limits, then the one 404."""
    _charge(request, state)
    return not_found()


def _from_this_site(request: Request) -> None:
    if not same_site(request):
        raise ApiError(403, "csrf_failed", "a consent or a withdrawal must come from this site's own page")


def _guest(request: Request, state: AppState, code: str, secret: str) -> Guest:
    guest = state.engine.guests.guest(code, secret)
    if guest is None:
        raise _missing(request, state)
    return guest


def photo_urls(code: str, secret: str, image_id: int, downloads: bool) -> dict[str, Any]:
    url = f"{guest_path(code, secret)}/photo/{image_id}"
    return {"image_id": image_id, "url": url, "download_url": f"{url}?download=1" if downloads else None}


@router.get("/{code}")
def event(code: str, request: Request, state: State) -> dict[str, object]:
    """An event's guest page: the consent text in force, the age from which a guest consents alone,
    and what guests may do (download their photos, browse the whole event). One `404` for an unknown
    or disabled code and a stopped event."""
    source = state.engine.guests.event(code)
    if source is None:
        raise _missing(request, state)
    version, text, sha256 = state.engine.consents.text(source.name)
    return {
        "event": source.name,
        "path": event_path(code),
        "purpose": source.purpose,
        "jurisdiction": source.jurisdiction,
        "retention_days": source.retention_days,
        "consent_text": {"version": version, "text": text, "sha256": sha256},
        "age_of_consent": age_of_consent(source.jurisdiction),
        "downloads": source.guest_downloads,
        "browse": source.guest_browse,
    }


@router.post("/{code}/consent", status_code=201, openapi_extra=CONSENT_FORM)
async def consent(
    code: str, request: Request, state: State, background: BackgroundTasks
) -> dict[str, object]:
    """Give consent with a selfie (multipart form, see the schema). Answers only the private link
    (`/e/<code>/me/<secret>`, shown this once) and a fixed message, whether or not the guest appears
    in any photo: the photos show on the private page, found by a scan that runs after this answer.
    The selfie is read in memory only and dropped once its template is made."""
    _from_this_site(request)
    _charge(request, state)
    source = state.engine.guests.event(code)
    if source is None:
        raise not_found()
    settings = state.settings
    form = await in_memory_form(request, settings.portal_max_photo_bytes + FORM_OVERHEAD_BYTES)
    try:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        selfie = form.get("selfie")
        if not isinstance(selfie, UploadFile):
            raise InputError("a selfie is needed: take a photo of your face, or choose one")
        age = fields.get("age", "")
        _check_answers(fields, age, age_of_consent(source.jurisdiction))
        version, _, _ = await run_in_threadpool(state.engine.consents.text, source.name)
        if fields.get("text_version", "").strip() != str(version):
            raise ConflictError("the consent text has changed since the page was opened: read it again")
        secret = new_link_secret()

        def enrol() -> int:
            upload = cast(fastapi.UploadFile, selfie)  # Starlette's, which FastAPI's only annotates
            with state.portal_uploads.submission([upload], kept=False) as photos:  # limits, one slot
                view = state.engine.consents.add(
                    source.name,
                    photos[0],
                    actor=GUEST_ACTOR,
                    contact=fields.get("contact"),
                    channel="guest_page",
                    age_attestation=age,
                    link_secret=secret,
                    scan=False,
                )
                photos.clear()  # the selfie's bytes: dropped here, never written anywhere
            return view.id

        consent_id = await run_in_threadpool(enrol)
    finally:
        await form.close()  # the in-memory file of the selfie
    background.add_task(_scan, state.engine, consent_id)
    return {"link": guest_path(code, secret), "message": ENROLLED}


def _check_answers(fields: dict[str, str], age: str, threshold: int) -> None:
    if fields.get("consent") != "yes":
        raise InputError("to be found in the photos, tick the box that says you consent")
    if age not in ATTESTATIONS:
        raise InputError(
            f"say whether you are at least {threshold}, or a parent or guardian consenting for your child"
        )
    if len(fields.get("contact", "")) > 320:
        raise InputError("a contact address must be at most 320 characters")


def _scan(engine: Lethe, consent_id: int) -> None:
    """The new guest's scan of the photos stored before them (after the answer), with every other
    guest's still pending: guests who enrol while a scan runs are looked for together in the next
    pass, one reading of the event for all of them. One that a stop of the service interrupts is
    finished by the next maintenance pass (:mod:`lethe.api.maintenance`)."""
    try:
        engine.consents.resume_scans(actor=GUEST_ACTOR)
    except LetheError as exc:
        log.warning("guest consent %d: scan stopped (%s); resume it later", consent_id, type(exc).__name__)


@router.get("/{code}/me/{secret}")
def mine(code: str, secret: str, request: Request, state: State) -> dict[str, object]:
    """A guest's private page: their consent's state and the photos of this event they were found
    in (none once withdrawn or while the event is stopped). `searching`: the scan of the photos
    stored before the consent is still running. One `404` for anything but a private link of this
    event."""
    guest = _guest(request, state, code, secret)
    consent = guest.consent
    photos = state.engine.guests.photos(guest)
    return {
        "event": guest.event.name,
        "given_at": consent.given_at.isoformat(),
        "withdrawn_at": consent.withdrawn_at.isoformat() if consent.withdrawn_at else None,
        "searching": consent.active and consent.scan_state == "pending",
        "paused": guest.paused,
        "downloads": guest.event.guest_downloads,
        "photos": [photo_urls(code, secret, p.image_id, guest.event.guest_downloads) for p in photos],
    }


@router.post("/{code}/me/{secret}/withdraw")
def withdraw(code: str, secret: str, request: Request, state: State) -> dict[str, object]:
    """Withdraw the guest's consent: their faces in this event are erased (with a receipt), their
    template and contact deleted. `409` when it was already withdrawn."""
    _from_this_site(request)
    _charge(request, state)
    guest = state.engine.guests.guest(code, secret)
    if guest is None:
        raise not_found()
    done = state.engine.consents.withdraw(guest.consent.id, actor=GUEST_ACTOR)
    withdrawn_at = state.engine.consents.get(guest.consent.id).withdrawn_at
    return {
        "withdrawn": True,
        "withdrawn_at": withdrawn_at.isoformat() if withdrawn_at else None,
        "erased_faces": done["erased_faces"],
        "erasure_job_id": done["erasure_job_id"],
    }


@router.get("/{code}/photos")
def gallery(
    code: str, request: Request, state: State, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> dict[str, object]:
    """Every photo of the event, page by page, with no face matching: where the organiser allows
    browsing (else `404`, like an unknown code)."""
    source = state.engine.guests.event(code)
    shown = state.engine.guests.gallery(source, page) if source is not None else None
    if shown is None:
        raise _missing(request, state)
    return {
        "page": shown.page,
        "pages": shown.pages,
        "total": shown.total,
        "photos": [{"image_id": i, "url": f"{event_path(code)}/photos/{i}"} for i in shown.photos],
    }
