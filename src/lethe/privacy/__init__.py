"""The privacy layer: the rules personal data is processed under, and the one path that writes it.

::

    sources.py      lawful basis: a source declares its Art. 6 basis, Art. 9(2) condition, purpose,
                    jurisdiction and retention, or nothing of it is ingested
    audit.py        audit policy: what an audit entry may hold (the chain is lethe.catalog.audit_log)
    gate/           the privacy gate, the only code that stores, changes or deletes personal data:
                    ingest, erasure, requesters' probes, objection templates, re-embedding
    requests/       data-subject requests (access, erasure, objection, restriction): due dates,
                    states, review, answers
    searches.py     search as the law allows it: a stated purpose, restricted sources and objecting
                    people left out, every search audited
    objections.py   objections and restrictions: protected templates that keep a person out
    orders.py       regulator's orders: a jurisdiction stop restricts (and may erase) its sources
    retention.py    faces kept longer than their source allows are erased
    guests.py       an event's guest page: the guest sees only the photos they were matched in
    finder.py       every face of one person, from the photos they supplied, in bands
    access.py       the access export (Art. 15): JSON and an HTML page
    report.py       the compliance pack for a regulator: JSON, CSV, the audit log, an HTML page
    pages.py        the HTML pages of both, from templates/ with every value escaped

The package itself exports the lawful-basis vocabulary and :class:`SourceSpec`.
"""

from lethe.privacy.sources import ART6_BASES, ART9_CONDITIONS, SourceSpec

__all__ = ["ART6_BASES", "ART9_CONDITIONS", "SourceSpec"]
