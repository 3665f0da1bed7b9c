"""Human oversight's global stop (AI Act Art. 14(4)(e), issue 18): an administrator halts every
identification at once, and resumes it.

While a stop is in force, every search by a probe photo (the command line, the API, the search page)
is refused before anything is searched: the state is read from the catalog on each search, so a stop
given by one process (``lethe oversight stop`` on the host) holds at once for a running service.
Rights work goes on: a data subject's access, erasure, objection or restriction request is run by
its own path (:mod:`lethe.privacy.requests`), not by identification, and so are ingest, erasure,
orders and retention. Stopping and resuming are audited (a stated reason off the chain); stopping
twice or resuming when nothing is stopped changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from lethe.catalog.privacy_tables import OversightStopRow
from lethe.catalog.repository import now_utc
from lethe.errors import PrivacyError
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.store import Store

STOPPED_MESSAGE = (
    "identification is stopped by an administrator (human oversight): no search runs until "
    "`lethe oversight resume`"
)


@dataclass(frozen=True, slots=True)
class OversightState:
    stopped: bool
    since: datetime | None
    by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stopped": self.stopped,
            "since": self.since.isoformat() if self.since else None,
            "by": self.by,
        }


class Oversight:
    """The global stop of one store (see the module)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def state(self) -> OversightState:
        with self.store.catalog.session() as session:
            row = session.scalars(
                select(OversightStopRow)
                .where(OversightStopRow.resumed_at.is_(None))
                .order_by(OversightStopRow.id)
            ).first()
        return OversightState(
            row is not None, row.stopped_at if row else None, row.stopped_by if row else None
        )

    def check(self) -> None:
        """Raise ``PrivacyError`` while identification is stopped."""
        if self.state().stopped:
            raise PrivacyError(STOPPED_MESSAGE)

    def stop(self, *, actor: str, reason: str | None = None) -> OversightState:
        at = now_utc()
        with self.store.catalog.session() as session, session.begin():
            if (
                session.scalar(select(OversightStopRow.id).where(OversightStopRow.resumed_at.is_(None)))
                is None
            ):
                row = OversightStopRow(stopped_at=at, stopped_by=actor)
                session.add(row)
                session.flush()
                audit.append(
                    session,
                    actor=actor,
                    action="oversight.stop",
                    details={"stop_id": row.id},
                    at=at,
                    texts={"note": reason.strip()} if reason and reason.strip() else None,
                )
        return self.state()

    def resume(self, *, actor: str, reason: str | None = None) -> OversightState:
        at = now_utc()
        with self.store.catalog.session() as session, session.begin():
            rows = session.scalars(
                select(OversightStopRow).where(OversightStopRow.resumed_at.is_(None))
            ).all()
            for row in rows:
                row.resumed_at, row.resumed_by = at, actor
            if rows:
                audit.append(
                    session,
                    actor=actor,
                    action="oversight.resume",
                    details={"stop_ids": [r.id for r in rows]},
                    at=at,
                    texts={"note": reason.strip()} if reason and reason.strip() else None,
                )
        return self.state()
