"""Competences of users, first of all ``verifier`` (issue 18, EU AI Act Art. 14(5), Arts. 4 and 26(2)):
the competence to confirm or reject a candidate identification (:mod:`lethe.privacy.verification`).

- **Trained, or not at all.** A competence rests on a recorded training date (AI literacy): an admin
  records it (``lethe user competence NAME --verifier --trained YYYY-MM-DD``, ``PUT
  /api/users/{name}/competences/verifier``), audited ``user.competence`` with the user's id and the
  date; revoking it is audited the same way. A date in the future, or one already lapsed, is refused.
- **It lapses.** ``LETHE_VERIFIER_TRAINING_DAYS`` (365) after the training date the user holds the
  competence no more: every check reads the date against the clock, so nothing has to run for the
  lapse to take effect; a newer training date brings it back.
- **Who is checked.** An actor as the audit log names it: ``user:NAME`` (the service) or
  ``cli:NAME@ACCOUNT`` (the command line) where NAME is a user: that user, while active. A command
  line identity that is no user is a *local administrator* (docs/cli.md, "Who acts"): whoever runs
  Lethe on the host can read its data folder anyway, so it holds every competence, as trained today
  (the acceptance identity of ../shared/CONTRACT.md keeps working). Any other actor (``system``, an
  anonymous portal visitor) holds none.

The clock is a parameter so that tests move time instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.repository import now_utc
from lethe.catalog.user_tables import UserRow
from lethe.catalog.verification_tables import UserCompetenceRow
from lethe.errors import InputError, NotFoundError, PrivacyError
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.store import Store

#: The competences a user may hold.
COMPETENCES = ("verifier",)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an actor is for verification: ``key`` is what makes two verifiers distinct (``user:NAME``
    for a user however they act, ``local:NAME@ACCOUNT`` for a local administrator identity);
    ``user_id`` is None for a local administrator."""

    key: str
    user_id: int | None

    @property
    def local_admin(self) -> bool:
        return self.user_id is None


@dataclass(frozen=True, slots=True)
class Competence:
    user: str
    competence: str
    trained_on: date
    lapses_on: date
    granted_at: datetime
    granted_by: str

    def held(self, today: date) -> bool:
        return today < self.lapses_on

    def as_dict(self, today: date) -> dict[str, Any]:
        return {
            "user": self.user,
            "competence": self.competence,
            "trained_on": self.trained_on.isoformat(),
            "lapses_on": self.lapses_on.isoformat(),
            "held": self.held(today),
            "granted_at": self.granted_at.isoformat(),
            "granted_by": self.granted_by,
        }


def identity(session: Session, actor: str) -> Identity | None:
    """The verifier identity of ``actor`` (see the module), or None when it can hold no competence
    (an unknown or disabled user, ``system``, anyone else)."""
    kind, _, rest = actor.partition(":")
    if kind == "user":
        name = rest
    elif kind == "cli" and "@" in rest:
        name = rest.rpartition("@")[0]
    else:
        return None
    row = session.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        return Identity(f"local:{rest}", None) if kind == "cli" else None
    if row.disabled_at is not None:
        return None
    return Identity(f"user:{row.name}", row.id)


class Competences:
    """The competences of one store's users (see the module)."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.store = store
        self.clock = clock

    @property
    def valid_days(self) -> int:
        return int(self.store.settings.verifier_training_days)

    def _competence(self, row: UserCompetenceRow, user: str) -> Competence:
        lapses = row.trained_on + timedelta(days=self.valid_days)
        return Competence(user, row.competence, row.trained_on, lapses, row.granted_at, row.granted_by)

    def grant(self, name: str, competence: str, *, trained_on: date, actor: str) -> Competence:
        """Record that user ``name`` holds ``competence``, trained on ``trained_on`` (replacing an
        older date); audited ``user.competence``."""
        _known(competence)
        now = self.clock()
        today = now.date()
        if trained_on > today:
            raise InputError(f"the training date {trained_on.isoformat()} is in the future")
        if trained_on + timedelta(days=self.valid_days) <= today:
            raise InputError(
                f"a training on {trained_on.isoformat()} has lapsed (LETHE_VERIFIER_TRAINING_DAYS="
                f"{self.valid_days}): record a newer training"
            )
        with self.store.catalog.session() as session, session.begin():
            user = _user(session, name)
            row = _row(session, user.id, competence)
            if row is None:
                row = UserCompetenceRow(user_id=user.id, competence=competence)
                session.add(row)
            row.trained_on, row.granted_at, row.granted_by = trained_on, now, actor
            session.flush()
            audit.append(
                session,
                actor=actor,
                action="user.competence",
                details={
                    "user_id": user.id,
                    "competence": competence,
                    "change": "grant",
                    "trained_on": trained_on.isoformat(),
                    "valid_days": self.valid_days,
                },
                at=now,
            )
            return self._competence(row, user.name)

    def revoke(self, name: str, competence: str, *, actor: str) -> bool:
        """Take ``competence`` from user ``name``; False (and nothing recorded) when they had none."""
        _known(competence)
        now = self.clock()
        with self.store.catalog.session() as session, session.begin():
            user = _user(session, name)
            row = _row(session, user.id, competence)
            if row is None:
                return False
            session.delete(row)
            audit.append(
                session,
                actor=actor,
                action="user.competence",
                details={"user_id": user.id, "competence": competence, "change": "revoke"},
                at=now,
            )
            return True

    def of(self, name: str) -> list[Competence]:
        """The competences recorded for user ``name`` (held or lapsed)."""
        with self.store.catalog.session() as session:
            user = _user(session, name)
            rows = session.scalars(
                select(UserCompetenceRow)
                .where(UserCompetenceRow.user_id == user.id)
                .order_by(UserCompetenceRow.competence)
            )
            return [self._competence(r, user.name) for r in rows]

    def listing(self) -> list[dict[str, Any]]:
        """Every recorded competence, held or lapsed (the evidence pack, the users page)."""
        today = self.clock().date()
        with self.store.catalog.session() as session:
            rows = session.execute(
                select(UserCompetenceRow, UserRow.name)
                .join(UserRow, UserRow.id == UserCompetenceRow.user_id)
                .order_by(UserRow.name, UserCompetenceRow.competence)
            ).all()
            return [self._competence(r, n).as_dict(today) for r, n in rows]

    def check(self, session: Session, actor: str, competence: str = "verifier") -> Identity:
        """``actor``'s identity if they hold ``competence`` now, else a :class:`PrivacyError` that says
        why (no competence recorded, or its training lapsed)."""
        _known(competence)
        who = identity(session, actor)
        if who is None:
            raise PrivacyError(f"{actor} cannot hold the {competence} competence")
        if who.user_id is None:
            return who  # a local administrator identity: every competence, as trained today
        row = _row(session, who.user_id, competence)
        if row is None:
            raise PrivacyError(
                f"you do not hold the {competence} competence: an admin records it with your training date"
            )
        held = self._competence(row, who.key)
        if not held.held(self.clock().date()):
            raise PrivacyError(
                f"your {competence} competence lapsed on {held.lapses_on.isoformat()} (training of "
                f"{held.trained_on.isoformat()}): an admin records a newer training"
            )
        return who


def _known(competence: str) -> None:
    if competence not in COMPETENCES:
        raise InputError(f"unknown competence {competence!r}; competences are {', '.join(COMPETENCES)}")


def _row(session: Session, user_id: int, competence: str) -> UserCompetenceRow | None:
    return session.scalar(
        select(UserCompetenceRow).where(
            UserCompetenceRow.user_id == user_id, UserCompetenceRow.competence == competence
        )
    )


def _user(session: Session, name: str) -> UserRow:
    row = session.scalar(select(UserRow).where(UserRow.name == name.strip()))
    if row is None:
        raise NotFoundError(f"no user {name!r}")
    return row
