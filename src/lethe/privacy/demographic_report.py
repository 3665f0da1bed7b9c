"""The demographic performance report as a document (EU AI Act Arts. 10(2)(f)-(g), 13(3)(b)(v), 15
and Annex IV; ISO/IEC 19795-10:2024): :func:`run` measures it (:mod:`lethe.demographics`) on the
operator's labelled evaluation set, writes ``demographic_report.json`` and ``.html`` into the data
folder's ``reports/`` (and a copy where asked) and audits the run with counts only
(``report.demographic``); :func:`pack_files` gives the last one to the evidence pack.

The evaluation photos are read in memory: no template, no photo, no file name and no person's label
is stored, in the report or the catalog; the labels file is named by its sha256 only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lethe.catalog.repository import now_utc
from lethe.demographics import MIN_IDENTITIES, TARGET_FPIR, demographic_report
from lethe.privacy import audit
from lethe.privacy.access_words import long_date
from lethe.privacy.pages import render
from lethe.storage import atomic_write, private_dir

if TYPE_CHECKING:
    from lethe.store import Store

#: The data folder's sub-folder holding the last report of each kind.
REPORTS_DIR = "reports"
JSON_NAME = "demographic_report.json"
HTML_NAME = "demographic_report.html"

METHOD = [
    "Groups: only the labels of the operator's CSV (image, group, optionally identity); a photo under "
    "the images folder without a row is left out and counted, never given a group; nothing reads a "
    "face to decide a group.",
    "Split, per group and deterministic for the seed: people ordered by a seeded hash of their label, "
    "half of each group's people (rounded down, those with one photo first) held out of the gallery, "
    "the others enrolled with one photo: the first, in a seeded order, in which a face is found.",
    "Mated searches: every other photo of an enrolled person; non-mated searches: every photo of a "
    "held-out person; each compared with every enrolled template (exact cosine similarity, "
    "identification mode).",
    "FNIR: the share of mated searches whose own person is not returned at or above the threshold. "
    "FPIR: the share of non-mated searches returning anyone at or above it. A photo with no face "
    "found is a failure to acquire: counted on its own, a miss in FNIR and no false positive in FPIR, "
    "in both denominators (transaction rates, ISO/IEC 19795-1).",
    "Every rate with its number of searches n and two 95% intervals: Wilson's score interval over the "
    "searches, and a percentile interval over people resampled with replacement (2,000 rounds, "
    "seeded), since a person's searches are not independent (none for no error or all errors, which "
    "resampling cannot vary). A group with fewer people than the "
    "minimum is listed, not measured. The differential is the highest rate over the lowest among the "
    "measured groups; its intervals are said to overlap when the wider of each rate's two do.",
    "Wrong candidates: every person returned at or above the threshold who is not the one searched "
    "for, by the group of the search and the group of the person returned.",
    "Threshold for the target FPIR: per group, the lowest threshold at which at most that share of "
    "the group's non-mated searches returned anyone.",
]

LIMITS = [
    "The groups are the operator's statement about the people of this evaluation set; the report is "
    "only as good as those labels, and it says nothing about people outside the set.",
    "Photos of one person are not independent trials: Wilson's interval assumes they are and is too "
    "narrow where people have several photos; the interval over people does not assume it.",
    "With several groups, the highest and the lowest rate differ by chance more often than two groups "
    "would: intervals that barely miss each other are a reason to look closer, not a verdict.",
    "The gallery here is the evaluation set's enrolled people, much smaller than a real one: FPIR "
    "grows with the gallery, so compare groups within a report, not a report with production.",
    "Labels such as ethnic origin are special categories of personal data (GDPR Art. 9); the AI Act's "
    "Art. 10(5) allows processing them for bias detection only where strictly necessary and with "
    "safeguards. Keep the labels file under that regime; Lethe keeps only the counts.",
]


def _fmt_rate(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "not measured" if rate["n"] else "no search"
    low, high = rate["ci95"]
    people = rate.get("ci95_people")
    over_people = f"; people {people[0] * 100:.1f}-{people[1] * 100:.1f}%" if people else ""
    return f"{rate['rate'] * 100:.1f}% ({low * 100:.1f}-{high * 100:.1f}%{over_people})"


def run(
    store: Store,
    labels: Path,
    images: Path,
    *,
    actor: str,
    thresholds: Sequence[float] = (),
    out: Path | None = None,
    seed: int = 0,
    min_identities: int = MIN_IDENTITIES,
    target_fpir: float = TARGET_FPIR,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Measure, write the report (data folder, and ``out`` if given), audit it; returns
    ``{"report": ..., "files": [...]}``. A bad labels file or option raises before anything is
    written."""
    report = demographic_report(
        labels,
        images,
        store.settings,
        thresholds,
        seed=seed,
        min_identities=min_identities,
        target_fpir=target_fpir,
        progress=progress,
    )
    at = now or now_utc()
    report = {
        "kind": "lethe.demographic_report",
        "version": 1,
        "generated_at": at.isoformat(),
        **report,
        "method": METHOD,
        "limits": LIMITS,
    }
    data = json.dumps(report, indent=2, sort_keys=False).encode()
    page = render(
        "demographic_report.html", report=report, generated_words=long_date(at), rate=_fmt_rate
    ).encode()
    files: list[Path] = []
    for folder in [private_dir(store.settings.data_dir / REPORTS_DIR), *([out] if out else [])]:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in ((JSON_NAME, data), (HTML_NAME, page)):
            atomic_write(folder / name, content)
            files.append(folder / name)
    operating = report["results"][0]
    store.catalog.record(
        audit.record(
            actor,
            "report.demographic",
            {
                "labels_sha256": report["labels"]["sha256"],
                "labelled_photos": report["labels"]["rows"],
                "unlabelled_excluded": report["labels"]["unlabelled_excluded"],
                "groups": len(report["groups"]),
                "groups_measured": sum(1 for g in report["groups"].values() if g["measured"]),
                "mated_searches": report["protocol"]["mated_searches"],
                "non_mated_searches": report["protocol"]["non_mated_searches"],
                "thresholds": [r["threshold"] for r in report["results"]],
                "fnir_ratio": operating["differential"]["fnir"]["ratio"],
                "fpir_ratio": operating["differential"]["fpir"]["ratio"],
                "report_sha256": hashlib.sha256(data).hexdigest(),
            },
        )
    )
    return {"report": report, "files": [str(f) for f in files]}


def pack_files(store: Store, *, now: datetime) -> dict[str, bytes]:
    """What the evidence pack holds of this part: the last report written into the data folder, as
    written (its ``generated_at`` says when; ``now`` is the pack's time, unused), or nothing when no
    report was ever run."""
    del now
    folder = store.settings.data_dir / REPORTS_DIR
    return {
        name: (folder / name).read_bytes() for name in (JSON_NAME, HTML_NAME) if (folder / name).is_file()
    }
