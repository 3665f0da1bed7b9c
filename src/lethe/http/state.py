"""What one app holds while it runs: the engine, users, signers, limits, metrics and the ingest jobs."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.http.clients import Network, client_address
from lethe.http.jobs import IngestJobs
from lethe.http.login_backoff import LoginBackoff
from lethe.http.metrics import Metrics
from lethe.http.ratelimit import RateLimiter
from lethe.http.sessions import SessionSigner
from lethe.http.uploads import PortalUploads
from lethe.users import Users

#: A crop link is valid this long after the search or review that showed the face.
CROP_LINK_MAX_AGE_S = 3600


class CropLinks:
    """Signed crop URLs: a face crop is served only to the user who was shown that face by a search
    or a review screen (the link carries a signature over face id and user id), for an hour. Crops
    cannot be browsed by guessing face ids.

    A link also says what showed the face: a search (the default) or a data-protection officer's
    review of a request (``review=True``). A search link stops working as soon as the face's source
    is restricted (a stop order), since search no longer shows such faces; a review link does not,
    since access requests cover restricted sources too."""

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="lethe.crop")
        self._photos = URLSafeTimedSerializer(key, salt="lethe.photo")

    def photo_url(self, face_id: int, user_id: int, search_seq: int) -> str:
        """A link to the photo search ``search_seq`` matched, its face boxed (``GET
        /api/faces/{id}/photo``): like a search's crop link, for this user only, for an hour; signed
        apart, so a crop link is no photo link. It names the search, whose candidate must be verified
        before the photo is served (two-person verification)."""
        return f"/api/faces/{face_id}/photo?t={self._photos.dumps([face_id, user_id, search_seq])}"

    def photo_search(self, token: str, face_id: int, user_id: int) -> int | None:
        """The search seq of a valid photo link to this face for this user, else None."""
        try:
            data = self._photos.loads(token, max_age=CROP_LINK_MAX_AGE_S)
        except BadSignature:
            return None
        if isinstance(data, list) and len(data) == 3 and data[:2] == [face_id, user_id]:
            return int(data[2])
        return None

    def url(self, face_id: int, user_id: int, *, review: bool = False) -> str:
        payload: list[object] = [face_id, user_id, "review"] if review else [face_id, user_id]
        return f"/api/faces/{face_id}/crop?t={self._serializer.dumps(payload)}"

    def kind(self, token: str, face_id: int, user_id: int) -> str | None:
        """``"search"`` or ``"review"`` for a valid link to this face for this user, else None."""
        try:
            data = self._serializer.loads(token, max_age=CROP_LINK_MAX_AGE_S)
        except BadSignature:
            return None
        if data == [face_id, user_id]:
            return "search"
        if data == [face_id, user_id, "review"]:
            return "review"
        return None

    def valid(self, token: str, face_id: int, user_id: int) -> bool:
        return self.kind(token, face_id, user_id) is not None


@dataclass
class AppState:
    settings: Settings
    engine: Lethe
    users: Users
    sessions: SessionSigner
    crop_links: CropLinks
    metrics: Metrics
    jobs: IngestJobs
    search_limit: RateLimiter
    portal_limit: RateLimiter
    login_limit: RateLimiter
    #: Failed logins per account name, whatever the address (``LETHE_LOGIN_FAILURES``, ...).
    login_backoff: LoginBackoff
    #: What a public portal submission may cost (photo limits, concurrent submissions, stored bytes).
    portal_uploads: PortalUploads
    #: Reverse proxies whose X-Forwarded-For is believed (``LETHE_TRUSTED_PROXIES``; none by default).
    trusted_proxies: tuple[Network, ...] = ()
    #: Keys the hash of a client address in the audit log (the session key: never written anywhere).
    client_hash_key: bytes = field(default=b"", repr=False)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.lethe
    return state


def client_ip(request: Request) -> str:
    """The calling client's address as a rate-limit key (:func:`lethe.http.clients.client_address`)."""
    return client_address(request, app_state(request).trusted_proxies)
