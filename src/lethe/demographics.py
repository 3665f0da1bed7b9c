"""Demographic performance: per-group FNIR and FPIR in identification mode, with 95% Wilson
intervals, on an evaluation set whose groups the operator supplies (ISO/IEC 19795-10:2024,
NISTIR 8280).

The groups come only from the operator's labels CSV (``image,group[,identity]``): Lethe never
derives a group from a face (AI Act Art. 5(1)(g) bans biometric categorisation that infers such
categories). An image of the folder without a row is left out and counted, never given a group.

The protocol, deterministic for a seed:

- **Split, per group.** People (the ``identity`` column, else the image's folder) are ordered by a
  seeded hash of their label; half of each group's people (rounded down; people with one photo
  first, they cannot be searched as mated) are *held out* of the gallery, the others *enrolled*.
  Nothing of a face decides it, and renaming the groups changes no person's side.
- **Gallery.** One template per enrolled person: the first of their photos, in a seeded order, in
  which a face is found (a person with no face in any photo is a *failure to enrol*, counted, and
  their photos are not searched).
- **Searches.** Every other photo of an enrolled person is a *mated* search, every photo of a held-out
  person a *non-mated* one; each is compared with every gallery template (exact cosine, as the
  default exact index does). FNIR: the share of mated searches whose own person is not returned at or
  above the threshold. FPIR: the share of non-mated searches returning anyone at or above it. A photo
  in which no face is found is a failure to acquire: counted on its own and, as ISO/IEC 19795-1
  counts transactions, a miss in FNIR and no false positive in FPIR (it stays in both denominators).
- **Wrong candidates.** Every person returned who is not the one searched for, by the group of the
  search and the group of the person returned: same group or another.

The report holds counts, rates and group labels only: no file name, no person's label, no template.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lethe.calibration import wilson
from lethe.config import Settings
from lethe.errors import InputError
from lethe.evaluation import embed_all
from lethe.ingest.inputs import IMAGE_SUFFIXES

#: Columns of the labels CSV.
REQUIRED_COLUMNS = ("image", "group")
OPTIONAL_COLUMNS = ("identity",)
#: z for a two-sided 95% interval.
#: The fewest people a group needs for its rates to be reported (``--min-identities``).
MIN_IDENTITIES = 10
#: Resamplings of people behind each rate's ``ci95_people``.
BOOTSTRAP_ROUNDS = 2000
#: The FPIR each group's own threshold is sought for (``--target-fpir``).
TARGET_FPIR = 0.01

STATEMENT = (
    "The groups are labels the operator supplied in a CSV file, one per photo; Lethe never infers a "
    "group from a face (EU AI Act Art. 5(1)(g)). The rates describe this evaluation set under these "
    "labels, not the groups in general."
)


@dataclass(frozen=True, slots=True)
class Labelled:
    path: Path
    group: str
    identity: str


@dataclass(frozen=True, slots=True)
class Labels:
    """The operator's labels, checked: every row's photo exists, has a group and a person."""

    rows: tuple[Labelled, ...]
    #: Photos under the images folder with no row: left out, never given a group.
    unlabelled: int
    sha256: str

    @property
    def groups(self) -> list[str]:
        return sorted({r.group for r in self.rows})


def _line_error(csv_path: Path, line: int, what: str) -> InputError:
    return InputError(f"{csv_path.name} line {line}: {what}")


def read_labels(csv_path: Path, images: Path) -> Labels:
    """Read and check the labels CSV (see the module); :class:`InputError` with the line for a bad
    one. ``image`` is relative to ``images`` or absolute."""
    if not images.is_dir():
        raise InputError(f"the images folder {images} is not a folder")
    try:
        raw = csv_path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the labels file {csv_path}: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{csv_path.name} is not UTF-8 text") from exc
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise InputError(
            f"{csv_path.name}: unknown column {unknown[0]!r}; the columns are image, group and "
            "optionally identity"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"{csv_path.name}: no {missing[0]!r} column (the columns: image, group[, identity])")
    reader.fieldnames = columns
    rows: list[Labelled] = []
    seen: dict[Path, int] = {}
    group_of: dict[str, tuple[str, int]] = {}
    absent: list[tuple[int, str]] = []
    for line, row in enumerate(reader, start=2):
        image, group = (row.get("image") or "").strip(), (row.get("group") or "").strip()
        if not image:
            raise _line_error(csv_path, line, "no image")
        if not group:
            raise _line_error(
                csv_path,
                line,
                "no group (leave the photo out of the file to exclude it; Lethe never guesses one)",
            )
        path = Path(os.path.abspath(images / image))  # an absolute image stays as given
        if not path.is_file():
            absent.append((line, image))
            continue
        if path in seen:
            raise _line_error(csv_path, line, f"the photo of line {seen[path]} again")
        seen[path] = line
        identity = (row.get("identity") or "").strip() or path.parent.name
        first = group_of.setdefault(identity, (group, line))
        if first[0] != group:
            raise _line_error(
                csv_path, line, f"the person of line {first[1]} in another group: a group describes a person"
            )
        rows.append(Labelled(path, group, identity))
    if absent:
        line, image = absent[0]
        raise InputError(
            f"{len(absent)} photo(s) of {csv_path.name} do not exist under {images}, "
            f"e.g. line {line}: {image}"
        )
    if not rows:
        raise InputError(f"{csv_path.name} labels no photo")
    under = {
        Path(os.path.abspath(p))
        for p in images.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    }
    return Labels(tuple(rows), len(under - seen.keys()), hashlib.sha256(raw).hexdigest())


def _order(seed: int, label: str) -> str:
    return hashlib.sha256(f"{seed}\x00{label}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Person:
    identity: str
    group: str
    photos: tuple[Path, ...]  # in the seeded order
    enrolled: bool


def split(labels: Labels, seed: int) -> list[Person]:
    """Each person enrolled or held out (see the module), from the labels and the seed only, in an
    order of their own (a seeded hash of their label)."""
    photos: dict[str, list[Path]] = defaultdict(list)
    group_of: dict[str, str] = {}
    for row in labels.rows:
        photos[row.identity].append(row.path)
        group_of[row.identity] = row.group
    people: list[Person] = []
    for group in labels.groups:
        members = sorted(
            (i for i in photos if group_of[i] == group),
            key=lambda i: (len(photos[i]) > 1, _order(seed, i)),
        )
        held = len(members) // 2
        for rank, identity in enumerate(members):
            ordered = tuple(sorted(photos[identity], key=lambda p: _order(seed, str(p))))
            people.append(Person(identity, group, ordered, enrolled=rank >= held))
    # The gallery's order (and so every score's arithmetic) does not depend on the groups' names.
    return sorted(people, key=lambda p: _order(seed, p.identity))


@dataclass(frozen=True, slots=True)
class Search:
    group: str
    person: str
    mated: bool
    acquired: bool
    #: The mate's score (mated searches that were acquired), else None.
    mate_score: float | None
    #: Scores against every gallery template, or None when no face was found.
    scores: np.ndarray | None
    identity_row: int | None  # the searched person's gallery row (mated only)


@dataclass(frozen=True, slots=True)
class Trials:
    people: list[Person]
    gallery_groups: list[str]
    searches: list[Search]
    failure_to_enrol: Counter[str]


def searches(people: list[Person], vectors: dict[Path, np.ndarray | None]) -> Trials:
    """The gallery and every search's scores against it."""
    rows: list[np.ndarray] = []
    gallery_groups: list[str] = []
    probes: list[tuple[Person, Path, int | None]] = []
    failed: Counter[str] = Counter()
    for person in people:
        if not person.enrolled:
            probes.extend((person, p, None) for p in person.photos)
            continue
        chosen = next((p for p in person.photos if vectors.get(p) is not None), None)
        if chosen is None:
            failed[person.group] += 1
            continue
        rows.append(np.asarray(vectors[chosen], dtype=np.float64))
        gallery_groups.append(person.group)
        probes.extend((person, p, len(rows) - 1) for p in person.photos if p != chosen)
    gallery = np.vstack(rows) if rows else np.zeros((0, 1))
    found: list[Search] = []
    for person, path, row in probes:
        vector = vectors.get(path)
        if vector is None:
            found.append(Search(person.group, person.identity, row is not None, False, None, None, row))
            continue
        scores = gallery @ np.asarray(vector, dtype=np.float64) if rows else np.zeros(0)
        mate = float(scores[row]) if row is not None else None
        found.append(Search(person.group, person.identity, row is not None, True, mate, scores, row))
    return Trials(people, gallery_groups, found, failed)


def _people_interval(errors: np.ndarray, trials: np.ndarray, seed: int) -> tuple[float, float] | None:
    """A 95% percentile interval of the rate over people resampled with replacement (a cluster
    bootstrap): a person's searches are not independent trials, so this one is the honest width
    where people have several photos. Deterministic for the seed (people come in label order)."""
    if len(trials) < 2 or errors.sum() in (0, trials.sum()):
        return None  # one person, or no error or all errors: resampling cannot vary it
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(trials), size=(BOOTSTRAP_ROUNDS, len(trials)))
    rates = errors[picks].sum(axis=1) / trials[picks].sum(axis=1)
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)


def rate_with_intervals(per_person: dict[str, tuple[int, int]], seed: int) -> dict[str, Any]:
    """The rate of ``{person: (errors, trials)}``, with its Wilson interval over the searches and
    its interval over people resampled."""
    order = sorted(per_person)
    errors = np.array([per_person[p][0] for p in order], dtype=np.int64)
    trials = np.array([per_person[p][1] for p in order], dtype=np.int64)
    e, n = int(errors.sum()), int(trials.sum())
    interval = wilson(e, n)
    people = _people_interval(errors, trials, seed) if n else None
    return {
        "n": n,
        "errors": e,
        "people": len(order),
        "rate": round(e / n, 6) if n else None,
        "ci95": [round(interval[0], 6), round(interval[1], 6)] if interval else None,
        "ci95_people": [round(people[0], 6), round(people[1], 6)] if people else None,
    }


def _threshold_for(tops: list[float], target: float) -> float | None:
    """The lowest threshold at which at most ``target`` of these non-mated searches return anyone
    (their best scores; -inf for no face)."""
    if not tops:
        return None
    ordered = sorted(tops, reverse=True)
    allowed = math.floor(target * len(ordered) + 1e-9)
    if allowed >= len(ordered) or not math.isfinite(ordered[allowed]):
        return None  # any threshold meets it
    return round(float(np.nextafter(ordered[allowed], np.inf)), 6)


def _at(trials: Trials, threshold: float, groups: list[str], measured: set[str], seed: int) -> dict[str, Any]:
    #: (group, mated) -> person -> [errors, trials]
    tally: dict[tuple[str, bool], dict[str, list[int]]] = defaultdict(dict)
    wrong: dict[str, Counter[str]] = {g: Counter() for g in groups}
    for s in trials.searches:
        count = tally[s.group, s.mated].setdefault(s.person, [0, 0])
        count[1] += 1
        if s.scores is None:
            count[0] += s.mated  # no face: a miss, never a false positive
            continue
        returned = [int(i) for i in np.flatnonzero(s.scores >= threshold) if i != s.identity_row]
        if s.mated:
            count[0] += s.mate_score is None or s.mate_score < threshold
        else:
            count[0] += bool(returned)
        for i in returned:
            wrong[s.group][trials.gallery_groups[i]] += 1
    rates: dict[str, Any] = {}
    for g in [*groups, None]:
        chosen = [g] if g is not None else [x for x in groups if x in measured]
        fnir, fpir = (
            rate_with_intervals({p: (c[0], c[1]) for x in chosen for p, c in tally[x, mated].items()}, seed)
            for mated in (True, False)
        )
        if g is not None and g not in measured:
            for rate in (fnir, fpir):
                rate.update(rate=None, ci95=None, ci95_people=None)
        same = sum(wrong[x][x] for x in chosen)
        total = sum(sum(wrong[x].values()) for x in chosen)
        rates[g if g is not None else "*"] = {
            "fnir": fnir,
            "fpir": fpir,
            "wrong_candidates": {"same_group": same, "other_group": total - same},
        }
    return {
        "threshold": threshold,
        "groups": {g: rates[g] for g in groups},
        "all_measured_groups": rates["*"],
        "wrong_candidates_by_group": {g: {h: wrong[g][h] for h in groups} for g in groups},
        "differential": {
            "fnir": differential(rates, measured, "fnir", "a missed search", threshold),
            "fpir": differential(rates, measured, "fpir", "a false positive", threshold),
        },
    }


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _bounds(rate: dict[str, Any]) -> tuple[float, float]:
    """The wider of a rate's two intervals (over searches; over people, where there is one)."""
    intervals = [i for i in (rate["ci95"], rate.get("ci95_people")) if i]
    return min(i[0] for i in intervals), max(i[1] for i in intervals)


def differential(
    rates: dict[str, Any], measured: set[str], key: str, what: str, threshold: float
) -> dict[str, Any]:
    """The max/min ratio of a rate across the measured groups, with a sentence saying what it
    means and whether the intervals overlap (the wider of each rate's two)."""
    known = sorted(
        ((g, rates[g][key]) for g in measured if rates[g][key]["rate"] is not None),
        key=lambda item: (item[1]["rate"], item[0]),
    )
    if len(known) < 2:
        return {
            "ratio": None,
            "highest": None,
            "lowest": None,
            "words": "Fewer than two groups measured: no differential.",
        }
    (lo_name, low), (hi_name, high) = known[0], known[-1]
    label = f"{key.upper()} at threshold {threshold:g}"
    if high["rate"] == 0:
        words = (
            f"{label}: no group had {what} (the highest upper 95% bound is "
            f"{_pct(max(r['ci95'][1] for _, r in known))}): no differential measurable at these sample sizes."
        )
        return {"ratio": None, "highest": None, "lowest": None, "words": words}
    overlap = _bounds(high)[0] <= _bounds(low)[1]
    verdict = (
        "The 95% intervals (over searches, or over people resampled) overlap: at these sample sizes "
        "the difference is not established."
        if overlap
        else "The 95% intervals do not overlap, even over people resampled: the difference is unlikely "
        "to be chance alone in this set."
    )
    if low["rate"] == 0:
        ratio = None
        head = (
            f"{label}: group {hi_name} {_pct(high['rate'])} ({high['errors']} of {high['n']}), group "
            f"{lo_name} none (0 of {low['n']}, up to {_pct(low['ci95'][1])}): no finite ratio."
        )
    else:
        ratio = round(high["rate"] / low["rate"], 3)
        head = (
            f"{label}: group {hi_name} {_pct(high['rate'])} ({high['errors']} of {high['n']}) is "
            f"{ratio:g} times group {lo_name} {_pct(low['rate'])} ({low['errors']} of {low['n']})."
        )
    return {"ratio": ratio, "highest": hi_name, "lowest": lo_name, "words": f"{head} {verdict}"}


def _median(values: Iterable[float]) -> float | None:
    kept = [v for v in values if math.isfinite(v)]
    return round(float(np.median(kept)), 6) if kept else None


def check_options(min_identities: int, target_fpir: float, thresholds: Sequence[float] = ()) -> None:
    """:class:`InputError` for options the measurement cannot use."""
    if any(not -1.0 <= t <= 1.0 for t in thresholds):
        raise InputError("a threshold is a cosine similarity between -1 and 1")
    if min_identities < 2:
        raise InputError("a group needs at least 2 people to be measured (--min-identities >= 2)")
    if not 0 < target_fpir < 1:
        raise InputError("the target FPIR is a share between 0 and 1")


def measure(
    labels: Labels,
    vectors: dict[Path, np.ndarray | None],
    thresholds: Sequence[float],
    *,
    seed: int = 0,
    min_identities: int = MIN_IDENTITIES,
    target_fpir: float = TARGET_FPIR,
) -> dict[str, Any]:
    """The report (see the module) from the labels and every labelled photo's template."""
    if not thresholds:
        raise InputError("at least one threshold is needed")
    check_options(min_identities, target_fpir, thresholds)
    people = split(labels, seed)
    trials = searches(people, vectors)
    groups = labels.groups
    counts: dict[str, dict[str, Any]] = {}
    measured: set[str] = set()
    for g in groups:
        members = [p for p in people if p.group == g]
        own = [s for s in trials.searches if s.group == g]
        reason = None
        if len(members) < min_identities:
            reason = f"not measured (n < {min_identities}): {len(members)} people"
        elif not any(s.mated for s in own) or not any(not s.mated for s in own):
            reason = "not measured: no mated or no non-mated search (people with one photo only?)"
        else:
            measured.add(g)
        non_mated_tops = [float(s.scores.max()) if s.scores is not None and s.scores.size else -math.inf
                          for s in own if not s.mated]  # fmt: skip
        counts[g] = {
            "measured": reason is None,
            "reason": reason,
            "people": len(members),
            "photos": sum(len(p.photos) for p in members),
            "enrolled": sum(p.enrolled for p in members) - trials.failure_to_enrol[g],
            "held_out": sum(not p.enrolled for p in members),
            "failure_to_enrol": trials.failure_to_enrol[g],
            "mated_searches": sum(s.mated for s in own),
            "non_mated_searches": sum(not s.mated for s in own),
            "failure_to_acquire": {
                "mated": sum(s.mated and not s.acquired for s in own),
                "non_mated": sum(not s.mated and not s.acquired for s in own),
            },
            "mated_score_median": _median(s.mate_score for s in own if s.mate_score is not None),
            "non_mated_top_score_median": _median(non_mated_tops),
            "threshold_for_target_fpir": _threshold_for(non_mated_tops, target_fpir)
            if reason is None
            else None,
        }
    return {
        "statement": STATEMENT,
        "labels": {
            "sha256": labels.sha256,
            "rows": len(labels.rows),
            "groups": groups,
            "unlabelled_excluded": labels.unlabelled,
        },
        "protocol": {
            "mode": "identification (1:N), exact comparison with every enrolled template",
            "seed": seed,
            "min_identities": min_identities,
            "target_fpir": target_fpir,
            "gallery": len(trials.gallery_groups),
            "mated_searches": sum(s.mated for s in trials.searches),
            "non_mated_searches": sum(not s.mated for s in trials.searches),
        },
        "groups": counts,
        "results": [_at(trials, t, groups, measured, seed) for t in thresholds],
    }


def demographic_report(
    labels_csv: Path,
    images: Path,
    settings: Settings,
    thresholds: Sequence[float] = (),
    *,
    seed: int = 0,
    min_identities: int = MIN_IDENTITIES,
    target_fpir: float = TARGET_FPIR,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Check the labels, embed every labelled photo (its central face, as ``lethe eval lfw``) and
    measure at the configured match threshold and at ``thresholds``."""
    check_options(min_identities, target_fpir, thresholds)
    labels = read_labels(labels_csv, images)
    chosen = list(dict.fromkeys([settings.match_threshold, *thresholds]))
    vectors = embed_all([r.path for r in labels.rows], settings, progress)
    report = measure(
        labels, vectors, chosen, seed=seed, min_identities=min_identities, target_fpir=target_fpir
    )
    report["model"] = {
        "detector": settings.detector,
        "embedder": settings.embedder,
        "embed_flip": settings.embed_flip,
        "operating_threshold": settings.match_threshold,
    }
    return report
