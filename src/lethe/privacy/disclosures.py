"""The disclosure ledger (GDPR Arts. 15(1)(c), 19 and 30(1)(d)-(e); CJEU C-154/21): to whom the
controller handed which faces, when, by whom and why, so that an access copy can name the
recipients and an erasure, restriction or objection can be passed on to each of them
(:mod:`lethe.privacy.recipient_notices`).

**Recipients** are organisations or roles (a client, a publisher, a processor, an authority), never
a data subject (:mod:`lethe.privacy.recipients`: their kinds, countries, sealed e-mail addresses and
the API tokens bound to them); :class:`Disclosures` holds both.

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
from lethe.errors import InputError, NotFoundError
from lethe.privacy import audit
from lethe.privacy.recipients import EEA, KINDS, MIN_REASON, Recipient, Recipients, checked_text

if TYPE_CHECKING:
    from lethe.privacy.gate import Gate
    from lethe.privacy.uses import Uses
    from lethe.store import Store

__all__ = [
    "CHANNELS",
    "EEA",
    "KINDS",
    "MIN_REASON",
    "Disclosure",
    "Disclosures",
    "Recipient",
    "for_faces",
    "pack_files",
    "recipient_list",
    "record_token_search",
]

#: How personal data left, in words.
CHANNELS = {
    "manual": "handed over outside the service (recorded by hand)",
    "api_token": "returned by a search through the recipient's API access",
    "use_export": "the record of a use (searches and what they returned) exported for them",
}


@dataclass(frozen=True, slots=True)
class Disclosure:
    id: int
    recipient_id: int
    recipient: str
    kind: str
    country: str
    outside_eea: bool
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
            "country": self.country,
            "outside_eea": self.outside_eea,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "channel": self.channel,
            "reason": self.reason,
            "reference": self.reference,
            "face_ids": list(self.face_ids),
            "audit_seq": self.audit_seq,
        }


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
            r.country,
            r.outside_eea,
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


class Disclosures(Recipients):
    """The ledger over an open store, with its recipients and token bindings (see the module)."""

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
        reason = checked_text(reason, "the legal basis or reason of a disclosure", minimum=MIN_REASON)
        reference = checked_text(reference, "a disclosure's reference", limit=100) or None
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

        reason = checked_text(reason, "the legal basis or reason of a disclosure", minimum=MIN_REASON)
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
