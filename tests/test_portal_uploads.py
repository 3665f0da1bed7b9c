"""What a public portal submission may cost (security review, finding 7), through the real app's
:class:`lethe.http.uploads.PortalUploads` over a real catalog: photos too large by bytes or by the
pixel count in their header are refused before decoding, the photos that open portal requests hold
together have a budget, and only so many submissions are read at once."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from fastapi import UploadFile
from PIL import Image

from lethe.errors import ImageTooLargeError
from lethe.http.errors import ApiError
from lethe.http.state import AppState
from lethe.http.uploads import pending_portal_bytes

from api_support import assert_error, serve


def _upload(data: bytes, name: str = "me.jpg") -> UploadFile:
    return UploadFile(io.BytesIO(data), filename=name)


def _state(client: object) -> AppState:
    state: AppState = client.app.state.lethe  # type: ignore[attr-defined]
    return state


def _store(state: AppState, photos: list[bytes]) -> None:
    """What the portal route does inside the submission: record the request (photos in the catalog)."""
    state.engine.requests.open(
        kind="access", photos=photos, contact="me@example.org", channel="portal", actor="portal",
        confirm_contact=True,
    )  # fmt: skip


def test_a_photo_over_the_portal_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    big = io.BytesIO()
    Image.new("1", (3000, 3000), 0).save(big, "PNG")  # 9 MP, a few kilobytes on the wire
    assert len(big.getvalue()) < 100_000
    with serve(tmp_path / "data", portal_max_image_pixels=4_000_000) as client:
        state = _state(client)
        with (
            pytest.raises(ImageTooLargeError, match="over the limit of 4000000 pixels"),
            state.portal_uploads.submission([_upload(big.getvalue(), "bomb.png")]),
        ):
            pytest.fail("a photo over the pixel limit was admitted")


def test_a_photo_over_the_portal_byte_limit_is_413(tmp_path: Path, fixtures_dir: Path) -> None:
    photo = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with serve(tmp_path / "data", portal_max_photo_bytes=len(photo) - 1) as client:
        with pytest.raises(ApiError) as refused, _state(client).portal_uploads.submission([_upload(photo)]):
            pytest.fail("a photo over the byte limit was admitted")
        assert refused.value.status == 413


def test_the_photos_of_open_portal_requests_have_a_budget(tmp_path: Path, fixtures_dir: Path) -> None:
    photo = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with serve(tmp_path / "data", portal_pending_max_bytes=len(photo) * 3 // 2) as client:
        state = _state(client)
        assert pending_portal_bytes(state.engine.catalog) == 0
        with state.portal_uploads.submission([_upload(photo)]) as photos:
            _store(state, photos)
        assert pending_portal_bytes(state.engine.catalog) > 0  # sealed: about the photo's size
        with pytest.raises(ApiError) as full, state.portal_uploads.submission([_upload(photo)]):
            pytest.fail("a submission past the budget was admitted")
        assert (full.value.status, full.value.code) == (503, "portal_full")
        assert full.value.headers and int(full.value.headers["Retry-After"]) > 0
        # a request recorded at the desk (a DPO's) is not the portal's and counts for nothing
        state.engine.requests.open(kind="access", photos=[photo], contact="desk", channel="desk", actor="t")
        assert pending_portal_bytes(state.engine.catalog) < len(photo) * 3 // 2


def test_only_so_many_submissions_are_read_at_once(tmp_path: Path, fixtures_dir: Path) -> None:
    photo = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with serve(tmp_path / "data", portal_concurrent_submissions=1) as client:
        uploads = _state(client).portal_uploads
        with uploads.submission([_upload(photo)]):
            with pytest.raises(ApiError) as busy, uploads.submission([_upload(photo)]):
                pytest.fail("a second submission was read while the only slot was taken")
            assert (busy.value.status, busy.value.code) == (503, "portal_busy")
        with uploads.submission([_upload(photo)]) as photos:  # the slot is free again
            assert photos == [photo]


def test_the_portal_route_reads_its_photos_through_the_limits(tmp_path: Path, fixtures_dir: Path) -> None:
    """The public route itself: a photo over the portal's byte limit, or a submission over the
    pending budget, is refused before any request is stored."""
    photo = (fixtures_dir / "identities" / "joe_biden" / "biden.jpg").read_bytes()
    with serve(tmp_path / "data", portal_max_photo_bytes=len(photo) - 1) as client:
        files = {"photos": ("me.jpg", photo, "image/jpeg")}
        refused = client.post(
            "/api/portal/requests", data={"kind": "access", "contact": "a@b.org"}, files=files
        )
        assert_error(refused, 413)
        assert pending_portal_bytes(_state(client).engine.catalog) == 0  # nothing stored
    with serve(tmp_path / "full", portal_pending_max_bytes=len(photo) + 10) as client:
        files = {"photos": ("me.jpg", photo, "image/jpeg")}
        first = client.post(
            "/api/portal/requests", data={"kind": "access", "contact": "a@b.org"}, files=files
        )
        assert first.status_code == 202
        second = client.post(
            "/api/portal/requests", data={"kind": "access", "contact": "c@d.org"}, files=files
        )
        assert_error(second, 503, "portal_full")
        stored = pending_portal_bytes(_state(client).engine.catalog)
        assert len(photo) <= stored < 2 * len(photo)  # the first request's photo only


def test_no_uploaded_photo_is_spooled_to_a_temporary_file(
    tmp_path: Path, fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A portal photo or a search probe over 1 MB went to a temporary file on disk (Starlette's
    spool), where it outlived its request (found while building the guest page, issue 17)."""
    face = Image.open(fixtures_dir / "identities" / "joe_biden" / "biden2.jpg").convert("RGB")
    big = io.BytesIO()
    face.resize((face.width * 2, face.height * 2)).save(big, "PNG")
    photo = big.getvalue()
    assert 1024 * 1024 < len(photo) < 8 * 1024 * 1024  # over Starlette's 1 MB spool threshold
    rolled: list[int] = []
    original = tempfile.SpooledTemporaryFile.rollover

    def spy(self: tempfile.SpooledTemporaryFile[bytes]) -> None:
        rolled.append(1)
        original(self)

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", spy)
    with serve(tmp_path / "data", portal_max_photo_bytes=len(photo) + 1) as client:
        files = {"photos": ("me.png", photo, "image/png")}
        sent = client.post("/api/portal/requests", data={"kind": "access", "contact": "a@b.org"}, files=files)
        assert sent.status_code == 202, sent.text
    assert rolled == []
