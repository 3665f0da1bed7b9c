"""The monitoring report (EU AI Act Art. 72, post-market monitoring; issue 18): how the system
performs in use, aggregated so that it holds **no personal data** and may be handed to a provider, a
regulator or an auditor as it is.

Read from the audit log and the request tables only; per ISO week (UTC):

- ``searches``, ``operators`` (how many distinct accounts searched: a count, never a name);
- failure to acquire: ``no_face`` (searches whose probe held no detectable face) over the searches
  whose entry records ``probe_faces``, as ``failure_to_acquire_rate``;
- ``searches_with_match`` and ``matches_by_band`` (each returned score placed in the erasure bands by
  the thresholds in force when the report is made: ``bands``);
- ``review_decisions``: a reviewer's confirm/reject decisions on rights requests' candidates, per band
  (the band the candidate was found in), with the confirm rate;
- ``verification_verdicts``: two-person verification verdicts (``verification.verdict`` entries) on
  search candidates, per band of the candidate's score, with the confirm rate;
- ``alerts`` raised per kind (:mod:`lethe.privacy.monitoring`).

And ``score_periods``: the searches split into consecutive periods of one model (its SHA-256) and
one threshold; for each, the deciles of the top score of the searches that matched and their
median, and ``drift``: whether the change into this period moved the median by more than
``LETHE_DRIFT_TOLERANCE`` (a model or threshold change that shifted the score distribution).
Scores below the threshold are never recorded, so a threshold change shifts the matched median by
itself; the report says which of the two changed.

Never in it: probe hashes, face ids, search or request ids, audit seqs, account names, file names,
purposes.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lethe.catalog.privacy_tables import RequestCandidateRow
from lethe.catalog.repository import now_utc
from lethe.catalog.tables import AuditEntryRow
from lethe.model_ids import model_name
from lethe.privacy import audit
from lethe.privacy.monitoring import ALERT_ACTIONS, SearchRecord, search_records

if TYPE_CHECKING:
    from lethe.config import Settings
    from lethe.store import Store

BANDS = ("automatic", "review", "below_review")
#: Decisions and verdicts counted as confirming and as rejecting.
CONFIRMS = frozenset({"confirmed", "confirm"})
REJECTS = frozenset({"rejected", "reject"})


def band_of(score: float, settings: Settings) -> str:
    if score >= settings.erasure_auto_threshold:
        return "automatic"
    return "review" if score >= settings.erasure_review_threshold else "below_review"


def week_of(at: datetime) -> str:
    year, week, _ = at.isocalendar()
    return f"{year}-W{week:02d}"


def monitoring_report(
    store: Store, *, since: datetime | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The report over entries from ``since`` (default: every entry held) to ``now``."""
    settings = store.settings
    until = now or now_utc()
    weeks: dict[str, dict[str, Any]] = defaultdict(_week)
    operators: dict[str, set[str]] = defaultdict(set)
    with store.catalog.session() as session:
        searches = search_records(session, since=since, until=until)
        for s in searches:
            _count_search(weeks[week_of(s.at)], s, settings)
            operators[week_of(s.at)].add(s.actor)
        decisions = session.execute(
            select(
                RequestCandidateRow.decided_at, RequestCandidateRow.band, RequestCandidateRow.decision
            ).where(RequestCandidateRow.decided_at.is_not(None), RequestCandidateRow.decided_at <= until)
        ).all()
        for decided_at, band, decision in decisions:
            if since is None or decided_at >= since:
                _tally(weeks[week_of(decided_at)]["review_decisions"], band, decision)
        _count_verdicts(session, weeks, settings, since=since, until=until)
        query = select(AuditEntryRow.at, AuditEntryRow.action).where(
            AuditEntryRow.action.in_(ALERT_ACTIONS), AuditEntryRow.at <= until
        )
        for at, action in session.execute(query):
            if since is None or at >= since:
                alerts = weeks[week_of(at)]["alerts"]
                kind = action.removeprefix("alert.")
                alerts[kind] = alerts.get(kind, 0) + 1
    for key, week in weeks.items():
        week["operators"] = len(operators.get(key, ()))
        recorded = week["probe_faces_recorded"]
        week["failure_to_acquire_rate"] = round(week["no_face"] / recorded, 4) if recorded else None
        for table in (week["review_decisions"], week["verification_verdicts"]):
            for counts in table.values():
                decided = counts["confirmed"] + counts["rejected"]
                counts["confirm_rate"] = round(counts["confirmed"] / decided, 4) if decided else None
    periods = _score_periods(searches, settings.drift_tolerance)
    return {
        "report": "lethe monitoring report (EU AI Act Art. 72): aggregated counts, no personal data",
        "generated_at": until.isoformat(),
        "since": since.isoformat() if since else None,
        "bands": {
            "automatic": settings.erasure_auto_threshold,
            "review": settings.erasure_review_threshold,
            "note": "scores placed in bands by the thresholds in force when the report was made",
        },
        "weeks": [{"week": key, **weeks[key]} for key in sorted(weeks)],
        "score_periods": periods,
        "drift_tolerance": settings.drift_tolerance,
        "drift_flagged": any(p["drift"] for p in periods),
    }


def audited_report(store: Store, *, actor: str, since: datetime | None = None) -> dict[str, Any]:
    """:func:`monitoring_report`, its making audited (``report.monitoring``)."""
    report = monitoring_report(store, since=since)
    store.catalog.record(
        audit.record(
            actor,
            "report.monitoring",
            {
                "since": report["since"],
                "weeks": len(report["weeks"]),
                "drift_flagged": report["drift_flagged"],
            },
        )
    )
    return report


def _week() -> dict[str, Any]:
    return {
        "searches": 0,
        "operators": 0,
        "probe_faces_recorded": 0,
        "no_face": 0,
        "failure_to_acquire_rate": None,
        "searches_with_match": 0,
        "matches_by_band": dict.fromkeys(BANDS, 0),
        "review_decisions": {},
        "verification_verdicts": {},
        "alerts": {},
    }


def _count_search(week: dict[str, Any], s: SearchRecord, settings: Settings) -> None:
    week["searches"] += 1
    if "probe_faces" in s.details:
        week["probe_faces_recorded"] += 1
        week["no_face"] += int(s.details["probe_faces"] == 0)
    scores = s.details.get("scores") or []
    week["searches_with_match"] += int(bool(s.details.get("face_ids")))
    for score in scores:
        week["matches_by_band"][band_of(float(score), settings)] += 1


def _tally(table: dict[str, dict[str, Any]], band: str, decision: str) -> None:
    counts = table.setdefault(band, {"confirmed": 0, "rejected": 0})
    if decision in CONFIRMS:
        counts["confirmed"] += 1
    elif decision in REJECTS:
        counts["rejected"] += 1


def _count_verdicts(
    session: Session,
    weeks: dict[str, dict[str, Any]],
    settings: Settings,
    *,
    since: datetime | None,
    until: datetime,
) -> None:
    """Verification verdicts, each placed in the band of the score its search gave the candidate."""
    query = select(AuditEntryRow).where(
        AuditEntryRow.action == "verification.verdict", AuditEntryRow.at <= until
    )
    if since is not None:
        query = query.where(AuditEntryRow.at >= since)
    verdicts = [(row.at, _json(row.details)) for row in session.scalars(query)]
    seqs = {int(d["search_seq"]) for _, d in verdicts if "search_seq" in d}
    scored: dict[tuple[int, int], float] = {}
    rows: list[AuditEntryRow] = []
    if seqs:
        rows = list(session.scalars(select(AuditEntryRow).where(AuditEntryRow.seq.in_(sorted(seqs)))))
    for row in rows:
        details = _json(row.details)
        for face_id, score in zip(details.get("face_ids") or [], details.get("scores") or [], strict=False):
            scored[(row.seq, int(face_id))] = float(score)
    for at, details in verdicts:
        score = scored.get((int(details.get("search_seq", 0)), int(details.get("face_id", 0))))
        band = band_of(score, settings) if score is not None else "unknown"
        _tally(weeks[week_of(at)]["verification_verdicts"], band, str(details.get("verdict")))


def _json(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


def _score_periods(searches: list[SearchRecord], tolerance: float) -> list[dict[str, Any]]:
    """Consecutive runs of one model and one threshold, with the deciles of their top scores."""
    periods: list[dict[str, Any]] = []
    tops: list[list[float]] = []
    for s in searches:
        model, threshold = s.details.get("model_sha256"), s.details.get("threshold")
        if not periods or (periods[-1]["model_sha256"], periods[-1]["threshold"]) != (model, threshold):
            periods.append(
                {
                    "model_sha256": model,
                    "model": model_name(model) if model else None,
                    "threshold": threshold,
                    "from": s.at.isoformat(),
                    "searches": 0,
                    "matched": 0,
                }
            )
            tops.append([])
        periods[-1]["to"] = s.at.isoformat()
        periods[-1]["searches"] += 1
        scores = s.details.get("scores") or []
        if scores:
            periods[-1]["matched"] += 1
            tops[-1].append(max(float(x) for x in scores))
    previous_median: float | None = None
    previous: dict[str, Any] | None = None
    for period, values in zip(periods, tops, strict=True):
        median = round(statistics.median(values), 4) if values else None
        period["top_score_deciles"] = _deciles(values)
        period["top_score_median"] = median
        shift = None
        if median is not None and previous_median is not None:
            shift = round(median - previous_median, 4)
        period["median_shift"] = shift
        period["drift"] = shift is not None and abs(shift) > tolerance
        period["changed"] = (
            [] if previous is None else [k for k in ("model_sha256", "threshold") if period[k] != previous[k]]
        )
        if median is not None:
            previous_median = median
        previous = period
    return periods


def _deciles(values: list[float]) -> list[float] | None:
    if not values:
        return None
    if len(values) == 1:
        return [round(values[0], 4)] * 9
    return [round(q, 4) for q in statistics.quantiles(values, n=10, method="inclusive")]
