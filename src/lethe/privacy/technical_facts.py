"""The facts the technical documentation is generated from (:mod:`lethe.privacy.technical_file`),
read from the running installation and its release, never typed in by hand:

- :func:`versions`: Lethe's version, the SHA-256 of its installed code, Python and the libraries
  that decide what the system computes;
- :func:`model_files`: every model file the configured detector and embedder use, with the SHA-256
  of its bytes on disk as they are now (and the pin it must match), its licence and publisher,
  and the graphs Lethe derived from it in the model cache;
- :func:`index_facts`, :func:`thresholds`, :func:`accuracy`: the vector index, the thresholds in
  force and what was measured at them, with 95% confidence intervals;
- :func:`oversight_facts`, :func:`logging_facts`, :func:`change_facts`: human oversight, the logs
  and what changed in this installation;
- :func:`known_limits`: the packaged, versioned ``lethe/known_limits.json``.

Counts and settings only: no template, no photo, no data subject, and no path of the server.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from lethe.calibration import calibration_file, confidence_table, default_thresholds, implied, model_family
from lethe.catalog.privacy_tables import LegalOrderRow
from lethe.catalog.tables import AuditEntryRow
from lethe.catalog.verification_tables import UserCompetenceRow
from lethe.errors import ConfigError, ModelError
from lethe.model_ids import DLIB_RESNET_SHA256, model_name
from lethe.models.registry import (
    DLIB_LICENCES,
    MODELS,
    dlib_model_path,
    resolve_model,
    sha256_file,
)
from lethe.privacy.orders import IN_FORCE
from lethe.privacy.oversight import Oversight
from lethe.privacy.verification import CandidateVerification

if TYPE_CHECKING:
    from lethe.config import Settings
    from lethe.store import Store

PACKAGE = Path(__file__).resolve().parents[1]
KNOWN_LIMITS_FILE = PACKAGE / "known_limits.json"

#: The libraries whose versions decide what Lethe computes or stores.
LIBRARIES = (
    "numpy",
    "onnxruntime",
    "onnx",
    "opencv-python-headless",
    "faiss-cpu",
    "dlib-bin",
    "face_recognition_models",
    "pillow",
    "cryptography",
    "sqlalchemy",
    "fastapi",
    "pymilvus",
    "milvus-lite",
)
#: Audit actions that change how the system behaves (Annex IV point 6).
CHANGE_ACTIONS = (
    "source.add",
    "source.edit",
    "source.suspend",
    "source.resume",
    "source.delete",
    "verification.policy",
    "user.competence",
    "oversight.stop",
    "oversight.resume",
    "order.stop",
    "order.lift",
    "index.rebuild",
    "index.reembed",
    "keys.rotate",
)
#: The audit action of each generation of the technical file (lethe.privacy.technical_file).
GENERATED = "report.technical_file"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


@cache
def code_sha256() -> str:
    """One SHA-256 over the installed package's code and data files (relative path and each file's
    SHA-256, in path order): names exactly the code that runs, also between releases."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json", ".html", ".ini", ".css", ".js"):
            relative = path.relative_to(PACKAGE).as_posix()
            digest.update(f"{relative}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def versions() -> dict[str, Any]:
    return {
        "lethe": _version("lethe"),
        "code_sha256": code_sha256(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": f"{platform.system()} {platform.machine()}",
        "libraries": {name: v for name in LIBRARIES if (v := _version(name)) is not None},
        "update_requirements": "Install a release as a whole (its pinned dependencies); after a change of "
        "embedder run `lethe index reembed`; after any update generate this documentation again.",
    }


def _file_entry(
    role: str, model: str, path: Path, *, pinned: str | None, licence: str, where: str
) -> dict[str, Any]:
    sha256 = sha256_file(path)
    return {
        "role": role,
        "model": model,
        "file": path.name,
        "size_bytes": path.stat().st_size,
        "sha256": sha256,
        "pinned_sha256": pinned,
        "matches_pin": None if pinned is None else sha256 == pinned,
        "licence": licence,
        "where": where,
    }


def _registry_file(role: str, name: str, given: Path | None, settings: Settings) -> dict[str, Any]:
    """A model of the registry, as resolved without a download (the technical file never fetches)."""
    spec = MODELS[name]
    where = spec.setting if given is not None else "the model cache"
    try:
        path, file = resolve_model(name, path=given, cache_dir=settings.model_cache, offline=True)
    except ModelError as exc:
        return {
            "role": role,
            "model": name,
            "file": None,
            "sha256": None,
            "licence": spec.licence,
            "problem": str(exc).splitlines()[0],
        }
    return _file_entry(role, name, path, pinned=file.sha256, licence=spec.licence, where=where)


def _dlib_file(role: str, key: str) -> dict[str, Any]:
    path = dlib_model_path(key)
    pinned = DLIB_RESNET_SHA256 if key == "resnet" else None  # the other files carry no pin
    where = "the face_recognition_models package"
    return _file_entry(role, f"dlib-{key}", path, pinned=pinned, licence=DLIB_LICENCES[key], where=where)


def _derived(role: str, path: Path, source: dict[str, Any]) -> dict[str, Any] | None:
    """A graph Lethe derived from an official file, when the model cache holds it; its pin is the
    SHA-256 recorded beside it when it was made and checked against the official file's output."""
    if not path.is_file():
        return None
    from lethe.embedding.prepared import sidecar

    try:
        recorded = sidecar(path).read_text(encoding="ascii").split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        recorded = None
    entry = _file_entry(
        role,
        f"{source['model']} (prepared by Lethe)",
        path,
        pinned=recorded,
        licence=str(source["licence"]),
        where="the model cache",
    )
    return entry | {"derived_from_sha256": source["sha256"]}


def model_files(settings: Settings) -> list[dict[str, Any]]:
    """Every model file the configured pipeline uses (see the module); the SHA-256 of each is of its
    bytes on disk now."""
    files: list[dict[str, Any]] = []
    if settings.detector == "yunet":
        files.append(_registry_file("detector", "yunet", settings.yunet_model_path, settings))
    else:
        files.append(
            {
                "role": "detector",
                "model": "dlib-hog-frontal",
                "file": None,
                "sha256": None,
                "licence": "Boost Software License (dlib)",
                "note": "built into dlib: no file",
            }
        )
    if settings.embedder == "sface":
        if settings.detector == "hog":  # ArcFace points from dlib's 68 landmarks
            files.append(_dlib_file("landmarks", "shape68"))
        official = _registry_file("embedder", "sface", settings.sface_model_path, settings)
        files.append(official)
        if official["sha256"]:
            from lethe.embedding.sface import prepared_name

            prepared = _derived(
                "embedder, prepared graph", settings.model_cache / prepared_name(official["sha256"]), official
            )
            files += [prepared] if prepared else []
        return files
    files.append(_dlib_file("landmarks", "shape5"))
    official = _dlib_file("embedder", "resnet")
    files.append(official)
    if settings.embedder == "onnx":
        from lethe.embedding.dlib_onnx import cached_model_name

        converted = _derived(
            "embedder, ONNX conversion",
            settings.model_cache / cached_model_name(official["sha256"]),
            official,
        )
        files += [converted] if converted else []
    return files


def pipeline_facts(settings: Settings, template_model: str) -> dict[str, Any]:
    return {
        "detector": settings.detector,
        "embedder": settings.embedder,
        "embedder_model": model_name(template_model),
        "template_model_sha256": template_model,
        "template": "128 numbers (L2-normalised float32) per face; compared by cosine similarity",
        "mirrored_template_averaging": settings.embed_flip,
        "detection": {
            "detect_max_side_px": settings.detect_max_side_px,
            "min_face_px": settings.min_face_px,
            "detect_small_face_px": settings.detect_small_face_px,
        },
    }


def index_facts(store: Store) -> dict[str, Any]:
    settings = store.settings
    stats = {k: v for k, v in store.index.stats().items() if k not in ("unsourced",)}
    return {
        "backend": settings.index,
        "structure_setting": settings.index_kind,
        "exact_up_to_faces": settings.index_exact_max_faces,
        "in_force": stats,
        "metric": "inner product of unit templates (cosine similarity)",
        "policy": "exact (flat) search up to the set number of faces, IVF with 8-bit scalar quantisation "
        "above it; nlist about 4 x sqrt(faces), nprobe bounded to about 100,000 codes scanned per query "
        "(lethe.index._sizing)",
        "sealed": "the FAISS index file is encrypted at rest (AES-256-GCM, a fresh key per save)",
    }


def thresholds(settings: Settings) -> dict[str, Any]:
    defaults = default_thresholds(settings.embedder)
    return {
        "match_threshold": settings.match_threshold,
        "erasure_auto_threshold": settings.erasure_auto_threshold,
        "erasure_review_threshold": settings.erasure_review_threshold,
        "calibrated_defaults": {
            "match_threshold": defaults.match_threshold,
            "erasure_auto_threshold": defaults.erasure_auto_threshold,
            "erasure_review_threshold": defaults.erasure_review_threshold,
        },
        "changed_from_defaults": sorted(
            name
            for name in ("match_threshold", "erasure_auto_threshold", "erasure_review_threshold")
            if getattr(settings, name) != getattr(defaults, name)
        ),
    }


def _row_at(table: dict[str, Any], threshold: float, gallery: int) -> dict[str, Any] | None:
    for row in table["galleries"]:
        if row["gallery_faces"] == gallery:
            return next((r for r in row["by_threshold"] if abs(r["threshold"] - threshold) < 1e-9), None)
    return None


def accuracy(store: Store) -> dict[str, Any]:
    """The calibration in force (its file, with a 95% interval beside every rate) and the rates
    measured nearest to each threshold in force at this gallery's size."""
    settings = store.settings
    path = calibration_file(settings.embedder, settings.embed_flip)
    table = confidence_table(path)
    gallery = len(store.index)
    at: dict[str, Any] = {}
    for name in ("match_threshold", "erasure_auto_threshold", "erasure_review_threshold"):
        value = float(getattr(settings, name))
        measured = implied(value, gallery, path)
        row = _row_at(table, measured.threshold, measured.gallery_faces) if measured else None
        at[name] = {
            "threshold": value,
            "measured_threshold": measured.threshold if measured else None,
            "measured_gallery_faces": measured.gallery_faces if measured else None,
            "fpir": row["fpir"] if row else None,
            "fnir": row["fnir"] if row else None,
            "note": None if measured else "below every measured threshold: no rate applies",
        }
    return {
        "model_family": model_family(settings.embedder),
        "calibration_file": path.name,
        "gallery_faces_now": gallery,
        "at_thresholds_in_force": at,
        "calibration": table,
        "metrics": "FPIR: share of searches for a person not in the gallery that return any match; "
        "FNIR: share of searches for an enrolled person whose best hit is not that person at or above "
        "the threshold (ISO/IEC 19795-1 terms). Measured on LFW 1:N identification, one enrolled photo "
        "per person (bench/identify_lfw.py).",
    }


def oversight_facts(store: Store) -> dict[str, Any]:
    settings = store.settings
    verification = CandidateVerification(store)
    policy = verification.policy()
    held = [c for c in verification.competences.listing() if c["competence"] == "verifier"]
    with store.catalog.session() as session:
        orders = session.scalar(select(func.count(LegalOrderRow.id)).where(LegalOrderRow.state.in_(IN_FORCE)))
        recorded = session.scalar(select(func.count(UserCompetenceRow.user_id)))
    stop = Oversight(store).state()
    return {
        "verifiers_required": policy.required,
        "exemption_legal_reference": policy.legal_reference,
        "verifiers_trained_now": sum(1 for c in held if c["held"]),
        "verifier_competences_lapsed": sum(1 for c in held if not c["held"]),
        "competences_recorded": int(recorded or 0),
        "verifier_training_days": settings.verifier_training_days,
        "score_hidden_until_verdict": settings.verify_score_after_judgement,
        "erasure_second_signoff": settings.erasure_second_signoff,
        "erasure_review_band": [settings.erasure_review_threshold, settings.erasure_auto_threshold],
        "global_stop": {"stopped": stop.stopped, "since": stop.since.isoformat() if stop.since else None},
        "jurisdiction_orders_in_force": int(orders or 0),
    }


def logging_facts(store: Store) -> dict[str, Any]:
    verification = store.verify_audit()
    _, good, bad = store.audit_checkpoints()
    from lethe.catalog.audit_log import key_fingerprint

    return {
        "audit_log": {
            "entries": verification.entries,
            "chain_ok": verification.ok,
            "head": verification.head,
            "signed_checkpoints": len(good),
            "checkpoints_not_verifying": bad,
            "checkpoint_key_sha256": key_fingerprint(store.keyring.audit_public_key()),
        },
        "log_retention_days": store.settings.log_retention_days,
    }


def change_facts(store: Store) -> dict[str, Any]:
    """What changed in this installation, from the audit log: each kind of change counted with its
    first and last date, and every earlier generation of this documentation with its hashes."""
    with store.catalog.session() as session:
        rows = session.execute(
            select(
                AuditEntryRow.action,
                func.count(AuditEntryRow.seq),
                func.min(AuditEntryRow.at),
                func.max(AuditEntryRow.at),
            )
            .where(AuditEntryRow.action.in_(CHANGE_ACTIONS))
            .group_by(AuditEntryRow.action)
        ).all()
        earlier = session.execute(
            select(AuditEntryRow.seq, AuditEntryRow.at, AuditEntryRow.details)
            .where(AuditEntryRow.action == GENERATED)
            .order_by(AuditEntryRow.seq)
        ).all()
    return {
        "changes_recorded": [
            {"action": action, "times": int(n), "first": first.isoformat(), "last": last.isoformat()}
            for action, n, first, last in sorted(rows)
        ],
        "earlier_versions": [
            {
                "audit_seq": seq,
                "generated_at": at.isoformat(),
                "sha256": json.loads(details).get("sha256", {}),
            }
            for seq, at, details in earlier
        ],
    }


def known_limits(families: set[str]) -> dict[str, Any]:
    """The packaged known limits that apply to these components (``sface``/``dlib``, ``yunet``/``hog``)."""
    try:
        data = json.loads(KNOWN_LIMITS_FILE.read_text())
        limits = [lim for lim in data["limits"] if {"all", *families} & set(lim["applies_to"])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the known limits {KNOWN_LIMITS_FILE}: {exc}") from exc
    return {
        "file": KNOWN_LIMITS_FILE.name,
        "version": data["version"],
        "updated": data["updated"],
        "limits": limits,
    }
