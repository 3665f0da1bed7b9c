"""The incident register's rules: the categories of serious incident and their deadlines, who may be
notified and on what grounds a notification is not made, the incident as read back, and its clocks
computed at a time passed in (see :mod:`lethe.privacy.incidents`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class AiCategory:
    words: str
    days: int
    paragraph: str


#: The serious incidents of AI Act Art. 3(49) (and the widespread infringement of Art. 3(61)) and
#: the Art. 73 paragraph that sets each one's deadline (Official Journal numbering).
AI_CATEGORIES: dict[str, AiCategory] = {
    "death": AiCategory("the death of a person (Art. 3(49)(a))", 10, "Art. 73(4)"),
    "health": AiCategory("serious harm to a person's health (Art. 3(49)(a))", 15, "Art. 73(2)"),
    "critical_infrastructure": AiCategory(
        "a serious and irreversible disruption of the management or operation of critical "
        "infrastructure (Art. 3(49)(b))",
        2,
        "Art. 73(3)",
    ),
    "fundamental_rights": AiCategory(
        "an infringement of obligations under Union law intended to protect fundamental rights "
        "(Art. 3(49)(c))",
        15,
        "Art. 73(2)",
    ),
    "property_or_environment": AiCategory(
        "serious harm to property or the environment (Art. 3(49)(d))", 15, "Art. 73(2)"
    ),
    "widespread_infringement": AiCategory("a widespread infringement (Art. 3(61))", 2, "Art. 73(3)"),
}

#: Whom an incident may be notified to.
RECIPIENTS: dict[str, str] = {
    "supervisory_authority": "the data-protection supervisory authority (GDPR Art. 33)",
    "market_surveillance_authority": "the market-surveillance authority (AI Act Art. 73)",
    "provider": "the AI system's provider (AI Act Art. 26(5))",
    "data_subjects": "the data subjects (GDPR Art. 34)",
}

#: The grounds on which a notification is not made, by recipient.
GROUNDS: dict[str, dict[str, str]] = {
    "supervisory_authority": {
        "not_required": "Art. 33(1): the breach is unlikely to result in a risk to the rights and "
        "freedoms of natural persons",
    },
    "data_subjects": {
        "no_high_risk": "Art. 34(1): the breach is not likely to result in a high risk to the "
        "rights and freedoms of natural persons",
        "art34_3_a": "Art. 34(3)(a): the data affected were unintelligible to any person not "
        "authorised to access them, such as by encryption",
        "art34_3_b": "Art. 34(3)(b): measures taken since ensure that the high risk is no longer "
        "likely to materialise",
        "art34_3_c": "Art. 34(3)(c): telling each person would involve disproportionate effort; a "
        "public communication informs them as effectively instead",
    },
}

AUTHORITY_DEADLINE = timedelta(hours=72)


def span(delta: timedelta) -> str:
    """A duration in words: ``2 days 3 h``, ``5 h 07 min``, ``12 min``."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def utc(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # opened, action, notified, decided, closed
    at: datetime
    recorded_at: datetime
    actor: str
    seq: int
    recipient: str | None = None
    ground: str | None = None
    text: str | None = None
    reference: str | None = None
    draft_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "actor": self.actor,
            "audit_seq": self.seq,
            "recipient": self.recipient,
            "ground": self.ground,
            "ground_words": GROUNDS.get(self.recipient or "", {}).get(self.ground or ""),
            "text": self.text,
            "reference": self.reference,
            "draft_sha256": self.draft_sha256,
        }


@dataclass(frozen=True, slots=True)
class AffectedSource:
    id: int
    name: str
    images: int
    faces: int
    consents: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "images_at_opening": self.images,
            "faces_at_opening": self.faces,
            "consents_at_opening": self.consents,
        }


@dataclass(frozen=True, slots=True)
class Clock:
    """One duty to notify and where it stands at ``now``."""

    recipient: str
    law: str
    due_at: datetime | None  # None: without undue delay (no fixed hour)
    done_at: datetime | None
    state: str  # running, overdue, met, late, decided, pending
    words: str

    @property
    def overdue(self) -> bool:
        return self.state == "overdue"

    @property
    def settled(self) -> bool:
        return self.state in ("met", "late", "decided")

    def as_dict(self) -> dict[str, Any]:
        return {
            "recipient": self.recipient,
            "law": self.law,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "done_at": self.done_at.isoformat() if self.done_at else None,
            "state": self.state,
            "overdue": self.overdue,
            "words": self.words,
        }


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    personal_data_breach: bool
    ai_category: str | None
    description: str | None
    occurred_at: datetime | None
    detected_at: datetime
    aware_at: datetime
    window_start: datetime | None
    window_end: datetime | None
    opened_at: datetime
    opened_by: str
    opened_seq: int
    closed_at: datetime | None
    closed_by: str | None
    sources: tuple[AffectedSource, ...]
    steps: tuple[Step, ...]

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def kinds(self) -> list[str]:
        return (["personal_data_breach"] if self.personal_data_breach else []) + (
            ["serious_incident"] if self.ai_category else []
        )

    def clocks(self, now: datetime) -> list[Clock]:
        return clocks(self, now)

    def overdue(self, now: datetime) -> bool:
        return any(c.overdue for c in self.clocks(now))

    def as_dict(self, now: datetime) -> dict[str, Any]:
        category = AI_CATEGORIES.get(self.ai_category or "")
        return {
            "id": self.id,
            "kinds": self.kinds,
            "personal_data_breach": self.personal_data_breach,
            "ai_category": self.ai_category,
            "ai_category_words": category.words if category else None,
            "description": self.description,
            "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
            "detected_at": self.detected_at.isoformat(),
            "aware_at": self.aware_at.isoformat(),
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "opened_at": self.opened_at.isoformat(),
            "opened_by": self.opened_by,
            "open": self.open,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "closed_by": self.closed_by,
            "sources": [s.as_dict() for s in self.sources],
            "clocks": [c.as_dict() for c in self.clocks(now)],
            "overdue": self.overdue(now),
            "steps": [s.as_dict() for s in self.steps],
            "as_of": now.isoformat(),
        }


def _deadline_clock(
    recipient: str, law: str, due: datetime, steps: Sequence[Step], now: datetime, *, late_note: str
) -> Clock:
    decided = next((s for s in steps if s.kind == "decided" and s.recipient == recipient), None)
    done = next((s for s in steps if s.kind == "notified" and s.recipient == recipient), None)
    who = RECIPIENTS[recipient].split(" (")[0]
    if done is not None:
        delay = done.at - due
        if delay <= timedelta(0):
            words = f"{who} notified {utc(done.at)}, {span(due - done.at)} before the deadline ({law})"
            return Clock(recipient, law, due, done.at, "met", words)
        words = f"{who} notified {utc(done.at)}, {span(delay)} after the deadline of {utc(due)}{late_note}"
        return Clock(recipient, law, due, done.at, "late", words)
    if decided is not None:
        ground = GROUNDS.get(recipient, {}).get(decided.ground or "", decided.ground or "")
        words = f"not notified, decided {utc(decided.at)}: {ground}"
        return Clock(recipient, law, due, decided.at, "decided", words)
    if now > due:
        words = f"{who} was due {utc(due)}, {span(now - due)} ago ({law}); notify now{late_note}"
        return Clock(recipient, law, due, None, "overdue", words)
    return Clock(recipient, law, due, None, "running", f"{who} due {utc(due)}, in {span(due - now)} ({law})")


def clocks(incident: Incident, now: datetime) -> list[Clock]:
    """The incident's duties to notify and where each stands at ``now`` (see the module)."""
    steps = sorted(incident.steps, key=lambda s: (s.at, s.seq))
    out: list[Clock] = []
    if incident.personal_data_breach:
        out.append(
            _deadline_clock(
                "supervisory_authority",
                "GDPR Art. 33(1), 72 hours after awareness",
                incident.aware_at + AUTHORITY_DEADLINE,
                steps,
                now,
                late_note=", with the reasons for the delay (GDPR Art. 33(1))",
            )
        )
        told = next((s for s in steps if s.kind == "notified" and s.recipient == "data_subjects"), None)
        decided = next((s for s in steps if s.kind == "decided" and s.recipient == "data_subjects"), None)
        law = "GDPR Art. 34, without undue delay when the risk is high"
        if told is not None:
            out.append(
                Clock("data_subjects", law, None, told.at, "met", f"data subjects told {utc(told.at)}")
            )
        elif decided is not None:
            ground = GROUNDS["data_subjects"].get(decided.ground or "", decided.ground or "")
            words = f"data subjects not told, decided {utc(decided.at)}: {ground}"
            out.append(Clock("data_subjects", law, None, decided.at, "decided", words))
        else:
            words = (
                "pending: tell the data subjects without undue delay if the risk to them is high "
                "(Art. 34(1)), or record why not (Art. 34(1) or 34(3)(a)-(c))"
            )
            out.append(Clock("data_subjects", law, None, None, "pending", words))
    category = AI_CATEGORIES.get(incident.ai_category or "")
    if category is not None:
        out.append(
            _deadline_clock(
                "market_surveillance_authority",
                f"AI Act {category.paragraph}, {category.days} days after awareness",
                incident.aware_at + timedelta(days=category.days),
                steps,
                now,
                late_note="; an initial, incomplete report is allowed (AI Act Art. 73(5))",
            )
        )
    return out
