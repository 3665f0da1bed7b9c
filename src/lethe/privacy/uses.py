"""Uses (issue 18, EU AI Act Art. 12(3)(a)): every search belongs to a *use*, a case opened with a
purpose and an optional case reference, closed explicitly or after a timeout; an operator's searches
inside it are grouped, so a regulator reads one case's whole record (:mod:`lethe.privacy.use_export`).

- **Open**: by :meth:`Uses.open` (``lethe use open``, ``POST /api/uses``), or by a search that names
  no use when its actor has no current one (the search's purpose becomes the use's). The purpose and
  the case reference are free text: they are the erasable texts of the ``use.open`` audit entry
  (``lethe audit redact``), never in the chain or in the ``search_use`` row.
- **Current use**: an actor's newest open use, continued by their next search unless it is *timed
  out*: no search (nor its opening) for ``LETHE_USE_TIMEOUT_MINUTES``. A timed-out use is closed when
  it is noticed (by a search, a listing or a look-up): ``closed_at`` is the moment it timed out and
  a ``use.close`` entry (reason ``timeout``, actor ``system``) records it at the moment noticed.
- **Close**: by its owner (or an admin), audited ``use.close`` with reason ``closed``. A closed use,
  or another actor's, is refused to a search with a clear error (``PrivacyError``).

The clock is a parameter so that tests move time instead of sleeping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import SearchLogRow, SearchUseRow
from lethe.catalog.repository import now_utc
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.store import Store

#: The shortest purpose a use states (as a search's).
MIN_PURPOSE = 3
#: The longest case reference.
MAX_REFERENCE = 200


@dataclass(frozen=True, slots=True)
class Use:
    id: int
    actor: str
    purpose: str | None
    reference: str | None
    opened_at: datetime
    last_active_at: datetime
    searches: int
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None

    @property
    def open(self) -> bool:
        return self.closed_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actor": self.actor,
            "purpose": self.purpose,
            "reference": self.reference,
            "opened_at": self.opened_at.isoformat(),
            "last_active_at": self.last_active_at.isoformat(),
            "searches": self.searches,
            "open": self.open,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "closed_by": self.closed_by,
            "close_reason": self.close_reason,
        }


class Uses:
    """The uses of one store (see the module)."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.store = store
        self.clock = clock

    @property
    def timeout(self) -> timedelta:
        return timedelta(minutes=self.store.settings.use_timeout_minutes)

    # -- writes ----------------------------------------------------------------------------------

    def open(self, *, actor: str, purpose: str, reference: str | None = None, by_search: bool = False) -> Use:
        """Open a new use for ``actor`` (it becomes their current one). ``by_search``: opened by a
        search naming no use; its purpose is then that search's, kept once, in the search's entry
        (so that redacting it there erases it everywhere), not copied into ``use.open``."""
        purpose = purpose.strip()
        if len(purpose) < MIN_PURPOSE:
            raise InputError(f"a use must state its purpose (at least {MIN_PURPOSE} characters)")
        reference = (reference or "").strip() or None
        if reference is not None and len(reference) > MAX_REFERENCE:
            raise InputError(f"a case reference holds at most {MAX_REFERENCE} characters")
        at = self.clock()
        with self.store.catalog.session() as session, session.begin():
            row = SearchUseRow(actor=actor, opened_at=at, last_active_at=at, searches=0)
            session.add(row)
            session.flush()
            texts = {} if by_search else {"purpose": purpose}
            texts |= {"reference": reference} if reference else {}
            details = {"use": row.id, "reference_given": reference is not None}
            entry = audit.append(
                session,
                actor=actor,
                action="use.open",
                details=details | ({"opened_by_search": True} if by_search else {}),
                at=at,
                texts=texts,
            )
            row.opened_seq = entry.seq
            found = self._use(session, row)
        return dataclasses.replace(found, purpose=purpose) if by_search else found

    def close(self, use_id: int, *, actor: str, admin: bool = False) -> Use:
        """Close ``use_id`` (its owner, or an admin). Closing a closed use changes nothing."""
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            row = self._row(session, use_id)
            if row.actor != actor and not admin:
                raise PrivacyError(f"use {use_id} belongs to another actor: only they or an admin close it")
            if row.closed_at is None and not self._timed_out(session, row, now):
                row.closed_at, row.closed_by, row.close_reason = now, actor, "closed"
                audit.append(
                    session,
                    actor=actor,
                    action="use.close",
                    details={"use": row.id, "reason": "closed", "searches": row.searches},
                    at=now,
                )
            return self._use(session, row)

    def for_search(self, *, actor: str, use_id: int | None, purpose: str) -> Use:
        """The use a search by ``actor`` belongs to: ``use_id`` when given (it must be the actor's and
        open), else the actor's current use, else a new one opened with the search's purpose."""
        if use_id is None:
            return self.current(actor) or self.open(actor=actor, purpose=purpose, by_search=True)
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            row = self._row(session, use_id)
            if row.actor != actor:
                raise PrivacyError(f"use {use_id} belongs to another actor: search in a use of your own")
            self._timed_out(session, row, now)  # a timeout noticed now is recorded (committed) first
            found = self._use(session, row)
        if not found.open:
            how = "timed out" if found.close_reason == "timeout" else "was closed"
            closed = found.closed_at or now
            raise PrivacyError(
                f"use {use_id} {how} at {closed:%Y-%m-%d %H:%M} UTC: open a new use "
                "(`lethe use open`) or search without naming one"
            )
        return found

    @staticmethod
    def touch(session: Session, use_id: int, at: datetime) -> None:
        """Count a search in the use, inside the search's transaction."""
        row = session.get(SearchUseRow, use_id, with_for_update=True)
        if row is None:
            raise NotFoundError(f"no use {use_id}")
        row.searches = (row.searches or 0) + 1
        row.last_active_at = max(row.last_active_at, at)

    def close_timed_out(self) -> int:
        """Close every open use past its timeout (recorded as noticed now); how many."""
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            rows = session.scalars(select(SearchUseRow).where(SearchUseRow.closed_at.is_(None))).all()
            return sum(self._timed_out(session, row, now) for row in rows)

    # -- reads -----------------------------------------------------------------------------------

    def current(self, actor: str) -> Use | None:
        """``actor``'s newest open use that has not timed out (timed-out ones are closed on the way)."""
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            rows = session.scalars(
                select(SearchUseRow)
                .where(SearchUseRow.actor == actor, SearchUseRow.closed_at.is_(None))
                .order_by(SearchUseRow.id.desc())
            ).all()
            alive = [row for row in rows if not self._timed_out(session, row, now)]
            return self._use(session, alive[0]) if alive else None

    def get(self, use_id: int) -> Use:
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            row = self._row(session, use_id)
            if row.closed_at is None:
                self._timed_out(session, row, now)
            return self._use(session, row)

    def list(self, *, actor: str | None = None, open_only: bool = False, limit: int = 100) -> list[Use]:
        """Uses newest first: ``actor``'s, or everyone's when None."""
        self.close_timed_out()
        query = select(SearchUseRow).order_by(SearchUseRow.id.desc()).limit(limit)
        if actor is not None:
            query = query.where(SearchUseRow.actor == actor)
        if open_only:
            query = query.where(SearchUseRow.closed_at.is_(None))
        with self.store.catalog.session() as session:
            rows = session.scalars(query).all()
            texts = self._texts(session, rows)
            return [self._use(session, row, texts) for row in rows]

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _row(session: Session, use_id: int) -> SearchUseRow:
        row = session.get(SearchUseRow, use_id)
        if row is None:
            raise NotFoundError(f"no use {use_id}")
        return row

    def _timed_out(self, session: Session, row: SearchUseRow, now: datetime) -> bool:
        """Whether the open ``row`` is past its timeout; if so it is closed (inside the caller's
        transaction) and the close recorded."""
        if row.closed_at is not None:
            return False
        expiry = row.last_active_at + self.timeout
        if now < expiry:
            return False
        row.closed_at, row.closed_by, row.close_reason = expiry, "system", "timeout"
        audit.append(
            session,
            actor="system",
            action="use.close",
            details={
                "use": row.id,
                "reason": "timeout",
                "timed_out_at": expiry.isoformat(),
                "timeout_minutes": self.store.settings.use_timeout_minutes,
                "searches": row.searches,
            },
            at=now,
        )
        return True

    @staticmethod
    def _texts(session: Session, rows: Sequence[SearchUseRow]) -> dict[int, dict[str, Any]]:
        """Each use's ``use.open`` details with its texts, by use id; a use opened by a search takes
        its ``purpose`` from that (its first) search's entry."""
        opened = {e.seq: e.details for e in audit.entries_at(session, [r.opened_seq or 0 for r in rows])}
        texts = {r.id: dict(opened.get(r.opened_seq or 0, {})) for r in rows}
        by_search = [r.id for r in rows if texts[r.id].get("opened_by_search")]
        if by_search:
            firsts: dict[int, int] = {
                int(use_id): int(seq)
                for use_id, seq in session.execute(
                    select(SearchLogRow.use_id, func.min(SearchLogRow.seq))
                    .where(SearchLogRow.use_id.in_(by_search))
                    .group_by(SearchLogRow.use_id)
                )
            }
            searches = {e.seq: e.details for e in audit.entries_at(session, firsts.values())}
            for use_id, seq in firsts.items():
                texts[use_id]["purpose"] = searches.get(seq, {}).get("purpose")
        return texts

    def _use(
        self, session: Session, row: SearchUseRow, texts: dict[int, dict[str, Any]] | None = None
    ) -> Use:
        details = (texts if texts is not None else self._texts(session, [row])).get(row.id, {})
        return Use(
            id=row.id,
            actor=row.actor,
            purpose=details.get("purpose"),
            reference=details.get("reference"),
            opened_at=row.opened_at,
            last_active_at=row.last_active_at,
            searches=row.searches or 0,
            closed_at=row.closed_at,
            closed_by=row.closed_by,
            close_reason=row.close_reason,
        )
