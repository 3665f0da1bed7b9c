"""The guest page of an event (an ``enrolled_only`` source): what an operator turns on, and what a
guest, with no account, may see through it. The pages and the JSON API over it are
:mod:`lethe.web.guest` and :mod:`lethe.api.routes.guest`; this module holds their rules once.

- **The event code** (``/e/<code>``) is random (:func:`secrets.token_urlsafe`, 16 characters), a
  new one each time the page is enabled: disabling it kills the old code, and with it every private
  link made under it. Only an ``enrolled_only`` source has one (:meth:`lethe.catalog.Catalog.set_guest`
  refuses the others), and it opens only while the source is active (a stop order closes it).
- **A guest's private link** (``/e/<code>/me/<secret>``) is a capability: the secret
  (:func:`secrets.token_urlsafe` of 32 bytes) is shown once; the ledger keeps its sha256 only
  (:meth:`lethe.privacy.consent.Consents.by_link`). It opens only under the code of its own event:
  a secret of one event does not open another.
- **What a guest sees** there: the photos of that event in which their template matched a stored
  face (:meth:`~lethe.privacy.consent.Consents.photos`), as full photos read from their stored path
  and checked against the hash recorded at ingest; never a crop, never another face's data, never a
  search. A photo not among those matches is "not found", like an unknown code.
- **The gallery** (the non-biometric alternative): where the organiser allows it, every photo the
  event holds, with no face matching at all.

Guests' views of their own photos and of the gallery are not audited one by one: they are the
person's own data (or the organiser's published gallery), and a log of who looked at which photo
when would itself be a record of their behaviour. Enabling, disabling and the guest settings are
(``source.guest``); a guest's consent and its withdrawal are, by the consent ledger.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from lethe.catalog import Source
from lethe.catalog.tables import ImageRow
from lethe.privacy import audit
from lethe.privacy.consent import ConsentView, GuestPhoto
from lethe.privacy.gate.reembed import read_photo

if TYPE_CHECKING:
    from lethe.privacy.consent import Consents
    from lethe.store import Store

#: Bytes of randomness in an event code (16 URL-safe characters).
EVENT_CODE_BYTES = 12
#: Bytes of randomness in a guest's private link secret (43 URL-safe characters).
LINK_SECRET_BYTES = 32
#: Photos on one page of an event's gallery.
GALLERY_PAGE = 24
#: What an event code and a link secret can look like (anything else is not looked up).
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,128}")


def new_event_code() -> str:
    return secrets.token_urlsafe(EVENT_CODE_BYTES)


def new_link_secret() -> str:
    return secrets.token_urlsafe(LINK_SECRET_BYTES)


def event_path(code: str) -> str:
    return f"/e/{code}"


def guest_path(code: str, secret: str) -> str:
    return f"/e/{code}/me/{secret}"


def guest_settings(source: Source) -> dict[str, object]:
    """A source's guest page as ``lethe source guest --json`` and its API route answer it."""
    code = source.event_code
    return {
        "source": source.name,
        "event_code": code,
        "url_path": event_path(code) if code else None,
        "downloads": source.guest_downloads,
        "browse": source.guest_browse,
    }


@dataclass(frozen=True, slots=True)
class PhotoFile:
    """A photo read from its stored path, as it was when ingested (its hash checked)."""

    image_id: int
    data: bytes
    format: str
    name: str


@dataclass(frozen=True, slots=True)
class Guest:
    """A guest's private page: their event and their consent (possibly withdrawn)."""

    event: Source
    consent: ConsentView

    @property
    def paused(self) -> bool:
        """The event's source is stopped (an order): its photos are not shown, withdrawal still works."""
        return self.event.status != "active"


@dataclass(frozen=True, slots=True)
class Gallery:
    photos: list[int]
    page: int
    pages: int
    total: int


class GuestPages:
    """Guest pages of events (see the module): configured by operators, read by guests."""

    def __init__(self, store: Store, consents: Consents) -> None:
        self.store = store
        self.consents = consents

    # -- the operator's side ---------------------------------------------------------------------

    def configure(
        self,
        source_name: str,
        *,
        enable: bool,
        downloads: bool | None = None,
        browse: bool | None = None,
        actor: str,
    ) -> Source:
        """Enable (a new event code) or disable (no code) a source's guest page, and set whether
        guests may download their photos and browse the whole event (``None``: as it was)."""
        current = self.store.catalog.source(source_name)
        source = self.store.catalog.set_guest(
            current.name,
            event_code=new_event_code() if enable else None,
            downloads=current.guest_downloads if downloads is None else downloads,
            browse=current.guest_browse if browse is None else browse,
            audit_as=audit.record(actor, "source.guest", {}),
        )
        if enable:
            self.consents.text(source.name)  # the text guests will be shown exists from now on
        return source

    # -- the guest's side ------------------------------------------------------------------------

    def event(self, code: str) -> Source | None:
        """The event of an open guest page (``None``: no such code, or the source is stopped)."""
        source = self._by_code(code)
        if source is None or source.status != "active" or source.mode != "enrolled_only":
            return None
        return source

    def guest(self, code: str, secret: str) -> Guest | None:
        """The guest behind a private link of this event (``None`` for anything else: an unknown
        code, a wrong secret, or a secret of another event)."""
        source = self._by_code(code) if _SECRET.fullmatch(secret) else None
        if source is None:
            return None
        consent = self.consents.by_link(secret)
        if consent is None or consent.source != source.name:
            return None
        return Guest(source, consent)

    def _by_code(self, code: str) -> Source | None:
        return self.store.catalog.source_by_event_code(code) if _CODE.fullmatch(code) else None

    def photos(self, guest: Guest) -> list[GuestPhoto]:
        """The photos the guest was found in (none once withdrawn or while the event is stopped)."""
        if guest.paused or not guest.consent.active:
            return []
        return self.consents.photos(guest.consent.id)

    def photo(self, guest: Guest, image_id: int) -> PhotoFile | None:
        """One of the guest's photos, read from its stored path (``None`` when it is not one of
        theirs, or cannot be read as it was ingested)."""
        if image_id not in {p.image_id for p in self.photos(guest)}:
            return None
        return self._read(guest.event.id, image_id)

    def gallery(self, event: Source, page: int) -> Gallery | None:
        """One page of every photo the event holds, where the organiser allows browsing."""
        if not event.guest_browse:
            return None
        with self.store.catalog.session() as session:
            total = int(
                session.scalar(select(func.count(ImageRow.id)).where(ImageRow.source_id == event.id)) or 0
            )
            pages = max(1, -(-total // GALLERY_PAGE))
            page = min(max(1, page), pages)
            ids = session.scalars(
                select(ImageRow.id)
                .where(ImageRow.source_id == event.id)
                .order_by(ImageRow.captured_at, ImageRow.id)
                .offset((page - 1) * GALLERY_PAGE)
                .limit(GALLERY_PAGE)
            )
            return Gallery([int(i) for i in ids], page, pages, total)

    def gallery_photo(self, event: Source, image_id: int) -> PhotoFile | None:
        if not event.guest_browse:
            return None
        return self._read(event.id, image_id)

    def _read(self, source_id: int, image_id: int) -> PhotoFile | None:
        with self.store.catalog.session() as session:
            row = session.get(ImageRow, image_id)
            if row is None or row.source_id != source_id:
                return None
            uri, sha256, fmt = row.uri, row.sha256, row.format
        data = read_photo(uri, self.store.settings.max_image_bytes)
        if isinstance(data, str) or hashlib.sha256(data).hexdigest() != sha256:
            return None  # moved, changed or unreadable: never serve other bytes than were ingested
        return PhotoFile(image_id, data, fmt, f"photo-{image_id}.{fmt.lower()}")
