"""What one app holds while it runs: the engine, users, signers, limits, metrics and the ingest jobs."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from lethe.config import Settings
from lethe.engine import Lethe
from lethe.http.jobs import IngestJobs
from lethe.http.metrics import Metrics
from lethe.http.ratelimit import RateLimiter
from lethe.http.sessions import SessionSigner
from lethe.users import Users

#: A crop link is valid this long after the search or review that showed the face.
CROP_LINK_MAX_AGE_S = 3600


class CropLinks:
    """Signed crop URLs: a face crop is served only to the user who was shown that face by a search
    or a review screen (the link carries a signature over face id and user id), for an hour. Crops
    cannot be browsed by guessing face ids."""

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="lethe.crop")

    def url(self, face_id: int, user_id: int) -> str:
        return f"/api/faces/{face_id}/crop?t={self._serializer.dumps([face_id, user_id])}"

    def valid(self, token: str, face_id: int, user_id: int) -> bool:
        try:
            data = self._serializer.loads(token, max_age=CROP_LINK_MAX_AGE_S)
        except BadSignature:
            return False
        return data == [face_id, user_id]


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


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.lethe
    return state
