"""The service's scheduled job: retention purges and pending order deletions, on a timer.

A daemon thread waits ``maintenance_interval_s`` (the first pass after at most a minute), then
erases faces kept past their source's retention, completes jurisdiction-stop deletions whose
access requests have been answered, expires portal requests whose contact address was not
confirmed in time, finishes the enrolment scans of guests' consents that a stop of the service
interrupted (a guest page's scan runs after its answer, :mod:`lethe.api.routes.guest`), and prunes
the audit log past ``LETHE_LOG_RETENTION_DAYS`` with a signed checkpoint at most daily
(:mod:`lethe.privacy.audit_retention`), and scans the search log for misuse, raising alerts
(:mod:`lethe.privacy.monitoring`). Each pass
is audited by the actions it takes; failures are logged (ids and counts only) and retried at the
next pass.
"""

from __future__ import annotations

import logging
import threading

from lethe.engine import Lethe

log = logging.getLogger(__name__)
ACTOR = "service:maintenance"
FIRST_PASS_MAX_S = 60.0


def run_once(engine: Lethe) -> dict[str, object]:
    purged = engine.retention.purge(actor=ACTOR)
    completed = engine.orders.complete_pending(actor=ACTOR)
    expired = engine.requests.expire_unconfirmed()
    scanned = engine.consents.resume_scans(actor=ACTOR)
    audit_log = engine.audit_retention.sweep(actor=ACTOR)
    alerts = engine.monitoring.scan_for_misuse(actor=ACTOR)
    messages = engine.requests.communications.deliver_pending()  # sends that failed, retried
    log.info(
        "maintenance: retention erased %s face(s); %d pending order(s) checked; "
        "%d unconfirmed portal request(s) expired; %d face(s) linked by resumed consent scans; "
        "%s audit entries pruned; %d misuse alert(s) raised",
        purged["erased_faces"],
        len(completed),
        expired,
        scanned,
        audit_log["pruned"],
        len(alerts),
    )
    return {
        "retention": purged,
        "orders": completed,
        "expired_requests": expired,
        "consent_scans": scanned,
        "audit_log": audit_log,
        "alerts": len(alerts),
        "messages": messages,
    }


class Maintenance:
    def __init__(self, engine: Lethe, interval_s: float) -> None:
        self.engine, self.interval_s = engine, interval_s
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="lethe-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        wait = min(self.interval_s, FIRST_PASS_MAX_S)
        while not self._stop.wait(wait):
            try:
                run_once(self.engine)
            except Exception:  # noqa: BLE001 - keep the timer alive; the next pass retries
                log.exception("maintenance pass failed")
            self.passes += 1
            wait = self.interval_s
