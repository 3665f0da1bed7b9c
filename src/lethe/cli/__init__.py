"""The ``lethe`` command: a thin layer over the engine; see docs/cli.md and ../shared/CONTRACT.md."""

from __future__ import annotations

import logging
import sys

from lethe.cli import assessments as _assessments
from lethe.cli import audit_retention as _audit_retention
from lethe.cli import consent as _consent
from lethe.cli import disclosures as _disclosures
from lethe.cli import documents as _documents
from lethe.cli import evaluate as _evaluate
from lethe.cli import incidents as _incidents
from lethe.cli import models as _models
from lethe.cli import monitor as _monitor
from lethe.cli import oversight as _oversight
from lethe.cli import source_lifecycle as _source_lifecycle
from lethe.cli import users as _users
from lethe.cli import uses as _uses
from lethe.cli import verification as _verification
from lethe.cli._support import ActorOpt, set_actor
from lethe.cli.core import app, audit_app, source_app
from lethe.cli.privacy import register
from lethe.cli.serve import serve


@app.callback()
def _who_acts(actor: ActorOpt = None) -> None:
    """Lethe: face search that obeys data-protection law (docs/cli.md)."""
    set_actor(actor)


register(app)
_source_lifecycle.register(source_app)
_audit_retention.register(audit_app)
_users.register(app)
_verification.register(app)
_consent.register(app)
_disclosures.register(app)
_oversight.register(app)
_monitor.register(app)
_uses.register(app)
_incidents.register(app)
_evaluate.register(app)
_models.register(app)
_documents.register(app)
_assessments.register(app)
app.command()(serve)

__all__ = ["app", "main"]


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    app()
