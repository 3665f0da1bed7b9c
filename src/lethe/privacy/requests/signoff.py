"""A second data-protection officer's sign-off of an erasure run (``LETHE_ERASURE_SECOND_SIGNOFF``,
off by default; docs/oversight.md, "Erasure at the subject's request").

The legal reading: EU AI Act Art. 14(5) asks two persons to verify an *identification on which the
deployer takes an action or decision*. An erasure asked by the data subject is no such identification:
it is the subject's own instruction (GDPR Art. 17), run against their own photos, and holding it back
for a second person delays a right the law wants honoured without undue delay. So one DPO runs it
(``lethe request run ID --auto``, ../shared/CONTRACT.md). A deployment that wants the four-eyes rule
anyway (an internal policy, a works agreement) turns the setting on: then an erasure request's run
erases only once a data-protection officer other than the one running it signed it off
(:meth:`Signoffs.sign`, ``lethe request signoff ID``, ``POST /api/requests/{id}/signoff``), audited
``request.signoff``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestRow
from lethe.catalog.repository import now_utc
from lethe.catalog.verification_tables import ErasureSignoffRow
from lethe.errors import ConflictError, NotFoundError, PrivacyError
from lethe.privacy import audit
from lethe.privacy.competence import identity

if TYPE_CHECKING:
    from lethe.store import Store


def _who(session: Session, actor: str) -> str:
    """One person however they act (``user:NAME`` over the service or the command line)."""
    found = identity(session, actor)
    return actor if found is None else found.key


class Signoffs:
    """Sign-offs of erasure runs in one store (see the module)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def required(self) -> bool:
        return bool(self.store.settings.erasure_second_signoff)

    def sign(self, request_id: int, *, actor: str) -> dict[str, object]:
        """``actor`` signs off the erasure of request ``request_id`` (once each)."""
        try:
            with self.store.catalog.session() as session, session.begin():
                row = session.get(RequestRow, request_id)
                if row is None:
                    raise NotFoundError(f"no request {request_id}")
                if row.kind != "erasure":
                    raise ConflictError(
                        f"request {request_id} is an {row.kind} request: only erasures are signed off"
                    )
                entry = audit.append(
                    session,
                    actor=actor,
                    action="request.signoff",
                    details={"request_id": request_id},
                    at=now_utc(),
                )
                session.add(
                    ErasureSignoffRow(
                        request_id=request_id,
                        signed_by=_who(session, actor),
                        at=entry.at,
                        audit_seq=entry.seq,
                    )
                )
        except IntegrityError as exc:
            raise ConflictError(f"you already signed off request {request_id}") from exc
        return {"request_id": request_id, "signed_off": True}

    def check(self, request_id: int, *, actor: str) -> None:
        """Before an erasure run by ``actor``: with the setting on, :class:`PrivacyError` unless
        another person signed it off."""
        if not self.required:
            return
        with self.store.catalog.session() as session:
            runner = _who(session, actor)
            signed = session.scalars(
                select(ErasureSignoffRow.signed_by).where(ErasureSignoffRow.request_id == request_id)
            ).all()
        if not any(who != runner for who in signed):
            raise PrivacyError(
                f"erasure request {request_id} needs a second data-protection officer's sign-off before it "
                "runs (LETHE_ERASURE_SECOND_SIGNOFF): another DPO runs `lethe request signoff ID`"
            )
