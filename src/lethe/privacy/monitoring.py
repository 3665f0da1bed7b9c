"""Misuse detection (EU AI Act Art. 14(4)(a), issue 18): rules over the search log that raise alerts
for the people who oversee the system, each alert an audit entry.

A scan (:meth:`Monitoring.scan_for_misuse`: every maintenance pass of the service, and ``lethe monitor
scan``) reads the ``search`` entries of the audit log and the open uses, and appends one
``alert.<kind>`` entry per new finding:

- ``volume``: an operator's searches in the 24 hours before the scan exceed ``LETHE_ALERT_DAILY_SEARCHES``
  and ``LETHE_ALERT_VOLUME_FACTOR`` times their own median daily count over the 30 days before that.
- ``repeated_probe``: the same probe photo (its SHA-256) searched ``LETHE_ALERT_REPEATED_PROBE`` times
  or more within ``LETHE_ALERT_WINDOW_HOURS``, by anyone.
- ``off_hours``: an operator's searches outside ``LETHE_WORKING_HOURS`` in ``LETHE_WORKING_TIMEZONE``
  (and on weekends unless ``LETHE_WORKING_WEEKENDS``), within the window.
- ``open_uses``: a use (case) still open after ``LETHE_ALERT_OPEN_USE_SEARCHES`` searches.

**Once per finding.** Each alert names its subject (the operator, the probe's hash, the use) and the
last search it covers (``through_seq``); a later scan counts for that kind and subject only the
searches after it, so the same searches never raise the same alert twice, while a new burst does.
An open use raises its alert once. The scan holds the audit log's write lock from reading to
appending, so two scans at once (the service and the host's CLI) cannot both raise one finding.

**Acknowledging** (admin or dpo: :meth:`Monitoring.acknowledge`) appends ``alert.ack`` naming the
alert's seq; acknowledging twice changes nothing. An alert is *open* until acknowledged. Alerts hold
operators' account names and probe hashes, as the search entries do; never a face, a template or a
data subject's name. Pruning the log (``LETHE_LOG_RETENTION_DAYS``) removes old alerts with it.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog import audit_log
from lethe.catalog.privacy_tables import SearchUseRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow
from lethe.errors import NotFoundError
from lethe.privacy import audit

if TYPE_CHECKING:
    from lethe.config import Settings
    from lethe.store import Store

#: The kinds of alert, each recorded as the audit action ``alert.<kind>``.
KINDS = ("volume", "repeated_probe", "off_hours", "open_uses")
ALERT_ACTIONS = tuple(f"alert.{kind}" for kind in KINDS)
#: The audit action of an acknowledgement.
ACK = "alert.ack"
#: The days of an operator's own history a ``volume`` alert compares with.
HISTORY_DAYS = 30
#: At most this many search seqs are named in one ``off_hours`` alert (the count is always whole).
MAX_SEQS = 100


@dataclass(frozen=True, slots=True)
class Alert:
    seq: int
    at: datetime
    kind: str
    raised_by: str
    details: dict[str, Any]
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "raised_by": self.raised_by,
            "details": self.details,
            "open": self.open,
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "acknowledged_by": self.acknowledged_by,
        }


@dataclass(frozen=True, slots=True)
class SearchRecord:
    """What the rules read of one ``search`` entry."""

    seq: int
    at: datetime
    actor: str
    details: dict[str, Any]


def search_records(session: Session, *, since: datetime | None, until: datetime) -> list[SearchRecord]:
    """The ``search`` entries recorded in ``[since, until]``, oldest first."""
    query = select(AuditEntryRow).where(AuditEntryRow.action == "search", AuditEntryRow.at <= until)
    if since is not None:
        query = query.where(AuditEntryRow.at >= since)
    return [
        SearchRecord(r.seq, r.at, r.actor, json.loads(r.details))
        for r in session.scalars(query.order_by(AuditEntryRow.seq))
    ]


def parse_hours(value: str) -> tuple[time, time] | None:
    """``"08:00-19:00"`` as (start, end); ``None`` for the empty setting (no working hours)."""
    if not value:
        return None
    start, end = value.split("-")
    return time.fromisoformat(start), time.max if end == "24:00" else time.fromisoformat(end)


def outside_working_hours(at: datetime, settings: Settings) -> bool:
    """Whether ``at`` falls outside the working hours in their time zone (weekends count as outside
    unless ``working_weekends``); never, when no working hours are set."""
    hours = parse_hours(settings.working_hours)
    if hours is None:
        return False
    local = at.astimezone(ZoneInfo(settings.working_timezone))
    if not settings.working_weekends and local.weekday() >= 5:
        return True
    return not hours[0] <= local.time().replace(tzinfo=None) < hours[1]


@dataclass(frozen=True, slots=True)
class _Finding:
    kind: str
    subject: str
    details: dict[str, Any]


class Monitoring:
    """Misuse alerts over one store (see the module)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def settings(self) -> Settings:
        return self.store.settings

    # -- the scan ----------------------------------------------------------------------------------

    def scan_for_misuse(self, now: datetime | None = None, *, actor: str = "system") -> list[Alert]:
        """Evaluate every rule as of ``now`` (default: the present) and append one ``alert.<kind>``
        entry per new finding; the alerts raised (none when nothing new was found)."""
        at = now or now_utc()
        raised: list[Alert] = []
        with self.store.catalog.session() as session, session.begin():
            audit_log.lock_head(session)  # one scan at a time: a finding is raised once
            covered = _covered(session)
            history = search_records(session, since=at - timedelta(days=HISTORY_DAYS + 1), until=at)
            findings = [
                *self._volume(history, covered, at),
                *self._repeated_probes(history, covered, at),
                *self._off_hours(history, covered, at),
                *self._open_uses(session, covered),
            ]
            for finding in findings:
                details = {"kind": finding.kind, "subject": finding.subject, **finding.details}
                entry = audit.append(
                    session, actor=actor, action=f"alert.{finding.kind}", details=details, at=at
                )
                raised.append(Alert(entry.seq, entry.at, finding.kind, actor, details))
        return raised

    def _volume(
        self, history: list[SearchRecord], covered: dict[tuple[str, str], int], at: datetime
    ) -> Iterable[_Finding]:
        day_start = at - timedelta(days=1)
        per_actor: dict[str, list[SearchRecord]] = defaultdict(list)
        for s in history:
            per_actor[s.actor].append(s)
        for who, searches in sorted(per_actor.items()):
            after = covered.get(("volume", who), 0)
            recent = [s for s in searches if s.at > day_start and s.seq > after]
            if len(recent) <= self.settings.alert_daily_searches:
                continue
            daily = [0] * HISTORY_DAYS
            for s in searches:
                days_before = int((day_start - s.at) / timedelta(days=1))
                if s.at <= day_start and days_before < HISTORY_DAYS:
                    daily[days_before] += 1
            median = float(statistics.median(daily))
            if len(recent) <= self.settings.alert_volume_factor * median:
                continue
            yield _Finding(
                "volume",
                who,
                {
                    "operator": who,
                    "searches": len(recent),
                    "median_daily": median,
                    "limit": self.settings.alert_daily_searches,
                    "factor": self.settings.alert_volume_factor,
                    "since": day_start.isoformat(),
                    "through_seq": recent[-1].seq,
                },
            )

    def _repeated_probes(
        self, history: list[SearchRecord], covered: dict[tuple[str, str], int], at: datetime
    ) -> Iterable[_Finding]:
        start = at - timedelta(hours=self.settings.alert_window_hours)
        per_probe: dict[str, list[SearchRecord]] = defaultdict(list)
        for s in history:
            probe = s.details.get("probe_sha256")
            if probe and s.at > start and s.seq > covered.get(("repeated_probe", probe), 0):
                per_probe[str(probe)].append(s)
        for probe, searches in sorted(per_probe.items()):
            if len(searches) < self.settings.alert_repeated_probe:
                continue
            yield _Finding(
                "repeated_probe",
                probe,
                {
                    "probe_sha256": probe,
                    "searches": len(searches),
                    "operators": len({s.actor for s in searches}),
                    "window_hours": self.settings.alert_window_hours,
                    "first_seq": searches[0].seq,
                    "through_seq": searches[-1].seq,
                },
            )

    def _off_hours(
        self, history: list[SearchRecord], covered: dict[tuple[str, str], int], at: datetime
    ) -> Iterable[_Finding]:
        if parse_hours(self.settings.working_hours) is None:
            return
        start = at - timedelta(hours=self.settings.alert_window_hours)
        per_actor: dict[str, list[SearchRecord]] = defaultdict(list)
        for s in history:
            fresh = s.at > start and s.seq > covered.get(("off_hours", s.actor), 0)
            if fresh and outside_working_hours(s.at, self.settings):
                per_actor[s.actor].append(s)
        for who, searches in sorted(per_actor.items()):
            yield _Finding(
                "off_hours",
                who,
                {
                    "operator": who,
                    "searches": len(searches),
                    "seqs": [s.seq for s in searches][:MAX_SEQS],
                    "first_at": searches[0].at.isoformat(),
                    "last_at": searches[-1].at.isoformat(),
                    "working_hours": self.settings.working_hours,
                    "timezone": self.settings.working_timezone,
                    "weekends_worked": self.settings.working_weekends,
                    "through_seq": searches[-1].seq,
                },
            )

    def _open_uses(self, session: Session, covered: dict[tuple[str, str], int]) -> Iterable[_Finding]:
        limit = self.settings.alert_open_use_searches
        rows = session.scalars(
            select(SearchUseRow)
            .where(SearchUseRow.closed_at.is_(None), SearchUseRow.searches >= limit)
            .order_by(SearchUseRow.id)
        )
        for row in rows:
            subject = f"use:{row.id}"
            if ("open_uses", subject) in covered:
                continue
            yield _Finding(
                "open_uses",
                subject,
                {
                    "use": row.id,
                    "operator": row.actor,
                    "searches": row.searches,
                    "limit": limit,
                    "opened_at": row.opened_at.isoformat(),
                    "through_seq": 0,
                },
            )

    # -- reading and acknowledging ---------------------------------------------------------------

    def alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, newest first (only those not yet acknowledged with ``open_only``)."""
        with self.store.catalog.session() as session:
            found = _alerts(session)
        if open_only:
            found = [a for a in found if a.open]
        return found[: max(1, int(limit))]

    def open_count(self) -> int:
        with self.store.catalog.session() as session:
            return sum(1 for a in _alerts(session) if a.open)

    def acknowledge(self, seq: int, *, actor: str) -> Alert:
        """Mark alert ``seq`` as seen and dealt with (``alert.ack``); acknowledging again changes
        nothing. ``NotFoundError`` when ``seq`` is not an alert still held in the log."""
        with self.store.catalog.session() as session, session.begin():
            audit_log.lock_head(session)
            alert = next((a for a in _alerts(session) if a.seq == seq), None)
            if alert is None:
                raise NotFoundError(f"no alert {seq} (not an alert entry, or pruned)")
            if not alert.open:
                return alert
            entry = audit.append(
                session, actor=actor, action=ACK, details={"alert_seq": seq, "kind": alert.kind}, at=now_utc()
            )
        return Alert(alert.seq, alert.at, alert.kind, alert.raised_by, alert.details, entry.at, actor)


def _details(row: AuditEntryRow) -> dict[str, Any]:
    details: dict[str, Any] = json.loads(row.details)
    details.pop(audit_log.FACES_KEY, None)
    return details


def _alerts(session: Session) -> list[Alert]:
    """Every alert held, newest first, with its acknowledgement."""
    acks: dict[int, AuditEntryRow] = {}
    for row in session.scalars(select(AuditEntryRow).where(AuditEntryRow.action == ACK)):
        acks.setdefault(int(_details(row)["alert_seq"]), row)
    rows = session.scalars(
        select(AuditEntryRow)
        .where(AuditEntryRow.action.in_(ALERT_ACTIONS))
        .order_by(AuditEntryRow.seq.desc())
    )
    out = []
    for row in rows:
        ack = acks.get(row.seq)
        out.append(
            Alert(
                row.seq,
                row.at,
                row.action.removeprefix("alert."),
                row.actor,
                _details(row),
                ack.at if ack else None,
                ack.actor if ack else None,
            )
        )
    return out


def _covered(session: Session) -> dict[tuple[str, str], int]:
    """(kind, subject) -> the last search seq an earlier alert of that kind and subject covered."""
    covered: dict[tuple[str, str], int] = {}
    for row in session.scalars(select(AuditEntryRow).where(AuditEntryRow.action.in_(ALERT_ACTIONS))):
        details = _details(row)
        key = (str(details.get("kind")), str(details.get("subject")))
        covered[key] = max(covered.get(key, 0), int(details.get("through_seq") or 0))
    return covered
