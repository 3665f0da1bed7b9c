"""Recipients of personal data (GDPR Arts. 4(9), 15(1)(c), 19, 30(1)(d)-(e), Chapter V): the
organisations or roles the controller discloses faces to, never a data subject: a name, a kind
(:data:`KINDS`), a country (ISO 3166-1 alpha-2), whether it is outside the EEA (:data:`EEA`; a
transfer: its safeguard in words), and optionally an e-mail address for notices, sealed under the
catalog-wide key, opened only to hand a notice to the mail channel, never shown, logged nor audited.
Added by an administrator or the data-protection officer, audited (``recipient.add``).

An API token can be bound to a recipient (an integration or API consumer, audited
``recipient.token_bind``): every search answered to it is then a disclosure
(:func:`lethe.privacy.disclosures.record_token_search`). The ledger itself is
:mod:`lethe.privacy.disclosures`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lethe.catalog.disclosure_tables import DisclosureRow, RecipientRow, RecipientTokenRow
from lethe.catalog.repository import now_utc
from lethe.catalog.user_tables import ApiTokenRow
from lethe.errors import ConflictError, InputError, NotFoundError, SealedDataError
from lethe.privacy import audit
from lethe.privacy.mail import is_email
from lethe.privacy.sources import ISO3166_ALPHA2

if TYPE_CHECKING:
    from lethe.store import Store

__all__ = ["EEA", "KINDS", "MIN_REASON", "Recipient", "Recipients", "checked_text", "contact_aad"]

#: Kinds of recipient, in words (GDPR Art. 4(9)-(10): a processor, a third party, a public
#: authority, another controller).
KINDS = {
    "processor": "a processor acting on the controller's behalf",
    "third_party": "a third party",
    "public_authority": "a public authority",
    "controller": "another controller",
}
#: The European Economic Area: the EU's 27 Member States, Iceland, Liechtenstein and Norway.
# fmt: off
EEA = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "IS", "LI", "NO",
})
# fmt: on
#: The shortest reason a disclosure or a token binding may state.
MIN_REASON = 10
MAX_TEXT = 2000


def contact_aad(recipient_id: int) -> bytes:
    """A recipient's sealed address is bound to its row."""
    return f"recipient-contact:{recipient_id}".encode()


@dataclass(frozen=True, slots=True)
class Recipient:
    id: int
    name: str
    kind: str
    country: str
    outside_eea: bool
    safeguard: str | None
    has_contact: bool
    created_at: datetime
    created_by: str
    disclosures: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "kind_words": KINDS[self.kind],
            "country": self.country,
            "outside_eea": self.outside_eea,
            "safeguard": self.safeguard,
            "has_contact": self.has_contact,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "disclosures": self.disclosures,
        }


def checked_text(value: str | None, what: str, *, minimum: int = 0, limit: int = MAX_TEXT) -> str:
    """``value`` stripped, or :class:`InputError` when shorter than ``minimum`` or longer than ``limit``."""
    text = (value or "").strip()
    if len(text) < minimum:
        raise InputError(f"{what} must be stated (at least {minimum} characters)")
    if len(text) > limit:
        raise InputError(f"{what} is too long (at most {limit} characters)")
    return text


def _counts(session: Session, recipient_ids: Iterable[int] | None = None) -> dict[int, int]:
    query = select(DisclosureRow.recipient_id, func.count(DisclosureRow.id)).group_by(
        DisclosureRow.recipient_id
    )
    if recipient_ids is not None:
        query = query.where(DisclosureRow.recipient_id.in_(list(recipient_ids)))
    return {int(r): int(n) for r, n in session.execute(query)}


def _recipient(row: RecipientRow, disclosures: int) -> Recipient:
    return Recipient(
        row.id, row.name, row.kind, row.country, row.outside_eea, row.safeguard, row.contact is not None,
        row.created_at, row.created_by, disclosures,
    )  # fmt: skip


class Recipients:
    """Recipients and the API tokens bound to them over an open store (see the module)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.catalog = store.catalog

    # -- recipients ------------------------------------------------------------------------------

    def add_recipient(
        self,
        name: str,
        kind: str,
        country: str,
        *,
        actor: str,
        contact: str | None = None,
        safeguard: str | None = None,
    ) -> Recipient:
        """A new recipient (an organisation or role, never a data subject). ``contact``, an e-mail
        address for notices, is sealed; ``safeguard`` states the legal ground of a transfer outside
        the EEA (an adequacy decision, standard contractual clauses)."""
        name = checked_text(name, "a recipient's name", minimum=2, limit=200)
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise InputError(f"a recipient's kind is one of {', '.join(KINDS)}, not {kind!r}")
        code = country.strip().upper()
        if code not in ISO3166_ALPHA2:
            raise InputError(f"country {country!r} is not an ISO 3166-1 alpha-2 country code")
        address = (contact or "").strip() or None
        if address is not None and not is_email(address):
            raise InputError(
                "a recipient's contact is one e-mail address (leave it out to send notices by hand)"
            )
        guard = checked_text(safeguard, "the transfer's safeguard", limit=500) or None
        outside = code not in EEA
        at = now_utc()
        try:
            with self.catalog.session() as session, session.begin():
                row = RecipientRow(
                    name=name,
                    kind=kind,
                    country=code,
                    outside_eea=outside,
                    safeguard=guard,
                    contact=None,
                    created_at=at,
                    created_by=actor,
                )
                session.add(row)
                session.flush()
                if address is not None:
                    row.contact = self.store.keyring.seal_master(address.encode(), contact_aad(row.id))
                audit.append(
                    session,
                    actor=actor,
                    action="recipient.add",
                    details={
                        "recipient_id": row.id,
                        "kind": kind,
                        "country": code,
                        "outside_eea": outside,
                        "has_contact": address is not None,
                    },
                    at=at,
                )
                return _recipient(row, 0)
        except IntegrityError as exc:
            raise ConflictError(f"a recipient named {name!r} already exists") from exc

    def recipients(self) -> list[Recipient]:
        with self.catalog.session() as session:
            counts = _counts(session)
            rows = session.scalars(select(RecipientRow).order_by(RecipientRow.name)).all()
            return [_recipient(r, counts.get(r.id, 0)) for r in rows]

    def recipient(self, recipient_id: int) -> Recipient:
        with self.catalog.session() as session:
            row = session.get(RecipientRow, recipient_id)
            if row is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            return _recipient(row, _counts(session, [row.id]).get(row.id, 0))

    def contact(self, recipient_id: int) -> str | None:
        """The recipient's e-mail address, opened (to hand a notice to the channel), or None."""
        with self.catalog.session() as session:
            row = session.get(RecipientRow, recipient_id)
            if row is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            blob = row.contact
        if blob is None:
            return None
        try:
            return self.store.keyring.open_master(blob, contact_aad(recipient_id)).decode()
        except SealedDataError:
            return None

    # -- API tokens bound to a recipient ---------------------------------------------------------

    def bind_token(self, token_id: int, recipient_id: int, *, reason: str, actor: str) -> dict[str, Any]:
        """Bind an API token to a recipient: every search answered to it from now on is recorded as a
        disclosure to that recipient, on ``reason`` (its legal basis in words)."""
        reason = checked_text(reason, "the reason of the disclosures", minimum=MIN_REASON)
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            token = session.get(ApiTokenRow, token_id)
            if token is None:
                raise NotFoundError(f"no token {token_id}")
            if token.revoked_at is not None:
                raise ConflictError(f"token {token_id} is revoked")
            if session.get(RecipientRow, recipient_id) is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            row = session.get(RecipientTokenRow, token_id)
            if row is not None:
                raise ConflictError(f"token {token_id} is already bound to recipient {row.recipient_id}")
            session.add(
                RecipientTokenRow(
                    token_id=token_id, recipient_id=recipient_id, reason=reason, bound_at=at, bound_by=actor
                )
            )
            audit.append(
                session,
                actor=actor,
                action="recipient.token_bind",
                details={"token_id": token_id, "recipient_id": recipient_id},
                at=at,
                texts={"note": reason},
            )
        return {
            "token_id": token_id,
            "recipient_id": recipient_id,
            "reason": reason,
            "bound_at": at.isoformat(),
        }

    def unbind_token(self, token_id: int, *, actor: str) -> None:
        """Searches answered to the token are no longer disclosures (the ledger keeps the earlier ones)."""
        with self.catalog.session() as session, session.begin():
            row = session.get(RecipientTokenRow, token_id)
            if row is None:
                raise NotFoundError(f"token {token_id} is bound to no recipient")
            recipient_id = row.recipient_id
            session.delete(row)
            audit.append(
                session,
                actor=actor,
                action="recipient.token_unbind",
                details={"token_id": token_id, "recipient_id": recipient_id},
                at=now_utc(),
            )

    def tokens(self, recipient_id: int | None = None) -> list[dict[str, Any]]:
        """The tokens bound to recipients (to ``recipient_id``), never their secret."""
        with self.catalog.session() as session:
            query = select(RecipientTokenRow).order_by(RecipientTokenRow.token_id)
            if recipient_id is not None:
                query = query.where(RecipientTokenRow.recipient_id == recipient_id)
            return [
                {
                    "token_id": r.token_id,
                    "recipient_id": r.recipient_id,
                    "reason": r.reason,
                    "bound_at": r.bound_at.isoformat(),
                    "bound_by": r.bound_by,
                }  # fmt: skip
                for r in session.scalars(query)
            ]
