"""The disclosure ledger (GDPR Arts. 15(1)(c), 19 and 30(1)(d)-(e); CJEU C-154/21): to whom the
controller handed which faces, when, by whom and why, so that an access copy can name the
recipients and an erasure, restriction or objection can be passed on to each of them
(:mod:`lethe.privacy.recipient_notices`).

**Recipients** are organisations or roles (a client, a publisher, a processor, an authority), never
a data subject: a name, a kind (:data:`KINDS`), a country (ISO 3166-1 alpha-2) and whether it is
outside the EEA (a transfer, Chapter V: its safeguard in words), and optionally an e-mail address
for notices. The address is sealed under the catalog-wide key, opened only to hand a notice to the
mail channel, and never logged nor audited. Added by an administrator or the data-protection
officer, audited (``recipient.add``).

**Disclosures** are recorded where Lethe itself hands personal data out (``channel``):

- ``api_token``: an API token bound to a recipient (:meth:`Disclosures.bind_token`, an integration
  or API consumer): every search answered to that token records a disclosure of the faces it
  returned, in the transaction of the search's own audit entry (:func:`record_token_search`);
- ``use_export``: a use's record handed to an authority or an auditor (``lethe audit export --use
  ID --recipient R``): the faces its searches returned (:meth:`Disclosures.export_use_to`);
- ``manual``: what left by any other means (a print, an e-mail), recorded by hand.

Each disclosure keeps the face ids it carried (no foreign key: the ledger outlives erased faces)
and the legal basis or reason in words; it is audited (``disclosure.record``) with its faces, the
reason kept off the chain (erasable). A bad recipient, an unknown face or a missing reason records
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lethe.catalog.disclosure_tables import (
    DisclosureFaceRow,
    DisclosureRow,
    RecipientNoticeRow,
    RecipientRow,
    RecipientTokenRow,
)
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow
from lethe.catalog.user_tables import ApiTokenRow
from lethe.errors import ConflictError, InputError, NotFoundError, SealedDataError
from lethe.privacy import audit
from lethe.privacy.mail import is_email
from lethe.privacy.sources import ISO3166_ALPHA2

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate
    from lethe.privacy.uses import Uses
    from lethe.store import Store

__all__ = [
    "CHANNELS",
    "EEA",
    "KINDS",
    "Disclosure",
    "Disclosures",
    "Recipient",
    "for_faces",
    "pack_files",
    "recipient_list",
    "record_token_search",
]

#: Kinds of recipient, in words (GDPR Art. 4(9)-(10): a processor, a third party, a public
#: authority, another controller).
KINDS = {
    "processor": "a processor acting on the controller's behalf",
    "third_party": "a third party",
    "public_authority": "a public authority",
    "controller": "another controller",
}
#: How personal data left, in words.
CHANNELS = {
    "manual": "handed over outside the service (recorded by hand)",
    "api_token": "returned by a search through the recipient's API access",
    "use_export": "the record of a use (searches and what they returned) exported for them",
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


@dataclass(frozen=True, slots=True)
class Disclosure:
    id: int
    recipient_id: int
    recipient: str
    kind: str
    at: datetime
    actor: str
    channel: str
    reason: str
    reference: str | None
    face_ids: tuple[int, ...]
    audit_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recipient_id": self.recipient_id,
            "recipient": self.recipient,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "channel": self.channel,
            "reason": self.reason,
            "reference": self.reference,
            "face_ids": list(self.face_ids),
            "audit_seq": self.audit_seq,
        }


def _text(value: str | None, what: str, *, minimum: int = 0, limit: int = MAX_TEXT) -> str:
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


def _faces_of(session: Session, disclosure_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    out: dict[int, list[int]] = {i: [] for i in disclosure_ids}
    for start in range(0, len(disclosure_ids), 500):
        chunk = list(disclosure_ids[start : start + 500])
        for did, fid in session.execute(
            select(DisclosureFaceRow.disclosure_id, DisclosureFaceRow.face_id)
            .where(DisclosureFaceRow.disclosure_id.in_(chunk))
            .order_by(DisclosureFaceRow.face_id)
        ):
            out[did].append(fid)
    return {k: tuple(v) for k, v in out.items()}


def _disclosures(session: Session, rows: Sequence[tuple[DisclosureRow, RecipientRow]]) -> list[Disclosure]:
    faces = _faces_of(session, [d.id for d, _ in rows])
    return [
        Disclosure(
            d.id,
            d.recipient_id,
            r.name,
            r.kind,
            d.at,
            d.actor,
            d.channel,
            d.reason,
            d.reference,
            faces[d.id],
            d.audit_seq,
        )  # fmt: skip
        for d, r in rows
    ]


def record_in(
    session: Session,
    *,
    recipient_id: int,
    face_ids: Iterable[int],
    channel: str,
    reason: str,
    actor: str,
    at: datetime,
    reference: str | None = None,
) -> int:
    """Add a disclosure inside the caller's transaction (with its audit entry ``disclosure.record``,
    the reason off the chain); its id. The caller has checked the recipient and the faces."""
    ids = sorted({int(f) for f in face_ids})
    row = DisclosureRow(
        recipient_id=recipient_id,
        at=at,
        actor=actor,
        channel=channel,
        reason=reason,
        reference=reference,
        faces=len(ids),
        audit_seq=0,
    )
    session.add(row)
    session.flush()
    session.add_all(DisclosureFaceRow(disclosure_id=row.id, face_id=f) for f in ids)
    entry = audit.append(
        session,
        actor=actor,
        action="disclosure.record",
        details={
            "disclosure_id": row.id,
            "recipient_id": recipient_id,
            "channel": channel,
            "faces": len(ids),
        },
        at=at,
        faces=ids,
        texts={"note": reason} | ({"reference": reference} if reference else {}),
    )
    row.audit_seq = entry.seq
    return row.id


def record_token_search(
    session: Session, *, token_sha256: str, seq: int, face_ids: Sequence[int], actor: str, at: datetime
) -> int | None:
    """When the token (by its SHA-256) is bound to a recipient, record that the search ``seq``
    disclosed ``face_ids`` to it, inside the search's own transaction; the disclosure's id, or None
    (no face returned, or the token bound to nobody)."""
    if not face_ids:
        return None
    bound = session.execute(
        select(RecipientTokenRow.recipient_id, RecipientTokenRow.reason)
        .join(ApiTokenRow, ApiTokenRow.id == RecipientTokenRow.token_id)
        .where(ApiTokenRow.token_hash == token_sha256)
    ).first()
    if bound is None:
        return None
    recipient_id, reason = bound
    return record_in(
        session,
        recipient_id=recipient_id,
        face_ids=face_ids,
        channel="api_token",
        reason=reason,
        actor=actor,
        at=at,
        reference=f"search {seq}",
    )


def for_faces(session: Session, face_ids: Iterable[int]) -> list[Disclosure]:
    """Every disclosure that carried one of these faces, oldest first (an access copy's recipients,
    the notices of an erasure)."""
    ids = sorted({int(f) for f in face_ids})
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                select(DisclosureFaceRow.disclosure_id).where(
                    DisclosureFaceRow.face_id.in_(ids[start : start + 500])
                )
            )
        )
    if not found:
        return []
    rows = session.execute(
        select(DisclosureRow, RecipientRow)
        .join(RecipientRow, RecipientRow.id == DisclosureRow.recipient_id)
        .where(DisclosureRow.id.in_(sorted(found)))
        .order_by(DisclosureRow.at, DisclosureRow.id)
    ).all()
    return _disclosures(session, [(d, r) for d, r in rows])


class Disclosures:
    """Recipients, token bindings and the ledger over an open store (see the module)."""

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
        name = _text(name, "a recipient's name", minimum=2, limit=200)
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
        guard = _text(safeguard, "the transfer's safeguard", limit=500) or None
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
        reason = _text(reason, "the reason of the disclosures", minimum=MIN_REASON)
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

    # -- the ledger ------------------------------------------------------------------------------

    def record(
        self,
        recipient_id: int,
        face_ids: Sequence[int],
        *,
        reason: str,
        actor: str,
        channel: str = "manual",
        reference: str | None = None,
    ) -> Disclosure:
        """Record that ``face_ids`` were disclosed to the recipient (see the module). An unknown
        recipient or face, no face, or no reason: an error, and nothing is recorded."""
        if channel not in CHANNELS:
            raise InputError(f"a disclosure's channel is one of {', '.join(CHANNELS)}")
        reason = _text(reason, "the legal basis or reason of a disclosure", minimum=MIN_REASON)
        reference = _text(reference, "a disclosure's reference", limit=100) or None
        ids = sorted({int(f) for f in face_ids})
        if not ids:
            raise InputError("a disclosure names at least one face")
        at = now_utc()
        with self.catalog.session() as session, session.begin():
            if session.get(RecipientRow, recipient_id) is None:
                raise NotFoundError(f"no recipient {recipient_id}")
            known: set[int] = set()
            for start in range(0, len(ids), 500):
                known.update(
                    session.scalars(select(FaceRow.id).where(FaceRow.id.in_(ids[start : start + 500])))
                )
            unknown = [f for f in ids if f not in known]
            if unknown:
                shown = ", ".join(str(f) for f in unknown[:10])
                raise NotFoundError(
                    f"no face {shown}{' ...' if len(unknown) > 10 else ''}: nothing was recorded"
                )
            disclosure_id = record_in(
                session,
                recipient_id=recipient_id,
                face_ids=ids,
                channel=channel,
                reason=reason,
                actor=actor,
                at=at,
                reference=reference,
            )
        return self.get(disclosure_id)

    def get(self, disclosure_id: int) -> Disclosure:
        with self.catalog.session() as session:
            row = session.execute(
                select(DisclosureRow, RecipientRow)
                .join(RecipientRow, RecipientRow.id == DisclosureRow.recipient_id)
                .where(DisclosureRow.id == disclosure_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no disclosure {disclosure_id}")
            return _disclosures(session, [(row[0], row[1])])[0]

    def list_disclosures(
        self, *, recipient_id: int | None = None, face_id: int | None = None, limit: int = 1000
    ) -> list[Disclosure]:
        """Disclosures, newest first (to one recipient, or carrying one face)."""
        with self.catalog.session() as session:
            query = select(DisclosureRow, RecipientRow).join(
                RecipientRow, RecipientRow.id == DisclosureRow.recipient_id
            )
            if recipient_id is not None:
                query = query.where(DisclosureRow.recipient_id == recipient_id)
            if face_id is not None:
                query = query.where(
                    DisclosureRow.id.in_(
                        select(DisclosureFaceRow.disclosure_id).where(DisclosureFaceRow.face_id == face_id)
                    )
                )
            rows = session.execute(query.order_by(DisclosureRow.id.desc()).limit(limit)).all()
            return _disclosures(session, [(d, r) for d, r in rows])

    def export_use_to(
        self,
        uses: Uses,
        gate: Gate,
        use_id: int,
        *,
        recipient_id: int,
        reason: str,
        actor: str,
        with_probes: bool = False,
    ) -> dict[str, Any]:
        """A use's record (:func:`lethe.privacy.use_export.export_use`) handed to a recipient (an
        authority, an auditor): the recipient and reason are checked first (nothing is exported
        otherwise), then the export, then the disclosure of the faces its searches returned."""
        from lethe.privacy.use_export import export_use

        reason = _text(reason, "the legal basis or reason of a disclosure", minimum=MIN_REASON)
        self.recipient(recipient_id)
        record = export_use(uses, gate, use_id, actor=actor, with_probes=with_probes)
        faces = sorted(
            {
                int(f)
                for search in record["searches"]
                if search.get("entry")
                for f in search["entry"]["details"].get("face_ids", [])
            }
        )
        disclosure: int | None = None
        if faces:
            with self.catalog.session() as session, session.begin():
                disclosure = record_in(
                    session,
                    recipient_id=recipient_id,
                    face_ids=faces,
                    channel="use_export",
                    reason=reason,
                    actor=actor,
                    at=now_utc(),
                    reference=f"use {use_id}",
                )
        return record | {"disclosure": {"id": disclosure, "recipient_id": recipient_id, "faces": len(faces)}}


def recipient_list(store: Store) -> list[dict[str, Any]]:
    """Every recipient for the record of processing (Art. 30(1)(d)-(e)): name, kind (and in words),
    country, whether outside the EEA and the transfer's safeguard, how many disclosures; never the
    contact address."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "kind_words": KINDS[r.kind],
            "country": r.country,
            "outside_eea": r.outside_eea,
            "safeguard": r.safeguard,
            "disclosures": r.disclosures,
        }
        for r in Disclosures(store).recipients()
    ]


def pack_files(store: Store, *, now: datetime) -> dict[str, bytes]:
    """What the ledger adds to the evidence pack: ``recipients.json`` (:func:`recipient_list`),
    ``disclosures.json`` (every disclosure with its faces, never a contact) and
    ``recipient_notices.json`` (every notice with its state), each stamped ``generated_at``."""
    from lethe.privacy.recipient_notices import RecipientNotices

    ledger = Disclosures(store)
    stamp = now.isoformat()
    with store.catalog.session() as session:
        notices_pending = int(
            session.scalar(
                select(func.count())
                .select_from(RecipientNoticeRow)
                .where(RecipientNoticeRow.state == "pending")
            )
            or 0
        )
    files = {
        "recipients.json": {"generated_at": stamp, "recipients": recipient_list(store)},
        "disclosures.json": {
            "generated_at": stamp,
            "channels": CHANNELS,
            "disclosures": [d.as_dict() for d in ledger.list_disclosures(limit=1_000_000)],
        },
        "recipient_notices.json": {
            "generated_at": stamp,
            "pending": notices_pending,
            "notices": [n.as_dict() for n in RecipientNotices(store).list_notices()],
        },
    }
    return {name: json.dumps(body, indent=2).encode() for name, body in files.items()}
