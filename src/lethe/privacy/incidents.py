"""The breach and serious-incident register (GDPR Arts. 33-34, EU AI Act Art. 73): each incident,
its statutory clocks, every step taken and its closing.

- **Open** (:meth:`Incidents.open`): a personal-data breach (GDPR Art. 4(12)), a serious incident
  (AI Act Art. 3(49)) of one category of ``incident_clocks.AI_CATEGORIES``, or both; when it
  occurred, was detected and when the controller became **aware** (every clock runs from
  awareness); the sources it concerns (their image, face and consent counts are kept as they were at
  opening); the window of time it concerns; a description.
- **Clocks** (``incident_clocks.clocks``), computed from a time passed in (the service's clock),
  never stored: the supervisory authority within 72 hours of awareness (GDPR Art. 33(1)); the
  market-surveillance authority within the days of the category (AI Act Art. 73(2) 15 days, 73(3)
  2 days for a widespread infringement or a serious and irreversible disruption of critical
  infrastructure, 73(4) 10 days in the event of a death; paragraph numbers of the Official
  Journal); the data subjects without undue delay when the risk is high (GDPR Art. 34(1)), which
  has no fixed hour and is never marked overdue, only pending until told or decided. A clock not
  met by its due time is *overdue*; met after it, *late* (the notification must then give the
  reasons, Art. 33(1)).
- **Steps**: an action taken; a notification made (to whom, when, the recipient's reference; the
  sha256 of the draft current then is recorded with it); a decision not to notify, on a ground of
  ``incident_clocks.GROUNDS`` (Art. 33(1) unlikely risk; Art. 34(1) no high risk, or Art.
  34(3)(a)-(c)); closing, refused while a clock is neither met nor decided.
- **Audit**: every step is an audit entry in the same transaction as its row
  (``incident.open|action|notify|decide|close``) holding ids, times and grounds; the free text (the
  description, an action, a reason, a reference) is the entry's erasable text, read back from it.

The rules (categories, recipients, grounds, clocks) are :mod:`lethe.privacy.incident_clocks`; the
drafts for the authorities and the data subjects are :mod:`lethe.privacy.incident_drafts`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.catalog.consent_tables import ConsentRow
from lethe.catalog.incident_tables import IncidentEventRow, IncidentRow, IncidentSourceRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import FaceRow, ImageRow, SourceRow
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.encryption_state import encryption_state
from lethe.privacy.incident_clocks import (
    AI_CATEGORIES,
    AUTHORITY_DEADLINE,
    GROUNDS,
    RECIPIENTS,
    AffectedSource,
    Incident,
    Step,
    utc,
)

if TYPE_CHECKING:
    from lethe.store import Store


#: Each kind of step and its audit action.
ACTIONS = {
    "action": "incident.action",
    "notified": "incident.notify",
    "decided": "incident.decide",
    "closed": "incident.close",
}
MIN_DESCRIPTION = 10
MIN_TEXT = 3
MAX_TEXT = 5000
MAX_REFERENCE = 200


def _text(value: str | None, what: str, *, minimum: int = MIN_TEXT) -> str:
    text = (value or "").strip()
    if len(text) < minimum:
        raise InputError(f"{what} needs at least {minimum} characters")
    if len(text) > MAX_TEXT:
        raise InputError(f"{what} holds at most {MAX_TEXT} characters")
    return text


def _zoned(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise InputError(f"{what} must name its time zone (UTC or an offset)")
    return value


def _aware(value: datetime | None, what: str) -> datetime | None:
    return None if value is None else _zoned(value, what)


class Incidents:
    """The register of one store (see the module). ``clock`` is the service's clock; every method
    also takes ``now`` so that tests put an incident days in the past without sleeping."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.store = store
        self.clock = clock

    # -- writes ----------------------------------------------------------------------------------

    def open(
        self,
        *,
        actor: str,
        description: str,
        aware_at: datetime,
        personal_data_breach: bool = True,
        ai_category: str | None = None,
        detected_at: datetime | None = None,
        occurred_at: datetime | None = None,
        sources: Iterable[str] = (),
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """Register an incident; nothing is written unless every input holds."""
        now = now or self.clock()
        text = _text(description, "an incident's description", minimum=MIN_DESCRIPTION)
        if not personal_data_breach and ai_category is None:
            raise InputError("an incident is a personal-data breach, a serious incident, or both")
        if ai_category is not None and ai_category not in AI_CATEGORIES:
            raise InputError(
                f"unknown serious-incident category {ai_category!r}: one of {sorted(AI_CATEGORIES)}"
            )
        aware = _zoned(aware_at, "aware_at")
        detected = _aware(detected_at, "detected_at") or aware
        occurred = _aware(occurred_at, "occurred_at")
        start, end = _aware(window_start, "window_start"), _aware(window_end, "window_end")
        if aware > now:
            raise InputError(f"aware_at {utc(aware)} is in the future (now {utc(now)})")
        if detected > aware:
            raise InputError("detected_at is after aware_at: awareness cannot come before detection")
        if occurred is not None and occurred > detected:
            raise InputError("occurred_at is after detected_at")
        if start is not None and end is not None and start >= end:
            raise InputError("the window's start is not before its end")
        if (start is not None and start > now) or (end is not None and end > now):
            raise InputError("the window lies (partly) in the future")
        names = sorted({n.strip() for n in sources if n.strip()})
        with self.store.catalog.session() as session, session.begin():
            rows = {r.name: r for r in session.scalars(select(SourceRow).where(SourceRow.name.in_(names)))}
            missing = [n for n in names if n not in rows]
            if missing:
                raise NotFoundError(f"no source named {missing[0]!r}")
            row = IncidentRow(
                personal_data_breach=personal_data_breach,
                ai_category=ai_category,
                occurred_at=occurred,
                detected_at=detected,
                aware_at=aware,
                window_start=start,
                window_end=end,
                opened_at=now,
                opened_by=actor,
                opened_seq=0,
            )
            session.add(row)
            session.flush()
            affected = [_snapshot(session, row.id, rows[n]) for n in names]
            session.add_all(affected)
            entry = audit.append(
                session,
                actor=actor,
                action="incident.open",
                details={
                    "incident": row.id,
                    "personal_data_breach": personal_data_breach,
                    "ai_category": ai_category,
                    "aware_at": aware.isoformat(),
                    "detected_at": detected.isoformat(),
                    "occurred_at": occurred.isoformat() if occurred else None,
                    "window": [start.isoformat() if start else None, end.isoformat() if end else None],
                    "sources": [rows[n].id for n in names],
                    "faces_at_opening": sum(a.faces for a in affected),
                },
                at=now,
                texts={"note": text},
            )
            row.opened_seq = entry.seq
            return self._incident(session, row)

    def act(self, incident_id: int, *, actor: str, action: str, now: datetime | None = None) -> Incident:
        """Record an action taken (containment, a key rotation, a source suspended ...)."""
        now = now or self.clock()
        text = _text(action, "an action")
        return self._step(incident_id, actor, "action", now, now, texts={"note": text})

    def notify(
        self,
        incident_id: int,
        *,
        actor: str,
        recipient: str,
        at: datetime | None = None,
        reference: str | None = None,
        note: str | None = None,
        draft_sha256: str | None = None,
        now: datetime | None = None,
    ) -> Incident:
        """Record that ``recipient`` was notified at ``at`` (default now), with the recipient's
        reference and a note (e.g. the reasons for a delay). ``draft_sha256``: the draft sent."""
        now = now or self.clock()
        if recipient not in RECIPIENTS:
            raise InputError(f"unknown recipient {recipient!r}: one of {sorted(RECIPIENTS)}")
        when = _aware(at, "the notification's time") or now
        ref = (reference or "").strip() or None
        if ref is not None and len(ref) > MAX_REFERENCE:
            raise InputError(f"a reference holds at most {MAX_REFERENCE} characters")
        texts = {"reference": ref} if ref else {}
        if note and note.strip():
            texts["note"] = _text(note, "a note")
        return self._step(
            incident_id,
            actor,
            "notified",
            when,
            now,
            recipient=recipient,
            texts=texts,
            draft_sha256=draft_sha256,
        )

    def decide(
        self,
        incident_id: int,
        *,
        actor: str,
        recipient: str,
        ground: str,
        reason: str,
        now: datetime | None = None,
    ) -> Incident:
        """Record that ``recipient`` is not notified, on ``ground`` (:data:`GROUNDS`), and why. A
        decision on Art. 34(3)(a) records where the master key was then
        (:mod:`lethe.privacy.encryption_state`): the ground holds only if the key was not taken too."""
        now = now or self.clock()
        if ground not in GROUNDS.get(recipient, {}):
            allowed = {r: sorted(g) for r, g in GROUNDS.items()}
            raise InputError(f"no ground {ground!r} for not notifying {recipient!r}: allowed {allowed}")
        text = _text(reason, "the reason of a decision not to notify", minimum=MIN_DESCRIPTION)
        extra = None
        if ground == "art34_3_a":
            extra = {"master_key_placement": encryption_state(self.store).placement}
        return self._step(
            incident_id,
            actor,
            "decided",
            now,
            now,
            recipient=recipient,
            ground=ground,
            texts={"note": text},
            extra=extra,
        )

    def close(
        self, incident_id: int, *, actor: str, note: str | None = None, now: datetime | None = None
    ) -> Incident:
        """Close the incident: refused while a duty to notify is neither met nor decided."""
        now = now or self.clock()
        current = self.get(incident_id)
        unsettled = [c for c in current.clocks(now) if not c.settled]
        if unsettled:
            raise PrivacyError(
                f"incident {incident_id} cannot be closed: {unsettled[0].words} — record the "
                "notification or the decision not to notify first"
            )
        texts = {"note": _text(note, "a closing note")} if note and note.strip() else {}
        return self._step(incident_id, actor, "closed", now, now, texts=texts)

    # -- reads -----------------------------------------------------------------------------------

    def get(self, incident_id: int) -> Incident:
        with self.store.catalog.session() as session:
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise NotFoundError(f"no incident {incident_id}")
            return self._incident(session, row)

    def list(self, *, open_only: bool = False, limit: int = 200) -> list[Incident]:
        """Incidents, newest awareness first."""
        query = select(IncidentRow).order_by(IncidentRow.aware_at.desc(), IncidentRow.id.desc()).limit(limit)
        if open_only:
            query = query.where(IncidentRow.closed_at.is_(None))
        with self.store.catalog.session() as session:
            return [self._incident(session, row) for row in session.scalars(query)]

    def overdue(self, *, now: datetime | None = None) -> Sequence[Incident]:
        """Incidents with a clock past its due time, open or closed."""
        now = now or self.clock()
        return [i for i in self.list() if i.overdue(now)]

    # -- internals -------------------------------------------------------------------------------

    def _step(
        self,
        incident_id: int,
        actor: str,
        kind: str,
        at: datetime,
        now: datetime,
        *,
        recipient: str | None = None,
        ground: str | None = None,
        texts: dict[str, str] | None = None,
        draft_sha256: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Incident:
        if at > now:
            raise InputError(f"{utc(at)} is in the future (now {utc(now)})")
        with self.store.catalog.session() as session, session.begin():
            row = session.get(IncidentRow, incident_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no incident {incident_id}")
            if row.closed_at is not None:
                raise PrivacyError(f"incident {incident_id} is closed: open a new one for new facts")
            if at < row.detected_at:
                raise InputError(f"{utc(at)} is before the incident was detected ({utc(row.detected_at)})")
            details: dict[str, Any] = {"incident": incident_id, "at": at.isoformat()}
            details |= {"recipient": recipient} if recipient else {}
            details |= {"ground": ground} if ground else {}
            details |= {"draft_sha256": draft_sha256} if draft_sha256 else {}
            if kind == "notified" and recipient in ("supervisory_authority", "market_surveillance_authority"):
                due = _due(row, recipient)
                details["within_deadline"] = None if due is None else at <= due
            if recipient in GROUNDS and ground and not row.personal_data_breach:
                raise InputError(
                    f"incident {incident_id} is not a personal-data breach: GDPR Arts. 33-34 do not apply"
                )
            details |= extra or {}
            action = ACTIONS[kind]
            entry = audit.append(session, actor=actor, action=action, details=details, at=now, texts=texts)
            session.add(
                IncidentEventRow(
                    incident_id=incident_id,
                    kind=kind,
                    recipient=recipient,
                    ground=ground,
                    at=at,
                    recorded_at=now,
                    actor=actor,
                    draft_sha256=draft_sha256,
                    audit_seq=entry.seq,
                )
            )
            if kind == "closed":
                row.closed_at, row.closed_by = now, actor
            session.flush()
            return self._incident(session, row)

    @staticmethod
    def _incident(session: Session, row: IncidentRow) -> Incident:
        events = session.scalars(
            select(IncidentEventRow)
            .where(IncidentEventRow.incident_id == row.id)
            .order_by(IncidentEventRow.id)
        ).all()
        sources = session.scalars(
            select(IncidentSourceRow)
            .where(IncidentSourceRow.incident_id == row.id)
            .order_by(IncidentSourceRow.source_name)
        ).all()
        texts = {
            e.seq: e.details
            for e in audit.entries_at(session, [row.opened_seq, *(e.audit_seq for e in events)])
        }
        steps = tuple(
            Step(
                kind=e.kind,
                at=e.at,
                recorded_at=e.recorded_at,
                actor=e.actor,
                seq=e.audit_seq,
                recipient=e.recipient,
                ground=e.ground,
                text=texts.get(e.audit_seq, {}).get("note"),
                reference=texts.get(e.audit_seq, {}).get("reference"),
                draft_sha256=e.draft_sha256,
            )
            for e in events
        )
        return Incident(
            id=row.id,
            personal_data_breach=row.personal_data_breach,
            ai_category=row.ai_category,
            description=texts.get(row.opened_seq, {}).get("note"),
            occurred_at=row.occurred_at,
            detected_at=row.detected_at,
            aware_at=row.aware_at,
            window_start=row.window_start,
            window_end=row.window_end,
            opened_at=row.opened_at,
            opened_by=row.opened_by,
            opened_seq=row.opened_seq,
            closed_at=row.closed_at,
            closed_by=row.closed_by,
            sources=tuple(
                AffectedSource(s.source_id, s.source_name, s.images, s.faces, s.consents) for s in sources
            ),
            steps=steps,
        )


def _due(row: IncidentRow, recipient: str) -> datetime | None:
    if recipient == "supervisory_authority":
        return row.aware_at + AUTHORITY_DEADLINE if row.personal_data_breach else None
    category = AI_CATEGORIES.get(row.ai_category or "")
    return row.aware_at + timedelta(days=category.days) if category else None


def source_counts(session: Session, source_id: int) -> tuple[int, int, int]:
    """The source's photos, faces and active consents now."""
    images = session.scalar(select(func.count()).select_from(ImageRow).where(ImageRow.source_id == source_id))
    faces = session.scalar(
        select(func.count(FaceRow.id))
        .join(ImageRow, FaceRow.image_id == ImageRow.id)
        .where(ImageRow.source_id == source_id)
    )
    consents = session.scalar(
        select(func.count())
        .select_from(ConsentRow)
        .where(ConsentRow.source_id == source_id, ConsentRow.withdrawn_at.is_(None))
    )
    return int(images or 0), int(faces or 0), int(consents or 0)


def _snapshot(session: Session, incident_id: int, source: SourceRow) -> IncidentSourceRow:
    """The source's counts now, kept with the incident."""
    images, faces, consents = source_counts(session, source.id)
    return IncidentSourceRow(
        incident_id=incident_id,
        source_id=source.id,
        source_name=source.name,
        images=images,
        faces=faces,
        consents=consents,
    )
